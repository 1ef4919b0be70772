"""The real pipeline in a temp copy of the project: dvc repro, the gate's exit codes, batches,
bad data, and the DVC remote round trip."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_project, edit_params, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, raw_data_dir) -> Path:
    """A copy of the project after one full `pipelines/reproduce.sh` (the script `make run` calls)."""
    dest = copy_project(tmp_path_factory.mktemp("project"))
    remote = tmp_path_factory.mktemp("remote")
    run(["dvc", "remote", "add", "-f", "-d", "local", str(remote)], dest, check=True)
    result = run(["bash", "pipelines/reproduce.sh"], dest)
    assert result.returncode == 0, result.stdout + result.stderr
    dest.joinpath("first_run.log").write_text(result.stdout + result.stderr)
    return dest


def test_full_run_passes_every_gate_on_the_default_batch(project):
    log = (project / "first_run.log").read_text()
    # A clone has the small outputs (git) but not the dataset and model (DVC cache): those are
    # rebuilt, identical, so DVC may skip the stages after them.
    for stage in ("validate", "train", "drift-report"):
        assert f"Running stage '{stage}'" in log
    assert run(["dvc", "status", "--json"], project, check=True).stdout.strip() == "{}"
    gate = json.loads((project / "reports" / "gate.json").read_text())
    assert gate["passed"] is True
    assert {g["gate"] for g in gate["gates"]} == {"f1 (holdout)", "f1 (current 2013-04)", "drift share"}
    assert "All 3 gates passed" in log and "reports/drift/drift.md" in log


def test_outputs_are_complete_and_consistent(project):
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"holdout", "current"}
    for split in metrics.values():
        assert {"f1", "precision", "recall", "roc_auc", "pr_auc", "confusion_matrix"} <= set(split)
    drift = json.loads((project / "reports" / "drift" / "drift.json").read_text())
    assert drift["current_window"] == "2013-04" and "prediction" in drift["columns"]
    card = json.loads((project / "artifacts" / "model.json").read_text())
    assert len(card["model_sha256"]) == 64 and card["libraries"]["scikit-learn"]
    assert card["data"]["raw_data_dvc_md5"] == yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    for png in ("plots/roc_pr.png", "plots/confusion_matrix.png", "drift/drift.png"):
        assert (project / "reports" / png).read_bytes()[:4] == b"\x89PNG"
    assert "![Reference vs current for the most drifted columns](drift.png)" in (project / "reports" / "drift" / "drift.md").read_text()


def test_evidently_report_is_sampled_self_contained_and_says_so(project):
    page = (project / "reports" / "drift" / "evidently.html").read_text()
    assert "Sampled report: 2,000 of 77,809 reference rows and 2,000 of 27,587 current rows" in page
    assert "Dataset Drift" in page and "wind_gust" in page
    assert '<script src="http' not in page  # opens offline, as a CI artifact


def test_dvc_metrics_and_plots_are_declared(project):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project, check=True).stdout)
    files = next(iter(shown.values()))["data"]
    assert "reports/metrics.json" in files and "reports/drift/drift.json" in files
    plots = run(["dvc", "plots", "show", "--json", "--split"], project, check=True).stdout
    assert "ROC" in plots and "Confusion-Matrix" in plots


def test_rerun_is_a_no_op_that_still_prints_the_verdicts(project):
    result = run(["bash", "pipelines/reproduce.sh"], project)
    assert result.returncode == 0
    assert "Running stage" not in result.stdout
    assert "All 3 gates passed" in result.stdout


def test_breached_threshold_fails_the_pipeline_with_exit_1(project):
    params = project / "params.yaml"
    original = params.read_text()
    try:
        edit_params(params, **{"gates.f1_min": 0.6})
        result = run(["bash", "pipelines/reproduce.sh"], project)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Running stage 'gate'" in result.stdout and "Running stage 'train'" not in result.stdout
        assert "f1 (holdout)" in result.stdout and "below the minimum" in result.stdout
        plain = run(["dvc", "repro"], project)
        assert plain.returncode != 0  # plain `dvc repro` goes red too
    finally:
        params.write_text(original)
    assert run(["bash", "pipelines/reproduce.sh"], project).returncode == 0


def test_a_late_summer_batch_fails_the_f1_and_drift_gates(project):
    result = run(["bash", "pipelines/check_batch.sh", "2013-09"], project)
    assert result.returncode == 1, result.stdout + result.stderr
    gate = json.loads((project / "reports" / "batches" / "2013-09" / "gate.json").read_text())
    failed = {g["gate"] for g in gate["gates"] if g["status"] == "FAIL"}
    assert failed == {"f1 (current 2013-09)", "drift share"}


def test_bad_data_stops_before_the_gates_with_exit_2_and_keeps_old_outputs(project):
    dataset = project / "artifacts" / "dataset.parquet"
    before = dataset.read_bytes()
    params = project / "params.yaml"
    original = params.read_text()
    try:
        edit_params(params, **{"data.features.categorical": ["carrier", "origin", "dest", "airline"]})
        result = run(["bash", "pipelines/reproduce.sh"], project)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "data/flights.csv" in result.stderr and "'airline'" in result.stderr and "data.features" in result.stderr
        assert "stopped before the gates" in result.stderr
    finally:
        params.write_text(original)
    # DVC clears a stage's outputs before running it; ours never leaves a partial file, and the
    # last good output comes back from the DVC cache.
    assert not dataset.exists() or dataset.read_bytes() == before
    assert not list((project / "artifacts").glob(".*.tmp"))
    run(["dvc", "checkout"], project, check=True)
    assert dataset.read_bytes() == before
    assert run(["bash", "pipelines/reproduce.sh"], project).returncode == 0


def test_changed_raw_data_is_never_overwritten(project, tmp_path):
    flights = project / "data" / "flights.csv"
    backup = tmp_path / "flights.csv"
    shutil.copy2(flights, backup)
    try:
        with flights.open("a") as handle:
            handle.write("2013,12,31,,2359,,,,,UA,1,N1,EWR,LAX,,2454,23,59,2013-12-31T23:00:00Z\n")
        edited = flights.read_bytes()
        result = run(["bash", "pipelines/reproduce.sh"], project)
        assert result.returncode == 2
        assert "differs from data.dvc" in result.stderr and "dvc add data" in result.stderr
        assert flights.read_bytes() == edited
    finally:
        shutil.copy2(backup, flights)


def test_dvc_push_and_pull_round_trip(project, tmp_path):
    assert run(["dvc", "push"], project).returncode == 0
    run("git add -A && git -c user.email=t@t -c user.name=t commit -qm 'pipeline outputs'", project, check=True)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path, check=True)
    url = run(["dvc", "remote", "list"], project, check=True).stdout.split()[1]
    run(["dvc", "remote", "add", "-f", "-d", "local", url], clone, check=True)
    pulled = run(["dvc", "pull"], clone)
    assert pulled.returncode == 0, pulled.stderr
    assert (clone / "data" / "flights.csv").read_bytes() == (project / "data" / "flights.csv").read_bytes()
    assert (clone / "artifacts" / "model.joblib").read_bytes() == (project / "artifacts" / "model.joblib").read_bytes()
    status = run(["dvc", "status", "--json"], clone, check=True)
    assert json.loads(status.stdout) == {}


def test_fresh_clone_with_empty_remote_rebuilds_data_and_checks_its_hash(tmp_path, raw_data_dir):
    dest = copy_project(tmp_path, with_data=False)
    run(["dvc", "remote", "add", "-f", "-d", "local", str(tmp_path / "empty-remote")], dest, check=True)
    result = run(["driftgate", "data"], dest)
    assert result.returncode == 0, result.stderr
    assert "hash matches data.dvc" in result.stdout and "pushed to the DVC remote" in result.stdout
    assert any((tmp_path / "empty-remote").rglob("*")), "the remote now holds a copy"
    assert "matches data.dvc" in run(["driftgate", "data"], dest, check=True).stdout


def test_hash_mismatch_with_data_dvc_is_a_clear_error(tmp_path, raw_data_dir):
    dest = copy_project(tmp_path, with_data=False)
    run(["dvc", "remote", "add", "-f", "-d", "local", str(tmp_path / "empty-remote")], dest, check=True)
    dvc_file = dest / "data.dvc"
    tracked = dvc_file.read_text()
    dvc_file.write_text(tracked.replace(yaml.safe_load(tracked)["outs"][0]["md5"], "0" * 32 + ".dir"))
    result = run(["driftgate", "data"], dest)
    assert result.returncode == 2
    assert "does not match data.dvc" in result.stderr and "dvc add data" in result.stderr
    assert "0" * 32 in dvc_file.read_text(), "data.dvc is left as it was"
