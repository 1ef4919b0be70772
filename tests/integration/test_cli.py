"""The CLI on a team's own small CSV, configured by params.yaml only; and every kind of bad input.

Each bad input must give one message naming the file and the column or key, exit code 2, and
leave no half-written output behind.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from driftgate.cli.main import app
from tests.conftest import edit_params, make_tiny_frame

runner = CliRunner()

STAGES = ["validate", "train", "evaluate", "drift"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def run_stages(*stages: str):
    for stage in stages:
        result = invoke(stage)
        assert result.exit_code == 0, f"{stage} failed:\n{result.output}"


def rewrite_data(project: Path, change) -> None:
    path = project / "data" / "customers.csv"
    frame = pd.read_csv(path)
    change(frame).to_csv(path, index=False)


def registered_commands() -> list[str]:
    """Every command the CLI has, read from the Typer app itself, so a new one is covered too."""
    import typer.main

    return sorted(typer.main.get_command(app).commands)


def test_every_command_has_help():
    listing = invoke("--help").output
    commands = registered_commands()
    assert {"data", "validate", "train", "evaluate", "drift", "drift-report", "gate", "report", "alert", "serve",
            "batch-folder"} <= set(commands)
    for command in commands:
        assert command in listing, f"{command} is missing from driftgate --help"
        result = invoke(command, "--help")
        assert result.exit_code == 0, command
        summary = typer.main.get_command(app).commands[command].help or ""
        assert summary.strip() and summary.split("\n")[0].strip()[:30] in " ".join(result.output.split()), command
        assert "--help" in result.output


def test_own_csv_runs_end_to_end_with_inferred_features(tiny_project):
    run_stages(*STAGES)
    card = yaml.safe_load((tiny_project / "artifacts" / "model.json").read_text())
    assert card["features"] == {"numeric": ["x1", "x2"], "categorical": ["plan"]}  # customer_id excluded
    result = invoke("gate")
    assert result.exit_code == 0, result.output
    assert "All 3 gates passed" in result.output
    for output in ["artifacts/dataset.parquet", "reports/metrics.json", "reports/drift/drift.json",
                   "reports/drift/drift.md", "reports/gate.json", "reports/gate.md", "reports/plots/roc_pr.png"]:
        assert (tiny_project / output).is_file(), output


def test_gate_exits_1_with_the_failing_gate_named(tiny_project):
    run_stages(*STAGES)
    edit_params(tiny_project / "params.yaml", **{"gates.f1_min": 0.99})
    result = invoke("gate")
    assert result.exit_code == 1
    assert "f1 (holdout)" in result.output and "below the minimum" in result.output
    assert yaml.safe_load((tiny_project / "reports" / "gate.json").read_text())["passed"] is False


def test_gate_fails_closed_when_metrics_are_missing(tiny_project):
    result = invoke("gate")
    assert result.exit_code == 1
    assert "metrics file not found" in result.output and "fails closed" in result.output


def test_gate_fails_closed_on_a_nan_metric(tiny_project):
    run_stages(*STAGES)
    metrics = tiny_project / "reports" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"f1": 0.', '"f1": NaN, "was": 0.', 1))
    result = invoke("gate")
    assert result.exit_code == 1 and "holdout F1 is NaN: fails closed" in result.output


def test_bad_params_exit_2_naming_the_key(tiny_project):
    edit_params(tiny_project / "params.yaml", **{"gates.f1_min": "high"})
    for command in [*STAGES, "gate"]:
        result = invoke(command)
        assert result.exit_code == 2, command
        assert "gates.f1_min" in result.output


def assert_bad_data(project: Path, *expected: str) -> None:
    result = invoke("validate")
    assert result.exit_code == 2, result.output
    for text in expected:
        assert text in result.output, f"{text!r} not in:\n{result.output}"
    assert not (project / "artifacts" / "dataset.parquet").exists()
    assert not list((project / "artifacts").glob(".*tmp")) if (project / "artifacts").exists() else True


def test_missing_data_file(tiny_project):
    (tiny_project / "data" / "customers.csv").unlink()
    assert_bad_data(tiny_project, "data/customers.csv", "file not found")


def test_empty_data_file(tiny_project):
    (tiny_project / "data" / "customers.csv").write_text("")
    assert_bad_data(tiny_project, "data/customers.csv", "file is empty")


def test_missing_feature_column(tiny_project):
    edit_params(tiny_project / "params.yaml", **{"data.features": {"numeric": ["x1", "x2", "tenure"], "categorical": ["plan"]}})
    assert_bad_data(tiny_project, "data/customers.csv", "'tenure'", "missing", "data.features")


def test_missing_target_column(tiny_project):
    rewrite_data(tiny_project, lambda f: f.drop(columns=["churned"]))
    assert_bad_data(tiny_project, "'churned'", "data.target.column")


def test_wrong_dtype_in_a_numeric_column(tiny_project):
    def corrupt(frame):
        frame["x2"] = frame["x2"].astype(object)
        frame.loc[5, "x2"] = "ten"
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'x2'", "numeric type", "ten")


def test_infinite_values(tiny_project):
    def corrupt(frame):
        frame.loc[[3, 9], "x1"] = np.inf
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'x1'", "check `finite` failed for 2 row(s)")


def test_too_many_missing_values(tiny_project):
    def corrupt(frame):
        frame.loc[: len(frame) // 3, "x1"] = np.nan
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'x1'", "missing share <= 5%", "33.4% missing", "validation.max_null_share")


def test_value_out_of_range(tiny_project):
    def corrupt(frame):
        frame.loc[7, "x2"] = 42.0
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'x2'", "in_range(0.0, 10.0)", "42.0", "validation.ranges.x2")


def test_unknown_category(tiny_project):
    def corrupt(frame):
        frame.loc[11, "plan"] = "enterprise"
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'plan'", "isin", "enterprise", "validation.allowed.plan")


def test_no_positive_labels(tiny_project):
    rewrite_data(tiny_project, lambda f: f.assign(churned=0))
    assert_bad_data(tiny_project, "churned", "all 3000 labels are negative")


def test_label_that_is_not_binary(tiny_project):
    rewrite_data(tiny_project, lambda f: f.assign(churned=np.where(f.churned == 1, "yes", "no")))
    assert_bad_data(tiny_project, "churned", "expected 0/1", "positive_if_at_least")


def test_unparseable_time(tiny_project):
    def corrupt(frame):
        frame.loc[2, "when"] = "yesterday"
        return frame

    rewrite_data(tiny_project, corrupt)
    assert_bad_data(tiny_project, "column 'when'", "yesterday")


def test_a_failed_validation_keeps_the_previous_dataset_intact(tiny_project):
    run_stages("validate")
    dataset = tiny_project / "artifacts" / "dataset.parquet"
    before = dataset.read_bytes()
    rewrite_data(tiny_project, lambda f: f.assign(churned=0))
    assert invoke("validate").exit_code == 2
    assert dataset.read_bytes() == before


def test_window_outside_the_data_is_named(tiny_project):
    run_stages("validate", "train")
    result = invoke("evaluate", "--current", "2030-01")
    assert result.exit_code == 2
    assert "windows.current" in result.output and "2030-01 has no rows" in result.output
    assert not (tiny_project / "reports" / "metrics.json").exists()


def test_current_batch_from_a_separate_file_without_labels(tiny_project):
    run_stages("validate", "train")
    make_tiny_frame(rows=500, seed=3).drop(columns=["churned"]).to_parquet(tiny_project / "batch.parquet")
    assert invoke("evaluate", "--current", "batch.parquet").exit_code == 0
    assert invoke("drift", "--current", "batch.parquet").exit_code == 0
    result = invoke("gate")
    assert result.exit_code == 0, result.output
    assert "SKIP" in result.output and "not computed: the current batch (batch.parquet) has no labels" in result.output
    gate = json.loads((tiny_project / "reports" / "gate.json").read_text())
    skipped = next(g for g in gate["gates"] if g["gate"] == "f1 (current)")
    assert skipped["status"] == "SKIP" and gate["passed"] is True


def test_tampered_model_is_refused(tiny_project):
    run_stages("validate", "train")
    model = tiny_project / "artifacts" / "model.joblib"
    model.write_bytes(model.read_bytes() + b"\0")
    result = invoke("evaluate")
    assert result.exit_code == 2 and "does not match the model card" in result.output


# --------------------------------------------------------------------------- drift on two files


@pytest.fixture
def two_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: drift's defaults apply
    reference = make_tiny_frame(rows=2000, seed=1).drop(columns=["when"])
    current = make_tiny_frame(rows=1500, seed=2).drop(columns=["when"])
    reference.to_parquet(tmp_path / "reference.parquet")
    return tmp_path, reference, current


def test_drift_between_two_files_without_drift_exits_0(two_files):
    folder, _, current = two_files
    current.to_csv(folder / "current.csv", index=False)
    result = invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--target", "churned",
                    "--out", "out", "--fail-on-drift")
    assert result.exit_code == 0, result.output
    drift = yaml.safe_load((folder / "out" / "drift.json").read_text())
    assert drift["dataset_drift"] is False and drift["target"] == "churned"
    assert set(drift["columns"]) == {"x1", "x2", "plan", "churned", "customer_id"}
    assert drift["columns"]["plan"]["type"] == "categorical" and drift["columns"]["x1"]["test"] == "wasserstein"
    assert (folder / "out" / "drift.md").is_file() and not (folder / "out" / "drift.png").exists()  # two files: no plot unless asked
    assert invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--out", "plotted", "--plot").exit_code == 0
    assert (folder / "plotted" / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert "![Reference vs current" in (folder / "plotted" / "drift.md").read_text()


def test_fail_on_drift_exits_1_when_the_dataset_drifts(two_files):
    folder, _, current = two_files
    current.assign(x1=current.x1 + 3, x2=current.x2 / 3, plan="pro", customer_id=current.customer_id + 10**6).to_csv(
        folder / "current.csv", index=False)
    result = invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--fail-on-drift")
    assert result.exit_code == 1, result.output
    assert "dataset drift" in result.output
    assert invoke("drift", "--reference", "reference.parquet", "--current", "current.csv").exit_code == 0


def test_drift_file_errors_exit_2_with_the_reason(two_files):
    folder, _, current = two_files
    missing = invoke("drift", "--reference", "reference.parquet", "--current", "nope.csv")
    assert missing.exit_code == 2 and "nope.csv: file not found" in missing.output

    pd.DataFrame({"a": [1, 2]}).to_csv(folder / "other.csv", index=False)
    disjoint = invoke("drift", "--reference", "reference.parquet", "--current", "other.csv")
    assert disjoint.exit_code == 2 and "no column in common" in disjoint.output

    current.assign(x1=["high"] * len(current)).to_csv(folder / "typed.csv", index=False)
    mismatch = invoke("drift", "--reference", "reference.parquet", "--current", "typed.csv")
    assert mismatch.exit_code == 2 and "column 'x1' is categorical here but numeric in reference.parquet" in mismatch.output

    current.head(0).to_csv(folder / "empty.csv", index=False)
    empty = invoke("drift", "--reference", "reference.parquet", "--current", "empty.csv")
    assert empty.exit_code == 2 and "no rows" in empty.output

    current.to_csv(folder / "current.csv", index=False)
    unknown = invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--prediction", "score")
    assert unknown.exit_code == 2 and "--prediction" in unknown.output and "'score'" in unknown.output
    no_current = invoke("drift", "--reference", "reference.parquet")
    assert no_current.exit_code == 2 and "--current" in no_current.output
    assert not (folder / "reports").exists(), "nothing written on bad input"


def test_chunked_engine_matches_the_exact_engine_and_reuses_its_reference_summary(two_files):
    folder, reference, current = two_files
    current = current.assign(x1=current.x1 + 0.5)
    current.to_parquet(folder / "current.parquet", row_group_size=400)  # several row groups
    assert invoke("drift", "--reference", "reference.parquet", "--current", "current.parquet", "--out", "exact").exit_code == 0
    first = invoke("drift", "--engine", "chunked", "--reference", "reference.parquet", "--current", "current.parquet", "--out", "chunked")
    assert first.exit_code == 0, first.output
    summary = folder / "chunked" / "reference.summary.npz"
    assert summary.is_file() and "pass it as --reference next time" in first.output
    # not a terminal (as in a CI log): progress comes as plain lines, the last one at 100%
    assert "scanning reference: " in first.output and f"{len(current):,} / {len(current):,} rows (100%" in first.output
    again = invoke("drift", "--engine", "chunked", "--reference", str(summary), "--current", "current.parquet", "--out", "again")
    assert again.exit_code == 0, again.output
    exact, chunked, reused = (yaml.safe_load((folder / d / "drift.json").read_text()) for d in ("exact", "chunked", "again"))
    assert chunked["columns"] == reused["columns"]
    for name, col in exact["columns"].items():
        other = chunked["columns"][name]
        assert other["test"] == col["test"], name
        assert abs(other["score"] - col["score"]) <= other["score_error_bound"] + 1e-12, name
        if abs(col["score"] - col["threshold"]) > other["score_error_bound"]:
            assert other["drift"] == col["drift"], name
    assert chunked["columns"]["x1"]["drift"] is True and chunked["engine"] == "chunked"


def test_chunked_engine_reads_a_partitioned_folder_and_csv(two_files):
    folder, reference, current = two_files
    parts = folder / "current_parts"
    parts.mkdir()
    for i, piece in enumerate(current.iloc[i::3] for i in range(3)):
        piece.to_parquet(parts / f"part-{i}.parquet")
    current.to_csv(folder / "current.csv", index=False)
    from_parts = invoke("drift", "--engine", "chunked", "--reference", "reference.parquet", "--current", str(parts), "--out", "p")
    from_csv = invoke("drift", "--engine", "chunked", "--reference", "reference.parquet", "--current", "current.csv", "--out", "c")
    assert from_parts.exit_code == 0 and from_csv.exit_code == 0, from_parts.output + from_csv.output
    parts_result = yaml.safe_load((folder / "p" / "drift.json").read_text())
    csv_result = yaml.safe_load((folder / "c" / "drift.json").read_text())
    assert parts_result["current_rows"] == csv_result["current_rows"] == len(current)
    assert parts_result["columns"]["plan"] == csv_result["columns"]["plan"]


def test_chunked_engine_bad_input(two_files):
    folder, _, current = two_files
    current.assign(x1="high").to_parquet(folder / "typed.parquet")
    mismatch = invoke("drift", "--engine", "chunked", "--reference", "reference.parquet", "--current", "typed.parquet")
    assert mismatch.exit_code == 2 and "column 'x1' is categorical here but numeric in reference.parquet" in mismatch.output
    no_reference = invoke("drift", "--engine", "chunked", "--current", "typed.parquet")
    assert no_reference.exit_code == 2 and "--engine chunked" in no_reference.output
    (folder / "broken.summary.npz").write_bytes(b"not a summary")
    broken = invoke("drift", "--engine", "chunked", "--reference", "broken.summary.npz", "--current", "typed.parquet")
    assert broken.exit_code == 2 and "not a driftgate summary" in broken.output


def test_calibrated_mode_from_the_command_line(two_files):
    folder, _, current = two_files
    current.to_csv(folder / "current.csv", index=False)
    result = invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--mode", "calibrated", "--out", "cal")
    assert result.exit_code == 0, result.output
    drift = yaml.safe_load((folder / "cal" / "drift.json").read_text())
    assert drift["mode"] == "calibrated" and all(0 < c["p_value"] <= 1 for c in drift["columns"].values())
    assert "Calibrated mode" in (folder / "cal" / "drift.md").read_text()
    chunked = invoke("drift", "--engine", "chunked", "--mode", "calibrated", "--reference", "reference.parquet",
                     "--current", "current.csv", "--out", "cal_chunked")
    assert chunked.exit_code == 0, chunked.output
    from_sketches = yaml.safe_load((folder / "cal_chunked" / "drift.json").read_text())
    assert from_sketches["mode"] == "calibrated" and from_sketches["engine"] == "chunked"
    for name, col in drift["columns"].items():  # the same tests, and the same verdicts from the sketches
        other = from_sketches["columns"][name]
        assert (other["test"], other["drift"]) == (col["test"], col["drift"]), name
        assert 0 < other["p_value"] <= 1


@pytest.mark.parametrize(("spoil", "named"), [
    (lambda f: f.assign(x1=f["x1"].where(f.index != 3, np.inf)), "x1"),
    (lambda f: f.assign(x2=np.nan), "x2"),
    (lambda f: f.assign(x1=f["x1"].astype(object).where(f.index != 5, "abc")), "x1"),
], ids=["infinity", "empty column", "text in a number column"])
def test_drift_between_two_files_refuses_a_spoilt_current_file(two_files, spoil, named):
    folder, _, current = two_files
    spoil(current).to_csv(folder / "current.csv", index=False)
    result = invoke("drift", "--reference", "reference.parquet", "--current", "current.csv", "--out", "out")
    assert result.exit_code == 2, result.output
    assert "current.csv" in result.output and f"'{named}'" in result.output
    assert "Traceback" not in result.output and not (folder / "out" / "drift.json").exists()


def test_a_feature_with_no_value_in_the_training_window_stops_training_with_its_name(tiny_project):
    frame = make_tiny_frame()
    frame.loc[:1500, "plan"] = None  # empty throughout the training window (its first 1,440 hours), not the file
    frame.to_csv(tiny_project / "data" / "customers.csv", index=False)
    edit_params(tiny_project / "params.yaml", **{"validation.null_share": {"plan": 0.9}})
    assert invoke("validate").exit_code == 0
    result = invoke("train")
    assert result.exit_code == 2 and "'plan'" in result.output and "training rows" in result.output
    assert "Traceback" not in result.output and not (tiny_project / "artifacts" / "model.joblib").exists()
