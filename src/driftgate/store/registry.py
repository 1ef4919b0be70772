"""The model registry: every model version by its sha256 with its card and bytes, the champion's
alias history (which model served from when until when), and the append-only decision log.

It lives in the same database as the prediction log and the monitoring history. Timestamps are
stored in UTC and come back aware. Moving the champion closes the open alias row and opens the
next one in one transaction, so "which model served at time T" always has one answer. Decisions
are never updated or deleted: there is no method for it, and the database refuses it too (a
trigger on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from driftgate.errors import DataError, listed
from driftgate.store.predictions import _shown, database_url, open_engine, opened, record_version, schema_setup, schema_table, utc

SCHEMA_VERSION = 1
CHAMPION = "champion"
TRIGGERS = ("manual", "alert", "schedule", "api")
OUTCOMES = ("promoted", "rejected", "rolled_back", "failed")
MARGIN_KINDS = ("absolute", "relative")

# The decision columns a caller fills (`id` and `at` are the store's).
DECISION_TEXT = ("champion_sha256", "challenger_sha256", "training_window", "evaluation_window", "training_data_sha256",
                 "evaluation_data_sha256", "margin_kind")
DECISION_NUMBERS = ("champion_f1", "challenger_f1", "difference", "lower", "confidence", "margin")
DECISION_FIELDS = ("trigger", *DECISION_TEXT, "rows", *DECISION_NUMBERS, "outcome", "reason", "details")

APPEND_ONLY = "registry_decisions is append-only: a decision is never updated or deleted"
SQLITE_GUARDS = [
    f"CREATE TRIGGER IF NOT EXISTS registry_decisions_no_{verb.lower()} BEFORE {verb} ON registry_decisions "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION registry_decisions_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
)
POSTGRES_TRIGGER = ("CREATE TRIGGER registry_decisions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON registry_decisions "
                    "FOR EACH STATEMENT EXECUTE FUNCTION registry_decisions_append_only()")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def card_summary(card: dict) -> dict[str, Any]:
    """What a list of versions shows of a card: its training window, rows, estimator and F1 (if the card has one)."""
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    f1 = card.get("f1", metrics.get("f1", test.get("f1")))  # top level, in its metrics, or its test split's
    return {"train_window": card.get("train_window"), "fit_rows": card.get("fit_rows"), "estimator": card.get("estimator"),
            "f1": float(f1) if isinstance(f1, int | float) else None}


def _stamp(value: datetime | None) -> datetime:
    """A time to store: aware UTC (a naive time is taken as UTC, as the store gives them back)."""
    return datetime.now(UTC) if value is None else utc(value)


class ModelRegistry:
    """The registry tables, beside the prediction log in the database at `url_or_path`."""

    def __init__(self, url_or_path: str | Path) -> None:
        self.url = url = database_url(url_or_path)
        opened(url, self._open, "the model registry")

    def _open(self, url: str) -> None:
        self.engine = open_engine(url)
        self.metadata = metadata = MetaData()
        schema_table(metadata)
        now = {"nullable": False}
        self.models = Table(
            "registry_models", metadata,
            Column("sha256", String(64), primary_key=True),
            Column("registered_at", DateTime(timezone=True), **now),
            Column("card", JSON, **now),
            Column("model", LargeBinary, **now),  # the joblib file's bytes
        )
        self.aliases = Table(
            "registry_aliases", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("alias", String(32), **now),
            Column("sha256", String(64), **now),
            Column("since", DateTime(timezone=True), **now),
            Column("until", DateTime(timezone=True), nullable=True),  # NULL: it still holds the alias
            Column("reason", Text, **now),
        )
        # One open row per alias, whoever writes: the database refuses a second.
        Index("registry_aliases_one_open", self.aliases.c.alias, unique=True,
              sqlite_where=self.aliases.c.until.is_(None), postgresql_where=self.aliases.c.until.is_(None))
        self.decisions_table = Table(
            "registry_decisions", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("at", DateTime(timezone=True), **now),
            Column("trigger", String(16), **now),
            *[Column(name, String(200), nullable=True) for name in DECISION_TEXT],  # hashes and windows (margin_kind too)
            Column("rows", Integer, nullable=True),
            *[Column(name, Float, nullable=True) for name in DECISION_NUMBERS],
            Column("outcome", String(16), **now),
            Column("reason", Text, **now),
            Column("details", JSON, nullable=True),
        )
        with schema_setup(self.engine) as connection:
            metadata.create_all(connection)
            self._guard(connection)
            record_version(connection, metadata, "registry", SCHEMA_VERSION)

    def _guard(self, connection) -> None:
        """The database's own refusal to update or delete a decision."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            for statement in SQLITE_GUARDS:
                connection.exec_driver_sql(statement)
        elif dialect == "postgresql":
            found = connection.execute(text("SELECT 1 FROM pg_trigger WHERE tgname = 'registry_decisions_append_only' "
                                            "AND tgrelid = 'registry_decisions'::regclass")).scalar()
            if not found:
                connection.execute(text(POSTGRES_FUNCTION))
                connection.execute(text(POSTGRES_TRIGGER))

    def _where(self, table: str, sha256: str | None = None) -> str:
        return f"{_shown(self.url)}: {table}" + (f", model {sha256}" if sha256 else "")

    # ----------------------------------------------------------------------- models

    def register(self, sha256: str, card: dict, model_bytes: bytes) -> None:
        """Store a model version by its sha256; registering it again keeps the first. A sha256 that is
        not the bytes' (or a card naming another model_sha256) is a DataError."""
        found = sha256_bytes(model_bytes)
        if found != sha256:
            raise DataError(self._where("registry_models", sha256), f"the model's bytes have sha256 {found[:12]}..., "
                            f"not the {sha256[:12]}... they were registered under",
                            "register the model file's own sha256 (the card's model_sha256, written by `driftgate train`)")
        named = card.get("model_sha256")
        if named is not None and named != sha256:
            raise DataError(self._where("registry_models", sha256), f"the card names another model (model_sha256 {str(named)[:12]}...)",
                            "register the card written beside this model file")
        try:
            with self.engine.begin() as connection:
                connection.execute(self.models.insert().values(sha256=sha256, registered_at=datetime.now(UTC), card=card,
                                                               model=model_bytes))
        except IntegrityError:
            if not self.known(sha256):  # not a second registration: something else refused the row
                raise

    def known(self, sha256: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(self.models.c.sha256).where(self.models.c.sha256 == sha256)).first() is not None

    def model(self, sha256: str) -> tuple[dict, bytes]:
        """A registered model's card and bytes, the bytes' sha256 checked again."""
        with self.engine.connect() as connection:
            row = connection.execute(select(self.models).where(self.models.c.sha256 == sha256)).mappings().first()
        if row is None:
            raise DataError(self._where("registry_models", sha256), "no such model is registered",
                            f"`driftgate models` lists the registered ones{self._listed()}")
        data = bytes(row["model"])
        found = sha256_bytes(data)
        if found != sha256:
            raise DataError(self._where("registry_models", sha256),
                            f"the stored model was changed after it was registered (its bytes have sha256 {found[:12]}...)",
                            "restore the database from a backup, or register the model file again after deleting that row")
        return dict(row["card"]), data

    def _listed(self) -> str:
        names = [row["sha256"][:12] for row in self.versions()]
        return f" ({listed(names)})" if names else " (none yet)"

    def versions(self) -> list[dict]:
        """Every registered version, oldest first: sha256, registered_at (UTC) and its card's summary."""
        m = self.models
        with self.engine.connect() as connection:
            rows = connection.execute(select(m.c.sha256, m.c.registered_at, m.c.card).order_by(m.c.registered_at, m.c.sha256)).mappings().all()
        return [{"sha256": row["sha256"], "registered_at": utc(row["registered_at"]), **card_summary(dict(row["card"]))}
                for row in rows]

    # ----------------------------------------------------------------------- the champion alias

    def set_champion(self, sha256: str, reason: str, at: datetime | None = None) -> None:
        """Make a registered model the champion from `at` (now if not given): the open alias row is
        closed at that time and the new one opened, in one transaction. The current champion named
        again changes nothing; a time before the current champion's start is a DataError."""
        if not self.known(sha256):
            raise DataError(self._where("registry_models", sha256), "cannot become the champion: no such model is registered",
                            f"register it first (ModelRegistry.register); registered: {self._listed().strip(' ()')}")
        a = self.aliases
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('driftgate-champion'))"))
            when = _stamp(at)  # "now" is read once the lock is held, so concurrent moves stay in time order
            current = connection.execute(select(a).where(and_(a.c.alias == CHAMPION, a.c.until.is_(None)))).mappings().first()
            if current is not None:
                if current["sha256"] == sha256:
                    return
                since = utc(current["since"])
                if when <= since:
                    raise DataError(self._where("registry_aliases", sha256),
                                    f"cannot become the champion at {when.isoformat()}: the current champion "
                                    f"{current['sha256'][:12]}... serves since {since.isoformat()}",
                                    "give a later time (or none, for now)")
                connection.execute(a.update().where(a.c.id == current["id"]).values(until=when))
            connection.execute(a.insert().values(alias=CHAMPION, sha256=sha256, since=when, until=None, reason=reason))

    def champion(self) -> str | None:
        """The current champion's sha256 (None before the first)."""
        a = self.aliases
        with self.engine.connect() as connection:
            return connection.execute(select(a.c.sha256).where(and_(a.c.alias == CHAMPION, a.c.until.is_(None)))).scalar()

    def champion_at(self, when: datetime) -> str | None:
        """The model that was champion at `when` (since <= when < until); None before the first."""
        when, a = _stamp(when), self.aliases
        query = (select(a.c.sha256).where(and_(a.c.alias == CHAMPION, a.c.since <= when, or_(a.c.until.is_(None), a.c.until > when)))
                 .order_by(a.c.since.desc()).limit(1))
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def alias_history(self) -> list[dict]:
        """The champion's rows, oldest first: sha256, since, until (None: still serving), reason."""
        a = self.aliases
        with self.engine.connect() as connection:
            rows = connection.execute(select(a.c.sha256, a.c.since, a.c.until, a.c.reason).where(a.c.alias == CHAMPION)
                                      .order_by(a.c.since, a.c.id)).mappings().all()
        return [{"sha256": r["sha256"], "since": utc(r["since"]), "until": utc(r["until"]), "reason": r["reason"]} for r in rows]

    def previous_champion(self) -> str | None:
        """The champion before the current one (what a rollback serves again); None if there was none."""
        history = self.alias_history()
        if not history or history[-1]["until"] is not None:
            return None
        current = history[-1]["sha256"]
        for row in reversed(history[:-1]):
            if row["sha256"] != current:
                return row["sha256"]
        return None

    # ----------------------------------------------------------------------- decisions

    def record_decision(self, row: dict) -> int:
        """Append one decision (its UTC time set here); returns its id."""
        where = self._where("registry_decisions")
        unknown = sorted(set(row) - set(DECISION_FIELDS))
        if unknown:
            raise DataError(where, f"a decision has no field {listed(unknown, quote=True)}",
                            f"the fields are {listed(DECISION_FIELDS, limit=len(DECISION_FIELDS))} (id and at are set by the store)")
        for name, allowed in (("trigger", TRIGGERS), ("outcome", OUTCOMES)):
            if row.get(name) not in allowed:
                raise DataError(where, f"{name} {row.get(name)!r} is not one of {listed(allowed, quote=True)}", f"give {name} as one of them")
        if row.get("margin_kind") is not None and row["margin_kind"] not in MARGIN_KINDS:
            raise DataError(where, f"margin_kind {row['margin_kind']!r} is not one of {listed(MARGIN_KINDS, quote=True)}",
                            "give the margin's kind as retraining.margin_kind says it")
        if not str(row.get("reason") or "").strip():
            raise DataError(where, "a decision needs its reason in words", "say why it was promoted, rejected, rolled back or failed")
        values = {name: row.get(name) for name in DECISION_FIELDS}
        values["rows"] = None if values["rows"] is None else int(values["rows"])
        for name in DECISION_NUMBERS:
            values[name] = None if values[name] is None else float(values[name])
        with self.engine.begin() as connection:
            new = connection.execute(self.decisions_table.insert().values(**values, at=datetime.now(UTC))).inserted_primary_key[0]
        return int(new)

    def decisions(self, limit: int = 100) -> list[dict]:
        """The newest decisions first."""
        d = self.decisions_table
        with self.engine.connect() as connection:
            rows = connection.execute(select(d).order_by(d.c.id.desc()).limit(limit)).mappings().all()
        return [{k: utc(v) if isinstance(v, datetime) else v for k, v in dict(row).items()} for row in rows]
