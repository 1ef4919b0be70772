"""`driftgate simulate` against real HTTP servers on 127.0.0.1.

A small server of the /predict and /labels contract (stdlib http.server) shows what is sent and
how errors are reported; then `driftgate serve` with the bundled model takes a replayed window
and the labels end up attached in its prediction log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftgate.cli.main import app as cli
from driftgate.io import read_json
from driftgate.monitoring import simulate as sim
from tests.conftest import BIN, driftgate_server


@dataclass(frozen=True)
class Flights:
    """A project with the bundled flights data validated and the model trained (the
    flights_project fixture: the same on every machine, whatever this checkout's artifacts/ hold)."""

    root: Path

    @property
    def dataset(self) -> Path:
        return self.root / "artifacts" / "dataset.parquet"

    @property
    def model(self) -> Path:
        return self.root / "artifacts" / "model.joblib"

    @property
    def files(self) -> list[str]:
        return ["--params", str(self.root / "params.yaml"), "--dataset", str(self.dataset), "--model", str(self.model)]


@pytest.fixture(scope="module")
def flights(flights_project) -> Flights:
    return Flights(flights_project)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Contract(ThreadingHTTPServer):
    """/health, /predict and /labels as the serving app answers them; `predict_status` and
    `labels_status` make it refuse. Records every request and the client's port."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.predicts: list[object] = []
        self.answers: list[str] = []  # request ids, in answering order
        self.labels: list[dict] = []
        self.ports: set[int] = set()
        self.predict_status = 200
        self.labels_status = 200
        self.gone = False  # True: every connection is dropped without an answer
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn does

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.ports.add(self.client_address[1])
        if self.path == "/health":
            return self._answer(200, {"status": "ok", "model_version": "5336e3027021"})
        self._answer(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        server: Contract = self.server
        server.ports.add(self.client_address[1])
        if server.gone:
            self.close_connection = True
            return
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with server.lock:
            if self.path == "/predict":
                server.predicts.append(body)
                if server.predict_status == 404:
                    return self._answer(404, {"detail": "Not Found"})
                if server.predict_status != 200:
                    return self._answer(server.predict_status, {"detail": [{"field": "temp", "type": "out_of_range", "message":
                                                                            "130 is outside the allowed range [-30, 120]"}]})
                request_id = str(uuid.uuid4())
                server.answers.append(request_id)
                count = len(body) if isinstance(body, list) else 1
                return self._answer(200, {"request_id": request_id, "predictions": [{"probability": 0.5}] * count, "warnings": []})
            if self.path == "/labels":
                if server.labels_status != 200:
                    return self._answer(server.labels_status, {"detail": "Not Found"})
                server.labels.append(body)
                return self._answer(200, {"attached": len(body["labels"]), "replaced": 0, "unmatched": [], "passes_updated": 0})
        self._answer(404, {"detail": "Not Found"})


@pytest.fixture
def contract():
    server = Contract()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def accepted(flights) -> sim.Accepted:
    from driftgate.config import load_params

    return sim.Accepted.from_card(read_json(flights.model.with_suffix(".json")), load_params(flights.root / "params.yaml").validation)


def simulate(flights: Flights, *args: str):
    return CliRunner().invoke(cli, ["simulate", *args, *flights.files], catch_exceptions=False)


# --------------------------------------------------------------------------- the contract


def test_rows_go_to_predict_and_their_labels_to_labels_as_the_contract_says(flights, contract, accepted):
    result = simulate(flights, "--url", contract.url, "--window", "2013-07", "--rows", "50", "--batch", "3", "--rate", "max",
                      "--label-delay", "0", "--shift", "temp=+5", "--move", "carrier=UA:0.2", "--seed", "1")
    assert result.exit_code == 0, result.output
    expected = sim.prepare_rows(sim.load_window(flights.dataset, "2013-07"), accepted, 50, "random", 1,
                                sim.parse_injections(accepted, shift=["temp=+5"], move=["carrier=UA:0.2"]))
    assert [len(body) for body in contract.predicts] == [3] * 16 + [2]  # lists of --batch records
    sent = [record for body in contract.predicts for record in body]
    assert sent == sim.records(expected.features, accepted.schema)
    assert all(list(record) == accepted.schema.columns for record in sent)
    items = [item for body in contract.labels for item in body["labels"]]
    assert all(set(body) == {"labels"} and set(item) == {"request_id", "row", "label"} for body in contract.labels for item in body["labels"])
    named = {(item["request_id"], item["row"]): item["label"] for item in items}
    want = {(contract.answers[i // 3], i % 3): int(label) for i, label in enumerate(expected.labels)}
    assert named == want and len(items) == 50
    assert "50 of 50 flights acknowledged in 17 request(s)" in result.output
    assert "labels posted: 50 (attached 50)" in result.output and "errors: 0" in result.output
    assert "drift injected: temp +5 (50 flights changed)" in result.output
    assert "drift injected: 20% of rows to carrier=UA (10 flights changed)" in result.output


@pytest.mark.parametrize("prefer_httpx", [True, False], ids=["httpx", "http.client"])
def test_one_record_per_request_on_one_kept_alive_connection(flights, contract, accepted, prefer_httpx):
    rows = sim.prepare_rows(sim.load_window(flights.dataset, "2013-02"), accepted, 20, "time", 0)
    replay = sim.Replay(contract.url, rows, accepted.schema, batch=1, rate=None, delay=0.0, say=lambda _: None,
                        prefer_httpx=prefer_httpx)
    tally = replay.run()
    assert (tally.acknowledged, tally.requests, tally.labels_posted, tally.errors) == (20, 20, 20, 0)
    assert all(isinstance(body, dict) for body in contract.predicts)  # one record: a JSON object, not a list
    assert contract.predicts == sim.records(rows.features, accepted.schema)
    assert len(contract.ports) == 1  # /health, 20 x /predict and the labels all on one connection


def test_labels_wait_for_their_delay_and_the_last_are_posted_before_the_end(flights, contract, accepted):
    rows = sim.prepare_rows(sim.load_window(flights.dataset, "2013-02"), accepted, 6, "time", 0)
    said: list[str] = []
    tally = sim.Replay(contract.url, rows, accepted.schema, rate=None, delay=0.5, say=said.append).run()
    assert tally.labels_posted == 6 and tally.labels_pending == 0
    assert any(line.startswith("all sent; posting the last") for line in said)
    assert sorted(item["row"] for body in contract.labels for item in body["labels"]) == [0] * 6


def test_a_refused_request_is_reported_with_the_servers_message(flights, contract):
    contract.predict_status = 422
    result = simulate(flights, "--url", contract.url, "--rows", "100", "--rate", "max")
    assert result.exit_code == 2, result.output
    assert len(contract.predicts) == sim.MAX_ERRORS_IN_A_ROW  # it stops instead of sending all 100
    assert "the server refused 20 requests in a row" in result.output
    assert "POST /predict 422: temp: 130 is outside the allowed range [-30, 120]" in result.output
    assert "0 of 100 flights acknowledged" in result.output and "Traceback" not in result.output


def test_a_server_without_predict_is_not_taken_for_a_driftgate_server(flights, contract):
    contract.predict_status = 404
    result = simulate(flights, "--url", contract.url, "--rows", "100", "--rate", "max")
    assert result.exit_code == 2, result.output
    assert len(contract.predicts) == 1
    assert f"POST /predict answered 404 (Not Found): {contract.url} serves no driftgate model" in result.output
    assert "point --url at a driftgate server" in result.output


def test_a_server_without_labels_gets_the_predictions_and_the_run_says_so(flights, contract):
    contract.labels_status = 404
    result = simulate(flights, "--url", contract.url, "--rows", "30", "--rate", "max", "--label-delay", "0")
    assert result.exit_code == 0, result.output
    assert "30 of 30 flights acknowledged" in result.output
    assert "the server has no POST /labels (it answered 404)" in result.output
    assert contract.labels == []


@pytest.mark.parametrize("prefer_httpx", [True, False], ids=["httpx", "http.client"])
def test_a_server_that_goes_away_mid_run_ends_it_with_what_was_done(flights, contract, accepted, prefer_httpx):
    rows = sim.prepare_rows(sim.load_window(flights.dataset, "2013-02"), accepted, 50, "time", 0)
    now = [0.0]  # the replay's clock: it moves only when the replay pauses

    def sleep(seconds: float) -> None:  # the pause before each request: the server dies before the 6th
        now[0] += seconds
        if len(contract.predicts) == 5 and not contract.gone:
            contract.gone = True
            contract.shutdown()
            contract.server_close()

    replay = sim.Replay(contract.url, rows, accepted.schema, rate=1000.0, delay=60.0, say=lambda _: None, what="flights",
                        prefer_httpx=prefer_httpx, sleep=sleep, clock=lambda: now[0])
    tally = replay.run()
    assert tally.acknowledged == 5 and tally.labels_pending == 5 and not tally.stopped
    assert tally.failure.startswith("the server stopped answering") and tally.hint == sim.UP_HINT
    assert "5 of 50 flights acknowledged" in replay.summary()[0]


def test_no_server_is_a_clear_error_with_exit_2(flights):
    url = f"http://127.0.0.1:{_free_port()}"
    result = simulate(flights, "--url", url, "--rows", "10")
    assert result.exit_code == 2
    assert f"--url {url}: no server answers there" in result.output
    assert "is the server up? `make demo` starts it" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "says"), [
    (["--shift", "tmp=+5"], "--shift tmp=+5: 'tmp' is not a feature of the model"),
    (["--move", "carrier=ZZ:0.1"], "--move carrier=ZZ:0.1: 'ZZ' is not a category /predict accepts for carrier"),
    (["--order", "backwards"], "--order: 'backwards' is not an order"),
    (["--rate", "fast"], "--rate: cannot read 'fast' as a rate"),
    (["--window", "2015-01"], "--window 2015-01: window 2015-01 has no rows"),
], ids=["unknown column", "unknown category", "bad order", "bad rate", "empty window"])
def test_bad_options_stop_before_anything_is_sent(flights, contract, args, says):
    result = simulate(flights, "--url", contract.url, *args)
    assert result.exit_code == 2 and says in result.output, result.output
    assert contract.predicts == []


def test_ctrl_c_stops_cleanly_with_a_summary(flights, contract):
    process = subprocess.Popen([str(BIN / "driftgate"), "simulate", "--url", contract.url, "--rows", "1000", "--rate", "10/s",
                                "--label-delay", "1m", *flights.files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 120
        while len(contract.predicts) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no request arrived in 120 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (stdout, stderr)
    assert "stopped (Ctrl-C)" in stdout and "of 1,000 flights acknowledged" in stdout
    assert "not posted (the run ended before their delay)" in stdout
    assert "Traceback" not in stderr + stdout and "KeyboardInterrupt" not in stderr
    assert len(contract.predicts) < 1000


# --------------------------------------------------------------------------- the real server


@pytest.fixture(scope="module")
def served(flights, tmp_path_factory):
    """`driftgate serve` with the bundled model on a free port of 127.0.0.1, its log in a temp folder."""
    folder = tmp_path_factory.mktemp("simulate-serve")
    log = folder / "predictions.sqlite"
    args = ["--params", str(flights.root / "params.yaml"), "--model", str(flights.model), "--log", str(log)]
    with driftgate_server(args, folder, folder / "server.log") as url:
        yield url, log, folder / "server.log"


@pytest.mark.slow  # the server's start (Gradio's import) takes 30-60 s on 2 shared cores
def test_a_replayed_window_is_logged_and_its_labels_attached_by_the_real_server(flights, served, accepted):
    from driftgate.store.predictions import PredictionLog

    url, log_path, server_log = served
    result = simulate(flights, "--url", url, "--window", "2013-07", "--rows", "300", "--batch", "10", "--rate", "max",
                      "--label-delay", "1s", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert "300 of 300 flights acknowledged in 30 request(s)" in result.output
    assert "labels posted: 300 (attached 300)" in result.output and "errors: 0" in result.output
    log = PredictionLog(log_path)
    assert log.count() == 300
    labelled = log.labelled(1, log.last_id()).sort_values("id")
    expected = sim.prepare_rows(sim.load_window(flights.dataset, "2013-07"), accepted, 300, "random", 4)
    assert len(labelled) == 300
    assert labelled["label"].tolist() == expected.labels.tolist()  # each label on the prediction of its own row
    logged = log.frame()
    assert logged["dest"].tolist() == expected.features["dest"].tolist()
    assert "Traceback" not in Path(server_log).read_text()
