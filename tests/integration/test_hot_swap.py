"""Hot swap of the champion and the retraining routes, on the small project trained for real.

The served model follows the model registry's champion alias in the prediction log's database:
requests keep coming (from threads) while the alias moves, every one is answered, and the
version in the answers and in /health becomes the new champion's. A registered model whose bytes
were changed is refused and the old one keeps serving. The routes' JSON on an empty registry and
after decisions, and a real POST /retrain through the worker.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
import time
from pathlib import Path

import joblib
import pytest
from fastapi.testclient import TestClient

from driftgate.config import Paths, RetrainingConfig, load_params, parse_window
from driftgate.data.dataset import feature_schema, load_dataset, select_window
from driftgate.errors import DataError
from driftgate.model import train
from driftgate.retraining.controller import ensure_champion
from driftgate.serving import swap
from driftgate.serving.api import create_api
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.service import Service
from driftgate.store.predictions import PredictionLog
from driftgate.store.registry import ModelRegistry

RECORD = {"x1": 0.4, "x2": 3.0, "plan": "pro"}


@pytest.fixture(scope="module")
def project(served_project) -> Path:
    return served_project


def make_service(project: Path, db: Path, params=None) -> Service:
    params = params or load_params(project / "params.yaml")
    paths = Paths(project)
    return Service(ServedModel.load(paths.model, params), PredictionLog(db), Metrics(paths.gate), params=params,
                   baseline=paths.metrics, paths=paths, model_path=paths.model)


def challenger(project: Path, max_iter: int) -> tuple[str, dict, bytes]:
    """A second model trained for real on the project's data (fewer boosting rounds): sha256, card, joblib bytes."""
    params = load_params(project / "params.yaml")
    params = params.model_copy(update={"model": params.model.model_copy(update={"max_iter": max_iter})})
    dataset = load_dataset(Paths(project).dataset)
    schema = feature_schema(dataset, params.data)
    rows = select_window(dataset, params.windows.train, "windows.train")
    pipeline = train.fit(rows, params, schema)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    card = train.model_card(params, schema, rows, {"dataset": "test"}) | {"model_sha256": sha}
    return sha, card, data


def wait_for(condition, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds:g} s")


def test_the_served_model_follows_the_champion_while_requests_keep_coming(project, tmp_path):
    db = tmp_path / "predictions.sqlite"
    service = make_service(project, db)
    client = TestClient(create_api(service))
    old = service.model.version
    registry = ModelRegistry(db)
    assert swap.check(service) == "empty" and service.model.version == old  # an empty registry: the artifacts model serves
    ensure_champion(registry, Paths(project).model)
    assert swap.check(service) == "unchanged"
    sha, card, data = challenger(project, max_iter=5)
    registry.register(sha, card, data)
    said: list[str] = []
    stop = swap.watch(service, say=said.append)

    answers, done = [], threading.Event()

    def send() -> None:
        while not done.is_set():
            response = client.post("/predict", json=[RECORD, {**RECORD, "x1": -1.0}])
            answers.append((response.status_code, response.json()))

    senders = [threading.Thread(target=send) for _ in range(4)]
    for thread in senders:
        thread.start()
    try:
        wait_for(lambda: len(answers) >= 20)
        registry.set_champion(sha, "a test promotion")
        wait_for(lambda: client.get("/health").json()["model_version"] == sha[:12])
        seen = len(answers)
        wait_for(lambda: len(answers) >= seen + 20)
    finally:
        done.set()
        for thread in senders:
            thread.join()
        stop.set()

    assert [code for code, _ in answers] == [200] * len(answers)
    versions = [body["model_version"] for _, body in answers]
    assert set(versions) == {old, sha[:12]} and versions[0] == old and versions[-1] == sha[:12]
    assert said == [f"serving the champion {sha[:12]} (was {old})"]
    # The new champion really scores: its answers are its own probabilities, and each request was logged with its model.
    expected = ServedModel.from_bytes(card, data).score_records([RECORD, {**RECORD, "x1": -1.0}])
    assert [p["probability"] for p in answers[-1][1]["predictions"]] == pytest.approx(list(expected))
    logged = service.log.frame().groupby("request_id")["model_version"].agg(set)
    assert all(logged[body["request_id"]] == {body["model_version"]} for _, body in answers)


def test_a_champion_whose_stored_bytes_were_changed_is_refused_and_the_old_model_keeps_serving(project, tmp_path):
    db = tmp_path / "predictions.sqlite"
    service = make_service(project, db)
    client = TestClient(create_api(service))
    registry = ModelRegistry(db)
    ensure_champion(registry, Paths(project).model)
    sha, card, data = challenger(project, max_iter=7)
    registry.register(sha, card, data)
    with sqlite3.connect(db) as connection:  # someone edits the stored model after it was registered
        connection.execute("UPDATE registry_models SET model = ? WHERE sha256 = ?", (data[:-1] + b"\x00", sha))
    registry.set_champion(sha, "a promotion of a changed model")
    old, said = service.model.version, []

    assert swap.check(service, said.append) == "refused"
    assert swap.check(service, said.append) == "unchanged"  # said once, not at every look
    assert len(said) == 1 and said[0].startswith(f"champion {sha[:12]} refused, {old} keeps serving: ")
    assert "changed after it was registered" in said[0]
    assert client.get("/health").json()["model_version"] == old
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 200 and response.json()["model_version"] == old


def test_bytes_that_are_not_the_cards_model_are_refused_before_unpickling(project):
    sha, card, data = challenger(project, max_iter=3)
    with pytest.raises(DataError) as refused:
        ServedModel.from_bytes(card, data + b"\x00")
    assert "not its card's" in refused.value.problem


def test_the_registry_routes_answer_an_empty_registry_with_empty_lists(project, tmp_path):
    service = make_service(project, tmp_path / "predictions.sqlite")
    client = TestClient(create_api(service))
    models = client.get("/models").json()
    assert models["champion"] is None and models["versions"] == [] and models["aliases"] == []
    assert models["serving"] == service.model.version
    status = client.get("/retraining/status").json()
    assert status["state"] == "idle" and status["last_decision"] is None and status["job"] is None
    assert client.get("/retraining/history").json()["decisions"] == []
    comparison = client.get("/models/comparison").json()
    assert comparison["decision_id"] is None and comparison["champion"] is None and "no retraining" in comparison["message"]
    documented = client.get("/openapi.json").json()
    assert {"/retrain", "/retraining/status", "/retraining/history", "/models", "/models/comparison"} <= set(documented["paths"])
    assert documented["paths"]["/models/comparison"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Comparison"}


def test_the_registry_routes_show_versions_aliases_and_the_last_comparison(project, tmp_path):
    db = tmp_path / "predictions.sqlite"
    service = make_service(project, db)
    client = TestClient(create_api(service))
    registry = ModelRegistry(db)
    first = ensure_champion(registry, Paths(project).model)
    sha, card, data = challenger(project, max_iter=4)
    registry.register(sha, card, data)
    rejected = registry.record_decision({"trigger": "manual", "champion_sha256": first, "challenger_sha256": sha, "rows": 720,
                                         "champion_f1": 0.61, "challenger_f1": 0.58, "difference": -0.03, "lower": -0.05,
                                         "confidence": 0.95, "margin": 0.01, "margin_kind": "absolute", "outcome": "rejected",
                                         "training_window": "2024-01-01..2024-03-01", "evaluation_window": "2024-04",
                                         "reason": "the challenger is not better"})
    registry.set_champion(sha, "a test promotion")
    rolled = registry.record_decision({"trigger": "api", "champion_sha256": sha, "challenger_sha256": first,
                                       "outcome": "rolled_back", "reason": "rolled back"})

    models = client.get("/models").json()
    assert models["champion"] == sha
    assert {v["sha256"]: v["champion"] for v in models["versions"]} == {first: False, sha: True}
    assert [(a["sha256"], a["until"] is None) for a in models["aliases"]] == [(first, False), (sha, True)]
    history = client.get("/retraining/history").json()["decisions"]
    assert [(d["id"], d["outcome"]) for d in history] == [(rolled, "rolled_back"), (rejected, "rejected")]
    assert client.get("/retraining/status").json()["last_decision"]["id"] == rolled
    comparison = client.get("/models/comparison").json()  # the rollback compared nothing: the rejection is the last comparison
    assert comparison | {"at": None} == {
        "decision_id": rejected, "at": None, "champion": {"sha256": first, "f1": 0.61}, "challenger": {"sha256": sha, "f1": 0.58},
        "difference": -0.03, "lower": -0.05, "confidence": 0.95, "margin": 0.01, "margin_kind": "absolute", "rows": 720,
        "training_window": "2024-01-01..2024-03-01", "evaluation_window": "2024-04", "outcome": "rejected",
        "reason": "the challenger is not better", "message": None}


def test_post_retrain_runs_the_controller_in_the_background_and_a_second_one_is_refused(project, tmp_path):
    params = load_params(project / "params.yaml")
    params = params.model_copy(update={"retraining": RetrainingConfig(
        window=parse_window("2024-02-01..2024-04-01", "retraining.window"),
        evaluation=parse_window("2024-04-01..2024-05-01", "retraining.evaluation"), draws=300)})
    service = make_service(project, tmp_path / "predictions.sqlite", params)
    client = TestClient(create_api(service))
    started = client.post("/retrain")
    again = client.post("/retrain")
    assert started.status_code == 202 and started.json()["job"]["trigger"] == "api"
    assert again.status_code == 409 and "running already" in again.json()["message"]

    status = wait_for(lambda: (s := client.get("/retraining/status").json())["state"] == "idle" and s, 120)
    job, decision = status["job"], status["last_decision"]
    assert job["error"] is None and job["outcome"] in ("promoted", "rejected") and job["decision_id"] == decision["id"]
    assert decision["trigger"] == "api" and decision["evaluation_window"] == params.retraining.evaluation.label
    comparison = client.get("/models/comparison").json()
    assert comparison["decision_id"] == decision["id"] and comparison["rows"] == decision["rows"] > 0
    assert comparison["difference"] == pytest.approx(comparison["challenger"]["f1"] - comparison["champion"]["f1"])
    serving = client.get("/health").json()["model_version"]
    champion = ModelRegistry(tmp_path / "predictions.sqlite").champion()
    assert serving == champion[:12]  # promoted: the challenger serves at once; rejected: the champion still does
    assert (champion == decision["challenger_sha256"]) == (job["outcome"] == "promoted")


def test_the_app_create_app_builds_follows_the_champion_by_itself(project, tmp_path):
    from driftgate.serving.ui import create_app

    db = tmp_path / "predictions.sqlite"
    app = create_app(project / "params.yaml", log=str(db), root=project)
    try:
        client = TestClient(app)
        old = client.get("/health").json()["model_version"]
        registry = ModelRegistry(db)
        ensure_champion(registry, Paths(project).model)
        sha, card, data = challenger(project, max_iter=6)
        registry.register(sha, card, data)
        registry.set_champion(sha, "a test promotion")
        wait_for(lambda: client.get("/health").json()["model_version"] == sha[:12])
        response = client.post("/predict", json=RECORD)
        assert response.status_code == 200 and response.json()["model_version"] == sha[:12] != old
        assert client.get("/models").json()["serving"] == sha[:12]
    finally:
        app.state.champion_watch.set()


def test_retraining_every_interval_runs_with_trigger_schedule_until_stopped(project, tmp_path):
    from driftgate.serving.retraining_api import Retraining

    db = tmp_path / "predictions.sqlite"
    service = make_service(project, db)  # its params have no retraining windows: each scheduled run fails, and says why
    worker = Retraining(service)
    said: list[str] = []
    stop = worker.every(0.2, say=said.append)
    try:
        wait_for(lambda: len(ModelRegistry(db).decisions()) >= 2)
    finally:
        stop.set()
    rows = ModelRegistry(db).decisions()
    assert {row["trigger"] for row in rows} == {"schedule"} and {row["outcome"] for row in rows} == {"failed"}
    assert "retraining.window" in rows[0]["reason"] and "is not set" in rows[0]["reason"]
    assert said[0] == "scheduled retraining started"
    wait_for(lambda: not worker.running)
    settled = len(ModelRegistry(db).decisions())
    time.sleep(0.6)
    assert len(ModelRegistry(db).decisions()) == settled  # stopped: no more ticks


def test_serve_refuses_retrain_every_without_retraining_windows(project):
    from typer.testing import CliRunner

    from driftgate.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--params", str(project / "params.yaml"), "--retrain-every", "1d"])
    assert result.exit_code == 2 and "retraining.window" in result.output and "is not set" in result.output
    bad = CliRunner().invoke(app, ["serve", "--params", str(project / "params.yaml"), "--retrain-every", "often"])
    assert bad.exit_code == 2 and "--retrain-every" in bad.output
