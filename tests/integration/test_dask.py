"""The Dask engine on a real LocalCluster bound to 127.0.0.1: the same summaries, merged, give
the same results as the single-machine chunked engine."""

import json

import numpy as np
import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from driftgate.cli.main import app
from tests.conftest import make_tiny_frame

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    reference = make_tiny_frame(rows=6000, seed=1).drop(columns=["when"])
    current = make_tiny_frame(rows=5000, seed=2).drop(columns=["when"]).assign(x1=lambda f: f.x1 + rng.normal(0.3, 0.1, len(f)))
    reference.to_parquet(tmp_path / "reference.parquet", row_group_size=1000)  # six parts
    parts = tmp_path / "current"
    parts.mkdir()
    for i in range(4):
        current.iloc[i::4].to_parquet(parts / f"part-{i}.parquet", row_group_size=700)
    return tmp_path


def drift(*args):
    result = runner.invoke(app, ["drift", "--reference", "reference.parquet", "--current", "current", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_dask_on_a_scheduler_address_matches_the_chunked_engine(files):
    drift("--engine", "chunked", "--out", "chunked")
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        output = drift("--engine", "dask", "--scheduler", cluster.scheduler_address, "--out", "dask").output
    assert "connecting to the Dask scheduler" in output
    local, distributed = (json.loads((files / d / "drift.json").read_text()) for d in ("chunked", "dask"))
    assert distributed["engine"] == "dask" and distributed["current_rows"] == local["current_rows"] == 5000
    assert distributed["drifted_columns"] == local["drifted_columns"] and "x1" in local["drifted_columns"]
    for name, column in local["columns"].items():
        assert distributed["columns"][name]["score"] == pytest.approx(column["score"], abs=1e-12), name
        assert distributed["columns"][name]["drift"] == column["drift"], name


def test_dask_without_a_scheduler_starts_a_local_cluster(files):
    output = drift("--engine", "dask", "--out", "dask").output
    assert "starting a local Dask cluster" in output
    assert json.loads((files / "dask" / "drift.json").read_text())["engine"] == "dask"


def test_unreachable_scheduler_is_a_clear_error(files):
    result = runner.invoke(app, ["drift", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", "--reference",
                                 "reference.parquet", "--current", "current"], catch_exceptions=False)
    assert result.exit_code == 2 and "cannot reach tcp://127.0.0.1:9" in result.output
