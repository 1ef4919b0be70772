"""The prediction log: every served prediction with its inputs, and the labels that arrive later,
in SQLite (WAL) or any SQLAlchemy URL. The monitoring history lives beside it (store.monitoring)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    cast,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from driftgate.config import ServingConfig
from driftgate.errors import DataError

DEFAULT_LOG = ServingConfig().log
# A path with one of these suffixes is a table or a document, never a prediction log.
NOT_DATABASES = {".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".pq", ".yaml", ".yml", ".md", ".html", ".xlsx", ".gz", ".zip"}
SQLITE_HEADER = b"SQLite format 3\x00"
HINT = ("set serving.log in params.yaml (or --log) to a SQLite file such as logs/predictions.sqlite, "
        "or a SQLAlchemy URL such as postgresql+psycopg://user@host/dbname")


def database_url(setting: str | Path) -> str:
    """The SQLAlchemy URL of a prediction-log setting: a URL as given, or a path as a SQLite file
    (its folder created). A path that is a folder, a text or table file, or a file that is not
    SQLite is a DataError naming it."""
    text = str(setting).strip()
    if not text:
        raise DataError("prediction log", "the setting is empty", HINT)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir():
        raise DataError(text, "is a folder, not a prediction log", f"name a file inside it, e.g. {path / 'predictions.sqlite'}; or {HINT}")
    if path.suffix.lower() in NOT_DATABASES:
        raise DataError(text, f"a {path.suffix} file is not a database: the prediction log is a SQLite file", HINT)
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise DataError(text, "exists and is not a SQLite database", f"move it away or {HINT}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(text, f"cannot create its folder ({exc.strerror or exc})", HINT) from None
    return f"sqlite:///{path.resolve()}"


def _shown(url: str) -> str:
    """A URL fit for an error message: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return url


def _reason(exc: Exception) -> str:
    """SQLAlchemy's message without its link to the background page."""
    original = getattr(exc, "orig", None)
    return str(original or exc).split("\n")[0]


SCHEMA_VERSION = 2  # 1: predictions; 2: + row and key of each prediction, the labels table


def open_engine(url: str):
    """A SQLAlchemy engine for the store at `url`: SQLite in WAL mode (readers never wait for the
    writer; synchronous=NORMAL keeps every committed row through a killed process), else as given."""
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {},
                           pool_pre_ping=not sqlite)
    if sqlite:
        @event.listens_for(engine, "connect")
        def _wal(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    return engine


def opened(url: str, build, what: str = "the prediction log"):
    """`build(url)`, with a missing driver or an unusable database turned into a DataError naming the URL."""
    try:
        return build(url)
    except ImportError as exc:  # the URL's database driver is not installed
        raise DataError(_shown(url), f"needs the database driver {exc.name or exc}, which is not installed",
                        f"pip install the driver for this URL, or {HINT}") from None
    except SQLAlchemyError as exc:
        raise DataError(_shown(url), f"cannot be used as {what} ({_reason(exc)})", HINT) from None


@contextmanager
def schema_setup(engine):
    """A transaction that creates or upgrades the tables, one process at a time: servers and
    monitors opening a new store at once would otherwise race to create the same tables.
    SQLite: BEGIN IMMEDIATE (the others wait for the write lock); PostgreSQL: an advisory lock."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('driftgate-schema'))"))
        yield connection


def record_version(connection, metadata: MetaData, component: str, version: int) -> None:
    """The schema version of one component, in the `driftgate_schema` table (one row each)."""
    table = metadata.tables["driftgate_schema"]
    found = connection.execute(select(table.c.version).where(table.c.component == component)).scalar()
    if found is None:
        connection.execute(table.insert().values(component=component, version=version, updated_at=datetime.now(UTC)))
    elif found < version:
        connection.execute(table.update().where(table.c.component == component).values(version=version, updated_at=datetime.now(UTC)))


def schema_table(metadata: MetaData) -> Table:
    return Table("driftgate_schema", metadata,
                 Column("component", String(32), primary_key=True),
                 Column("version", Integer, nullable=False),
                 Column("updated_at", DateTime(timezone=True), nullable=False))


def utc(value) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite gives them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class LoggedWindow:
    """Predictions of one window of the log, in id order."""

    ids: np.ndarray
    timestamps: pd.Series  # UTC
    probability: np.ndarray
    inputs: pd.DataFrame  # one column per logged input field

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def first_id(self) -> int | None:
        return int(self.ids[0]) if len(self.ids) else None

    @property
    def last_id(self) -> int | None:
        return int(self.ids[-1]) if len(self.ids) else None


@dataclass(frozen=True)
class LabelsAttached:
    """What attaching a set of labels did."""

    attached: int  # labels stored (new or replacing an earlier one)
    replaced: int  # of those, predictions that had a label already
    unmatched: list[str]  # request ids / keys that name no logged prediction
    ids: list[int]  # the labelled predictions' ids

    @property
    def first_id(self) -> int | None:
        return min(self.ids) if self.ids else None

    @property
    def last_id(self) -> int | None:
        return max(self.ids) if self.ids else None


CHUNK = 500  # ids or keys per IN (...) query
KEEP_WRITER = 1.0  # seconds the log's writer keeps an unused connection before giving it back to the pool


def _rows(now: datetime, inputs: list[dict], predictions: list[dict], request_id: str, source: str, model_version: str,
          keys: list[str | None] | None) -> list[dict]:
    """The log's rows of one request."""
    keys = keys or [None] * len(inputs)
    return [{"timestamp": now, "request_id": request_id, "source": source, "model_version": model_version,
             "probability": p["probability"], "decision": p["decision"], "inputs": record, "row": i, "key": key}
            for i, (p, record, key) in enumerate(zip(predictions, inputs, keys, strict=True))]


class _Group:
    """The rows of requests that commit in one transaction (PredictionLog._committed)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.done = False
        self.error: BaseException | None = None


class GroupCommitFailed(SQLAlchemyError):
    """The commit of a group of requests failed: raised in each request that joined it (the
    server answers 503, as for any failure of the store), with the reason of the failure."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(_reason(cause))
        self.orig = getattr(cause, "orig", None) or cause


class PredictionLog:
    """Every prediction, appended in one transaction per request, and the labels that arrive
    later: SQLite in WAL mode by default (concurrent readers while the server writes), or any
    SQLAlchemy URL (e.g. PostgreSQL). A request's predictions are committed before it is
    answered, so an acknowledged prediction survives the server being killed."""

    def __init__(self, url_or_path: str | Path = DEFAULT_LOG) -> None:
        """Open (and create, if need be) the log. A setting that is not a database, a URL
        SQLAlchemy cannot use or a database it cannot reach is a DataError naming it."""
        self.url = url = database_url(url_or_path)
        self._grouping = threading.Condition()
        self._group, self._committing = _Group(), False
        self._writer, self._writer_used = None, 0.0  # the connection the leader writes with (_insert)
        opened(url, self._open)

    def _open(self, url: str) -> None:
        self.engine = open_engine(url)
        self.metadata = metadata = MetaData()
        schema_table(metadata)
        self.table = Table(
            "predictions", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
            Column("request_id", String(36), nullable=False, index=True),
            Column("source", String(16), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("probability", Float, nullable=False),
            Column("decision", String(64), nullable=False),
            Column("inputs", JSON, nullable=False),
            Column("row", Integer, nullable=True),  # position in its request (schema 2)
            Column("key", String(200), nullable=True, index=True),  # monitoring.label_key's value (schema 2)
        )
        self._insert_rows = self.table.insert()  # one statement object: SQLAlchemy keeps its cache key
        self.labels = Table(
            "labels", metadata,
            Column("prediction_id", Integer, primary_key=True),  # one label per prediction; a later one replaces it
            Column("label", Integer, nullable=False),
            Column("received_at", DateTime(timezone=True), nullable=False),
        )
        with schema_setup(self.engine) as connection:
            metadata.create_all(connection)
            found = {column["name"] for column in inspect(connection).get_columns("predictions")}
            core = {"id", "timestamp", "request_id", "source", "model_version", "probability", "decision", "inputs"}
            missing = sorted(core - found)
            if missing:
                raise DataError(_shown(url), f"has a 'predictions' table that is not a driftgate prediction log (no {', '.join(missing)})",
                                f"use another database or file, or {HINT}")
            for name in ("row", "key"):  # schema 1 -> 2: the columns are added, existing rows keep NULL
                if name not in found:
                    kind = "INTEGER" if name == "row" else "VARCHAR(200)"
                    connection.execute(text(f'ALTER TABLE predictions ADD COLUMN "{name}" {kind}'))
            record_version(connection, metadata, "predictions", SCHEMA_VERSION)

    def append(self, inputs: list[dict], predictions: list[dict], request_id: str, source: str, model_version: str,
               keys: list[str | None] | None = None) -> None:
        """One request's predictions; `inputs` are JSON-ready records (missing values as None),
        `keys` the label key of each (monitoring.label_key), if any."""
        self._committed(_rows(datetime.now(UTC), inputs, predictions, request_id, source, model_version, keys))

    def append_many(self, requests: list[tuple[list[dict], list[dict], str, str, str, list[str | None] | None]]) -> None:
        """Several requests' predictions, each as `append`'s arguments in order, in one
        transaction: all of them are kept or none."""
        now = datetime.now(UTC)
        self._committed([row for request in requests for row in _rows(now, *request)])

    def _committed(self, rows: list[dict]) -> None:
        """Commit `rows` with those of the requests that arrive while a commit is in progress: one
        transaction per group, not per request, so under load the server commits a few times per
        millisecond instead of once per request. Each caller returns only once its own rows are
        committed; a failed commit raises in every request of its group (none of their rows is
        kept), and the next group commits on its own.

        The first request that finds no commit in progress leads: it takes the open group (its
        own rows and any that joined) and commits it; requests arriving meanwhile join the next
        group and wait; when the commit ends, one of them leads the next group."""
        with self._grouping:
            group = self._group
            group.rows.extend(rows)
            while not group.done:
                if not self._committing:  # no commit in progress: this request commits its group
                    self._committing, self._group = True, _Group()
                    break
                self._grouping.wait()
            else:  # another request committed this group
                if group.error is not None:
                    raise GroupCommitFailed(group.error)
                return
        try:
            self._insert(group.rows)
        except BaseException as exc:
            group.error = exc
            raise
        finally:
            with self._grouping:
                group.done, self._committing = True, False
                self._grouping.notify_all()

    def _insert(self, rows: list[dict]) -> None:
        """Insert and commit `rows` (one leader at a time). Under load the leader keeps its
        connection from one group to the next (a third of the cost of a request's log write was
        taking a connection from the pool and giving it back; for PostgreSQL the pool's ping is
        a round trip more); one left unused for KEEP_WRITER seconds goes back to the pool, so the
        next write takes a checked one, and one whose write failed is never used again."""
        connection, now = self._writer, time.monotonic()
        if connection is not None and now - self._writer_used > KEEP_WRITER:
            connection.close()
            connection = None
        if connection is None:
            connection = self._writer = self.engine.connect()
        try:
            with connection.begin():
                connection.execute(self._insert_rows, rows)
        except BaseException:
            self._writer = None
            with suppress(Exception):  # the connection may be gone already
                connection.close()
            raise
        self._writer_used = time.monotonic()

    def waiting(self) -> int:
        """Rows waiting for the commit in progress to end (they commit together next)."""
        with self._grouping:
            return len(self._group.rows)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.table)).scalar_one())

    def last_id(self) -> int:
        """The newest prediction's id (0 for an empty log)."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(self.table.c.id))).scalar() or 0)

    def frame(self, limit: int | None = None) -> pd.DataFrame:
        """The log as a table, one column per input feature (the drift stage can read it as a batch)."""
        query = select(self.table).order_by(self.table.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            return pd.DataFrame()
        base = pd.DataFrame([{k: v for k, v in row.items() if k != "inputs"} for row in rows])
        inputs = pd.DataFrame([row["inputs"] if isinstance(row["inputs"], dict) else json.loads(row["inputs"]) for row in rows])
        return pd.concat([base, inputs], axis=1).iloc[::-1].reset_index(drop=True)

    def window(self, after_id: int = 0, since: datetime | None = None, model_version: str | None = None,
               limit: int | None = None, upto_id: int | None = None) -> LoggedWindow:
        """The predictions with an id above `after_id` (and up to `upto_id`), logged at or after
        `since`, by `model_version`: the newest `limit` of them, in id order. The query walks the
        id (or timestamp) index, so its cost grows with the window, not with the log.

        The rows come straight from the driver's cursor (no per-row result objects), the inputs
        as JSON text (CAST: PostgreSQL's driver would otherwise parse them one by one), parsed
        in one go into columns by Arrow's JSON reader; inputs Arrow cannot type (a field that is
        text in one row and a number in another) are parsed with orjson instead."""
        t = self.table
        where = [t.c.id > after_id]
        if upto_id is not None:
            where.append(t.c.id <= upto_id)
        if since is not None:
            where.append(t.c.timestamp >= since)
        if model_version is not None:
            where.append(t.c.model_version == model_version)
        query = (select(t.c.id, t.c.timestamp, t.c.probability, cast(t.c.inputs, Text).label("inputs"))
                 .where(and_(*where)).order_by(t.c.id.desc() if limit else t.c.id))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).cursor.fetchall()
        if limit:
            rows.reverse()
        if not rows:
            return LoggedWindow(np.array([], dtype=np.int64), pd.Series([], dtype="datetime64[ns, UTC]"), np.array([]), pd.DataFrame())
        ids, stamps, probability, inputs = zip(*rows)
        del rows
        if isinstance(stamps[0], str):  # SQLite: naive ISO text, written in UTC
            timestamps = pd.Series(pd.to_datetime(pd.Series(stamps), utc=True, format="ISO8601"))
        else:
            timestamps = pd.Series(pd.to_datetime(list(map(utc, stamps)), utc=True))
        documents = [r if isinstance(r, str) else json.dumps(r) for r in inputs]
        del inputs
        import pyarrow as pa
        from pyarrow import json as arrow_json

        try:
            table = arrow_json.read_json(pa.py_buffer("\n".join(documents).encode()))
            frame = None if any(pa.types.is_nested(field.type) for field in table.schema) else table.to_pandas()
        except pa.ArrowInvalid:  # e.g. a field that is text in one row and a number in another
            frame = None
        if frame is None:  # Python objects, as they are
            import orjson

            frame = pd.DataFrame.from_records(orjson.loads("[" + ",".join(documents) + "]"))
        return LoggedWindow(np.asarray(ids, dtype=np.int64), timestamps, np.asarray(probability, dtype=float), frame)

    # ----------------------------------------------------------------------- labels

    def attach_labels(self, labels: list[int], request_ids: list[str] | None = None, rows: list[int] | None = None,
                      keys: list[str] | None = None) -> LabelsAttached:
        """Attach labels (0/1) to logged predictions, named by request id and row (a request's
        position, 0 for a single record) or by key (monitoring.label_key), all in one
        transaction. A label for a prediction that has one already replaces it."""
        t, now = self.table, datetime.now(UTC)
        by_key = keys is not None
        names = [str(k) for k in keys] if by_key else [f"{r}#{n}" for r, n in zip(request_ids or [], rows or [])]
        wanted = dict(zip(names, labels))
        found: dict[str, int] = {}
        with self.engine.begin() as connection:
            values = list(dict.fromkeys(keys if by_key else (request_ids or [])))
            for start in range(0, len(values), CHUNK):
                chunk = values[start:start + CHUNK]
                if by_key:
                    query = select(t.c.id, t.c.key).where(t.c.key.in_(chunk))
                    found.update({str(key): int(i) for i, key in connection.execute(query)})
                else:
                    query = select(t.c.id, t.c.request_id, t.c.row).where(t.c.request_id.in_(chunk))
                    found.update({f"{r}#{n or 0}": int(i) for i, r, n in connection.execute(query)})
            matched = {found[name]: int(label) for name, label in wanted.items() if name in found}
            ids = sorted(matched)
            replaced = 0
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                replaced += connection.execute(delete(self.labels).where(self.labels.c.prediction_id.in_(chunk))).rowcount or 0
            if ids:
                connection.execute(self.labels.insert(), [{"prediction_id": i, "label": matched[i], "received_at": now} for i in ids])
        unmatched = [name.split("#")[0] if not by_key and name.endswith("#0") else name for name in wanted if name not in found]
        return LabelsAttached(len(ids), replaced, unmatched, ids)

    def labelled(self, first_id: int, last_id: int) -> pd.DataFrame:
        """The labelled predictions with ids in [first_id, last_id]: id, probability, label."""
        t, labels = self.table, self.labels
        query = (select(t.c.id, t.c.probability, labels.c.label).join(labels, labels.c.prediction_id == t.c.id)
                 .where(and_(t.c.id >= first_id, t.c.id <= last_id)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return pd.DataFrame(rows, columns=["id", "probability", "label"])
