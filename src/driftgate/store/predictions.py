"""The prediction log: every served prediction with its inputs, in SQLite (WAL) or any SQLAlchemy URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, event, func, inspect, select
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


class PredictionLog:
    """Every prediction, appended in one transaction per request: SQLite in WAL mode by default
    (concurrent readers while the server writes), or any SQLAlchemy URL (e.g. PostgreSQL)."""

    def __init__(self, url_or_path: str | Path = DEFAULT_LOG) -> None:
        """Open (and create, if need be) the log. A setting that is not a database, a URL
        SQLAlchemy cannot use or a database it cannot reach is a DataError naming it."""
        self.url = url = database_url(url_or_path)
        try:
            self._open(url)
        except ImportError as exc:  # the URL's database driver is not installed
            raise DataError(_shown(url), f"needs the database driver {exc.name or exc}, which is not installed",
                            f"pip install the driver for this URL, or {HINT}") from None
        except SQLAlchemyError as exc:
            raise DataError(_shown(url), f"cannot be used as the prediction log ({_reason(exc)})", HINT) from None

    def _open(self, url: str) -> None:
        sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {})
        if sqlite:
            @event.listens_for(self.engine, "connect")
            def _wal(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        metadata = MetaData()
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
        )
        metadata.create_all(self.engine)
        found = {column["name"] for column in inspect(self.engine).get_columns("predictions")}
        missing = sorted({column.name for column in self.table.columns} - found)
        if missing:
            raise DataError(_shown(url), f"has a 'predictions' table that is not a driftgate prediction log (no {', '.join(missing)})",
                            f"use another database or file, or {HINT}")

    def append(self, inputs: list[dict], predictions: list[dict], request_id: str, source: str, model_version: str) -> None:
        """One request's predictions; `inputs` are JSON-ready records (missing values as None)."""
        now = datetime.now(UTC)
        rows = [{"timestamp": now, "request_id": request_id, "source": source, "model_version": model_version,
                 "probability": p["probability"], "decision": p["decision"], "inputs": record}
                for p, record in zip(predictions, inputs)]
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), rows)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.table)).scalar_one())

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
