"""params.yaml, validated once into typed settings, and the project's paths.

No other module builds a path from strings or reads params.yaml itself. A bad value fails at
start-up with the key, the value and the allowed range in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from driftgate.errors import ConfigError, listed

DEFAULT_PARAMS = Path("params.yaml")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- windows

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_INT = re.compile(r"^\d[\d_]*$")
_FRACTION = re.compile(r"^(\d+\.\d*|\.\d+|\d+)$")
WINDOW_SYNTAX = ("a month (2013-04), months (2013-01..2013-03), dates (2013-01-01..2013-03-15), "
                 "rows (rows 0..8000, rows 8000..) or shares of the rows (0.0..0.8 or rows 0%..80%)")


def _month_bounds(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(f"{text}-01")
    return start, start + pd.offsets.MonthBegin(1)


def _timestamp(value: Any, text: Any) -> pd.Timestamp:
    if isinstance(value, (bool, int, float)):
        raise ValueError(f"cannot read {text!r} as a date: a number is not a date (for rows write `rows 0..8000`)")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"cannot read {text!r} as a date ({exc})") from None
    if pd.isna(stamp):
        raise ValueError(f"cannot read {text!r} as a date")
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


_PERCENT = re.compile(r"^(\d+(\.\d*)?)\s*%$")


def _parse_rows(text: str, value: str) -> dict:
    first, sep, last = (part.strip() for part in text.partition(".."))
    if sep and _PERCENT.match(first) and _PERCENT.match(last):  # rows 0%..80%: a share, as labels show it
        return {"kind": "fraction", "start": float(_PERCENT.match(first)[1]) / 100, "end": float(_PERCENT.match(last)[1]) / 100}
    if not sep or not _INT.match(first) or (last and not _INT.match(last)):
        raise ValueError(f"cannot read {value!r} as rows: write `rows 0..8000` (rows 0 to 7999) or `rows 8000..` (to the last row)")
    return {"kind": "rows", "start": int(first), "end": int(last) if last else None}


class Window(Strict):
    """A half-open window [start, end) of the dataset, in time or in rows.

    Written in params.yaml as a month (`2013-04`), a range of months (`2013-01..2013-03`,
    both included), a range of dates (`2013-01-01..2013-03-15`, end excluded) or a mapping
    `{start: ..., end: ...}` of dates: these need a time (data.time_column or data.time_from).
    Or as rows: `rows 0..8000` (rows 0 to 7999; without a time column these are the file's
    rows, 0 being the first under the header; with one, rows counted in time order) and
    `rows 8000..` (to the last row). Or as shares of the rows in time order: `0.0..0.8`
    (the first 80%), `0.8..1.0` (the rest), a share having a decimal point; or the same in
    percent, `rows 0%..80%`, as labels show it.
    """

    kind: Literal["time", "rows", "fraction"] = "time"
    start: Any  # pd.Timestamp (time), int (rows), float (fraction)
    end: Any  # the same; None for rows to the last row
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, Window):
            return value.model_dump()
        if isinstance(value, dict):
            if value.get("kind", "time") != "time":
                return value
            unknown = sorted(set(map(str, value)) - {"start", "end", "kind"})
            if unknown:
                raise ValueError(f"a window mapping has start and end, not {listed(unknown, quote=True)}")
            return {k: _timestamp(v, v) if k in ("start", "end") else v for k, v in value.items()}
        if not isinstance(value, str):
            raise ValueError(f"a window is {WINDOW_SYNTAX} (got {value!r})")
        text = value.strip()
        if text.lower().startswith("rows"):
            return _parse_rows(text[4:].strip(), value)
        if ".." in text:
            first, last = (part.strip() for part in text.split("..", 1))
            if _FRACTION.match(first) and _FRACTION.match(last):
                if "." not in first + last:
                    raise ValueError(f"{value!r} is ambiguous: write `rows {first}..{last}` for rows, or shares of "
                                     "the rows with a decimal point (0.0..0.8)")
                return {"kind": "fraction", "start": float(first), "end": float(last)}
            if _MONTH.match(first) and _MONTH.match(last):
                return {"start": _month_bounds(first)[0], "end": _month_bounds(last)[1]}
            if first and last:
                return {"start": _timestamp(first, value), "end": _timestamp(last, value)}
        elif _MONTH.match(text):
            try:
                start, end = _month_bounds(text)
            except ValueError as exc:
                raise ValueError(f"cannot read {value!r} as a month ({exc})") from None
            return {"start": start, "end": end}
        raise ValueError(f"cannot read {value!r} as a window: use {WINDOW_SYNTAX}")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.kind == "time":
            if not isinstance(self.start, pd.Timestamp) or not isinstance(self.end, pd.Timestamp):
                raise ValueError("a time window has a start and an end date")
            if self.end <= self.start:
                raise ValueError(f"end {self.end.date()} must be after start {self.start.date()}")
        elif self.kind == "rows":
            if not isinstance(self.start, int) or self.start < 0 or not (self.end is None or isinstance(self.end, int)):
                raise ValueError("rows are counted from 0: write `rows 0..8000`")
            if self.end is not None and self.end <= self.start:
                raise ValueError(f"end row {self.end} must be after start row {self.start}")
        else:
            if not 0.0 <= self.start < self.end <= 1.0:
                raise ValueError(f"shares of the rows run from 0.0 to 1.0 with start < end (got {self.start:g}..{self.end:g})")
        return self

    @property
    def is_time(self) -> bool:
        return self.kind == "time"

    def overlaps(self, other: Window) -> bool:
        """Two time windows that share an instant (row and share windows never count as overlapping)."""
        return self.is_time and other.is_time and self.start < other.end and other.start < self.end

    @property
    def label(self) -> str:
        if self.kind == "rows":
            return f"rows {self.start}..{'' if self.end is None else self.end}"
        if self.kind == "fraction":
            return f"rows {round(self.start * 100, 2):g}%..{round(self.end * 100, 2):g}%"
        last = self.end - pd.Timedelta(days=1)
        if self.start.day == 1 and self.end.day == 1 and self.start.time() == self.end.time() == pd.Timestamp(0).time():
            first_m, last_m = self.start.strftime("%Y-%m"), last.strftime("%Y-%m")
            return first_m if first_m == last_m else f"{first_m}..{last_m}"
        return f"{self.start.date()}..{self.end.date()}"


def parse_window(text: str, where: str = "--current") -> Window:
    """Parse a window given on the command line, with the option name in the error."""
    try:
        return Window.model_validate(text)
    except ValidationError as exc:
        problem = _message(exc.errors()[0])
        raise ConfigError(where, problem, "fix the window" if WINDOW_SYNTAX in problem else f"use {WINDOW_SYNTAX}") from None


def _message(error: dict[str, Any]) -> str:
    """pydantic's message without its 'Value error, ' prefix."""
    return re.sub(r"^(Value|Assertion) error, ", "", str(error["msg"]))


# --------------------------------------------------------------------------- sections


class JoinConfig(Strict):
    path: Path
    keys: list[str] = Field(min_length=1)
    columns: list[str] | None = None


class TargetConfig(Strict):
    column: str
    positive_if_at_least: float | None = None
    drop_missing: bool = True
    class_names: tuple[str, str] = ("negative", "positive")


class FeatureConfig(Strict):
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    time_parts: list[Literal["hour", "day_of_week", "day_of_month", "month"]] = []
    exclude: list[str] = []

    @model_validator(mode="after")
    def _no_overlap(self) -> FeatureConfig:
        both = set(self.numeric or []) & set(self.categorical or [])
        if both:
            raise ValueError(f"column(s) {sorted(both)} are listed as both numeric and categorical")
        return self


TimeUnit = Literal["seconds", "milliseconds", "microseconds", "nanoseconds", "minutes", "hours", "days"]
TIME_UNITS: dict[str, str] = {"seconds": "s", "milliseconds": "ms", "microseconds": "us", "nanoseconds": "ns",
                              "minutes": "m", "hours": "h", "days": "D"}  # pandas' names
TimePart = str | StrictInt  # a column name, or one number for every row (e.g. year: 2013)


class TimeFrom(Strict):
    """data.time_from: the time built from columns (or fixed numbers) for its parts.

    `{year: year, month: month, day: day, hour: hour}`; `day_of_year` instead of month and day
    (`{year: 2013, day_of_year: doy}`); hour, minute and second are optional (0)."""

    year: TimePart
    month: TimePart | None = None
    day: TimePart | None = None
    day_of_year: TimePart | None = None
    hour: TimePart | None = None
    minute: TimePart | None = None
    second: TimePart | None = None

    @model_validator(mode="after")
    def _calendar(self) -> TimeFrom:
        month_and_day = (self.month is not None, self.day is not None)
        if self.day_of_year is not None:
            if any(month_and_day):
                raise ValueError("day_of_year replaces month and day: give one or the other")
        elif not all(month_and_day):
            raise ValueError("needs month and day, or day_of_year (besides year)")
        return self

    def parts(self) -> dict[str, str | int]:
        return {name: value for name, value in self.model_dump().items() if value is not None}

    @property
    def columns(self) -> list[str]:
        return [value for value in self.parts().values() if isinstance(value, str)]


class DataConfig(Strict):
    """Where the data is and how to read it. The time that orders the rows is data.time_column
    (dates; numbers only with data.time_unit or data.time_format) or data.time_from (parts); with
    neither, the file's row order is its time, and windows are rows or shares of the rows."""

    path: Path
    join: JoinConfig | None = None
    time_column: str | None = None
    time_from: TimeFrom | None = None
    time_unit: TimeUnit | None = None  # time_column holds numbers: units since time_origin
    time_origin: str | None = None  # with time_unit; default the Unix epoch, 1970-01-01
    time_format: str | None = None  # time_column's strftime format, e.g. "%d/%m/%Y %H:%M" or "%Y%m%d"
    target: TargetConfig
    features: FeatureConfig = FeatureConfig()

    @field_validator("time_origin", mode="before")
    @classmethod
    def _origin(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, date)):
            raise ValueError(f"time_origin is a date like 1970-01-01 (got {value!r})")
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot read {value!r} as a date ({exc})") from None
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("time_column", "time_format")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty: leave the key out instead")
        return value

    @property
    def has_time(self) -> bool:
        return self.time_column is not None or self.time_from is not None

    @property
    def time_columns(self) -> list[str]:
        """The columns the time is read from (none: row order)."""
        if self.time_from is not None:
            return self.time_from.columns
        return [self.time_column] if self.time_column else []


class ValidationConfig(Strict):
    min_rows: int = Field(default=100, ge=1)
    max_null_share: Fraction = 0.05
    null_share: dict[str, Fraction] = {}
    ranges: dict[str, tuple[float, float]] = {}
    allowed: dict[str, list[str]] = {}
    min_positive_share: Fraction = 0.01

    @field_validator("ranges")
    @classmethod
    def _ranges_ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for column, (low, high) in value.items():
            if low > high:
                raise ValueError(f"range for {column!r} has low {low} > high {high}")
        return value


class WindowsConfig(Strict):
    train: Window
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    reference: Window | None = None
    current: Window

    @property
    def reference_window(self) -> Window:
        return self.reference or self.train


class ModelConfig(Strict):
    max_iter: int = Field(default=300, ge=1, le=10_000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(default=31, ge=2, le=4096)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0.0)
    class_weight: Literal["balanced"] | None = "balanced"
    monotonic: dict[str, Literal[-1, 0, 1]] = {}
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    seed: int = 0


DriftEngine = Literal["pandas", "chunked", "dask"]  # in memory; files in batches; the same on a Dask cluster


class ColumnTest(Strict):
    test: Literal["ks", "wasserstein", "jensenshannon", "chisquare", "z", "psi", "hellinger"] | None = None
    threshold: float | None = Field(default=None, gt=0.0)


class DriftConfig(Strict):
    share_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    columns: list[str] | None = None
    prediction: bool = True
    small_sample: int = Field(default=1000, ge=1)
    report_sample: int = Field(default=2000, ge=100, le=1_000_000)
    mode: Literal["parity", "calibrated"] = "parity"
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # calibrated mode: false-alarm level
    correction: Literal["bh", "bonferroni"] = "bh"
    draws: int = Field(default=200, ge=50, le=10_000)
    pool_below: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.005
    tests: dict[str, ColumnTest] = {}  # per-column test and/or threshold instead of the default rule
    ignore: list[str] = []  # reported, but left out of the drift share (e.g. calendar columns under a time split)

    def overrides(self, kinds: dict[str, str]) -> dict[str, tuple[str | None, float | None]]:
        """The per-column overrides, checked against the columns being tested."""
        from driftgate.drift.stattests import NUMERIC_ONLY_TESTS

        for column, choice in self.tests.items():
            if column not in kinds:
                raise ConfigError(f"params.yaml: drift.tests.{column}", "is not a column being tested",
                                  f"use one of: {', '.join(kinds)}")
            if choice.test in NUMERIC_ONLY_TESTS and kinds[column] != "numeric":
                raise ConfigError(f"params.yaml: drift.tests.{column}.test", f"{choice.test} needs a numeric column",
                                  "use jensenshannon, psi, hellinger, chisquare or z")
        return {column: (choice.test, choice.threshold) for column, choice in self.tests.items()}

    def ignored(self, kinds: dict[str, str]) -> frozenset[str]:
        """drift.ignore, checked against the columns being tested."""
        for column in self.ignore:
            if column not in kinds:
                raise ConfigError(f"params.yaml: drift.ignore: {column}", "is not a column being tested",
                                  f"use some of: {', '.join(kinds)}")
        return frozenset(self.ignore)


class GatesConfig(Strict):
    f1_min: Fraction
    f1_max_drop: Fraction = 0.05
    drift_share_max: Fraction = 0.5
    drift_columns: list[str] = []
    baseline: Path | None = None


class AlertsConfig(Strict):
    """When `driftgate alert` sends an email. The SMTP server and the addresses come from
    environment variables (CI secrets), never from this file: see driftgate.alerts."""

    send_on: Literal["failure", "always", "schedule"] = "failure"  # schedule: failures of scheduled runs only
    required: bool = False  # true: missing SMTP settings are an error (exit 2), not a warning


class ServingConfig(Strict):
    """The demo and REST API (`driftgate serve`, app.py)."""

    log: str = "logs/predictions.sqlite"  # prediction log: a SQLite file (WAL mode), or a SQLAlchemy URL
    max_upload_mb: Annotated[float, Field(gt=0, le=2048)] = 20.0  # Batch tab: larger files are refused
    max_batch_rows: Annotated[int, Field(gt=0)] = 200_000


class EstimationSettings(Strict):
    """How an F1 estimate is made, how wide its interval is, and when it abstains."""

    # the interval
    coverage: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9
    """Nominal coverage of the interval: 0.9 puts 5% of the estimate's distribution below it and 5% above."""
    calibration: Literal["isotonic", "platt"] = "platt"
    """How the model's scores become probabilities, fitted on the holdout: Platt scaling (a
    logistic curve on the score's log-odds) or isotonic regression (no shape assumed). Platt
    missed the holdout's days by less (rms 0.082 against 0.086 F1; docs/estimation.md)."""
    refits: Annotated[int, Field(ge=0, le=1000)] = 50
    """Bootstrap refits of the calibration on resampled holdout rows: the calibration's own fitting error."""
    draws: Annotated[int, Field(ge=50, le=100_000)] = 400
    """Simulated label draws per estimate (Poisson-binomial): the sampling noise of the window's F1."""
    block: str = "D"
    """The holdout is cut into blocks of this length (a pandas period: D, W, h ...); how far the
    estimate misses each block, beyond its sampling noise, is the shift margin added to every interval."""
    min_blocks: Annotated[int, Field(ge=3)] = 5
    """Fewest holdout blocks (of at least min_rows rows each) to measure the shift margin from."""

    # abstention
    min_rows: Annotated[int, Field(ge=1)] = 500
    """Fewer rows than this: abstain. On the bundled model the sampling part of the interval is
    about +-0.09 F1 at 200 rows, +-0.06 at 500 and +-0.03 at 2,000 (the shift margin adds to it)."""
    max_domain_auc: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    """Abstain when a classifier tells reference rows from window rows with a cross-validated
    ROC-AUC above this (1.0: never abstain for shift). Months inside the bundled training window
    score 0.69-0.75 against it, weeks 0.87-0.95: shorter windows need a higher limit."""
    domain_rows: Annotated[int, Field(ge=100)] = 5000
    """Rows sampled from each side for the domain classifier."""
    domain_folds: Annotated[int, Field(ge=2, le=10)] = 3
    """Cross-validation folds of the domain classifier (its AUC is out of fold)."""

    seed: int = 0


def parse_duration(value: Any, key: str) -> float:
    """Seconds in a duration written 30s, 5m, 2h, 1d (or a number of seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"{key}: write a duration such as 30s, 5m, 2h or 1d (got {value!r})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip().lower())
        if not match:
            raise ValueError(f"cannot read {value!r} as a duration: write 30s, 5m, 2h or 1d")
        seconds = float(match[1]) * _DURATION_UNITS[match[2] or "s"]
    if not seconds > 0:
        raise ValueError(f"a duration must be more than 0 (got {value!r})")
    return seconds


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(value: Any) -> float:
    return parse_duration(value, "duration")


Duration = Annotated[float, BeforeValidator(_duration)]
AlertLevel = Literal["ok", "warning", "critical"]


class Levels(Strict):
    """A warning and a critical limit on one metric; either may be left out."""

    warning: float | None = None
    critical: float | None = None


class AlertRules(Strict):
    """When a monitoring pass is ok, warning or critical (README: alerts). Each rule gives its
    level; the pass's level is the worst of them."""

    drift_share: Levels = Levels(warning=0.2, critical=0.5)  # share of tested columns that drift, at or above
    columns: dict[str, Literal["warning", "critical"]] = {}  # the level when that column drifts, e.g. dest: critical
    prediction_drift: AlertLevel = "warning"  # the level when the scores or the decisions drift (ok: no alert)
    estimated_f1: Levels = Levels(warning=0.40, critical=0.32)  # label-free estimate, below
    realized_f1: Levels = Levels(warning=0.40, critical=0.35)  # once labels are in, below
    missing_share: Levels = Levels(warning=0.10, critical=0.25)  # largest rise of a column's missing share, at or above

    @model_validator(mode="after")
    def _ordered(self) -> AlertRules:
        for name in ("drift_share", "missing_share"):
            levels = getattr(self, name)
            if levels.warning is not None and levels.critical is not None and levels.critical < levels.warning:
                raise ValueError(f"{name}: critical ({levels.critical:g}) must be at or above warning ({levels.warning:g}): "
                                 "more drift is worse")
        for name in ("estimated_f1", "realized_f1"):
            levels = getattr(self, name)
            if levels.warning is not None and levels.critical is not None and levels.critical > levels.warning:
                raise ValueError(f"{name}: critical ({levels.critical:g}) must be at or below warning ({levels.warning:g}): "
                                 "a lower F1 is worse")
        return self


class MonitoringConfig(Strict):
    """The monitor: `driftgate monitor`, `driftgate serve --monitor-every` (README: monitoring)."""

    window: str = "since_last"  # since_last: the predictions since the last pass; or a sliding window such as 24h
    min_rows: int = Field(default=200, ge=1)  # a smaller window is recorded as skipped and judges nothing
    max_rows: int = Field(default=1_000_000, ge=1)  # a larger window is cut to its newest rows (the pass says so)
    mode: Literal["parity", "calibrated"] = "calibrated"  # drift mode of a pass (parity alarms on most small windows)
    every: Duration = 300.0  # default interval of `driftgate monitor --every`
    lease: Duration = 600.0  # a pass holding the lease longer than this is presumed dead and its window redone
    cooldown: Duration = 3600.0  # a persisting alert is notified again after this long
    label_key: str | None = None  # a field of each request that labels can name instead of request_id and row
    alerts: AlertRules = AlertRules()
    estimation: EstimationSettings = EstimationSettings()
    notify: list[Literal["email", "webhook"]] = ["email", "webhook"]  # channels; each needs its env vars (README)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value.strip() != "since_last":
            parse_duration(value, "window")
        return value.strip()

    @property
    def window_every(self) -> str:
        """monitoring.every as people write it (300 s -> 5m)."""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.every % size == 0:
                return f"{self.every / size:g}{unit}"
        return f"{self.every:g}s"

    @property
    def sliding(self) -> float | None:
        """The sliding window's length in seconds, or None for since_last."""
        return None if self.window == "since_last" else parse_duration(self.window, "window")


class RetrainingConfig(Strict):
    """The retraining controller: `driftgate retrain`, `driftgate rollback` (README: retraining)."""

    window: Window | None = None  # the challenger's training window (a newer one than windows.train), e.g. 2013-04..2013-06
    evaluation: Window | None = None  # the newest labelled window neither model trained on; both are scored on it
    margin: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01  # the challenger's F1 must beat the champion's by this much ...
    margin_kind: Literal["absolute", "relative"] = "absolute"  # ... in F1 points, or as a share of the champion's F1
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95  # ... and the one-sided paired bootstrap lower bound at this level above 0
    draws: int = Field(default=2000, ge=200, le=100_000)  # paired bootstrap resamples of the evaluation rows
    replicas: int = Field(default=8, ge=0, le=100)  # refits of each recipe (champion's, challenger's) on resampled rows:
    # the rule compares the recipes' mean F1s and its bound carries their noise (0: the two models and the rows' noise only)
    on_alert: bool = False  # retrain when a monitoring pass is critical
    seed: int = 0

    def require_windows(self) -> None:
        """Both windows set and apart, or a ConfigError naming the key (a retraining needs them)."""
        if self.window is None:
            raise ConfigError("params.yaml: retraining.window", "is not set: the challenger needs a training window",
                              "set it to a newer window than windows.train, e.g. retraining.window: 2013-04..2013-06")
        if self.evaluation is None:
            raise ConfigError("params.yaml: retraining.evaluation", "is not set: both models are scored on it",
                              "set it to the newest labelled window neither model trained on, e.g. 2013-07")
        if self.window.overlaps(self.evaluation):
            raise ConfigError("params.yaml: retraining.evaluation", f"{self.evaluation.label} overlaps the challenger's "
                              f"training window {self.window.label}", "score both models on rows neither trained on")

    @field_validator("replicas")
    @classmethod
    def _spread_needs_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("one refit has no spread: use 0 (evaluation noise only) or 2 or more (8 by default)")
        return value


class ProjectConfig(Strict):
    """How the UI, the API and the reports speak of this data: nothing about one dataset is
    hard-coded. The class names are data.target.class_names (label 0, label 1)."""

    title: str = Field(default="model", min_length=1, max_length=120)  # page title, report headings
    question: str = Field(default="", max_length=500)  # what the model answers, in one sentence
    row: str = Field(default="row", min_length=1, max_length=40)  # what one row is (singular)
    rows: str = Field(default="rows", min_length=1, max_length=40)  # ... and plural


class Params(Strict):
    project: ProjectConfig = ProjectConfig()
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    windows: WindowsConfig
    model: ModelConfig = ModelConfig()
    drift: DriftConfig = DriftConfig()
    gates: GatesConfig
    alerts: AlertsConfig = AlertsConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    retraining: RetrainingConfig = RetrainingConfig()
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# --------------------------------------------------------------------------- loading

_UNION_TAGS = re.compile(r"\.(tuple|list|dict|str|int|float|bool|none|function-[a-z]+|is-instance|literal|lax-or-strict|"
                         r"union|nullable|json-or-python|chain)(\[[^\]]*\])?(?=\.|$)")
_BOMS = ((b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def _format_error(path: Path, error: dict[str, Any]) -> ConfigError:
    key = ".".join(str(part) for part in error["loc"])
    key = _UNION_TAGS.sub("", key) or "(top level)"
    got = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        return ConfigError(f"{path}: {key}", "unknown key", "remove it or fix its spelling (see README: params.yaml)")
    if kind == "missing":
        return ConfigError(f"{path}: {key}", "required key is missing", "add it (see README: params.yaml)")
    shown = "a mapping" if isinstance(got, dict) else repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ConfigError(f"{path}: {key}", f"{_message(error)} (got {shown})", "fix the value in params.yaml (see README: params.yaml)")


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...] = (), walked: set[int] | None = None) -> list[tuple[str, int, int]]:
    """Keys given twice in one mapping, at any depth, as (dotted key, first line, second line).
    PyYAML would keep the last one silently. A node reused through an alias is walked once."""
    walked = set() if walked is None else walked
    if id(node) in walked:
        return []
    walked.add(id(node))
    found: list[tuple[str, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
                found.append((".".join((*path, key)), seen[key], line))
            else:
                seen[key] = line
            found.extend(_duplicate_keys(value_node, (*path, key), walked))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, str(index)), walked))
    return found


def read_yaml(path: Path) -> Any:
    """A YAML file as Python data, refusing what PyYAML would take silently: a key given twice
    (at any depth), a file that is not UTF-8 text (another encoding, a byte-order mark, binary data)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise ConfigError(path, f"is encoded as {name}", "save it as UTF-8 without a byte-order mark")
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(path, f"holds binary data (a NUL byte at offset {nul}), not YAML text",
                          "point --params at the params.yaml text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(path, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
                          "save it as UTF-8 (your editor's 'encoding' setting, or `iconv -t utf-8`)") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = _duplicate_keys(node)
        if duplicates:
            key, first, second = duplicates[0]
            more = f" (and {len(duplicates) - 1} more: {listed([d[0] for d in duplicates[1:]])})" if len(duplicates) > 1 else ""
            lines = f"on line {first}" if first == second else f"on lines {first} and {second}"
            raise ConfigError(f"{path}: {key}", f"is given twice, {lines}{more}",
                              "keep one of them: YAML would silently use the last")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"is not valid YAML ({' '.join(str(exc).split())})",
                          "fix the syntax at the line and column named") from None
    except RecursionError:
        raise ConfigError(path, "is nested too deeply to be settings", "see README: params.yaml") from None
    finally:
        loader.dispose()


def _consistency(params: Params) -> list[tuple[str, str, str]]:
    """Settings that are each valid but do not fit together, as (key, problem, what to do)."""
    data, features = params.data, params.data.features
    problems: list[tuple[str, str, str]] = []
    if data.time_column and data.time_from:
        problems.append(("data.time_from", "is given together with data.time_column",
                         "keep one: time_column reads one column, time_from builds the time from several"))
    for key in ("time_unit", "time_format", "time_origin"):
        if getattr(data, key) is not None and not data.time_column:
            problems.append((f"data.{key}", "says how to read data.time_column, which is not set",
                             "set data.time_column, or remove the key"))
    if data.time_unit and data.time_format:
        problems.append(("data.time_format", "is given together with data.time_unit",
                         "time_unit reads numbers, time_format reads text: keep one"))
    if data.time_origin and not data.time_unit:
        problems.append(("data.time_origin", "needs data.time_unit (what the numbers count)", "set data.time_unit, or remove time_origin"))
    if features.time_parts and not data.has_time:
        problems.append(("data.features.time_parts", f"{listed(features.time_parts)} need a time, and the data has none "
                         "(no data.time_column or data.time_from)",
                         "set data.time_column or data.time_from, or remove time_parts"))
    for kind in ("numeric", "categorical"):
        columns = getattr(features, kind) or []
        if data.target.column in columns:
            problems.append((f"data.features.{kind}", f"lists '{data.target.column}', the target column (data.target.column)",
                             "remove it: the model would read its own answer"))
        both = [c for c in columns if c in features.time_parts]
        if both:
            problems.append((f"data.features.{kind}", f"lists {listed(both, quote=True)}, also in data.features.time_parts",
                             "derive it from the time (time_parts) or read it from the file, not both"))
        excluded = [c for c in columns if c in features.exclude]
        if excluded:
            problems.append(("data.features.exclude", f"lists {listed(excluded, quote=True)}, also in data.features.{kind}",
                             "a column is a feature or excluded, not both"))
        repeated = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
        if repeated:
            problems.append((f"data.features.{kind}", f"lists {listed(repeated, quote=True)} more than once", "list each column once"))
    if not data.has_time:
        for name in ("train", "reference", "current"):
            window = getattr(params.windows, name)
            if window is not None and window.is_time:
                problems.append((f"windows.{name}", f"{window.label} is a time window, but the data has no time "
                                 "(no data.time_column or data.time_from)",
                                 "use rows (rows 0..8000, rows 8000..) or shares of the rows (0.0..0.8), or set data.time_column"))
    if features.numeric is not None:
        numeric = [*features.numeric, *features.time_parts]
        for column in params.model.monotonic:
            if column not in numeric:
                problems.append((f"model.monotonic.{column}", "is not a numeric feature (data.features.numeric)",
                                 f"use one of: {listed(numeric)}"))
    return problems


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "params file not found", "run from the project root or pass --params PATH")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping of sections (data, windows, gates, ...)", "see README: params.yaml")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        errors = list({e.where: e for e in (_format_error(path, err) for err in exc.errors())}.values())
        first = errors[0]
        if len(errors) > 1:
            more = [e.where.split(": ", 1)[1] for e in errors[1:]]
            first = ConfigError(first.where, f"{first.problem} (and {len(more)} more: {listed(more, sep='; ')})", first.hint)
        raise first from None
    problems = _consistency(params)
    if problems:
        key, problem, hint = problems[0]
        more = f" (and {len(problems) - 1} more: {listed([p[0] for p in problems[1:]], sep='; ')})" if len(problems) > 1 else ""
        raise ConfigError(f"{path}: {key}", problem + more, hint)
    return params


def set_params(path: Path | str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (e.g. windows.train) in the params file, its comments and layout kept.

    One write: to a temp file, renamed into place only after the changed text validates as
    params. Returns the values replaced.
    """
    from ruamel.yaml import YAML

    from driftgate.io import atomic_path

    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "params file not found", "run from the project root or pass --params PATH")
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 1 << 16  # flow lists stay on their line
    yaml_rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    with path.open() as handle:
        document = yaml_rt.load(handle)
    previous = {}
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = document
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{path}: {key}", f"has no section {part!r}", f"add `{part}:` to {path.name} first")
            node = node[part]
        previous[key] = node.get(last)
        node[last] = value
    with atomic_path(path) as tmp:
        with tmp.open("w") as handle:
            yaml_rt.dump(document, handle)
        try:
            load_params(tmp)  # a write that would not load is never renamed into place
        except ConfigError as exc:
            raise ConfigError(f"{path}: {', '.join(changes)}", f"the new values would not load: {exc.problem}", exc.hint) from None
    return previous


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class PlotFiles:
    """The evaluation's curves and images, in `dir` (reports/plots)."""

    dir: Path

    @property
    def roc(self) -> Path:
        return self.dir / "roc.csv"

    @property
    def prc(self) -> Path:
        return self.dir / "prc.csv"

    @property
    def confusion(self) -> Path:
        return self.dir / "confusion.csv"

    @property
    def roc_pr_png(self) -> Path:
        return self.dir / "roc_pr.png"

    @property
    def confusion_png(self) -> Path:
        return self.dir / "confusion_matrix.png"


@dataclass(frozen=True)
class DriftFiles:
    """What `driftgate drift` and `drift-report` write, in `dir` (reports/drift)."""

    dir: Path

    @property
    def json(self) -> Path:
        return self.dir / "drift.json"

    @property
    def markdown(self) -> Path:
        return self.dir / "drift.md"

    @property
    def png(self) -> Path:
        return self.dir / "drift.png"

    @property
    def evidently(self) -> Path:
        return self.dir / "evidently.html"

    @property
    def reference_summary(self) -> Path:
        return self.dir / "reference.summary.npz"


@dataclass(frozen=True)
class RunLayout:
    """Every file one run writes, under its folder: reports/ for the pipeline, and
    reports/batches/<name>/ for each batch checked with `make run CURRENT=...`."""

    out: Path

    @classmethod
    def for_batch(cls, reports: Path, batch: str) -> RunLayout:
        """The folder of a checked batch: its file name without the suffix, or the window (2013-09)."""
        name = Path(batch).name
        name = name.rsplit(".", 1)[0] if Path(batch).suffix.lower() in {".csv", ".parquet", ".pq", ".sqlite", ".db"} else name
        return cls(cls.batches_dir(reports) / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "batch"))

    @staticmethod
    def batches_dir(reports: Path) -> Path:
        return reports / "batches"

    @classmethod
    def checked_batches(cls, reports: Path) -> list[RunLayout]:
        """The runs of every batch checked so far, in name order."""
        folder = cls.batches_dir(reports)
        return [cls(d) for d in sorted(folder.glob("*")) if d.is_dir()] if folder.is_dir() else []

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def plots(self) -> PlotFiles:
        return PlotFiles(self.out / "plots")

    @property
    def drift(self) -> DriftFiles:
        return DriftFiles(self.out / "drift")

    @property
    def gate(self) -> Path:
        return self.out / "gate.json"

    @property
    def report(self) -> Path:
        return self.out / "report.md"

    @property
    def gate_junit(self) -> Path:
        """The gates as JUnit XML, for GitLab's test widget (artifacts:reports:junit)."""
        return self.out / "gate-junit.xml"

    @property
    def gate_metrics(self) -> Path:
        """The run's numbers as OpenMetrics text, for GitLab's metrics widget (artifacts:reports:metrics)."""
        return self.out / "gate-metrics.txt"

    @property
    def curves_against(self) -> Path:
        return self.out / "curves_against_main.png"

    @property
    def baseline_metrics(self) -> Path:
        return self.out / "baseline-metrics.json"


def gate_markdown_path(gate_json: Path) -> Path:
    """gate.md is written beside gate.json."""
    return gate_json.with_suffix(".md")


@dataclass(frozen=True)
class Paths:
    """Where every stage reads and writes, relative to the project root."""

    root: Path = Path(".")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def dataset(self) -> Path:
        return self.artifacts / "dataset.parquet"

    @property
    def model(self) -> Path:
        return self.artifacts / "model.joblib"

    @property
    def model_card(self) -> Path:
        return self.artifacts / "model.json"

    @property
    def validation(self) -> Path:
        return self.reports / "validation.json"

    @property
    def run(self) -> RunLayout:
        """The pipeline's own run (dvc.yaml's outputs)."""
        return RunLayout(self.reports)

    def batch(self, batch: str) -> RunLayout:
        return RunLayout.for_batch(self.reports, batch)

    @property
    def metrics(self) -> Path:
        return self.run.metrics

    @property
    def plots(self) -> Path:
        return self.run.plots.dir

    @property
    def drift_dir(self) -> Path:
        return self.run.drift.dir

    @property
    def gate(self) -> Path:
        return self.run.gate
