"""One monitoring pass on the bundled flights and the default model: the window, the skip rule,
the frozen reference, the alert levels, late labels and the CLI around them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from driftgate.cli.main import app
from driftgate.config import Paths, load_params
from driftgate.monitoring.monitor import run_pass
from driftgate.monitoring.reference import ModelInfo
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import PredictionLog
from tests.conftest import edit_params
from tests.conftest import fill_log as fill


@pytest.fixture
def project(flights_project, tmp_path, monkeypatch) -> Path:
    """The trained flights project, with a log of its own per test (cwd is the project)."""
    monkeypatch.chdir(flights_project)
    monkeypatch.setenv("DRIFTGATE_MONITOR_LOG", str(tmp_path / "log.sqlite"))
    return flights_project


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_july_window_is_critical_its_pass_and_alerts_are_rows_and_the_report_says_why(project, tmp_path):
    log = os.environ["DRIFTGATE_MONITOR_LOG"]
    fill(project, log, "2013-07", 600)
    result = cli("monitor", "--once", "--no-notify", "--report", str(tmp_path / "monitor.md"))
    assert result.exit_code == 0, result.output
    assert "pass 1: critical" in result.output
    store = MonitoringStore(log)
    [done] = store.passes_list()
    assert done["status"] == "done" and done["rows"] == 600 and (done["first_id"], done["last_id"]) == (1, 600)
    assert done["drift_share"] >= 0.5 and done["level"] == "critical"
    assert done["finished_at"].tzinfo is not None
    fired = {a["rule"]: a for a in store.alerts_list()}
    assert fired["drift_share"]["event"] == "fired" and fired["drift_share"]["level"] == "critical"
    assert {m["column"] for m in store.pass_metrics(done["id"]) if m["name"] == "drift_score"} >= {"temp", "prediction", "carrier"}
    frozen = store.reference(done["model_version"])
    assert frozen.sha256 == done["reference_sha256"] and frozen.rows > 50_000  # the training window, stored once
    report = (tmp_path / "monitor.md").read_text()
    assert "CRITICAL" in report and "| temp " in report and "fired" in report and "drift share" in report
    assert "flight delay risk" in report


def test_fail_on_critical_makes_the_exit_code_1(project):
    fill(project, os.environ["DRIFTGATE_MONITOR_LOG"], "2013-07", 400)
    assert cli("monitor", "--once", "--no-notify", "--fail-on", "critical").exit_code == 1


def test_a_small_window_is_skipped_and_its_rows_wait_for_the_next_pass(project):
    log = os.environ["DRIFTGATE_MONITOR_LOG"]
    params, paths = load_params("params.yaml"), Paths(project)
    model = ModelInfo.from_card(paths.model)
    fill(project, log, "2013-02", 143)
    skipped = run_pass(params, PredictionLog(log), MonitoringStore(log), model, paths)
    assert skipped.status == "skipped" and skipped.reason.startswith("skipped: 143 < 200 flights")
    fill(project, log, "2013-02", 300, seed=1)
    judged = run_pass(params, PredictionLog(log), MonitoringStore(log), model, paths)
    assert judged.status == "done" and judged.rows == 443  # the skipped rows are judged now
    fill(project, log, "2013-02", 250, seed=2)
    after = run_pass(params, PredictionLog(log), MonitoringStore(log), model, paths)
    assert after.rows == 250  # since the last judged pass: windows never overlap
    firsts = [(p["first_id"], p["last_id"], p["status"]) for p in reversed(MonitoringStore(log).passes_list())]
    assert firsts == [(1, 143, "skipped"), (1, 443, "done"), (444, 693, "done")]


def test_a_sliding_window_judges_every_recent_prediction(project):
    log = os.environ["DRIFTGATE_MONITOR_LOG"]
    edit_params(project / "params.yaml", **{"monitoring.window": "1h"})
    try:
        params, paths = load_params("params.yaml"), Paths(project)
        model = ModelInfo.from_card(paths.model)
        fill(project, log, "2013-02", 300)
        first = run_pass(params, PredictionLog(log), MonitoringStore(log), model, paths)
        fill(project, log, "2013-02", 100, seed=3)
        second = run_pass(params, PredictionLog(log), MonitoringStore(log), model, paths)
        assert (first.rows, second.rows) == (300, 400)
    finally:
        edit_params(project / "params.yaml", **{"monitoring.window": "since_last"})


def test_late_labels_update_the_realized_f1_of_a_past_pass_and_the_estimates_error(project, tmp_path):
    log = os.environ["DRIFTGATE_MONITOR_LOG"]
    logged = fill(project, log, "2013-03", 800)
    assert cli("monitor", "--once", "--no-notify").exit_code == 0
    store = MonitoringStore(log)
    [before] = store.passes_list()
    assert before["realized_f1"] is None and before["labelled_rows"] == 0
    half = logged.iloc[:400]
    half[["request_id", "row", "label"]].to_csv(tmp_path / "labels.csv", index=False)
    result = cli("labels", str(tmp_path / "labels.csv"))
    assert result.exit_code == 0, result.output
    assert "400 label(s) attached" in result.output and "1 pass(es) updated" in result.output
    [after] = store.passes_list()
    expected = f1_score(half["label"], half["score"] >= 0.5)
    assert after["labelled_rows"] == 400 and after["realized_f1"] == pytest.approx(expected)
    if after["estimated_f1"] is not None:  # the monitor records how far its own estimate was off
        assert after["estimate_error"] == pytest.approx(expected - after["estimated_f1"])
    # the rest arrive as the class names, by request id and row; one request id is unknown
    rest = logged.iloc[400:].assign(label=lambda f: np.where(f["label"] == 1, "late", "on time"))
    unknown = pd.DataFrame({"request_id": ["not-a-request"], "row": [0], "label": ["late"]})
    pd.concat([rest[["request_id", "row", "label"]], unknown]).to_csv(tmp_path / "rest.csv", index=False)
    result = cli("labels", str(tmp_path / "rest.csv"))
    assert "400 label(s) attached" in result.output and "1 name no logged prediction: 'not-a-request'" in result.output
    [full] = store.passes_list()
    assert full["labelled_rows"] == 800 and full["realized_f1"] == pytest.approx(f1_score(logged["label"], logged["score"] >= 0.5))


def test_labels_given_as_the_target_column_are_binarised_like_the_dataset(project, tmp_path):
    log = os.environ["DRIFTGATE_MONITOR_LOG"]
    logged = fill(project, log, "2013-03", 300)
    minutes = np.where(logged["label"] == 1, 40, -5)  # arr_delay: late at >= 15 minutes
    logged.assign(arr_delay=minutes)[["request_id", "row", "arr_delay"]].to_csv(tmp_path / "delays.csv", index=False)
    assert cli("labels", str(tmp_path / "delays.csv")).exit_code == 0
    stored = PredictionLog(log).labelled(1, 300).sort_values("id")
    assert stored["label"].tolist() == logged["label"].astype(int).tolist()


@pytest.mark.parametrize(("table", "message"), [
    ({"request_id": ["a"], "outcome": [1]}, "no column 'label' (0/1 or a class name) or 'arr_delay'"),
    ({"flight": ["a"], "label": [1]}, "no column 'request_id' (and 'row') naming the prediction"),
    ({"request_id": ["a"], "label": ["maybe"]}, "not 0/1 or a class name: 'maybe'"),
    ({"request_id": ["a"], "row": [-1], "label": [1]}, "column 'row' must hold whole numbers"),
])
def test_a_bad_labels_file_is_refused_with_the_column_named_and_exit_2(project, tmp_path, table, message):
    pd.DataFrame(table).to_csv(tmp_path / "labels.csv", index=False)
    result = cli("labels", str(tmp_path / "labels.csv"))
    assert result.exit_code == 2 and message in result.output and "labels.csv" in result.output
    assert "Traceback" not in result.output


def test_monitor_without_a_model_card_says_what_to_run(project, tmp_path):
    result = cli("monitor", "--once", "--model", str(tmp_path / "none.joblib"))
    assert result.exit_code == 2 and "model card not found" in result.output and "Traceback" not in result.output


def test_monitor_refuses_once_with_every_and_a_bad_interval(project):
    assert "not both" in cli("monitor", "--once", "--every", "5m").output
    result = cli("monitor", "--every", "soon")
    assert result.exit_code == 2 and "--every" in result.output and "5m" in result.output
