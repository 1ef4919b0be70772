"""The serving API and the demo's batch checks, on a small project trained for real.

REST routes through FastAPI's TestClient (the real app, in process); the prediction log in a
real SQLite file; bad input of every kind; a tampered model that must refuse to start.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftgate.cli.main import app as cli
from driftgate.errors import DataError
from driftgate.serving.api import create_api
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.schema import parse_records, records_frame
from driftgate.serving.service import Service
from driftgate.store.predictions import PredictionLog
from tests.conftest import edit_params, gradio_call, make_tiny_frame


@pytest.fixture(scope="module")
def project(served_project) -> Path:
    return served_project


def make_service(project: Path, log_dir: Path, fast: bool = True, params=None):
    model = ServedModel.load(project / "artifacts" / "model.joblib", params)
    if not fast:  # what a model the fast scorer cannot take gets: scikit-learn, with requests batched
        model.fast = None
    return Service(model, PredictionLog(log_dir / "predictions.sqlite"), Metrics(project / "reports" / "gate.json"))


@pytest.fixture
def service(project, tmp_path):
    return make_service(project, tmp_path / "log")


@pytest.fixture
def sklearn_service(project, tmp_path):
    return make_service(project, tmp_path / "sklearn-log", fast=False)


@pytest.fixture
def client(service):
    return TestClient(create_api(service))


@pytest.fixture
def limited(project, tmp_path):
    """The service with params.yaml's hard limits: validation.ranges x2 [0, 10], validation.allowed plan."""
    from driftgate.config import load_params

    return make_service(project, tmp_path / "limited-log", params=load_params(project / "params.yaml"))


RECORD = {"x1": 0.5, "x2": 3.0, "plan": "pro"}


@pytest.mark.parametrize("path", ["fast", "sklearn"])
def test_one_record_and_a_list_are_scored_like_the_pipeline_scores_them(request, path):
    service = request.getfixturevalue("service" if path == "fast" else "sklearn_service")
    assert (service.model.fast is not None, service.batcher is None) == ((True, True) if path == "fast" else (False, False))
    client = TestClient(create_api(service))
    assert client.get("/health").json()["scorer"] == {"fast": "treelite", "sklearn": "scikit-learn"}[path]
    one = client.post("/predict", json=RECORD)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == service.model.version and len(body["request_id"]) == 36
    [prediction] = body["predictions"]
    expected = service.model.pipeline.predict_proba(pd.DataFrame([RECORD])[service.model.schema.columns])[0, 1]
    assert prediction["probability"] == pytest.approx(expected, abs=1e-12)
    assert set(prediction) == {"probability", "label", "decision", "threshold"}
    assert prediction["label"] == int(expected >= prediction["threshold"])
    assert prediction["decision"] == service.model.class_names[prediction["label"]]
    many = client.post("/predict", json=[RECORD, {**RECORD, "x1": 3.0}, {**RECORD, "x1": None}])
    assert many.status_code == 200 and len(many.json()["predictions"]) == 3
    assert many.json()["predictions"][1]["probability"] > many.json()["predictions"][0]["probability"]  # x1 raises churn
    assert service.log.count() == 4


@pytest.mark.parametrize(("payload", "field", "kind"), [
    ({"x2": 3.0, "plan": "pro"}, "x1", "missing"),
    ({**RECORD, "age": 40}, "age", "extra_forbidden"),
    ({**RECORD, "x1": "high"}, "x1", "not_a_number"),
    ({**RECORD, "plan": "enterprise"}, "plan", "unknown_category"),
    ([RECORD, {**RECORD, "x2": "?"}], "1.x2", "not_a_number"),
    ([], "body", "too_short"),
], ids=["missing field", "extra field", "wrong type", "unknown category", "bad record in a list", "empty list"])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_logged(client, service, payload, field, kind):
    response = client.post("/predict", json=payload)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {"field": field, "type": kind} == {k: errors[0][k] for k in ("field", "type")}, errors
    if kind == "unknown_category":
        assert errors[0]["message"] == "unknown category 'enterprise': the model knows 3 values for plan (listed in /openapi.json, schema Record)"
    assert service.log.count() == 0
    assert client.post("/predict", json=RECORD).status_code == 200  # still serving
    assert service.log.count() == 1


@pytest.mark.parametrize("body", ['{"x1": NaN, "x2": 1, "plan": "pro"}', '{"x1": Infinity, "x2": 1, "plan": "pro"}',
                                  '{"x1": 1, "x2": 1, "plan": ', "not json"], ids=["NaN", "infinity", "truncated", "not json"])
def test_nan_infinity_and_malformed_json_are_refused(client, service, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert service.log.count() == 0


def test_health_metrics_and_openapi(client, service, project):
    client.post("/predict", json=[RECORD, {**RECORD, "x1": 4.0}])
    client.post("/predict", json={"nope": 1})
    health = client.get("/health").json()
    assert health == {"status": "ok", "model_loaded": True, "model_version": service.model.version,
                      "driftgate_version": service.model.card["driftgate_version"], "predictions_logged": 2,
                      "scorer": "treelite"}
    text = client.get("/metrics").text
    decisions = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines() if line.startswith("driftgate_predictions_total{")}
    assert sum(decisions.values()) == 2
    assert 'driftgate_requests_total{endpoint="/predict",status="422"} 1.0' in text
    assert 'driftgate_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'driftgate_request_duration_seconds_count{endpoint="/predict"} 2.0' in text
    gate = json.loads((project / "reports" / "gate.json").read_text())
    for result in gate["gates"]:
        if isinstance(result["value"], float) and math.isfinite(result["value"]):
            assert f'driftgate_gate_value{{gate="{result["gate"]}"}} {result["value"]!r}' in text
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["schemas"]["Record"]["properties"]) == {"x1", "x2", "plan"}
    assert client.get("/docs").status_code == 200


def test_api_docs_load_their_scripts_from_this_server(client):
    for page, script in (("/docs", "/docs-assets/swagger-ui-bundle.js"), ("/redoc", "/docs-assets/redoc.js")):
        html = client.get(page).text
        assert script in html and "https://" not in html, html
        asset = client.get(script)
        assert asset.status_code == 200 and len(asset.content) > 100_000
    assert b"cdn.redoc.ly" not in client.get("/docs-assets/redoc.js").content
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_prediction_log_is_sqlite_in_wal_mode_with_every_input(service, client):
    client.post("/predict", json=[RECORD, {**RECORD, "x1": None}])
    path = service.log.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    frame = service.log.frame()
    assert list(frame[["x1", "x2", "plan", "source"]].itertuples(index=False, name=None))[0] == (0.5, 3.0, "pro", "rest")
    assert math.isnan(frame["x1"].iloc[1]) and frame["request_id"].nunique() == 1
    assert set(frame["decision"]) <= {"negative", "positive"}


def test_concurrent_requests_log_exactly_one_row_per_prediction(service, client):
    def post(i: int) -> int:
        return client.post("/predict", json=[{**RECORD, "x2": float(i % 10)}] * 3).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(200)))
    assert codes == [200] * 200
    assert service.log.count() == 600
    assert service.log.frame()["request_id"].nunique() == 200


def test_a_tampered_model_refuses_to_start(project, tmp_path):
    for name in ("model.joblib", "model.json"):
        (tmp_path / name).write_bytes((project / "artifacts" / name).read_bytes())
    with open(tmp_path / "model.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DataError, match="does not match the model card"):
        ServedModel.load(tmp_path / "model.joblib")
    refused = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "model.joblib"), "--params",
                                       str(project / "params.yaml")], catch_exceptions=False)
    assert refused.exit_code == 2 and "does not match the model card" in refused.output


# --------------------------------------------------------------------------- the demo's batch checks


def test_batch_problems_name_the_column_and_what_is_wrong(service):
    from driftgate.serving.uploads import batch_problems

    model = service.model
    good = make_tiny_frame(50)
    assert batch_problems(good, model, "b.csv") == ([], [])
    assert batch_problems(good.iloc[:0], model, "b.csv") == (["b.csv has no rows"], [])
    assert batch_problems(pd.DataFrame({"a": [1]}), model, "b.csv") == (["b.csv has none of the model's columns (x1, x2, plan)"], [])
    assert batch_problems(good.drop(columns=["x2"]), model, "b.csv") == (["missing column(s): x2"], [])
    text = good.astype({"x1": object})
    text.loc[3, "x1"] = "n/a"
    inf = good.copy()
    inf.loc[[1, 2], "x2"] = float("inf")
    unknown = good.copy()
    unknown.loc[0, "plan"] = "enterprise"
    assert batch_problems(text, model, "b.csv") == (["column 'x1' has 1 value(s) that are not numbers, e.g. 'n/a'"], [])
    assert batch_problems(inf, model, "b.csv") == (["column 'x2' has 2 infinite value(s)"], [])
    # the model's encoder scores an unseen category as missing: a warning, not a refusal
    assert batch_problems(unknown, model, "b.csv") == (
        [], ["column 'plan': 1 row(s) with categories the model never saw, scored as missing: enterprise"])


def test_drift_stage_reads_the_prediction_log_as_the_current_batch(project, client, service, monkeypatch):
    client.post("/predict", json=[{**RECORD, "x1": 2.0 + i / 10} for i in range(40)])  # a shifted batch
    log_path = service.log.url.removeprefix("sqlite:///")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["drift", "--current", log_path, "--out", "from_log"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    drift = json.loads((project / "from_log" / "drift.json").read_text())
    assert drift["current_rows"] == 40 and drift["current_window"] == "prediction log (40 predictions)"
    assert drift["columns"]["x1"]["drift"] is True
    empty = CliRunner().invoke(cli, ["drift", "--current", str(project / "none.sqlite")], catch_exceptions=False)
    assert empty.exit_code == 2 and "prediction log not found" in empty.output


def test_concurrent_requests_scored_together_each_get_their_own_predictions(sklearn_service):
    """On the scikit-learn path, requests that arrive together are scored in one call; each
    must still get the scores of its own rows, in order."""
    service, client = sklearn_service, TestClient(create_api(sklearn_service))
    records = [[{**RECORD, "x1": (i - 50) / 10, "x2": float(j)} for j in range(i % 3 + 1)] for i in range(100)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda body: client.post("/predict", json=body).json(), records))
    model = service.model
    for body, response in zip(records, responses):
        expected = model.pipeline.predict_proba(pd.DataFrame(body)[model.schema.columns])[:, 1]
        assert [p["probability"] for p in response["predictions"]] == pytest.approx(list(expected), abs=1e-12)
    assert service.log.count() == sum(len(body) for body in records)


def test_a_failing_batch_fails_only_its_requests_and_the_server_keeps_scoring(sklearn_service):
    batcher = sklearn_service.batcher
    bad = pd.DataFrame({"x1": [0.5], "x2": [1.0]})  # no 'plan' column: the model cannot score it
    with pytest.raises(KeyError):
        batcher.score(bad)
    good = records_frame(parse_records(sklearn_service.model.record_model, RECORD), sklearn_service.model.schema)
    assert len(batcher.score(good)) == 1


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "Cannot read empty.csv"),
    ("header.csv", b"x1,x2,plan\n", "Cannot read header.csv:** file has a header but no rows. Upload a CSV"),
    ("broken.csv", b'x1,x2,plan\n0.5,"3.0\n', "Cannot read broken.csv"),
    ("binary.parquet", b"\x00\x01not parquet at all", "Cannot read binary.parquet"),
    ("semicolons.csv", b"x1;x2;plan\n0.5;3.0;pro\n", "Cannot read semicolons.csv:** has one column 'x1;x2;plan': it looks separated by semicolons"),
    ("big.csv", b"x1,x2,plan\n" + b"0.5,3.0,pro\n" * 100_000, "over the 1 MB limit (serving.max_upload_mb in params.yaml)"),
    ("long.csv", b"x1,x2,plan\n" + b"0.5,3.0,pro\n" * 60, "long.csv has 60 rows**, over serving.max_batch_rows (50)"),
], ids=["empty file", "header only", "malformed CSV", "not Parquet", "semicolon-separated", "over the size cap", "over the row cap"])
def test_uploads_that_cannot_be_scored_are_refused_with_the_reason(service, tmp_path, name, content, message):
    from driftgate.serving.uploads import read_batch

    path = tmp_path / name
    path.write_bytes(content)
    frame, refusal, warnings = read_batch(path, service.model, max_mb=1, max_rows=50)
    assert frame is None and warnings == []
    assert message in refusal, refusal


def test_an_upload_that_can_be_scored_comes_back_with_its_warnings(service, tmp_path):
    from driftgate.serving.uploads import read_batch

    batch = make_tiny_frame(40)
    batch.loc[0, "plan"] = "enterprise"
    batch.to_parquet(tmp_path / "batch.parquet")
    frame, refusal, warnings = read_batch(tmp_path / "batch.parquet", service.model, max_mb=1, max_rows=50)
    assert refusal == "" and len(frame) == 40 and warnings == [
        "column 'plan': 1 row(s) with categories the model never saw, scored as missing: enterprise"]


def test_the_server_refuses_an_upload_over_the_cap_before_it_reaches_the_disk(project, tmp_path):
    from driftgate.serving.ui import create_app

    params = yaml.safe_load((project / "params.yaml").read_text())
    params.setdefault("serving", {})["max_upload_mb"] = 0.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    client = TestClient(create_app(tmp_path / "params.yaml", project / "artifacts" / "model.joblib",
                                   log=str(tmp_path / "log.sqlite"), root=project))
    small = client.post("/gradio_api/upload", files={"files": ("small.csv", b"x1,x2,plan\n0.5,3.0,pro\n", "text/csv")})
    assert small.status_code == 200, small.text
    big = client.post("/gradio_api/upload", files={"files": ("big.csv", b"0" * 600_000, "text/csv")})
    assert big.status_code == 413, big.text


def test_a_request_over_the_size_or_record_cap_is_refused_and_the_server_keeps_serving(service):
    client = TestClient(create_api(service, max_body_mb=0.01, max_records=5))  # 10 KiB, 5 records
    too_long = client.post("/predict", json=[RECORD] * 6)
    assert too_long.status_code == 422
    assert too_long.json()["detail"] == [{"field": "body", "type": "too_long",
                                          "message": "6 records; at most 5 per request (serving.max_batch_rows in params.yaml)"}]
    too_big = client.post("/predict", json=[RECORD] * 400)  # about 14 KB, declared in Content-Length
    assert too_big.status_code == 413 and "over 0.01 MB (serving.max_upload_mb" in too_big.json()["detail"][0]["message"]

    def chunks():  # no Content-Length: the limit counts the bytes as they arrive
        yield b"["
        for i in range(400):
            yield (b"," if i else b"") + json.dumps(RECORD).encode()
        yield b"]"

    streamed = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert service.log.count() == 0
    assert client.post("/predict", json=[RECORD] * 5).status_code == 200
    assert service.log.count() == 5
    assert 'driftgate_requests_total{endpoint="/predict",status="413"} 2.0' in client.get("/metrics").text


# --------------------------------------------------------------------------- wording from params.yaml

CHURN = {"title": "customer churn", "question": "Will this customer cancel within a month?", "row": "customer",
         "rows": "customers"}
FLIGHT_WORDS = re.compile(r"\b(flights?|late|delay|delays|delayed|new york)\b", re.IGNORECASE)


@pytest.mark.parametrize("source", ["card", "params"], ids=["project in the model card", "project only in params.yaml"])
def test_the_ui_the_api_and_responses_speak_of_the_projects_own_data(project, tmp_path, source):
    """A model whose classes are 'stays' and 'churns': the Gradio config, the OpenAPI document
    and the responses use those words and the project's, and none about flights."""
    from driftgate.serving.ui import create_app

    card = json.loads((project / "artifacts" / "model.json").read_text())
    card["class_names"] = ["stays", "churns"]
    card.pop("project", None)
    if source == "card":
        card["project"] = CHURN
    (tmp_path / "model.json").write_text(json.dumps(card))
    (tmp_path / "model.joblib").write_bytes((project / "artifacts" / "model.joblib").read_bytes())
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["project"] = CHURN if source == "params" else {"title": "not this one"}
    params["data"]["target"]["class_names"] = ["stays", "churns"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    client = TestClient(create_app(tmp_path / "params.yaml", tmp_path / "model.joblib", log=str(tmp_path / "log.sqlite"),
                                   root=project))

    config = client.get("/config").text
    assert "driftgate: customer churn" in config and "Will this customer cancel within a month?" in config
    assert "probability of churns" in config and not FLIGHT_WORDS.search(config), FLIGHT_WORDS.search(config)
    openapi = client.get("/openapi.json").json()
    assert openapi["info"]["title"] == "customer churn"
    assert openapi["info"]["description"].startswith("Will this customer cancel within a month?")
    assert "one customer or a list of customers" in openapi["paths"]["/predict"]["post"]["summary"]
    assert not FLIGHT_WORDS.search(json.dumps(openapi))
    response = client.post("/predict", json=[RECORD, {**RECORD, "x1": 4.0}])
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [set(p) for p in predictions] == [{"probability", "label", "decision", "threshold"}] * 2
    assert {p["decision"] for p in predictions} <= {"stays", "churns"}
    assert [p["decision"] for p in predictions] == [["stays", "churns"][p["label"]] for p in predictions]
    assert not FLIGHT_WORDS.search(response.text)


# --------------------------------------------------------------------------- params.yaml's hard limits


@pytest.mark.parametrize(("payload", "field", "kind", "message"), [
    ({**RECORD, "x2": 10.5}, "x2", "out_of_range", "10.5 is outside the allowed range [0, 10] (validation.ranges in params.yaml)"),
    ({**RECORD, "x2": -1}, "x2", "out_of_range", "-1 is outside the allowed range [0, 10] (validation.ranges in params.yaml)"),
    ([RECORD, {**RECORD, "x2": 1e6}], "1.x2", "out_of_range", "1e+06 is outside the allowed range [0, 10]"),
    ({**RECORD, "plan": "enterprise"}, "plan", "not_allowed",
     "'enterprise' is not allowed: use one of basic, pro, team (validation.allowed in params.yaml)"),
    ({**RECORD, "x1": True}, "x1", "not_a_number", "expected a number (or null for a missing value), got a boolean true"),
    ({**RECORD, "x2": False}, "x2", "not_a_number", "got a boolean false"),
    ({**RECORD, "x1": "0.5"}, "x1", "not_a_number", "got text '0.5'"),
], ids=["above the range", "below the range", "out of range in a list", "category not allowed", "true for a number",
        "false for a number", "a number as text"])
def test_values_outside_params_limits_are_a_422_naming_the_field_and_the_limit(limited, payload, field, kind, message):
    client = TestClient(create_api(limited))
    response = client.post("/predict", json=payload)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["field"], error["type"]) == (field, kind) and message in error["message"], error
    assert limited.log.count() == 0


def test_a_value_inside_the_limits_but_outside_the_training_range_is_scored_with_a_warning(limited):
    client = TestClient(create_api(limited))
    profile = limited.model.card["feature_profile"]["numeric"]
    low, high = profile["x1"]["min"], profile["x1"]["max"]
    response = client.post("/predict", json=[RECORD, {**RECORD, "x1": high + 5}, {**RECORD, "x2": 10}])
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 3 and limited.log.count() == 3
    assert [w["field"] for w in body["warnings"]] == ["1.x1"] + (["2.x2"] if profile["x2"]["max"] < 10 else [])
    assert body["warnings"][0] == {"field": "1.x1", "type": "outside_training_range", "message":
                                   f"{high + 5:g} is outside the training range {low:g} to {high:g}: the model never saw "
                                   "such a value, so treat this score with care"}
    one = client.post("/predict", json=RECORD).json()
    assert one["warnings"] == []


def test_an_allowed_category_the_model_never_saw_is_scored_as_missing_with_a_warning(project, tmp_path):
    from driftgate.config import ValidationConfig

    base = ServedModel.load(project / "artifacts" / "model.joblib")
    model = ServedModel(base.pipeline, base.card, base.schema, base.threshold, base.class_names,
                        limits=ValidationConfig(allowed={"plan": ["basic", "pro", "team", "enterprise"]}))
    service = Service(model, PredictionLog(tmp_path / "log.sqlite"), Metrics(project / "reports" / "gate.json"))
    client = TestClient(create_api(service))
    response = client.post("/predict", json={**RECORD, "plan": "enterprise"})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [{"field": "plan", "type": "unseen_category",
                                            "message": "'enterprise' never appeared in training: scored as a missing value"}]
    expected = model.pipeline.predict_proba(pd.DataFrame([{**RECORD, "plan": None}])[model.schema.columns])[0, 1]
    assert response.json()["predictions"][0]["probability"] == pytest.approx(expected, abs=1e-9)
    assert client.post("/predict", json={**RECORD, "plan": "free"}).json()["detail"][0]["type"] == "not_allowed"


@pytest.fixture
def demo(project, tmp_path):
    """The whole app (API and Gradio UI) with the project's params.yaml, and its prediction log."""
    from driftgate.serving.ui import create_app

    log = tmp_path / "demo-log.sqlite"
    with TestClient(create_app(project / "params.yaml", project / "artifacts" / "model.joblib", log=str(log),
                               root=project)) as client:
        yield client, PredictionLog(log)


def test_the_predict_form_refuses_values_outside_the_limits_and_logs_nothing(demo):
    client, log = demo
    label, message = gradio_call(client, "predict", [0.5, 11.0, "pro"])
    assert "Cannot predict" in message and "`x2`: 11 is outside the allowed range [0, 10]" in message, message
    assert log.count() == 0
    label, message = gradio_call(client, "predict", [0.5, 3.0, "pro"])
    assert "probability of positive" in message and "note:" not in message and log.count() == 1


def test_the_predict_form_refuses_a_category_params_does_not_allow(demo, capfd):
    client, log = demo
    label, message = gradio_call(client, "predict", [0.5, 3.0, "enterprise"])
    assert "`plan`: 'enterprise' is not allowed: use one of basic, pro, team (validation.allowed in params.yaml)" in message
    assert log.count() == 0 and "Traceback" not in capfd.readouterr().err


def test_the_predict_form_scores_a_value_outside_the_training_range_with_a_note(demo):
    client, log = demo
    label, message = gradio_call(client, "predict", [9.0, 3.0, "pro"])
    assert "probability of positive" in message and "note: `x1`: 9 is outside the training range" in message, message
    assert log.count() == 1


def test_a_batch_outside_params_limits_is_refused_and_one_outside_training_is_noted(limited):
    from driftgate.serving.uploads import batch_problems

    model = limited.model
    good = make_tiny_frame(50)
    above, refused, unseen = good.copy(), good.copy(), good.copy()
    above.loc[[4, 5], "x2"] = 12.0
    refused.loc[7, "plan"] = "enterprise"
    unseen.loc[0, "x1"] = model.card["feature_profile"]["numeric"]["x1"]["max"] + 1
    assert batch_problems(above, model, "b.csv") == (
        ["column 'x2' has 2 value(s) outside the allowed range [0, 10] (validation.ranges in params.yaml), e.g. 12"], [])
    assert batch_problems(refused, model, "b.csv") == (
        ["column 'plan' has 1 value(s) that are not allowed (validation.allowed in params.yaml: basic, pro, team), "
         "e.g. 'enterprise'"], [])
    problems, warnings = batch_problems(unseen, model, "b.csv")
    assert problems == [] and warnings[0].startswith("column 'x1': 1 row(s) outside the training range "), warnings


# --------------------------------------------------------------------------- refusing to start


def _served_copy(project: Path, folder: Path) -> Path:
    """params.yaml and the model with its card: what `python app.py` reads at start-up."""
    (folder / "artifacts").mkdir(parents=True)
    (folder / "params.yaml").write_text((project / "params.yaml").read_text())
    for name in ("model.joblib", "model.json"):
        (folder / "artifacts" / name).write_bytes((project / "artifacts" / name).read_bytes())
    (folder / "notes.log").write_text("not a database\n")
    (folder / "table.csv").write_text("x1,x2\n1,2\n")
    return folder


def _tamper(folder: Path) -> None:
    with open(folder / "artifacts" / "model.joblib", "ab") as handle:
        handle.write(b"\0")


STARTUP_FAILURES = {  # id: (how the copy is broken, what the one line must say)
    "tampered model": (_tamper, "does not match the model card"),
    "missing model": (lambda f: (f / "artifacts" / "model.joblib").unlink(), "model file not found"),
    "missing model card": (lambda f: (f / "artifacts" / "model.json").unlink(), "model card not found"),
    "params.yaml value out of range": (lambda f: edit_params(f / "params.yaml", **{"serving.max_upload_mb": -5}),
                                       "params.yaml: serving.max_upload_mb"),
    "params.yaml not YAML": (lambda f: (f / "params.yaml").write_text("data: [\n"), "is not valid YAML"),
    "log is a CSV file": (lambda f: edit_params(f / "params.yaml", **{"serving.log": "table.csv"}),
                          "table.csv: a .csv file is not a database"),
    "log is a text file": (lambda f: edit_params(f / "params.yaml", **{"serving.log": "notes.log"}),
                           "notes.log: exists and is not a SQLite database"),
    "log is a folder": (lambda f: edit_params(f / "params.yaml", **{"serving.log": "artifacts"}),
                        "artifacts: is a folder, not a prediction log"),
    "log is a garbage URL": (lambda f: edit_params(f / "params.yaml", **{"serving.log": "nosuch://where/x"}),
                             "nosuch://where/x: cannot be used as the prediction log"),
}


@pytest.mark.parametrize("case", list(STARTUP_FAILURES))
def test_python_app_py_refuses_to_start_with_one_line_and_exit_code_2(project, tmp_path, case):
    from tests.conftest import ROOT

    breaks, says = STARTUP_FAILURES[case]
    folder = _served_copy(project, tmp_path / "copy")
    breaks(folder)
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": "1"}  # never reached: the checks come first
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    if case.startswith("log is"):
        assert "serving.log in params.yaml (or --log)" in lines[0]


@pytest.mark.parametrize("log", ["table.csv", "artifacts", "nosuch://where/x"], ids=["CSV file", "folder", "garbage URL"])
def test_driftgate_serve_refuses_a_log_that_is_not_a_database(project, tmp_path, log):
    folder = _served_copy(project, tmp_path / "copy")
    driftgate = Path(sys.executable).parent / "driftgate"
    result = subprocess.run([str(driftgate), "serve", "--log", log, "--port", "1"], cwd=folder, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and f"{log}:" in output and "set serving.log in params.yaml (or --log)" in output, output
    assert not (folder / "logs").exists()
