"""The monitoring history over the serving app: its REST routes, POST /labels, the label key on
/predict, the Prometheus gauges, and `driftgate serve --monitor-every` running passes.

A small project trained for real; predictions go through the real POST /predict into a real
SQLite log; passes are real `run_pass` calls (or the server's own monitor); the routes are read
through FastAPI's TestClient, and the server with --monitor-every is a real process on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import f1_score

from driftgate.config import Paths, load_params
from driftgate.errors import ConfigError
from driftgate.monitoring.monitor import run_pass
from driftgate.monitoring.reference import ModelInfo
from driftgate.results import Metrics as MetricsFile
from driftgate.serving.api import create_api
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.service import Service
from driftgate.store.predictions import PredictionLog
from tests.conftest import BIN, make_tiny_frame, set_dotted

FEATURES = ["x1", "x2", "plan"]
# Blocks of 20 rows: the tiny project's holdout (12 days of 24 hours) is enough to measure the
# estimate's shift margin, so a pass over 300 reference-like predictions gets an estimate.
SETTINGS = {"monitoring.estimation.min_rows": 20}


def make_project(served: Path, folder: Path, **changes) -> Path:
    """What the server reads, in a folder of its own: params.yaml (with `changes`), the model
    with its card, the validated dataset (the reference is frozen from it) and the reports."""
    for name in ("artifacts/model.joblib", "artifacts/model.json", "artifacts/dataset.parquet", "reports/metrics.json",
                 "reports/gate.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(served / name, folder / name)
    params = yaml.safe_load((served / "params.yaml").read_text())
    (folder / "params.yaml").write_text(yaml.safe_dump(set_dotted(params, **SETTINGS, **changes), sort_keys=False))
    return folder


def make_service(project: Path, log: Path) -> Service:
    params = load_params(project / "params.yaml")
    paths = Paths(project)
    return Service(ServedModel.load(paths.model, params), PredictionLog(log), Metrics(paths.gate), params=params,
                   baseline=paths.metrics)


def records(rows: int, seed: int, shift: float = 0.0) -> tuple[list[dict], list[int]]:
    """`rows` records of the tiny data (x1 moved by `shift`) and their true labels."""
    frame = make_tiny_frame(rows, seed)
    frame["x1"] += shift
    return frame[FEATURES].to_dict("records"), frame["churned"].tolist()


def predict(client: TestClient, batch: list[dict]) -> dict:
    answer = client.post("/predict", json=batch)
    assert answer.status_code == 200, answer.text
    return answer.json()


def one_pass(service: Service, project: Path):
    paths = Paths(project)
    return run_pass(service.params, service.log, service.store, ModelInfo.from_card(paths.model), paths, paths.model)


def gauges(client: TestClient) -> dict[str, dict[tuple, float]]:
    """/metrics parsed: family name -> {label values: value}."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return {family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(answer.text)}


@pytest.fixture(scope="module")
def project(served_project, tmp_path_factory) -> Path:
    return make_project(served_project, tmp_path_factory.mktemp("monitor-api"))


@pytest.fixture(scope="module")
def history(project, tmp_path_factory):
    """Three passes over predictions posted to /predict: 300 like the training data (judged, ok,
    with an estimate), 300 with x1 moved by 3 (judged, drifted, alerts), then 50 (skipped)."""
    service = make_service(project, tmp_path_factory.mktemp("log") / "predictions.sqlite")
    client = TestClient(create_api(service))
    batch, truth = records(300, seed=11)
    requests = [(predict(client, batch[i:i + 100]), truth[i:i + 100]) for i in range(0, 300, 100)]
    first = one_pass(service, project)
    after_first = gauges(client)
    predict(client, records(300, seed=12, shift=3.0)[0])
    second = one_pass(service, project)
    predict(client, records(50, seed=13)[0])
    skipped = one_pass(service, project)
    return {"service": service, "client": client, "requests": requests, "passes": (first, second, skipped),
            "after_first": after_first}


# --------------------------------------------------------------------------- an empty history


def test_an_empty_history_answers_200_with_empty_lists_null_and_a_message(project, tmp_path):
    client = TestClient(create_api(make_service(project, tmp_path / "empty.sqlite")))
    for path, empty in (("/alerts", "alerts"), ("/alerts?open=true", "alerts"), ("/metrics/history", "passes"),
                        ("/monitoring/runs", "runs"), ("/drift/data", "columns"), ("/drift/concept", "performance")):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()[empty] == [] and answer.json()["message"], (path, answer.json())
    latest = client.get("/metrics/latest").json()
    assert latest["latest"] is None and latest["open_alerts"] == 0 and "driftgate monitor --once" in latest["message"]
    found = gauges(client)
    assert found["driftgate_monitor_open_alerts"] == {(): 0.0}
    assert not {"driftgate_monitor_drift_share", "driftgate_monitor_alert_level"} & set(found)


# --------------------------------------------------------------------------- the routes


def test_runs_list_every_pass_newest_first_with_the_skipped_ones_reason(history):
    first, second, skipped = history["passes"]
    assert (first.status, second.status, skipped.status) == ("done", "done", "skipped")
    runs = history["client"].get("/monitoring/runs").json()["runs"]
    assert [r["id"] for r in runs] == [skipped.pass_id, second.pass_id, first.pass_id]
    assert runs[0]["status"] == "skipped" and runs[0]["reason"].startswith("skipped: 50 < 200 rows") and runs[0]["rows"] == 50
    assert runs[1]["rows"] == 300 and runs[1]["first_id"] == 301 and runs[1]["last_id"] == 600


def test_history_gives_the_judged_passes_oldest_first_as_the_store_has_them(history):
    service, client = history["service"], history["client"]
    first, second, _ = history["passes"]
    passes = client.get("/metrics/history").json()["passes"]
    assert [p["id"] for p in passes] == [first.pass_id, second.pass_id]
    stored = {row["id"]: row for row in service.store.passes_list()}
    for shown in passes:
        row = stored[shown["id"]]
        for name in ("drift_share", "estimated_f1", "estimated_lower", "estimated_upper", "level", "rows"):
            assert shown[name] == row[name], name
        assert shown["started_at"].endswith("Z") and shown["finished_at"] >= shown["started_at"]
    one, two = passes
    assert one["level"] == "ok" and not one["estimate_abstained"]
    assert one["estimated_lower"] <= one["estimated_f1"] <= one["estimated_upper"]
    assert two["level"] == "critical" and two["drift_share"] > one["drift_share"] and two["prediction_drift"]
    assert [p["id"] for p in client.get("/metrics/history?limit=1").json()["passes"]] == [second.pass_id]


def test_latest_is_the_newest_judged_pass_not_the_skipped_one(history):
    _, second, _ = history["passes"]
    latest = history["client"].get("/metrics/latest").json()
    assert latest["latest"]["id"] == second.pass_id and latest["latest"]["level"] == second.level
    assert latest["latest"]["drift_share"] == second.metrics["drift_share"]
    assert latest["open_alerts"] == len(history["service"].store.open_incidents()) > 0


def test_data_drift_lists_the_input_columns_of_the_latest_pass_most_drifted_first(history):
    _, second, _ = history["passes"]
    drift = history["client"].get("/drift/data").json()
    assert drift["pass_id"] == second.pass_id and drift["mode"] == "calibrated"
    assert sorted(c["column"] for c in drift["columns"]) == sorted(FEATURES)  # the prediction columns are /drift/concept's
    assert drift["columns"][0]["column"] == "x1" and drift["columns"][0]["drift"] and "x1" in drift["drifted_columns"]
    for column in drift["columns"]:
        assert column["score"] == pytest.approx(second.drift.columns[column["column"]].score)
    assert drift["drift_share"] == second.drift.drift_share


def test_concept_drift_gives_prediction_drift_and_realized_f1_against_the_baseline(history, project):
    first, second, _ = history["passes"]
    concept = history["client"].get("/drift/concept").json()
    assert concept["pass_id"] == second.pass_id
    assert {c["column"] for c in concept["prediction_columns"]} == {"prediction", "predicted_label"}
    assert all(c["drift"] for c in concept["prediction_columns"])
    assert concept["baseline_f1"] == MetricsFile.read(project / "reports" / "metrics.json").holdout.f1
    assert [p["pass_id"] for p in concept["performance"]] == [first.pass_id, second.pass_id]


def test_baseline_is_the_models_holdout_and_current_metrics_from_metrics_json(history, project):
    baseline = history["client"].get("/metrics/baseline").json()
    written = MetricsFile.read(project / "reports" / "metrics.json")
    assert baseline["holdout"]["f1"] == written.holdout.f1 and baseline["holdout"]["rows"] == written.holdout.rows
    assert baseline["current"]["window"] == written.current.window
    assert baseline["model_version"] == history["service"].model.version and baseline["message"] is None


def test_a_missing_metrics_json_is_said_not_a_500(project, tmp_path):
    service = make_service(project, tmp_path / "log.sqlite")
    service.baseline = tmp_path / "nowhere" / "metrics.json"
    answer = TestClient(create_api(service)).get("/metrics/baseline")
    assert answer.status_code == 200 and answer.json()["holdout"] is None
    assert "metrics.json" in answer.json()["message"] and "run the pipeline" in answer.json()["message"]


def test_alerts_give_every_row_and_open_gives_the_unresolved_incidents(history):
    client, store = history["client"], history["service"].store
    everything = client.get("/alerts").json()["alerts"]
    assert [a["id"] for a in everything] == [a["id"] for a in store.alerts_list()]
    assert {a["rule"] for a in everything} >= {"drift_share", "prediction_drift"}
    assert all(a["event"] == "fired" and a["pass_id"] == history["passes"][1].pass_id for a in everything)
    critical = next(a for a in everything if a["rule"] == "drift_share")
    assert critical["level"] == "critical" and critical["threshold"] == 0.5 and critical["incident"] == critical["id"]
    opened = client.get("/alerts?open=true").json()
    assert opened["open_only"] and {a["incident"] for a in opened["alerts"]} == {r["incident"] for r in store.open_incidents().values()}


def test_the_routes_are_documented_with_typed_answers_in_openapi(history):
    document = history["client"].get("/openapi.json").json()
    for path in ("/alerts", "/metrics/baseline", "/metrics/latest", "/metrics/history", "/drift/data", "/drift/concept",
                 "/monitoring/runs"):
        operation = document["paths"][path]["get"]
        assert operation["summary"], path
        assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"], path
    labels = document["paths"]["/labels"]["post"]
    assert labels["summary"] and "LabelsAnswer" in str(labels["responses"]["200"])
    item = document["components"]["schemas"]["LabelItem"]["properties"]
    assert {"request_id", "row", "key", "label"} <= set(item)


# --------------------------------------------------------------------------- Prometheus


def test_metrics_exposes_the_latest_pass_as_gauges(history):
    service, client = history["service"], history["client"]
    latest = service.store.latest_pass()
    found = gauges(client)
    assert found["driftgate_monitor_drift_share"] == {(): pytest.approx(latest["drift_share"])}
    columns = found["driftgate_monitor_column_drift_score"]
    assert {dict(k)["column"] for k in columns} == set(FEATURES) | {"prediction", "predicted_label"}
    assert columns[(("column", "x1"),)] == pytest.approx(latest["drift"]["columns"]["x1"]["score"])
    assert found["driftgate_monitor_alert_level"] == {(): 2.0}  # critical
    assert found["driftgate_monitor_pass_timestamp_seconds"][()] == pytest.approx(latest["finished_at"].timestamp())
    assert found["driftgate_monitor_open_alerts"] == {(): float(len(service.store.open_incidents()))}
    if latest["estimate_abstained"]:
        assert not {"driftgate_monitor_estimated_f1", "driftgate_monitor_estimated_f1_lower"} & set(found)
    # After the first pass, whose estimate did not abstain, its estimate and interval were there.
    first = history["passes"][0].metrics
    before = history["after_first"]
    assert before["driftgate_monitor_estimated_f1"] == {(): pytest.approx(first["estimated_f1"])}
    assert before["driftgate_monitor_estimated_f1_lower"] == {(): pytest.approx(first["estimated_lower"])}
    assert before["driftgate_monitor_estimated_f1_upper"] == {(): pytest.approx(first["estimated_upper"])}
    assert before["driftgate_monitor_alert_level"] == {(): 0.0}
    assert "driftgate_monitor_realized_f1" not in before  # no labels yet
    assert found["driftgate_gate_value"] and found["driftgate_requests"]  # the other families are still there


def test_a_store_that_cannot_be_read_leaves_metrics_answering(project, tmp_path):
    log = tmp_path / "broken.sqlite"
    client = TestClient(create_api(make_service(project, log)))
    request_id = predict(client, records(5, seed=1)[0])["request_id"]
    with sqlite3.connect(log) as db:
        for table in ("monitor_passes", "monitor_alerts", "labels"):
            db.execute(f"DROP TABLE {table}")
    found = gauges(client)
    assert not [name for name in found if name.startswith("driftgate_monitor_")]
    assert found["driftgate_predictions"] and found["driftgate_gate_passed"]
    answer = client.get("/metrics/latest")
    assert answer.status_code == 503 and "monitoring store cannot be read" in answer.json()["detail"][0]["message"]
    labels = client.post("/labels", json={"labels": [{"request_id": request_id, "label": 1}]})
    assert labels.status_code == 503 and "prediction log cannot be written" in labels.json()["detail"][0]["message"]
    assert "serving.log" in labels.json()["detail"][0]["message"]


# --------------------------------------------------------------------------- POST /labels


def test_posted_labels_update_the_realized_f1_of_a_past_pass(history, project):
    client, (first, second, _) = history["client"], history["passes"]
    body, decided, truth = [], [], []
    for answer, labels in history["requests"]:
        for row, (prediction, label) in enumerate(zip(answer["predictions"], labels)):
            body.append({"request_id": answer["request_id"], "row": row, "label": label if row % 3 else bool(label)})
            decided.append(prediction["label"])
            truth.append(label)
    body[0]["label"] = history["service"].model.class_names[truth[0]]  # a class name is a label too
    body.append({"request_id": "no-such-request", "label": 1})
    answer = client.post("/labels", json={"labels": body})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"attached": 300, "replaced": 0, "unmatched": ["no-such-request"], "passes_updated": 1}
    shown = {p["id"]: p for p in client.get("/metrics/history").json()["passes"]}
    assert shown[first.pass_id]["realized_f1"] == pytest.approx(f1_score(truth, decided))
    assert shown[first.pass_id]["labelled_rows"] == 300 and shown[first.pass_id]["realized_at"]
    assert shown[first.pass_id]["estimate_error"] == pytest.approx(shown[first.pass_id]["realized_f1"] - shown[first.pass_id]["estimated_f1"])
    assert shown[second.pass_id]["realized_f1"] is None  # its window got no label
    concept = {p["pass_id"]: p for p in client.get("/drift/concept").json()["performance"]}
    baseline = client.get("/metrics/baseline").json()["holdout"]["f1"]
    assert concept[first.pass_id]["f1_change"] == pytest.approx(concept[first.pass_id]["realized_f1"] - baseline)
    again = client.post("/labels", json={"labels": body[:10]}).json()
    assert again["attached"] == 10 and again["replaced"] == 10 and again["passes_updated"] == 1


BAD_LABELS = {
    "a label that is no label": ({"labels": [{"request_id": "r", "label": 2}]}, "labels.0.label", "is not a label"),
    "a class name that is no class": ({"labels": [{"request_id": "r", "label": "maybe"}]}, "labels.0.label", "'maybe' is not a label"),
    "no label": ({"labels": [{"request_id": "r"}]}, "labels.0.label", "required"),
    "no prediction named": ({"labels": [{"row": 2, "label": 1}]}, "labels.0", "give request_id"),
    "a key without label_key": ({"labels": [{"key": "c-1", "label": 1}]}, "labels.0", "monitoring.label_key"),
    "a negative row": ({"labels": [{"request_id": "r", "row": -1, "label": 1}]}, "labels.0.row", ""),
    "an unknown field": ({"labels": [{"request_id": "r", "label": 1, "score": 0.3}]}, "labels.0.score", "not a field of a label"),
    "an empty list": ({"labels": []}, "labels", "at least one label"),
    "no labels list": ({"rows": []}, "labels", "required"),
    "a list for a body": ([{"request_id": "r", "label": 1}], "body", '{"labels": [...]}'),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_a_bad_labels_body_is_a_422_naming_the_field(history, case):
    body, field, says = BAD_LABELS[case]
    answer = history["client"].post("/labels", json=body)
    assert answer.status_code == 422, answer.text
    fields = {e["field"]: e["message"] for e in answer.json()["detail"]}
    assert field in fields and says in fields[field], fields


def test_a_labels_body_that_is_not_json_is_a_422_saying_so(history):
    answer = history["client"].post("/labels", content=b'{"labels": [', headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "not valid JSON" in answer.json()["detail"][0]["message"]


# --------------------------------------------------------------------------- monitoring.label_key


def test_the_label_key_is_taken_out_of_records_stored_and_named_by_labels(served_project, tmp_path):
    project = make_project(served_project, tmp_path / "keyed", **{"monitoring.label_key": "customer_id"})
    service = make_service(project, tmp_path / "keyed.sqlite")
    client = TestClient(create_api(service))
    batch, truth = records(4, seed=3)
    keyed = [{**r, "customer_id": key} for r, key in zip(batch, ["c-1", "c-2", 3, None])]
    answer = predict(client, keyed)
    single = predict(client, {**batch[0], "customer_id": "c-9"})
    logged = service.log.frame()
    assert logged["key"].tolist() == ["c-1", "c-2", "3", None, "c-9"]
    assert "customer_id" not in logged.columns  # taken out before the record is checked and logged
    assert [p["probability"] for p in answer["predictions"]] == [p["probability"] for p in predict(client, batch)["predictions"]]
    labels = client.post("/labels", json={"labels": [{"key": "c-1", "label": truth[0]}, {"key": 3, "label": "true"},
                                                     {"key": "c-404", "label": 0},
                                                     {"request_id": single["request_id"], "label": 1}]})
    assert labels.status_code == 200, labels.text
    assert labels.json() == {"attached": 3, "replaced": 0, "unmatched": ["c-404"], "passes_updated": 0}
    stored = service.log.labelled(1, service.log.last_id())
    assert sorted(stored["label"].tolist()) == sorted([truth[0], 1, 1])
    bad = client.post("/predict", json=[batch[0], {**batch[1], "customer_id": {"id": 1}}, {**batch[2], "x1": "high"}])
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["detail"]}
    assert "expected text or a whole number, got an object" in fields["1.customer_id"] and "monitoring.label_key" in fields["1.customer_id"]
    assert "2.x1" in fields  # the records' own errors are reported with it
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert "customer_id" in record["properties"] and "customer_id" not in record.get("required", [])
    assert "monitoring.label_key" in record["properties"]["customer_id"]["description"]


def test_without_label_key_a_records_extra_field_is_still_refused(history):
    batch, _ = records(1, seed=4)
    answer = history["client"].post("/predict", json={**batch[0], "customer_id": "c-1"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "customer_id"


def test_a_label_key_that_is_a_feature_refuses_to_load(served_project, tmp_path):
    project = make_project(served_project, tmp_path / "clash", **{"monitoring.label_key": "x1"})
    with pytest.raises(ConfigError) as refused:
        ServedModel.load(Paths(project).model, load_params(project / "params.yaml"))
    assert refused.value.where == "monitoring.label_key" and "'x1' is a feature" in refused.value.problem


# --------------------------------------------------------------------------- driftgate serve --monitor-every


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(check, process: subprocess.Popen, what: str, tries: int = 600):
    """Poll `check()` until it returns something truthy; the server dying ends the wait."""
    for _ in range(tries):
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before {what}: {process.stderr.read()}")
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"no {what}")


@pytest.mark.slow
def test_serve_with_monitor_every_records_passes_from_inside_the_server(served_project, tmp_path):
    project = make_project(served_project, tmp_path / "served")
    port, log = _free_port(), tmp_path / "served.sqlite"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DRIFTGATE_SMTP", "DRIFTGATE_ALERT",
                                                                                     "DRIFTGATE_WEBHOOK"))}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([str(BIN / "driftgate"), "serve", "--host", "127.0.0.1", "--port", str(port), "--log", str(log),
                               "--monitor-every", "2s"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200, server, "answer on /health")
        # Before any prediction the server's monitor records skipped passes ...
        runs = _wait_for(lambda: httpx.get(f"{base}/monitoring/runs", timeout=5).json()["runs"], server, "pass")
        assert runs[-1]["status"] == "skipped" and runs[-1]["reason"].startswith("skipped: 0 < 200 rows")
        batch, _ = records(250, seed=21)
        assert httpx.post(f"{base}/predict", json=batch, timeout=30).status_code == 200
        # ... and, once 250 are logged, a judged one over them.
        judged = _wait_for(lambda: [r for r in httpx.get(f"{base}/monitoring/runs", timeout=5).json()["runs"]
                                    if r["status"] == "done"], server, "judged pass")
        assert judged[-1]["rows"] == 250 and judged[-1]["first_id"] == 1
        assert httpx.get(f"{base}/metrics/latest", timeout=5).json()["latest"]["id"] == judged[0]["id"]
        assert "driftgate_monitor_drift_share" in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        os.kill(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    said = [line for line in err.splitlines() if line.startswith("driftgate monitor: ")]
    assert any(line.startswith("driftgate monitor: skipped: 0 < 200 rows") for line in said), err
    assert any(line.startswith(f"driftgate monitor: pass {judged[-1]['id']}: ") and "250 rows" in line for line in said), err
    assert not [line for line in err.splitlines() if line.startswith(("window:", "testing drift", "estimating F1"))]
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_serve_without_monitor_every_starts_no_monitor(project):
    from driftgate.serving.ui import create_app

    assert create_app(project / "params.yaml", root=project).state.monitor is None
    monitor, seconds = create_app(project / "params.yaml", root=project, monitor_every=2.0).state.monitor
    assert seconds == 2.0 and monitor.store.url == monitor.log.url


def test_a_bad_monitor_every_is_refused_with_exit_code_2(project):
    from tests.conftest import run

    result = run([str(BIN / "driftgate"), "serve", "--monitor-every", "soon"], project)
    assert result.returncode == 2 and "--monitor-every" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
