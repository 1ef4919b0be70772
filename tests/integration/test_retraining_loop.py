"""The loop, end to end, on the bundled flights with small windows: a real server takes September
from `driftgate simulate`, a monitoring pass goes critical and (retraining.on_alert) retrains on
the two months before it; the decision is in the pass's report with its figures, the server then
serves the registry's champion, and the next pass judges the model serving now.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
import yaml
from typer.testing import CliRunner

from driftgate.cli.main import app
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.registry import ModelRegistry
from tests.conftest import driftgate_server

pytestmark = pytest.mark.slow  # a real server (Gradio's import: 30-60 s on 2 shared cores) and three fits


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def loop(flights_project, tmp_path, monkeypatch):
    """The trained flights project (cwd) with a small retraining section, and its server."""
    monkeypatch.chdir(flights_project)
    raw = yaml.safe_load((flights_project / "params.yaml").read_text())
    raw["model"]["max_iter"] = 60  # a smaller challenger: the loop, not the model, is under test
    raw["retraining"] = {"window": "2013-07..2013-08", "evaluation": "2013-09-01..2013-09-15", "replicas": 3,
                         "draws": 500, "on_alert": True}
    raw["monitoring"]["min_rows"] = 200
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    store = tmp_path / "store.sqlite"
    with driftgate_server(["--params", str(params), "--log", str(store)], flights_project, tmp_path / "server.log") as url:
        yield {"params": params, "store": store, "url": url, "server_log": tmp_path / "server.log", "dir": tmp_path}


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def send(loop, window: str, rows: int, seed: int):
    result = cli("simulate", "--url", loop["url"], "--params", str(loop["params"]), "--window", window, "--rows", str(rows),
                 "--batch", "20", "--rate", "max", "--label-delay", "0", "--seed", str(seed))
    assert result.exit_code == 0, result.output
    assert f"{rows} of {rows} flights acknowledged" in result.output


def test_september_goes_critical_retrains_promotes_and_the_server_and_monitor_follow(loop):
    served_before = _get(f"{loop['url']}/retraining/status")["serving"]
    send(loop, "2013-09", 600, seed=1)
    report = loop["dir"] / "monitor.md"
    result = cli("monitor", "--once", "--params", str(loop["params"]), "--log", str(loop["store"]), "--no-notify",
                 "--report", str(report), "--fail-on", "critical")
    assert result.exit_code == 1, result.output  # a critical pass fails the command
    assert ": critical" in result.output

    registry = ModelRegistry(loop["store"])
    [decision] = registry.decisions()
    assert decision["trigger"] == "alert" and decision["outcome"] == "promoted", decision["reason"]
    assert (decision["training_window"], decision["evaluation_window"]) == ("2013-07..2013-08", "2013-09-01..2013-09-15")
    assert decision["champion_sha256"][:12] == served_before
    assert decision["lower"] > 0 and decision["difference"] >= 0.01
    text = report.read_text()
    assert "# Retraining: after this pass went critical: promoted ✅" in text
    assert f"{decision['champion_f1']:.3f}" in text and f"{decision['challenger_f1']:.3f}" in text
    assert f"**{decision['lower']:+.3f}**" in text and decision["reason"][1:] in text
    assert f"retraining decision {decision['id']}: promoted" in result.output

    # the server follows the registry: the challenger serves within a few seconds, without a restart
    champion = registry.champion()
    assert champion == decision["challenger_sha256"]
    deadline = time.monotonic() + 10
    while _get(f"{loop['url']}/retraining/status")["serving"] != champion[:12]:
        assert time.monotonic() < deadline, loop["server_log"].read_text()[-2000:]
        time.sleep(0.25)

    # the next pass judges the model serving now: its predictions, against its own training window
    send(loop, "2013-09", 300, seed=2)
    result = cli("monitor", "--once", "--params", str(loop["params"]), "--log", str(loop["store"]), "--no-notify",
                 "--fail-on", "never")
    assert result.exit_code == 0, result.output
    newest = MonitoringStore(loop["store"]).passes_list(1)[0]
    assert newest["model_version"] == champion[:12] and newest["status"] == "done" and newest["rows"] == 300
    assert "Traceback" not in loop["server_log"].read_text()
