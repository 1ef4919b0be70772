"""The prediction log and the monitoring history on a real SQLite file and a real PostgreSQL
(Debian's server, started by tests/postgres.py): every read and write the monitor and the
server make, the schema versions, UTC timestamps, the frozen reference's sha256 check, and a
whole pass giving the same verdict on both databases."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, inspect, text

from driftgate.errors import DataError
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import SCHEMA_VERSION, PredictionLog, database_url

pytest_plugins = ["tests.postgres"]


def _predict(log: PredictionLog, inputs: list[dict], request_id: str | None = None, model_version: str = "m1",
             keys: list[str | None] | None = None) -> str:
    """One request's predictions in the log (probability from x1, so each row is recognisable)."""
    request_id = request_id or str(uuid.uuid4())
    predictions = [{"probability": round(0.1 + 0.01 * (record.get("x1") or 0), 6),
                    "decision": "positive" if (record.get("x1") or 0) >= 50 else "negative"} for record in inputs]
    log.append(inputs, predictions, request_id, "rest", model_version, keys)
    return request_id


def _aware_utc(value) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def _raw(store_url: str):
    """A plain SQLAlchemy engine on the same database, for what a test reads or breaks by hand."""
    return create_engine(database_url(store_url))


# --------------------------------------------------------------------------- the prediction log


def test_append_and_window_give_back_each_request_in_id_order_with_utc_times(store_url):
    log = PredictionLog(store_url)
    before = datetime.now(UTC)
    first = _predict(log, [{"x1": 1, "plan": "basic"}, {"x1": 2, "plan": None}])
    second = _predict(log, [{"x1": 3, "plan": "pro"}], model_version="m2")
    third = _predict(log, [{"x1": 4, "plan": "team"}, {"x1": 5, "plan": "team"}, {"x1": 6, "plan": "basic"}])
    assert log.count() == 6 and log.last_id() == 6

    everything = log.window()
    assert everything.ids.tolist() == [1, 2, 3, 4, 5, 6] and (everything.first_id, everything.last_id) == (1, 6)
    assert everything.inputs["x1"].tolist() == [1, 2, 3, 4, 5, 6]
    assert everything.inputs["plan"].tolist()[:3] == ["basic", None, "pro"]  # a missing value stays missing
    assert everything.probability.tolist() == pytest.approx([0.11, 0.12, 0.13, 0.14, 0.15, 0.16])
    assert str(everything.timestamps.dt.tz) == "UTC"
    assert all(before - timedelta(seconds=1) <= t.to_pydatetime() <= datetime.now(UTC) for t in everything.timestamps)

    assert log.window(after_id=2).ids.tolist() == [3, 4, 5, 6]
    assert log.window(after_id=1, upto_id=4).ids.tolist() == [2, 3, 4]
    assert log.window(limit=2).ids.tolist() == [5, 6]  # the newest, still in id order
    assert log.window(model_version="m1").ids.tolist() == [1, 2, 4, 5, 6]
    assert log.window(model_version="m2").inputs["x1"].tolist() == [3]
    assert len(log.window(since=datetime.now(UTC) + timedelta(hours=1))) == 0
    assert len(log.window(after_id=6)) == 0 and log.window(after_id=6).first_id is None

    frame = log.frame()
    assert frame["request_id"].tolist() == [first, first, second, third, third, third]
    assert frame["row"].tolist() == [0, 1, 0, 0, 1, 2]
    assert frame["decision"].tolist() == ["negative"] * 6 and set(frame["model_version"]) == {"m1", "m2"}
    with _raw(store_url).connect() as connection:
        stamps = [row[0] for row in connection.execute(text("SELECT timestamp FROM predictions ORDER BY id"))]
    assert len(set(stamps)) == 3, "each request's rows share their one timestamp, set when it was logged"


def test_late_labels_attach_by_request_and_row_or_by_key_and_a_later_label_replaces_an_earlier_one(store_url):
    log = PredictionLog(store_url)
    one = _predict(log, [{"x1": 10}])
    two = _predict(log, [{"x1": 20}, {"x1": 30}, {"x1": 40}])
    _predict(log, [{"x1": 60}, {"x1": 70}], keys=["order-1", "order-2"])

    done = log.attach_labels([1, 0, 1], request_ids=[one, two, two], rows=[0, 0, 2])
    assert (done.attached, done.replaced, done.unmatched, done.ids) == (3, 0, [], [1, 2, 4])
    assert (done.first_id, done.last_id) == (1, 4)
    labelled = log.labelled(1, 6)
    assert labelled.sort_values("id")[["id", "label"]].values.tolist() == [[1, 1], [2, 0], [4, 1]]

    later = log.attach_labels([0, 1], request_ids=[one, two], rows=[0, 1])  # #1 again (now 0), #3 for the first time
    assert (later.attached, later.replaced, later.ids) == (2, 1, [1, 3])
    assert log.labelled(1, 6).sort_values("id")[["id", "label"]].values.tolist() == [[1, 0], [2, 0], [3, 1], [4, 1]]
    assert sorted(log.labelled(2, 3)["id"]) == [2, 3]

    by_key = log.attach_labels([1, 0], keys=["order-2", "no-such-order"])
    assert (by_key.attached, by_key.replaced, by_key.ids, by_key.unmatched) == (1, 0, [6], ["no-such-order"])

    ghost = str(uuid.uuid4())
    missing = log.attach_labels([1, 1, 0], request_ids=[ghost, two, one], rows=[0, 7, 0])
    assert missing.unmatched == [ghost, f"{two}#7"]  # a request that was never logged; a row past a request's end
    assert (missing.attached, missing.replaced, missing.ids) == (1, 1, [1])
    with _raw(store_url).connect() as connection:
        stored = connection.execute(text("SELECT prediction_id, label, received_at FROM labels ORDER BY prediction_id")).all()
    assert [(row[0], row[1]) for row in stored] == [(1, 0), (2, 0), (3, 1), (4, 1), (6, 1)]  # one label per prediction


def test_the_schema_version_table_names_each_component_and_an_old_log_is_upgraded_in_place(store_url):
    engine = _raw(store_url)
    version_1 = MetaData()  # a version-1 log: no row or key columns, no labels table, no version table
    Table("predictions", version_1, Column("id", Integer, primary_key=True, autoincrement=True),
          Column("timestamp", DateTime(timezone=True), nullable=False), Column("request_id", String(36), nullable=False),
          Column("source", String(16), nullable=False), Column("model_version", String(64), nullable=False),
          Column("probability", Float, nullable=False), Column("decision", String(64), nullable=False),
          Column("inputs", JSON, nullable=False))
    version_1.create_all(engine)
    with engine.begin() as connection:
        connection.execute(version_1.tables["predictions"].insert().values(
            timestamp=datetime(2024, 1, 1, 12, tzinfo=UTC), request_id="old", source="rest", model_version="m1", probability=0.5,
            decision="positive", inputs={"x1": 9}))
    log = PredictionLog(store_url)
    MonitoringStore(store_url)
    columns = {column["name"] for column in inspect(engine).get_columns("predictions")}
    assert {"row", "key"} <= columns
    assert log.window().inputs["x1"].tolist() == [9] and log.frame()["row"].isna().all()  # the old row kept, row unknown
    _predict(log, [{"x1": 1}], keys=["k"])
    assert log.frame()["key"].tolist()[-1] == "k"
    with engine.connect() as connection:
        versions = {row[0]: (row[1], row[2]) for row in connection.execute(text("SELECT component, version, updated_at FROM driftgate_schema"))}
    assert {name: version for name, (version, _) in versions.items()} == {"predictions": SCHEMA_VERSION, "monitoring": 1}

    PredictionLog(store_url)  # opening again changes nothing
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM driftgate_schema")).scalar_one() == 2


def test_a_table_named_predictions_that_is_not_a_log_is_refused_by_name(store_url):
    with _raw(store_url).begin() as connection:
        connection.execute(text("CREATE TABLE predictions (id INTEGER PRIMARY KEY, price FLOAT)"))
    with pytest.raises(DataError) as caught:
        PredictionLog(store_url)
    assert "'predictions' table that is not a driftgate prediction log" in str(caught.value)
    assert "timestamp" in str(caught.value) and "request_id" in str(caught.value)


# --------------------------------------------------------------------------- the monitoring history


def _pass_row(first_id: int, last_id: int, status: str = "done", level: str = "ok", **metrics) -> dict:
    now = datetime.now(UTC)
    return {"started_at": now - timedelta(seconds=2), "finished_at": now, "model_version": "m1", "reference_sha256": "ab" * 32,
            "status": status, "reason": f"predictions #{first_id}..#{last_id}", "first_id": first_id, "last_id": last_id,
            "first_at": now - timedelta(hours=1), "last_at": now, "rows": last_id - first_id + 1, "level": level,
            "drift": {"columns": {"x1": {"drift": True}}} if status == "done" else None, **metrics}


def test_record_pass_writes_the_pass_its_metrics_and_its_alerts_and_the_history_reads_them_back(store_url):
    store = MonitoringStore(store_url)
    fired = [{"rule": "drift_share", "level": "warning", "event": "fired", "value": 0.4, "threshold": 0.3,
              "message": "drift share 0.40 >= 0.30", "incident": None},
             {"rule": "columns.x1", "level": "critical", "event": "fired", "value": 1.0, "threshold": None,
              "message": "x1 drifted", "incident": None}]
    first = store.record_pass(_pass_row(1, 300, level="critical", drift_share=0.4, estimated_f1=0.61, estimate_abstained=False),
                              [{"name": "drift_score", "column": "x1", "value": 0.25}, {"name": "p_value", "column": "x1", "value": 0.001}],
                              fired)
    skipped = store.record_pass(_pass_row(301, 350, status="skipped"), [], [])
    incidents = store.open_incidents()
    assert set(incidents) == {"drift_share", "columns.x1"}
    share = incidents["drift_share"]
    assert share["incident"] == share["id"] and share["pass_id"] == first  # a new incident is named by its first row
    assert _aware_utc(share["at"]) and share["notified_at"] == share["at"]

    second = store.record_pass(_pass_row(351, 700, level="warning", drift_share=0.35), [],
                               [{"rule": "drift_share", "level": "warning", "event": "renotified", "value": 0.35, "threshold": 0.3,
                                 "message": "still", "incident": share["incident"]},
                                {"rule": "columns.x1", "level": "ok", "event": "resolved", "value": 0.0, "threshold": None,
                                 "message": "x1 back", "incident": incidents["columns.x1"]["incident"]}])
    assert first < skipped < second

    passes = store.passes_list()
    assert [p["id"] for p in passes] == [second, skipped, first]  # the newest first
    assert [p["id"] for p in store.passes_list(limit=1)] == [second]
    assert store.passes_list(model_version="other") == []
    latest = store.latest_pass()
    assert latest["id"] == second and latest["status"] == "done" and latest["drift_share"] == pytest.approx(0.35)
    assert store.latest_pass(judged=False)["id"] == second
    older = passes[-1]
    assert older["level"] == "critical" and older["estimated_f1"] == pytest.approx(0.61) and older["estimate_abstained"] is False
    assert older["drift"] == {"columns": {"x1": {"drift": True}}} and older["realized_f1"] is None
    for row in passes:
        for name in ("started_at", "finished_at", "first_at", "last_at"):
            assert _aware_utc(row[name]), (name, row[name])
    assert store.last_judged("m1")["id"] == second and store.last_judged("other") is None

    metrics = store.pass_metrics(first)
    assert sorted((m["name"], m["column"], m["value"]) for m in metrics) == [("drift_score", "x1", 0.25), ("p_value", "x1", 0.001)]
    assert all(m["pass_id"] == first and _aware_utc(m["at"]) for m in metrics)
    assert store.pass_metrics(skipped) == []

    alerts = store.alerts_list()
    assert [(a["rule"], a["event"]) for a in alerts] == [("columns.x1", "resolved"), ("drift_share", "renotified"),
                                                         ("columns.x1", "fired"), ("drift_share", "fired")]
    assert all(_aware_utc(a["at"]) for a in alerts)
    still = store.open_incidents()
    assert list(still) == ["drift_share"] and still["drift_share"]["event"] == "renotified"  # the resolved one is closed
    assert still["drift_share"]["incident"] == share["incident"]
    assert [a["event"] for a in store.alerts_list(open_only=True)] == ["renotified"]
    covering = store.passes_covering(290, 360)
    assert [p["id"] for p in covering] == [first, second]  # skipped passes judged nothing
    assert all(_aware_utc(p["started_at"]) and _aware_utc(p["last_at"]) for p in covering)
    store.update_realized(first, {"realized_f1": 0.5, "labelled_rows": 250.0})
    updated = store.passes_list()[-1]
    assert updated["realized_f1"] == pytest.approx(0.5) and _aware_utc(updated["realized_at"])
    assert store.count_passes() == 3


def test_a_pass_whose_metrics_cannot_be_written_leaves_no_pass_row(store_url):
    store = MonitoringStore(store_url)
    with pytest.raises(Exception):  # noqa: B017 - whatever the database says: a metric row without its name
        store.record_pass(_pass_row(1, 300), [{"name": None, "column": "x1", "value": 1.0}], [])
    assert store.count_passes() == 0 and store.latest_pass() is None and store.alerts_list() == []


def test_the_frozen_reference_is_stored_once_and_a_changed_byte_stops_the_monitor_naming_table_and_model(store_url):
    store = MonitoringStore(store_url)
    kinds = {"kinds": {"x1": "numeric", "plan": "categorical"}, "threshold": 0.5}
    stored = store.freeze_reference("m1", b"frame-bytes", b"holdout-bytes", kinds, 123)
    assert (stored.rows, stored.drift_frame, stored.holdout, stored.kinds) == (123, b"frame-bytes", b"holdout-bytes", kinds)
    assert _aware_utc(stored.created_at)
    again = store.freeze_reference("m1", b"other", b"other", kinds, 9)  # a second freeze keeps the first
    assert (again.sha256, again.drift_frame) == (stored.sha256, b"frame-bytes")
    assert store.reference("m2") is None

    with _raw(store_url).begin() as connection:
        connection.execute(text("UPDATE monitor_references SET drift_frame = :changed WHERE model_version = 'm1'"),
                           {"changed": b"frame-bytez"})
    with pytest.raises(DataError) as caught:
        store.reference("m1")
    message = str(caught.value)
    assert "monitor_references" in message and "model m1" in message and "changed after it was stored" in message


# --------------------------------------------------------------------------- a whole pass on both


@pytest.fixture(scope="module")
def tiny(served_project):
    """The tiny trained project: its params, paths, model and 600 rows of its current window scored."""
    from driftgate.config import Paths, load_params, parse_window
    from driftgate.data import dataset
    from driftgate.data.dataset import features_frame, select_window
    from driftgate.model import train
    from driftgate.monitoring.reference import ModelInfo

    paths = Paths(served_project)
    params = load_params(served_project / "params.yaml")
    model = ModelInfo.from_card(paths.model)
    pipeline, _ = train.load(paths.model, paths.model_card)
    rows = select_window(pd.read_parquet(paths.dataset), parse_window(params.windows.current), "current").head(600)
    frame = features_frame(rows, model.schema)
    frame["x1"] = frame["x1"] + 1.5  # a drifted window, so the pass has alerts to agree on
    scores = pipeline.predict_proba(frame[model.schema.columns])[:, 1]
    records = json.loads(frame[model.schema.columns].to_json(orient="records"))
    labels = dataset.labels(rows).tolist()
    return {"params": params, "paths": paths, "model": model, "records": records, "scores": scores, "labels": labels,
            "model_path": paths.model}


def fill(log: PredictionLog, tiny: dict, start: int = 0, stop: int | None = None, per_request: int = 20) -> list[str]:
    """Log the tiny project's scored rows [start, stop) as requests of `per_request` rows; their request ids."""
    model, records, scores = tiny["model"], tiny["records"], tiny["scores"]
    stop = len(records) if stop is None else stop
    ids = []
    for i in range(start, stop, per_request):
        j = min(i + per_request, stop)
        predictions = [{"probability": float(p), "decision": "positive" if p >= model.threshold else "negative"} for p in scores[i:j]]
        ids.append(str(uuid.uuid4()))
        log.append(records[i:j], predictions, ids[-1], "rest", model.version)
    return ids


def _verdict(outcome, store: MonitoringStore) -> dict:
    """What a pass decided, as the store holds it: everything but ids of rows and clocks."""
    row = store.passes_list(limit=1)[0]
    kept = {k: v for k, v in row.items() if k not in ("id", "started_at", "finished_at", "first_at", "last_at", "realized_at")}
    metrics = sorted((m["name"], m["column"], round(m["value"], 9)) for m in store.pass_metrics(row["id"]))
    alerts = sorted((a["rule"], a["level"], a["event"], a["message"]) for a in store.alerts_list())
    return {"outcome": (outcome.status, outcome.level, outcome.rows, outcome.reason), "row": kept, "metrics": metrics, "alerts": alerts}


@pytest.mark.slow
def test_a_whole_pass_gives_the_same_verdict_on_sqlite_and_postgresql(tiny, tmp_path, postgres):
    from driftgate.monitoring.monitor import run_pass

    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.sql(f"CREATE DATABASE {name}")
    verdicts = {}
    try:
        for backend, url in (("sqlite", str(tmp_path / "store.sqlite")), ("postgresql", postgres.url(name))):
            log, store = PredictionLog(url), MonitoringStore(url)
            request_ids = fill(log, tiny, 0, 500)
            judged = run_pass(tiny["params"], log, store, tiny["model"], tiny["paths"], tiny["model_path"])
            assert judged.status == "done" and judged.rows == 500, judged.reason
            verdicts[backend] = {"judged": _verdict(judged, store)}
            assert store.latest_pass()["first_id"] == 1 and store.latest_pass()["last_id"] == 500

            fill(log, tiny, 500, 600)  # 100 new rows: below min_rows 200, so recorded and skipped
            skipped = run_pass(tiny["params"], log, store, tiny["model"], tiny["paths"], tiny["model_path"])
            assert skipped.status == "skipped" and skipped.reason.startswith("skipped: 100 < 200 rows"), skipped.reason
            verdicts[backend]["skipped"] = _verdict(skipped, store)

            attached = log.attach_labels(tiny["labels"][:500:2], request_ids=[r for r in request_ids for _ in range(20)][::2],
                                         rows=[n % 20 for n in range(0, 500, 2)])  # late labels for every other row of the pass
            from driftgate.monitoring.monitor import refresh_realized

            assert attached.attached == 250 and attached.unmatched == []
            assert refresh_realized(log, store, attached.first_id, attached.last_id, tiny["model"].threshold, 200) == 1
            realized = store.latest_pass()
            assert realized["labelled_rows"] == 250 and realized["realized_f1"] is not None
            verdicts[backend]["realized"] = {k: realized[k] for k in ("realized_f1", "realized_precision", "realized_recall",
                                                                      "labelled_rows", "estimate_error")}
    finally:
        postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    sqlite, postgresql = verdicts["sqlite"], verdicts["postgresql"]
    assert sqlite["judged"]["alerts"], "the drifted window fires alerts on both"
    assert sqlite["judged"]["outcome"][1] != "ok"
    for part in ("judged", "skipped"):
        assert sqlite[part]["outcome"] == postgresql[part]["outcome"]
        assert sqlite[part]["metrics"] == postgresql[part]["metrics"]
        assert sqlite[part]["alerts"] == postgresql[part]["alerts"]
        assert set(sqlite[part]["row"]) == set(postgresql[part]["row"])
        for key, value in sqlite[part]["row"].items():
            other = postgresql[part]["row"][key]
            assert (other == pytest.approx(value) if isinstance(value, float) else other == value), key
    assert postgresql["realized"] == pytest.approx(sqlite["realized"])


@pytest.mark.slow
def test_monitor_once_on_a_postgresql_url_from_the_command_line(tiny, served_project, postgres):
    """`driftgate monitor --once --log URL`, as a CI schedule runs it against a masked URL."""
    from tests.conftest import run

    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.sql(f"CREATE DATABASE {name}")
    try:
        url = postgres.url(name)
        fill(PredictionLog(url), tiny, 0, 300)
        result = run([str(Path(__import__("sys").executable).parent / "driftgate"), "monitor", "--once", "--no-notify", "--log", url],
                     served_project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        latest = MonitoringStore(url).latest_pass()
        assert f"pass {latest['id']}: {latest['level']}" in result.stdout
        assert (latest["first_id"], latest["last_id"], latest["rows"]) == (1, 300, 300)
    finally:
        postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
