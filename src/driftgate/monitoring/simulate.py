"""Traffic for a demo a person can watch: rows of a window of the dataset replayed to the
server's POST /predict at a set rate, their true labels posted to POST /labels after a delay,
with drift injected on the way (a column shifted or scaled, category frequencies moved,
values made missing).

The core is pure: parsing the options against what the server accepts (`Accepted`), picking
the rows, injecting the drift, the send schedule. `Replay` is the thin part that talks HTTP
(httpx when it is installed, else the standard library's http.client), one kept-alive
connection for the whole run.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from driftgate.config import ValidationConfig, parse_duration, parse_window
from driftgate.data.dataset import LABEL, TIME, FeatureSchema
from driftgate.errors import ConfigError, DataError, DriftgateError, listed

Order = Literal["random", "time"]
KINDS = ("shift", "scale", "move", "missing")
UP_HINT = "is the server up? `make demo` starts it (or `driftgate serve`)"


# --------------------------------------------------------------------------- what the server accepts


@dataclass(frozen=True)
class Accepted:
    """What the served model's /predict accepts: its features (the model card's), the
    categories of each categorical feature (validation.allowed when params.yaml lists them, else
    those the model saw in training) and the hard ranges of numbers (validation.ranges)."""

    schema: FeatureSchema
    categories: dict[str, tuple[str, ...]]
    ranges: dict[str, tuple[float, float]]
    row: str = "row"
    rows: str = "rows"

    @classmethod
    def from_card(cls, card: dict, limits: ValidationConfig = ValidationConfig(), card_path: Path | str = "model card") -> Accepted:
        try:
            schema = FeatureSchema.from_dict(card["features"])
        except (KeyError, TypeError) as exc:
            raise DataError(card_path, f"is not a complete model card (features: {exc!r})", "retrain with `dvc repro train`") from None
        profile = card.get("feature_profile", {}).get("categorical", {})
        categories = {name: tuple(limits.allowed[name]) if name in limits.allowed else tuple(profile.get(name, {}).get("categories", ()))
                      for name in schema.categorical}
        ranges = {name: tuple(limits.ranges[name]) for name in schema.numeric if name in limits.ranges}
        project = card.get("project") or {}
        return cls(schema, categories, ranges, project.get("row", "row"), project.get("rows", "rows"))


# --------------------------------------------------------------------------- drift injection


@dataclass(frozen=True)
class Injection:
    """One drift option: `shift` adds `amount` to a numeric column, `scale` multiplies it,
    `move` sets a share `amount` of the rows to `category`, `missing` blanks a share of a column."""

    kind: Literal["shift", "scale", "move", "missing"]
    column: str
    amount: float
    category: str | None = None

    @property
    def option(self) -> str:
        return f"--{self.kind}"

    def describe(self) -> str:
        if self.kind == "shift":
            return f"{self.column} {self.amount:+g}"
        if self.kind == "scale":
            return f"{self.column} x{self.amount:g}"
        if self.kind == "move":
            return f"{self.amount:.0%} of rows to {self.column}={self.category}"
        return f"{self.amount:.0%} of {self.column} missing"


_SYNTAX = {
    "shift": "COLUMN=AMOUNT, e.g. --shift temp=+5",
    "scale": "COLUMN=FACTOR, e.g. --scale wind_speed=1.3",
    "move": "COLUMN=CATEGORY:SHARE, e.g. --move carrier=UA:0.2",
    "missing": "COLUMN=SHARE, e.g. --missing temp=0.3",
}


def _number(text: str, option: str, given: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{option} {given}", f"{text!r} is not a number", f"write {_SYNTAX[option[2:]]}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{option} {given}", f"{text!r} is not a finite number", f"write {_SYNTAX[option[2:]]}")
    return value


def _share(text: str, option: str, given: str) -> float:
    value = _number(text, option, given)
    if not 0 < value <= 1:
        raise ConfigError(f"{option} {given}", f"the share must be above 0 and at most 1 (got {text})",
                          f"write {_SYNTAX[option[2:]]} (0.2 = 20% of the rows)")
    return value


def parse_injection(kind: str, given: str, accepted: Accepted) -> Injection:
    """One --shift/--scale/--move/--missing value, checked against the model's columns and categories."""
    option = f"--{kind}"
    name, sep, rest = given.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise ConfigError(f"{option} {given}", f"cannot be read as {_SYNTAX[kind].split(',')[0]}", f"write {_SYNTAX[kind]}")
    schema = accepted.schema
    wanted = schema.categorical if kind == "move" else schema.numeric
    if name not in wanted:
        what = "categorical" if kind == "move" else "numeric"
        if name in schema.columns:
            problem = f"'{name}' is a {'numeric' if what == 'categorical' else 'categorical'} feature, not a {what} one"
        else:
            problem = f"'{name}' is not a feature of the model"
        if kind == "missing" and name in schema.categorical:
            problem += " (/predict takes no missing value for a category)"
        raise ConfigError(f"{option} {given}", problem, f"use one of the {what} features: {listed(wanted, limit=20)}")
    if kind == "shift":
        return Injection("shift", name, _number(rest, option, given))
    if kind == "scale":
        return Injection("scale", name, _number(rest, option, given))
    if kind == "missing":
        return Injection("missing", name, _share(rest, option, given))
    category, colon, share = rest.rpartition(":")
    category = category.strip()
    if not colon or not category:
        raise ConfigError(f"{option} {given}", "names no category and share", f"write {_SYNTAX[kind]}")
    known = accepted.categories.get(name, ())
    if known and category not in known:
        raise ConfigError(f"{option} {given}", f"'{category}' is not a category /predict accepts for {name}",
                          f"use one of {listed(known, limit=20)}")
    return Injection("move", name, _share(share, option, given), category)


def parse_injections(accepted: Accepted, shift: Iterable[str] = (), scale: Iterable[str] = (), move: Iterable[str] = (),
                     missing: Iterable[str] = ()) -> list[Injection]:
    """Every drift option, in the order shift, scale, move, missing (each repeatable)."""
    given = {"shift": shift, "scale": scale, "move": move, "missing": missing}
    return [parse_injection(kind, text, accepted) for kind in KINDS for text in given[kind] or ()]


def inject(frame: pd.DataFrame, injections: list[Injection], seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """A copy of `frame` with the drift applied, and how many rows each injection changed.
    Shift and scale change every value that is not missing; move sets round(share x rows) rows
    that hold another category to the named one (fewer if fewer hold another); missing blanks
    round(share x rows) of the values still present. Which rows: drawn with `seed`."""
    out = frame.copy()
    rng = np.random.default_rng([seed, 1])  # the row picking draws from [seed, 0]
    changed = []
    n = len(out)
    for injection in injections:
        column = injection.column
        if injection.kind in ("shift", "scale"):
            values = out[column].astype(float)
            present = values.notna()
            out[column] = values + injection.amount if injection.kind == "shift" else values * injection.amount
            changed.append(int(present.sum()))
            continue
        if injection.kind == "move":
            candidates = np.flatnonzero((out[column] != injection.category).to_numpy())
        else:
            candidates = np.flatnonzero(out[column].notna().to_numpy())
        count = min(int(round(injection.amount * n)), len(candidates))
        chosen = rng.choice(candidates, size=count, replace=False) if count else np.array([], dtype=int)
        position = out.columns.get_loc(column)
        if injection.kind == "move":
            out.iloc[chosen, position] = injection.category
        else:
            out[column] = out[column].astype(float)
            out.iloc[chosen, position] = np.nan
        changed.append(count)
    return out, changed


def outside_ranges(frame: pd.DataFrame, accepted: Accepted) -> dict[str, int]:
    """Per column, how many values lie outside validation.ranges (the server refuses those records)."""
    found = {}
    for name, (low, high) in accepted.ranges.items():
        if name in frame:
            values = frame[name].astype(float)
            bad = int((values.notna() & ((values < low) | (values > high))).sum())
            if bad:
                found[name] = bad
    return found


def check_ranges(frame: pd.DataFrame, injections: list[Injection], accepted: Accepted) -> None:
    """A ConfigError naming the option when the injected drift puts values outside
    validation.ranges: /predict would refuse those records with a 422."""
    found = outside_ranges(frame, accepted)
    for injection in injections:
        if injection.column in found and injection.kind in ("shift", "scale"):
            low, high = accepted.ranges[injection.column]
            value = f"{injection.column}={injection.amount:{'+' if injection.kind == 'shift' else ''}g}"
            raise ConfigError(f"{injection.option} {value}",
                              f"puts {found[injection.column]:,} of {len(frame):,} {accepted.rows} outside validation.ranges "
                              f"{injection.column} [{low:g}, {high:g}] (params.yaml): /predict refuses such records (422)",
                              "inject a smaller change, or widen the range in params.yaml")


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Rows:
    """The rows to replay, in sending order: the model's features, the true label, and what
    was left out of the window (and why)."""

    features: pd.DataFrame
    labels: np.ndarray
    window_rows: int
    left_out: dict[str, int] = field(default_factory=dict)  # "dest 'ACK' ..." -> rows refused by the server, left out
    changed: list[int] = field(default_factory=list)  # rows each injection changed

    def __len__(self) -> int:
        return len(self.features)


def load_window(dataset: Path | str, window: str) -> pd.DataFrame:
    """The rows of the validated dataset inside `window` (the windows syntax of params.yaml)."""
    from driftgate.data.dataset import load_dataset, select_window

    chosen = parse_window(window, "--window")
    if not Path(dataset).is_file():
        raise DataError(dataset, "not found (the validated dataset the rows are replayed from)",
                        "run the pipeline first (`make run`, or `driftgate validate`), or point --dataset at it")
    frame = load_dataset(Path(dataset))
    try:
        rows = select_window(frame, chosen, "current")
    except DataError as exc:
        raise DataError(f"--window {window}", exc.problem, f"pick a window inside {dataset}") from None
    rows.attrs["source"] = f"{dataset} ({chosen.label})"
    return rows


def unseen_categories(frame: pd.DataFrame, accepted: Accepted) -> pd.Series:
    """Rows with a category /predict refuses (one the model never saw, or outside validation.allowed)."""
    bad = pd.Series(False, index=frame.index)
    for name, known in accepted.categories.items():
        if known:
            bad |= ~frame[name].isin(known)
    return bad


def check_counts(rows: int, batch: int) -> None:
    """--rows and --batch are whole numbers from 1."""
    if rows < 1:
        raise ConfigError("--rows", f"must be at least 1 (got {rows})", "e.g. --rows 2000")
    if batch < 1:
        raise ConfigError("--batch", f"must be at least 1 (got {batch})", "e.g. --batch 1 (one record per request)")


def pick_rows(window: pd.DataFrame, rows: int, order: Order = "random", seed: int = 0) -> pd.DataFrame:
    """`rows` rows of a time-sorted window: drawn at random (without replacement while the
    window has enough, so a monitor's window looks like the whole period, not one afternoon),
    or the first `rows` in time order."""
    check_counts(rows, 1)
    if order == "time":
        ordered = window.sort_values(TIME, kind="stable") if TIME in window else window
        return ordered.iloc[:rows]
    rng = np.random.default_rng([seed, 0])
    positions = rng.choice(len(window), size=rows, replace=rows > len(window))
    return window.iloc[positions]


def prepare_rows(window: pd.DataFrame, accepted: Accepted, rows: int, order: Order = "random", seed: int = 0,
                 injections: list[Injection] = ()) -> Rows:
    """The rows to replay: those of the window /predict accepts, picked, with the drift injected."""
    missing = [c for c in [*accepted.schema.columns, LABEL] if c not in window.columns]
    if missing:
        source = window.attrs.get("source", "the dataset")
        raise DataError(source, f"has no column(s) {listed(missing, quote=True)} (the model's features and the label)",
                        "replay the validated dataset of this model (`driftgate validate` writes it)")
    window = window[window[LABEL].notna()]
    refused = unseen_categories(window, accepted)
    left_out = {}
    if refused.any():
        for name, known in accepted.categories.items():
            if not known:
                continue
            bad = window.loc[refused & ~window[name].isin(known), name]
            if len(bad):
                values = bad.value_counts()
                left_out[f"{name} {listed(values.index.astype(str), limit=4, quote=True)}"] = int(len(bad))
        window = window[~refused]
    if window.empty:
        raise DataError("--window", f"no {accepted.rows} of the window have categories /predict accepts",
                        "pick another window")
    picked = pick_rows(window, rows, order, seed)
    features, changed = inject(picked[accepted.schema.columns].reset_index(drop=True), list(injections), seed)
    check_ranges(features, list(injections), accepted)
    return Rows(features, picked[LABEL].to_numpy(dtype=int), len(window) + int(refused.sum()), left_out, changed)


def records(features: pd.DataFrame, schema: FeatureSchema) -> list[dict]:
    """JSON-ready records: numbers as floats, missing ones as None (null), categories as text."""
    columns = {}
    for name in schema.numeric:
        values = features[name].astype(float).to_numpy()
        columns[name] = [None if v != v else float(v) for v in values]
    for name in schema.categorical:
        columns[name] = [str(v) for v in features[name].to_numpy()]
    names = schema.columns
    return [dict(zip(names, values)) for values in zip(*(columns[n] for n in names))]


# --------------------------------------------------------------------------- the schedule


def parse_rate(text: str) -> float | None:
    """Predictions per second from 20/s, 300/m, 1000/h or 20 (per second); None for max
    (as fast as the server answers)."""
    given = str(text).strip().lower()
    if given in ("max", "inf", "unlimited"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min|h))?", given)
    if not match or not float(match[1]) > 0:
        raise ConfigError("--rate", f"cannot read {text!r} as a rate", "write 20/s, 300/m, 1000/h, or max (as fast as the server answers)")
    return float(match[1]) / {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, None: 1}[match[2]]


def parse_delay(text: str) -> float | None:
    """Seconds from 30s, 5m, 0 (at once); None for off (no labels posted)."""
    given = str(text).strip().lower()
    if given in ("off", "none", "never"):
        return None
    if given in ("0", "0s", "0.0"):
        return 0.0
    try:
        return parse_duration(given, "--label-delay")
    except ValueError as exc:
        raise ConfigError("--label-delay", str(exc), "write 30s, 5m, 0 (at once) or off (no labels)") from None


def send_offsets(requests: int, batch: int, rate: float | None) -> np.ndarray:
    """Seconds after the start at which each request is due: request k carries rows
    k*batch .. (k+1)*batch - 1, so it is due at k*batch/rate (all at 0 for max)."""
    if rate is None:
        return np.zeros(requests)
    return np.arange(requests) * batch / rate


# --------------------------------------------------------------------------- HTTP


class ServerError(Exception):
    """The server could not be reached, or stopped answering."""


class _Stop(Exception):
    """The run cannot go on (the tally says why)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: object  # parsed JSON, or the text when it is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        """The server's own message: the detail of an error answer, field by field."""
        detail = self.body.get("detail", self.body) if isinstance(self.body, dict) else self.body
        if isinstance(detail, list):
            parts = []
            for item in detail[:3]:
                if isinstance(item, dict):
                    where = item.get("field") or ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                    text = item.get("message") or item.get("msg") or json.dumps(item)
                    parts.append(f"{where}: {text}" if where else str(text))
                else:
                    parts.append(str(item))
            more = f" (and {len(detail) - 3} more)" if len(detail) > 3 else ""
            return "; ".join(parts) + more
        text = detail if isinstance(detail, str) else json.dumps(detail)
        return text.strip()[:300] or "(no message)"


def _parsed(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _HttpxSession:
    def __init__(self, base: str, timeout: float) -> None:
        import httpx

        self._errors = (httpx.TransportError,)
        self.client = httpx.Client(base_url=base, timeout=timeout)

    def request(self, method: str, path: str, payload: object = None) -> Answer:
        try:
            response = self.client.request(method, path, json=payload) if payload is not None else self.client.request(method, path)
        except self._errors as exc:
            raise ServerError(str(exc) or type(exc).__name__) from None
        return Answer(response.status_code, _parsed(response.content))

    def close(self) -> None:
        self.client.close()


class _StdlibSession:
    """One kept-alive http.client connection (reopened once if the server closed it)."""

    def __init__(self, base: str, timeout: float) -> None:
        import http.client

        parts = urlsplit(base)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.prefix = parts.path.rstrip("/")
        self._new = lambda: kind(parts.hostname, parts.port, timeout=timeout)
        self._errors = (OSError, http.client.HTTPException)
        self.connection = self._new()

    def request(self, method: str, path: str, payload: object = None) -> Answer:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            try:
                self.connection.request(method, self.prefix + path, body=body, headers=headers)
                response = self.connection.getresponse()
                return Answer(response.status, _parsed(response.read()))
            except self._errors as exc:
                self.connection.close()
                self.connection = self._new()
                if attempt or isinstance(exc, ConnectionRefusedError):
                    raise ServerError(str(exc) or type(exc).__name__) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def session(base: str, timeout: float = 30.0, prefer_httpx: bool = True):
    """An HTTP session on `base`: httpx's client when it is installed, else http.client's."""
    if prefer_httpx:
        try:
            return _HttpxSession(base, timeout)
        except ImportError:
            pass
    return _StdlibSession(base, timeout)


def connect(url: str, prefer_httpx: bool = True):
    """A session on the server at `url` and its GET /health answer. Nothing listening, or no
    driftgate server, is a DriftgateError saying what to start."""
    http = session(url, prefer_httpx=prefer_httpx)
    try:
        answer = http.request("GET", "/health")
    except ServerError as exc:
        http.close()
        raise DriftgateError(f"--url {url}", f"no server answers there ({exc})", UP_HINT) from None
    if not answer.ok:
        http.close()
        raise DriftgateError(f"--url {url}", f"GET /health answered {answer.status}: {answer.message()}",
                             "point --url at a driftgate server (`driftgate serve`, `make demo`)")
    return http, answer.body if isinstance(answer.body, dict) else {}


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--url", f"{url!r} is not an http(s) URL", "e.g. --url http://127.0.0.1:7860")
    return url.strip().rstrip("/")


# --------------------------------------------------------------------------- the replay


@dataclass
class Tally:
    """What a replay did so far."""

    total: int = 0  # rows to send
    sent: int = 0  # rows sent
    acknowledged: int = 0  # rows the server answered 2xx for
    requests: int = 0
    errors: int = 0  # requests answered with an error (or not at all)
    warnings: int = 0  # server warnings on accepted records (values outside the training range ...)
    labels_posted: int = 0  # labels the server took
    labels_attached: int = 0  # of those, labels it attached to a logged prediction (its answer's `attached`)
    labels_unmatched: int = 0  # of those, labels the server found no prediction for
    labels_pending: int = 0  # acknowledged rows whose label is not posted yet
    messages: dict[str, int] = field(default_factory=dict)  # error message -> times
    elapsed: float = 0.0
    stopped: bool = False  # Ctrl-C
    failure: str | None = None  # why the replay ended early
    hint: str = ""  # what to do about it
    labels_off: str | None = None  # why labels stopped being posted

    @property
    def rate(self) -> float:
        return self.acknowledged / self.elapsed if self.elapsed > 0 else 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        self.messages[message] = self.messages.get(message, 0) + 1


MAX_ERRORS_IN_A_ROW = 20
LABELS_PER_REQUEST = 5000


class Replay:
    """Sends the rows to POST /predict on schedule, one request of `batch` records at a time,
    and each acknowledged row's true label to POST /labels `delay` seconds after the answer
    (None: no labels). Progress goes to `say` every `progress_every` seconds."""

    def __init__(self, url: str, rows: Rows, schema: FeatureSchema, batch: int = 1, rate: float | None = 20.0,
                 delay: float | None = 30.0, say: Callable[[str], None] = print, progress_every: float = 5.0,
                 prefer_httpx: bool = True, what: str = "rows", clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        check_counts(1, batch)
        self.url, self.rows, self.schema, self.batch, self.rate, self.delay = check_url(url), rows, schema, batch, rate, delay
        self.say, self.progress_every, self.prefer_httpx, self.what = say, progress_every, prefer_httpx, what
        self.clock, self.sleep = clock, sleep
        self.pending: deque[tuple[float, list[dict]]] = deque()
        self.tally = Tally(total=len(rows))
        self.health: dict = {}

    # ------------------------------------------------------------------- parts

    def connect(self):
        """The session, after GET /health answered (`self.health`)."""
        http, self.health = connect(self.url, self.prefer_httpx)
        return http

    def _post_labels(self, http, due: list[dict]) -> None:
        tally = self.tally
        for start in range(0, len(due), LABELS_PER_REQUEST):
            part = due[start:start + LABELS_PER_REQUEST]
            try:
                answer = http.request("POST", "/labels", {"labels": part})
            except ServerError as exc:
                raise ServerError(f"POST /labels: {exc}") from None
            tally.labels_pending -= len(part)
            if answer.ok:
                tally.labels_posted += len(part)
                body = answer.body if isinstance(answer.body, dict) else {}
                attached = body.get("attached")
                tally.labels_attached += attached if isinstance(attached, int) and not isinstance(attached, bool) else len(part)
                unmatched = body.get("unmatched")
                tally.labels_unmatched += len(unmatched) if isinstance(unmatched, list) else int(unmatched or 0)
            elif answer.status in (404, 405):
                dropped = tally.labels_pending + len(part)  # this part, the rest of `due` and those still waiting
                tally.labels_off = (f"the server has no POST /labels (it answered {answer.status}): "
                                    f"{dropped:,} label(s) not posted, and no more will be")
                self.say(f"warning: {tally.labels_off}")
                self.delay, tally.labels_pending = None, 0
                self.pending.clear()
                return
            else:
                tally.error(f"POST /labels {answer.status}: {answer.message()}")

    def _flush_labels(self, http, now: float, everything: bool = False) -> None:
        due: list[dict] = []
        while self.pending and (everything or self.pending[0][0] <= now):
            due.extend(self.pending.popleft()[1])
        if due:
            self._post_labels(http, due)

    def _wait(self, http, until: float) -> None:
        """Sleep until `until`, posting labels as they fall due."""
        while True:
            now = self.clock()
            self._flush_labels(http, now)
            if now >= until:
                return
            next_label = self.pending[0][0] if self.pending else math.inf
            self.sleep(max(0.0, min(until, next_label) - now))

    def _progress(self) -> str:
        t = self.tally
        parts = [f"sent {t.sent:,} / {t.total:,} {self.what}", f"acknowledged {t.acknowledged:,} ({t.rate:.1f}/s)"]
        if self.delay is not None or t.labels_posted:
            parts.append(f"labels posted {t.labels_posted:,}" + (f", {t.labels_pending:,} waiting" if t.labels_pending else ""))
        parts.append(f"errors {t.errors:,}")
        return ", ".join(parts)

    def _send(self, http, start: int) -> None:
        tally = self.tally
        chunk = self.rows.features.iloc[start:start + self.batch]
        payload = records(chunk, self.schema)
        tally.sent += len(payload)
        tally.requests += 1
        answer = http.request("POST", "/predict", payload[0] if self.batch == 1 else payload)
        if not answer.ok:
            tally.error(f"POST /predict {answer.status}: {answer.message()}")
            if answer.status == 404:
                tally.failure = f"POST /predict answered 404 ({answer.message()}): {self.url} serves no driftgate model"
                tally.hint = "point --url at a driftgate server (`driftgate serve`, `make demo`)"
                raise _Stop
            return
        body = answer.body if isinstance(answer.body, dict) else {}
        tally.acknowledged += len(payload)
        tally.warnings += len(body.get("warnings") or ())
        request_id = body.get("request_id")
        if self.delay is not None and request_id:
            labels = self.rows.labels[start:start + len(payload)]
            self.pending.append((self.clock() + self.delay,
                                 [{"request_id": request_id, "row": i, "label": int(label)} for i, label in enumerate(labels)]))
            tally.labels_pending += len(payload)

    # ------------------------------------------------------------------- the run

    def run(self, http=None) -> Tally:
        """Replay every row, then wait for and post the last labels (on `http`, from
        `connect()`, else a new session). Ctrl-C stops at once (`stopped`); a server that stops
        answering ends the run (`failure`); either way the tally says what was done."""
        http = http or self.connect()
        tally = self.tally
        offsets = send_offsets(math.ceil(len(self.rows) / self.batch), self.batch, self.rate)
        began = self.clock()
        last_progress = began
        in_a_row = 0
        try:
            for k, offset in enumerate(offsets):
                self._wait(http, began + offset)
                errors = tally.errors
                self._send(http, k * self.batch)
                in_a_row = in_a_row + 1 if tally.errors > errors else 0
                if in_a_row >= MAX_ERRORS_IN_A_ROW:
                    last = next(reversed(tally.messages))
                    tally.failure = f"the server refused {in_a_row} requests in a row; the last: {last}"
                    tally.hint = "fix what the message names (--shift/--scale/--move/--missing, or the served model)"
                    break
                now = self.clock()
                tally.elapsed = now - began
                if now - last_progress >= self.progress_every:
                    self.say(self._progress())
                    last_progress = now
            if tally.failure is None and self.pending:
                self.say(f"all sent; posting the last {tally.labels_pending:,} labels as they fall due "
                         f"(within {max(0.0, self.pending[-1][0] - self.clock()):.0f} s)")
                while self.pending:
                    self._wait(http, self.pending[-1][0])
        except KeyboardInterrupt:
            tally.stopped = True
        except _Stop:
            pass
        except ServerError as exc:
            tally.failure, tally.hint = f"the server stopped answering ({exc})", UP_HINT
        finally:
            tally.elapsed = tally.elapsed or (self.clock() - began)
            http.close()
        return tally

    def summary(self) -> list[str]:
        t = self.tally
        lines = []
        if t.stopped:
            lines.append("stopped (Ctrl-C)")
        lines.append(f"{t.acknowledged:,} of {t.total:,} {self.what} acknowledged in {t.requests:,} request(s) over "
                     f"{t.elapsed:.1f} s ({t.rate:.1f}/s" + (f", asked for {self.rate:g}/s)" if self.rate else ", as fast as the server answers)"))
        if t.warnings:
            lines.append(f"{t.warnings:,} warning(s) from the server on values the model never saw in training "
                         "(outside its training range, or a category it never saw): the answers say which")
        if t.labels_off:
            lines.append(t.labels_off)
        elif self.delay is not None or t.labels_posted:
            text = f"labels posted: {t.labels_posted:,} (attached {t.labels_attached:,}"
            text += f", {t.labels_unmatched:,} matched no prediction)" if t.labels_unmatched else ")"
            if t.labels_pending:
                text += f"; {t.labels_pending:,} not posted (the run ended before their delay)"
            lines.append(text)
        lines.append(f"errors: {t.errors:,}")
        for message, times in list(t.messages.items())[:5]:
            lines.append(f"  {times:,} x {message}")
        return lines
