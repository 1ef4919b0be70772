"""The prediction log: every served prediction with its inputs, in SQLite (WAL) or any SQLAlchemy URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, event, func, select

from driftgate.config import ServingConfig

DEFAULT_LOG = ServingConfig().log


class PredictionLog:
    """Every prediction, appended in one transaction per request: SQLite in WAL mode by default
    (concurrent readers while the server writes), or any SQLAlchemy URL (e.g. PostgreSQL)."""

    def __init__(self, url_or_path: str | Path = DEFAULT_LOG) -> None:
        url = str(url_or_path)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{Path(url).resolve()}"
        self.url = url
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
