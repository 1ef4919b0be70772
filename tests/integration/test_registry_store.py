"""The model registry on a real SQLite file and a real PostgreSQL (tests/postgres.py): models kept
by their sha256 and checked again when read, the champion's alias history answering "which model
served at time T" at its exact boundaries, the previous champion for a rollback, the decision log
that the database itself keeps append-only, and processes opening a new store at once."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from driftgate.errors import DataError
from driftgate.store.predictions import database_url
from driftgate.store.registry import DECISION_FIELDS, ModelRegistry

pytest_plugins = ["tests.postgres"]

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _model(seed: int) -> tuple[str, dict, bytes, LogisticRegression]:
    """A small fitted model as joblib bytes, its sha256 and a card like `driftgate train` writes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    fitted = LogisticRegression().fit(x, (x[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    card = {"estimator": "LogisticRegression", "train_window": f"2013-0{seed % 9 + 1}..2013-0{seed % 9 + 1}", "fit_rows": 60,
            "metrics": {"test": {"f1": 0.5 + seed / 100}}, "model_sha256": sha}
    return sha, card, data, fitted


def _raw(store_url: str):
    return create_engine(database_url(store_url))


def _aware_utc(value) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def _decision(**changes) -> dict:
    row = {"trigger": "manual", "champion_sha256": "a" * 64, "challenger_sha256": "b" * 64, "training_window": "2013-04..2013-06",
           "evaluation_window": "2013-07..2013-07", "training_data_sha256": "c" * 64, "evaluation_data_sha256": "d" * 64,
           "rows": 1234, "champion_f1": 0.61, "challenger_f1": 0.635, "difference": 0.025, "lower": 0.004, "confidence": 0.95,
           "margin": 0.01, "margin_kind": "absolute", "outcome": "promoted", "reason": "better by 0.025 F1 (lower bound 0.004 > 0)",
           "details": {"draws": 2000, "gates": {"min_f1": True}}}
    return {**row, **changes}


# --------------------------------------------------------------------------- models


def test_a_registered_model_comes_back_with_its_card_and_bytes_and_a_second_registration_keeps_the_first(store_url):
    registry = ModelRegistry(store_url)
    sha, card, data, fitted = _model(1)
    before = datetime.now(UTC)
    registry.register(sha, card, data)
    registry.register(sha, {**card, "train_window": "another"}, data)  # the same model again: the first is kept

    stored_card, stored = registry.model(sha)
    assert stored == data and stored_card == card
    probe = np.array([[0.2, -1.0, 0.5], [-2.0, 0.1, 0.0]])
    assert joblib.load(io.BytesIO(stored)).predict_proba(probe) == pytest.approx(fitted.predict_proba(probe))

    other, other_card, other_data, _ = _model(2)
    registry.register(other, other_card, other_data)
    versions = ModelRegistry(store_url).versions()  # a second store on the same database sees them
    assert [v["sha256"] for v in versions] == [sha, other]
    assert versions[0]["train_window"] == card["train_window"] and versions[0]["f1"] == pytest.approx(0.51)
    assert versions[1]["f1"] == pytest.approx(0.52) and versions[1]["fit_rows"] == 60
    assert all(_aware_utc(v["registered_at"]) and before - timedelta(seconds=1) <= v["registered_at"] <= datetime.now(UTC)
               for v in versions)


def test_bytes_that_are_not_the_named_sha256_are_refused_at_registration(store_url):
    registry = ModelRegistry(store_url)
    sha, card, data, _ = _model(3)
    with pytest.raises(DataError, match="registry_models.*not the"):
        registry.register(sha, card, data + b"\x00")
    with pytest.raises(DataError, match="card names another model"):
        registry.register(sha, {**card, "model_sha256": "f" * 64}, data)
    assert registry.versions() == []


def test_a_model_changed_in_the_database_after_registration_is_a_data_error_naming_table_and_model(store_url):
    registry = ModelRegistry(store_url)
    sha, card, data, _ = _model(4)
    registry.register(sha, card, data)
    with _raw(store_url).begin() as connection:
        connection.execute(text("UPDATE registry_models SET model = :b WHERE sha256 = :s"), {"b": data[:-1] + b"\x01", "s": sha})
    with pytest.raises(DataError) as raised:
        registry.model(sha)
    assert "registry_models" in raised.value.where and sha in raised.value.where
    assert "changed after it was registered" in raised.value.problem
    with pytest.raises(DataError, match="no such model is registered"):
        registry.model("0" * 64)


# --------------------------------------------------------------------------- the champion alias


def test_champion_at_answers_at_the_exact_boundaries_of_the_alias_history(store_url):
    registry = ModelRegistry(store_url)
    (a, card_a, data_a, _), (b, card_b, data_b, _) = _model(5), _model(6)
    registry.register(a, card_a, data_a)
    registry.register(b, card_b, data_b)
    assert registry.champion() is None and registry.champion_at(T0) is None and registry.alias_history() == []

    t1 = T0 + timedelta(days=3, microseconds=250)
    registry.set_champion(a, "first model", at=T0)
    registry.set_champion(b, "promoted: better by 0.03 F1", at=t1)

    assert registry.champion() == b
    assert registry.champion_at(T0 - TICK) is None  # before the first champion
    assert registry.champion_at(T0) == a  # T = since: the new one
    assert registry.champion_at(t1 - TICK) == a  # just before the next one's since: still the old one
    assert registry.champion_at(t1) == b
    assert registry.champion_at(t1 + timedelta(days=400)) == b
    plus_two = timezone(timedelta(hours=2))
    assert registry.champion_at(t1.astimezone(plus_two)) == b  # the same instant in another zone
    assert registry.champion_at((t1 - TICK).astimezone(plus_two)) == a

    history = ModelRegistry(store_url).alias_history()
    assert [(h["sha256"], h["since"], h["until"], h["reason"]) for h in history] == [
        (a, T0, t1, "first model"), (b, t1, None, "promoted: better by 0.03 F1")]
    assert all(_aware_utc(h["since"]) for h in history) and _aware_utc(history[0]["until"])


def test_set_champion_refuses_an_unregistered_model_and_a_time_before_the_current_champion(store_url):
    registry = ModelRegistry(store_url)
    (a, card_a, data_a, _), (b, card_b, data_b, _) = _model(7), _model(8)
    with pytest.raises(DataError, match="no such model is registered"):
        registry.set_champion(a, "not registered", at=T0)
    registry.register(a, card_a, data_a)
    registry.register(b, card_b, data_b)
    registry.set_champion(a, "first", at=T0)
    with pytest.raises(DataError, match="serves since"):
        registry.set_champion(b, "too early", at=T0)
    registry.set_champion(a, "named again", at=T0 + timedelta(hours=1))  # the champion already: nothing changes
    assert [(h["sha256"], h["until"], h["reason"]) for h in registry.alias_history()] == [(a, None, "first")]

    with _raw(store_url).begin() as connection, pytest.raises(DBAPIError):  # the database holds one open row per alias
        connection.execute(text("INSERT INTO registry_aliases (alias, sha256, since, until, reason) "
                                "VALUES ('champion', :s, :t, NULL, 'second open row')"), {"s": b, "t": T0 + timedelta(days=1)})


def test_previous_champion_is_the_one_before_the_current_for_a_rollback(store_url):
    registry = ModelRegistry(store_url)
    (a, card_a, data_a, _), (b, card_b, data_b, _), (c, card_c, data_c, _) = _model(9), _model(10), _model(11)
    for sha, card, data in ((a, card_a, data_a), (b, card_b, data_b), (c, card_c, data_c)):
        registry.register(sha, card, data)
    assert registry.previous_champion() is None
    registry.set_champion(a, "first")
    assert registry.previous_champion() is None
    registry.set_champion(b, "promoted")
    registry.set_champion(c, "promoted")
    assert registry.champion() == c and registry.previous_champion() == b

    registry.set_champion(registry.previous_champion(), "rolled back")  # the rollback
    assert registry.champion() == b and registry.previous_champion() == c
    history = registry.alias_history()
    assert [h["sha256"] for h in history] == [a, b, c, b]
    assert all(earlier["until"] == later["since"] for earlier, later in zip(history, history[1:], strict=False))
    assert [h["until"] is None for h in history] == [False, False, False, True]


# --------------------------------------------------------------------------- decisions


def test_decisions_are_appended_with_a_utc_time_each_and_read_newest_first(store_url):
    registry = ModelRegistry(store_url)
    before = datetime.now(UTC)
    first = registry.record_decision(_decision())
    second = registry.record_decision(_decision(trigger="alert", outcome="rejected", reason="lower bound -0.004 is not above 0",
                                                details=None, challenger_f1=0.615, difference=0.005, lower=-0.004))
    third = registry.record_decision({"trigger": "api", "outcome": "failed", "reason": "no labelled rows in 2013-07"})
    assert first < second < third

    rows = ModelRegistry(store_url).decisions()
    assert [r["id"] for r in rows] == [third, second, first]
    assert all(_aware_utc(r["at"]) and before - timedelta(seconds=1) <= r["at"] <= datetime.now(UTC) for r in rows)
    assert rows[0]["at"] >= rows[1]["at"] >= rows[2]["at"]
    assert {name: rows[2][name] for name in DECISION_FIELDS} == _decision()  # every field as given, floats exactly
    assert rows[1]["details"] is None and rows[1]["lower"] == pytest.approx(-0.004) and rows[1]["trigger"] == "alert"
    assert rows[0]["champion_f1"] is None and rows[0]["rows"] is None
    assert [r["id"] for r in registry.decisions(limit=2)] == [third, second]


def test_a_decision_with_an_unknown_trigger_outcome_or_field_is_refused(store_url):
    registry = ModelRegistry(store_url)
    with pytest.raises(DataError, match="trigger 'cron'"):
        registry.record_decision(_decision(trigger="cron"))
    with pytest.raises(DataError, match="outcome 'kept'"):
        registry.record_decision(_decision(outcome="kept"))
    with pytest.raises(DataError, match="no field 'at'"):
        registry.record_decision(_decision(at=T0))
    with pytest.raises(DataError, match="reason in words"):
        registry.record_decision(_decision(reason=" "))
    assert registry.decisions() == []


def test_the_database_refuses_to_update_or_delete_a_decision(store_url):
    registry = ModelRegistry(store_url)
    kept = registry.record_decision(_decision())
    assert not any(hasattr(registry, name) for name in ("update_decision", "delete_decision"))
    engine = _raw(store_url)
    for statement in ("UPDATE registry_decisions SET outcome = 'rejected' WHERE id = :i",
                      "DELETE FROM registry_decisions WHERE id = :i"):
        with engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement), {"i": kept})
    ModelRegistry(store_url)  # opening it again keeps the guard (and does not fail on it)
    with engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text("UPDATE registry_decisions SET reason = 'rewritten'"))
    assert [(r["id"], r["outcome"], r["reason"]) for r in registry.decisions()] == [(kept, "promoted", _decision()["reason"])]


# --------------------------------------------------------------------------- a new store, several processes

OPENER = """
import hashlib, os, sys
from driftgate.store.registry import ModelRegistry
print("ready", flush=True)
sys.stdin.readline()
registry = ModelRegistry(sys.argv[1])
data = os.urandom(256)
sha = hashlib.sha256(data).hexdigest()
registry.register(sha, {"train_window": "2013-04..2013-06"}, data)
registry.set_champion(sha, "process " + str(os.getpid()))
registry.record_decision({"trigger": "schedule", "challenger_sha256": sha, "outcome": "promoted", "reason": "opened at once"})
"""


def test_processes_opening_a_new_registry_at_once_all_get_it_and_the_champion_history_stays_one_chain(store_url):
    started = [subprocess.Popen([sys.executable, "-c", OPENER, store_url], text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for _ in range(4)]
    try:
        for process in started:
            assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.poll() is not None else ""
        for process in started:
            process.stdin.write("\n")
            process.stdin.flush()
        for process in started:
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()

    registry = ModelRegistry(store_url)
    assert len(registry.versions()) == 4 and len(registry.decisions()) == 4
    history = registry.alias_history()
    assert len(history) == 4 and sorted(h["sha256"] for h in history) == sorted(v["sha256"] for v in registry.versions())
    assert all(earlier["until"] == later["since"] for earlier, later in zip(history, history[1:], strict=False))
    assert history[-1]["until"] is None and registry.champion() == history[-1]["sha256"]
    with _raw(store_url).connect() as connection:
        assert connection.execute(text("SELECT version FROM driftgate_schema WHERE component = 'registry'")).scalar_one() == 1
