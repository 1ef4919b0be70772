"""The monitoring history: frozen references, passes, their metrics, alerts, and the pass lease.

It lives in the same database as the prediction log (serving.log: SQLite by default, any
SQLAlchemy URL otherwise). A pass writes its row, its metric rows and its alert rows in one
transaction, so a pass killed half-way leaves nothing behind and the next one redoes its window.
Timestamps are UTC, set per row.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from driftgate.errors import DataError
from driftgate.store.predictions import _shown, database_url, open_engine, opened, record_version, schema_setup, schema_table, utc

SCHEMA_VERSION = 1
LEASE = "monitor-pass"

# The metrics a pass row carries (None where a pass did not compute one).
PASS_METRICS = ("drift_share", "drifted_columns", "tested_columns", "prediction_drift", "missing_share_rise",
                "estimated_f1", "estimated_lower", "estimated_upper", "realized_f1", "realized_precision",
                "realized_recall", "labelled_rows", "estimate_error")


@dataclass(frozen=True)
class StoredReference:
    """A model's frozen reference: the drift frame and the labelled holdout, as stored."""

    model_version: str
    sha256: str
    rows: int
    created_at: datetime
    drift_frame: bytes  # Parquet: the model's features, its scores and decisions on the reference window
    holdout: bytes  # Parquet: score, label, time of the holdout rows (for the label-free estimate)
    kinds: dict[str, Any]  # {"kinds": column -> numeric | categorical, "threshold": the model's}


def reference_digest(drift_frame: bytes, holdout: bytes, kinds: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for part in (drift_frame, holdout, json.dumps(kinds, sort_keys=True).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class LeaseHeld(Exception):
    """Another process is running a pass."""

    def __init__(self, holder: str, expires_at: float) -> None:
        self.holder, self.expires_at = holder, expires_at
        left = max(0.0, expires_at - time.time())
        super().__init__(f"another monitoring pass is running ({holder}, lease ends in {left:.0f} s)")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str) -> bool:
    """Whether `holder` was a process on this host that no longer runs (killed mid-pass)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class MonitoringStore:
    """The monitoring tables, beside the prediction log in the database at `url_or_path`."""

    def __init__(self, url_or_path: str | Path) -> None:
        self.url = url = database_url(url_or_path)
        opened(url, self._open, "the monitoring history")

    def _open(self, url: str) -> None:
        self.engine = open_engine(url)
        self.metadata = metadata = MetaData()
        schema_table(metadata)
        now = {"nullable": False}
        self.references = Table(
            "monitor_references", metadata,
            Column("model_version", String(64), primary_key=True),
            Column("sha256", String(64), **now),
            Column("rows", Integer, **now),
            Column("created_at", DateTime(timezone=True), **now),
            Column("kinds", JSON, **now),
            Column("drift_frame", LargeBinary, **now),
            Column("holdout", LargeBinary, **now),
        )
        self.passes = Table(
            "monitor_passes", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("started_at", DateTime(timezone=True), **now),
            Column("finished_at", DateTime(timezone=True), **now),
            Column("model_version", String(64), **now),
            Column("reference_sha256", String(64), nullable=True),
            Column("status", String(16), **now),  # done | skipped
            Column("reason", Text, nullable=True),  # why skipped, or what the window was
            Column("first_id", Integer, nullable=True),
            Column("last_id", Integer, nullable=True, index=True),
            Column("first_at", DateTime(timezone=True), nullable=True),
            Column("last_at", DateTime(timezone=True), nullable=True),
            Column("rows", Integer, **now),
            Column("level", String(16), **now),  # ok | warning | critical (skipped passes: ok)
            *[Column(name, Float, nullable=True) for name in PASS_METRICS],
            Column("estimate_abstained", Boolean, nullable=True),
            Column("estimate_reason", Text, nullable=True),
            Column("drift", JSON, nullable=True),  # the pass's DriftResult
            Column("realized_at", DateTime(timezone=True), nullable=True),  # when labels last updated the realized metrics
        )
        self.metrics = Table(
            "monitor_metrics", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("pass_id", Integer, **now, index=True),
            Column("name", String(64), **now),  # drift_score, p_value, drifted, missing_share, missing_share_reference
            Column("column", String(200), nullable=True),
            Column("value", Float, nullable=True),
            Column("at", DateTime(timezone=True), **now),
        )
        self.alerts = Table(
            "monitor_alerts", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("pass_id", Integer, **now, index=True),
            Column("incident", Integer, **now, index=True),  # the id of the incident's first row
            Column("rule", String(200), **now),
            Column("level", String(16), **now),
            Column("event", String(16), **now),  # fired | renotified | escalated | deescalated | resolved
            Column("value", Float, nullable=True),
            Column("threshold", Float, nullable=True),
            Column("message", Text, **now),
            Column("at", DateTime(timezone=True), **now),
        )
        self.lease = Table(
            "monitor_lease", metadata,
            Column("name", String(32), primary_key=True),
            Column("holder", String(200), **now),
            Column("expires_at", Float, **now),  # seconds since the epoch
        )
        with schema_setup(self.engine) as connection:
            metadata.create_all(connection)
            record_version(connection, metadata, "monitoring", SCHEMA_VERSION)

    # ----------------------------------------------------------------------- the lease

    def acquire(self, seconds: float, holder: str | None = None) -> str:
        """Take the pass lease for `seconds`, or raise LeaseHeld. One row, taken by a conditional
        UPDATE: whoever's UPDATE matches holds it, on SQLite and PostgreSQL alike. A lease that
        expired, or whose holder was a process on this host that is gone, can be taken."""
        holder = holder or _holder()
        lease = self.lease
        with self.engine.begin() as connection:
            try:
                with connection.begin_nested():
                    connection.execute(lease.insert().values(name=LEASE, holder="", expires_at=0.0))
            except IntegrityError:
                pass
        for _ in range(2):
            now = time.time()
            with self.engine.begin() as connection:
                taken = connection.execute(lease.update().where(and_(lease.c.name == LEASE, or_(
                    lease.c.expires_at < now, lease.c.holder == holder))).values(holder=holder, expires_at=now + seconds)).rowcount
                if taken:
                    return holder
                current = connection.execute(select(lease.c.holder, lease.c.expires_at).where(lease.c.name == LEASE)).one()
            if not _dead_here(current.holder):
                raise LeaseHeld(current.holder, current.expires_at)
            with self.engine.begin() as connection:  # its process is gone: take it from that holder only
                taken = connection.execute(lease.update().where(and_(lease.c.name == LEASE, lease.c.holder == current.holder))
                                           .values(holder=holder, expires_at=now + seconds)).rowcount
            if taken:
                return holder
        raise LeaseHeld(current.holder, current.expires_at)

    def release(self, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.lease.update().where(and_(self.lease.c.name == LEASE, self.lease.c.holder == holder))
                               .values(holder="", expires_at=0.0))

    # ----------------------------------------------------------------------- references

    def freeze_reference(self, model_version: str, drift_frame: bytes, holdout: bytes, kinds: dict[str, str], rows: int) -> StoredReference:
        """Store a model's reference once; a second call for the same model keeps the first."""
        digest = reference_digest(drift_frame, holdout, kinds)
        row = {"model_version": model_version, "sha256": digest, "rows": rows, "created_at": datetime.now(UTC),
               "kinds": kinds, "drift_frame": drift_frame, "holdout": holdout}
        try:
            with self.engine.begin() as connection:
                connection.execute(self.references.insert().values(**row))
        except IntegrityError:
            pass
        return self.reference(model_version)

    def reference(self, model_version: str) -> StoredReference | None:
        """The frozen reference of a model, its sha256 checked: a mismatch is a DataError."""
        with self.engine.connect() as connection:
            row = connection.execute(select(self.references).where(self.references.c.model_version == model_version)).mappings().first()
        if row is None:
            return None
        found = reference_digest(row["drift_frame"], row["holdout"], dict(row["kinds"]))
        if found != row["sha256"]:
            raise DataError(f"{_shown(self.url)}: monitor_references, model {model_version}",
                            f"the frozen reference was changed after it was stored (sha256 {found[:12]}..., "
                            f"stored {row['sha256'][:12]}...)",
                            "restore the database from a backup, or delete that row to freeze the reference again "
                            "from the model's training window (the history then compares against a new reference)")
        return StoredReference(row["model_version"], row["sha256"], row["rows"], utc(row["created_at"]),
                               row["drift_frame"], row["holdout"], dict(row["kinds"]))

    # ----------------------------------------------------------------------- passes

    def last_judged(self, model_version: str) -> dict | None:
        """The newest pass of this model that judged a window (skipped passes do not move the window)."""
        with self.engine.connect() as connection:
            return connection.execute(select(self.passes).where(and_(self.passes.c.model_version == model_version,
                                                                     self.passes.c.status == "done"))
                                      .order_by(self.passes.c.id.desc()).limit(1)).mappings().first()

    def record_pass(self, row: dict[str, Any], metrics: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> int:
        """One pass, its metric rows and its alert rows, in one transaction; returns the pass id."""
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            pass_id = connection.execute(self.passes.insert().values(**row)).inserted_primary_key[0]
            if metrics:
                connection.execute(self.metrics.insert(), [{**m, "pass_id": pass_id, "at": now} for m in metrics])
            for alert in alerts:
                values = {**alert, "pass_id": pass_id, "at": now}
                if values.get("incident") is None:  # a new incident is named by its first row
                    values["incident"] = 0
                    new = connection.execute(self.alerts.insert().values(**values)).inserted_primary_key[0]
                    connection.execute(self.alerts.update().where(self.alerts.c.id == new).values(incident=new))
                else:
                    connection.execute(self.alerts.insert().values(**values))
        return int(pass_id)

    def passes_list(self, limit: int = 100, model_version: str | None = None, status: str | None = None) -> list[dict]:
        """The newest passes first (only those of `model_version`, or with `status` done | skipped, if given)."""
        query = select(self.passes).order_by(self.passes.c.id.desc()).limit(limit)
        if model_version:
            query = query.where(self.passes.c.model_version == model_version)
        if status:
            query = query.where(self.passes.c.status == status)
        with self.engine.connect() as connection:
            return [_aware(dict(row)) for row in connection.execute(query).mappings()]

    def latest_pass(self, judged: bool = True) -> dict | None:
        query = select(self.passes).order_by(self.passes.c.id.desc()).limit(1)
        if judged:
            query = query.where(self.passes.c.status == "done")
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _aware(dict(row)) if row else None

    def pass_metrics(self, pass_id: int) -> list[dict]:
        with self.engine.connect() as connection:
            return [_aware(dict(r)) for r in connection.execute(select(self.metrics).where(self.metrics.c.pass_id == pass_id)).mappings()]

    def passes_covering(self, first_id: int, last_id: int) -> list[dict]:
        """Judged passes whose window holds any prediction id in [first_id, last_id]."""
        p = self.passes
        query = select(p).where(and_(p.c.status == "done", p.c.first_id <= last_id, p.c.last_id >= first_id)).order_by(p.c.id)
        with self.engine.connect() as connection:
            return [_aware(dict(r)) for r in connection.execute(query).mappings()]

    def update_realized(self, pass_id: int, values: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.passes.update().where(self.passes.c.id == pass_id).values(**values, realized_at=datetime.now(UTC)))

    def count_passes(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.passes)).scalar_one())

    # ----------------------------------------------------------------------- alerts

    def open_incidents(self) -> dict[str, dict]:
        """The newest row of every incident that has not resolved, by rule."""
        a = self.alerts
        newest = select(func.max(a.c.id)).group_by(a.c.incident).scalar_subquery()
        with self.engine.connect() as connection:
            rows = connection.execute(select(a).where(and_(a.c.id.in_(newest), a.c.event != "resolved"))).mappings().all()
        out: dict[str, dict] = {}
        for row in rows:
            row = _aware(dict(row))
            out[row["rule"]] = {**row, "notified_at": self._last_notified(row["incident"])}
        return out

    def _last_notified(self, incident: int) -> datetime | None:
        a = self.alerts
        with self.engine.connect() as connection:
            value = connection.execute(select(func.max(a.c.at)).where(and_(a.c.incident == incident, a.c.event.in_(
                ("fired", "renotified", "escalated"))))).scalar()
        return utc(value)

    def alerts_list(self, limit: int = 200, open_only: bool = False) -> list[dict]:
        a = self.alerts
        if open_only:
            return sorted(self.open_incidents().values(), key=lambda r: r["id"], reverse=True)
        with self.engine.connect() as connection:
            return [_aware(dict(r)) for r in connection.execute(select(a).order_by(a.c.id.desc()).limit(limit)).mappings()]


def _aware(row: dict) -> dict:
    """Stored timestamps as aware UTC datetimes."""
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
