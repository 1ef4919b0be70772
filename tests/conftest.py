"""Shared fixtures: the real bundled data, a model trained on it, and a tiny project on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def params():
    from driftgate.config import load_params

    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def raw_data_dir(tmp_path_factory) -> Path:
    """The real raw data in the repo's data/, fetched once (checked against data.dvc)."""
    from driftgate.data.fetch import ensure_raw_data

    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every xdist worker
    with FileLock(str(shared / "driftgate-data.lock")):
        ensure_raw_data(ROOT, log=lambda _: None)
    return ROOT / "data"


@pytest.fixture(scope="session")
def prepared(params, raw_data_dir, tmp_path_factory):
    """The real modelling frame (flights joined with weather) and its feature schema."""
    from driftgate.data.dataset import load_raw, prepare_frame

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return prepare_frame(load_raw(params), params, "data")
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def trained(params, prepared):
    """The default model trained on the real training window, with its holdout."""
    from driftgate.data.dataset import select_window, time_split
    from driftgate.model import train

    frame, schema = prepared
    fit_rows, holdout = time_split(select_window(frame, params.windows.train, "train"), params.windows.holdout_fraction)
    return train.fit(fit_rows, params, schema), schema, holdout


# --------------------------------------------------------------------------- a tiny project


def make_tiny_frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Synthetic churn-like data: two numeric features, one categorical, a time column, a 0/1 label."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, rows)
    x2 = rng.uniform(0, 10, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    logit = 1.5 * x1 + 0.2 * x2 - 1.5 + (plan == "pro") * 0.5
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    when = pd.date_range("2024-01-01", periods=rows, freq="h")
    return pd.DataFrame({"when": when.astype(str), "x1": x1, "x2": x2, "plan": plan, "churned": label, "customer_id": np.arange(rows)})


TINY_PARAMS = {
    "data": {
        "path": "data/customers.csv",
        "time_column": "when",
        "target": {"column": "churned"},
        "features": {"exclude": ["customer_id"]},
    },
    "validation": {"min_rows": 100, "ranges": {"x2": [0, 10]}, "allowed": {"plan": ["basic", "pro", "team"]}},
    "windows": {"train": "2024-01-01..2024-03-01", "current": "2024-03-01..2024-05-01"},
    "model": {"max_iter": 30},
    "gates": {"f1_min": 0.3, "drift_share_max": 0.9},
}


@pytest.fixture
def tiny_project(tmp_path, monkeypatch) -> Path:
    """A team's own small project: a CSV and a params.yaml that points at it. cwd is set to it."""
    (tmp_path / "data").mkdir()
    make_tiny_frame().to_csv(tmp_path / "data" / "customers.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def set_dotted(params: dict, **changes) -> dict:
    """Set dotted keys in a params mapping in place (`...` removes a key); returns it."""
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return params


def edit_params(path: Path, **changes) -> None:
    """Set dotted keys in a params.yaml, e.g. edit_params(p, **{"gates.f1_min": 0.9})."""
    path.write_text(yaml.safe_dump(set_dotted(yaml.safe_load(path.read_text()), **changes), sort_keys=False))


def gradio_call(client, api_name: str, data: list) -> list:
    """The outputs of one call of a Gradio event, through the app's own HTTP API (a TestClient)."""
    import json

    started = client.post(f"/gradio_api/call/{api_name}", json={"data": data})
    assert started.status_code == 200, started.text
    stream = client.get(f"/gradio_api/call/{api_name}/{started.json()['event_id']}").text
    event, payload = [line for line in stream.splitlines() if line][-2:]
    assert event == "event: complete", stream
    return json.loads(payload.removeprefix("data: "))


def run(cmd: list[str] | str, cwd: Path, check: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command with the test venv's tools first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "COLUMNS": "200"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                            shell=isinstance(cmd, str))
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def driftgate_server(args: list[str], cwd: Path, output: Path, timeout: float = 180) -> Iterator[str]:
    """`driftgate serve ARGS --host 127.0.0.1 --port FREE` started in `cwd`, its output in `output`:
    yields its URL once /health answers (the server's output in the failure if it dies or hangs),
    and stops it, by its PID, afterwards."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(output, "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([str(BIN / "driftgate"), "serve", *args, "--host", "127.0.0.1", "--port", str(port)], cwd=cwd,
                                   env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, Path(output).read_text()[-3000:]
            assert time.monotonic() < deadline, Path(output).read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def copy_project(dest: Path, with_data: bool = True) -> Path:
    """What a fresh clone of this working tree holds (tracked and untracked, not ignored files),
    git-initialised in `dest`; plus the raw data unless `with_data` is false."""
    listed = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    if with_data:
        shutil.copytree(ROOT / "data", dest / "data")
    run("git init -q -b main && git add -A && git -c user.email=t@t -c user.name=t commit -qm init", dest, check=True)
    return dest


@pytest.fixture(scope="session")
def served_project(tmp_path_factory) -> Path:
    """A team's small project taken through validate, train, evaluate, drift and gate once per
    session: what the serving API and the demo need."""
    from typer.testing import CliRunner

    from driftgate.cli.main import app

    folder = tmp_path_factory.mktemp("served")
    (folder / "data").mkdir()
    make_tiny_frame().to_csv(folder / "data" / "customers.csv", index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for stage in ("validate", "train", "evaluate", "drift", "gate"):
            result = CliRunner().invoke(app, [stage], catch_exceptions=False)
            assert result.exit_code in (0, 1), f"{stage}: {result.output}"
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture(scope="session")
def flights_project(raw_data_dir, tmp_path_factory) -> Path:
    """The bundled flights data validated and the default model trained on it, in a folder of its
    own (params.yaml, data/, artifacts/): what the monitor needs. Built once for all workers."""
    from typer.testing import CliRunner

    from driftgate.cli.main import app

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's workers share it, never a later run
    folder = shared / "flights-project"
    with FileLock(str(shared / "flights-project.lock")):
        if not (folder / "artifacts" / "model.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            shutil.copy2(ROOT / "params.yaml", folder / "params.yaml")
            shutil.copytree(raw_data_dir, folder / "data", ignore=shutil.ignore_patterns(".gitignore", "*.dvc"))
            cwd = os.getcwd()
            os.chdir(folder)
            try:
                for stage in ("validate", "train"):
                    result = CliRunner().invoke(app, [stage], catch_exceptions=False)
                    assert result.exit_code == 0, f"{stage}: {result.output}"
            finally:
                os.chdir(cwd)
    return folder


def fill_log(project: Path, log: str, window: str, rows: int, seed: int = 0, per_request: int = 50) -> pd.DataFrame:
    """Score `rows` rows drawn at random from `window` with the project's model and log them as
    /predict would, `per_request` records a request. Returns the rows with request_id and row."""
    import json
    import uuid

    from driftgate.config import Paths, parse_window
    from driftgate.data.dataset import features_frame, select_window
    from driftgate.model import train
    from driftgate.monitoring.reference import ModelInfo
    from driftgate.store.predictions import PredictionLog

    paths = Paths(project)
    model = ModelInfo.from_card(paths.model)
    pipeline, _ = train.load(paths.model, paths.model_card)
    picked = select_window(pd.read_parquet(paths.dataset), parse_window(window), "window").sample(rows, random_state=seed)
    features = features_frame(picked, model.schema)
    scores = pipeline.predict_proba(features)[:, 1]
    records = json.loads(features.to_json(orient="records"))
    prediction_log, ids, positions = PredictionLog(log), [], []
    for start in range(0, rows, per_request):
        request = str(uuid.uuid4())
        chunk = slice(start, start + per_request)
        prediction_log.append(records[chunk], [{"probability": float(s), "decision": "late" if s >= model.threshold else "on time"}
                                               for s in scores[chunk]], request, "rest", model.version)
        ids += [request] * len(records[chunk])
        positions += list(range(len(records[chunk])))
    return picked.assign(request_id=ids, row=positions, score=scores)
