"""One drift path: `driftgate drift` on every engine and the demo's Batch tab give one batch the
same verdict table, in parity and calibrated mode, with a per-column override and an ignored
column, because they all call `drift.detect`."""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from driftgate.cli.main import app
from driftgate.config import Paths, load_params
from driftgate.reporting.render import drift_rows
from driftgate.results import DriftResult
from tests.conftest import edit_params, make_tiny_frame

OVERRIDE = {"x2": {"test": "psi", "threshold": 0.05}}


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _project(tiny_project: Path, mode: str) -> Path:
    edit_params(tiny_project / "params.yaml", **{"drift.mode": mode, "drift.tests": OVERRIDE, "drift.ignore": ["x1"],
                                                  "drift.draws": 100})
    invoke("validate")
    invoke("train")
    batch = make_tiny_frame(rows=1500, seed=5)
    batch["x2"] = np.clip(batch["x2"] * 0.8 + 1.5, 0, 10)  # x2 drifts; x1 and plan do not
    batch.drop(columns=["churned"]).to_csv(tiny_project / "batch.csv", index=False)
    return tiny_project / "batch.csv"


def _table(result: DriftResult) -> dict[str, tuple]:
    """The verdict table as the reports show it, without the score digits (engines may differ
    in them within the chunked engine's error bound, checked separately)."""
    return {row[0]: (row[1], row[2], row[4], row[5]) for row in drift_rows(result, markup=False)}


def _cli_tables(tmp: Path, batch: Path, engines: tuple[str, ...]) -> dict[str, DriftResult]:
    from driftgate.cli.drift import pipeline_frames

    invoke("drift", "--current", str(batch), "--out", str(tmp / "pandas"))
    results = {"pipeline": DriftResult.read(tmp / "pandas" / "drift.json")}
    ref, cur, _, _ = pipeline_frames(Path("params.yaml"), str(batch), Paths().model, Paths().dataset)
    ref.to_parquet(tmp / "reference.parquet")
    cur.to_parquet(tmp / "current.parquet")
    for engine in engines:
        invoke("drift", "--reference", str(tmp / "reference.parquet"), "--current", str(tmp / "current.parquet"),
               "--engine", engine, "--out", str(tmp / engine))
        results[engine] = DriftResult.read(tmp / engine / "drift.json")
    return results


def _batch_tab(batch: Path) -> DriftResult:
    """What the Batch tab computes for this upload (the function its handler calls)."""
    from driftgate.io import read_table
    from driftgate.serving.batch import batch_drift, reference_rows
    from driftgate.serving.model import ServedModel

    params = load_params("params.yaml")
    model = ServedModel.load(Paths().model, params)
    result, gates, _, _ = batch_drift(params, model, reference_rows(Paths(), params), read_table(batch), batch.name)
    assert [g.gate for g in gates.gates] == ["drift share"] and gates.gates[0].threshold == params.gates.drift_share_max
    return result


def _assert_same(results: dict[str, DriftResult]) -> None:
    first_name, first = next(iter(results.items()))
    for name, other in results.items():
        assert _table(other) == _table(first), f"{name} vs {first_name}"
        assert (other.drift_share, other.dataset_drift, other.ignored_columns) == (first.drift_share, first.dataset_drift, ["x1"])
        for column, col in other.columns.items():
            bound = col.score_error_bound + first.columns[column].score_error_bound + 1e-9
            # a non-default test on a numeric column reads the sketch's histogram: close, not exact
            relative = 1e-2 if column in OVERRIDE and name in ("chunked", "dask") else 0
            assert col.score == pytest.approx(first.columns[column].score, abs=bound, rel=relative, nan_ok=True), (name, column)


@pytest.mark.parametrize("mode", ["parity", "calibrated"])
def test_cli_engines_and_the_batch_tab_give_one_verdict_table(tiny_project, tmp_path, mode):
    batch = _project(tiny_project, mode)
    results = {**_cli_tables(tmp_path, batch, ("pandas", "chunked")), "batch tab": _batch_tab(batch)}
    _assert_same(results)
    first = results["pipeline"]
    assert first.columns["x2"].test == "psi" and first.columns["x2"].threshold == 0.05 and first.columns["x2"].drift
    assert first.columns["x1"].ignored and "x1" not in first.drifted_columns
    assert {"prediction", "predicted_label"} <= set(first.columns)  # prediction drift on every path
    assert first.mode == mode


@pytest.mark.slow
def test_the_dask_engine_gives_the_same_verdict_table(tiny_project, tmp_path):
    batch = _project(tiny_project, "calibrated")
    _assert_same({**_cli_tables(tmp_path, batch, ("chunked", "dask")), "batch tab": _batch_tab(batch)})
