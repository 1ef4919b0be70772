"""What survives real processes, on SQLite and on a real PostgreSQL: several monitors started at
once on one store (the lease lets one pass judge the window), a lease whose holder is alive,
dead or late, a pass killed with kill -9 half-way (no partial rows; the next pass redoes the
whole window), and the server killed with kill -9 under load (every acknowledged prediction is
in the log)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from driftgate.store.monitoring import LEASE, LeaseHeld, MonitoringStore
from driftgate.store.predictions import PredictionLog, database_url

pytest_plugins = ["tests.postgres"]

BIN = Path(sys.executable).parent
ENV = {**os.environ, "COLUMNS": "200", "GRADIO_ANALYTICS_ENABLED": "False"}


@pytest.fixture(scope="module")
def project(served_project):
    """The tiny trained project, and its current window's rows as the server would log them."""
    from driftgate.config import Paths, load_params, parse_window
    from driftgate.data.dataset import features_frame, select_window
    from driftgate.model import train
    from driftgate.monitoring.reference import ModelInfo

    paths = Paths(served_project)
    params = load_params(served_project / "params.yaml")
    model = ModelInfo.from_card(paths.model)
    pipeline, _ = train.load(paths.model, paths.model_card)
    rows = select_window(pd.read_parquet(paths.dataset), parse_window(params.windows.current), "current")
    frame = features_frame(rows, model.schema)[model.schema.columns]
    return {"folder": served_project, "model": model, "records": json.loads(frame.to_json(orient="records")),
            "scores": pipeline.predict_proba(frame)[:, 1]}


def fill(url: str, project: dict, rows: int, per_request: int = 50) -> None:
    """`rows` predictions in the log at `url`, the project's current window over and over."""
    log, model, records, scores = PredictionLog(url), project["model"], project["records"], project["scores"]
    for start in range(0, rows, per_request):
        picked = [(start + i) % len(records) for i in range(min(per_request, rows - start))]
        log.append([records[i] for i in picked],
                   [{"probability": float(scores[i]), "decision": "positive" if scores[i] >= model.threshold else "negative"}
                    for i in picked], str(uuid.uuid4()), "rest", model.version)


def counts(url: str) -> dict[str, int]:
    with create_engine(database_url(url)).connect() as connection:
        return {table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("monitor_passes", "monitor_metrics", "monitor_alerts")}


def lease_row(url: str) -> tuple[str, float]:
    with create_engine(database_url(url)).connect() as connection:
        return tuple(connection.execute(text("SELECT holder, expires_at FROM monitor_lease WHERE name = :n"), {"n": LEASE}).one())


# --------------------------------------------------------------------------- a new store, several processes

OPENER = """
import sys, uuid
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import PredictionLog
print("ready", flush=True)
sys.stdin.readline()
log = PredictionLog(sys.argv[1])
MonitoringStore(sys.argv[1])
log.append([{"x1": 1.0}], [{"probability": 0.5, "decision": "positive"}], str(uuid.uuid4()), "rest", "m1")
"""


def _at_once(script: str, url: str, processes: int = 4, cwd: Path | None = None) -> list[subprocess.Popen]:
    """`processes` Python processes running `script` on `url`, each told to go once all are ready."""
    started = [subprocess.Popen([sys.executable, "-c", script, url], cwd=cwd, env=ENV, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(processes)]
    try:
        for process in started:
            line = process.stdout.readline()
            assert line.strip() == "ready", (line, process.stderr.read() if process.poll() is not None else "")
        for process in started:
            process.stdin.write("\n")
            process.stdin.flush()
    except BaseException:
        for process in started:
            process.kill()
            process.wait()
        raise
    return started


def test_processes_opening_a_new_store_at_once_all_get_it(store_url):
    """Servers and monitors started together on an empty database: one creates the tables, the
    others wait for it instead of failing on a table or version row that appeared meanwhile."""
    for opener in _at_once(OPENER, store_url, processes=6):
        _, errors = opener.communicate(timeout=120)
        assert opener.returncode == 0, errors
    assert PredictionLog(store_url).count() == 6
    with create_engine(database_url(store_url)).connect() as connection:
        assert dict(connection.execute(text("SELECT component, version FROM driftgate_schema")).all()) == {"predictions": 2, "monitoring": 1}


# --------------------------------------------------------------------------- the lease, several processes

RACER = """
import json, sys
from pathlib import Path
from driftgate.config import Paths, load_params
from driftgate.monitoring.service import Monitor
from driftgate.store.monitoring import LeaseHeld
import driftgate.drift.detect, driftgate.estimation  # imported before the start, so the race is for the lease

monitor = Monitor.open(load_params(Path("params.yaml")), sys.argv[1], Path("artifacts/model.joblib"), Paths(Path(".")),
                       say=lambda _: None, notify=False)
print("ready", flush=True)
sys.stdin.readline()  # every racer is ready: go
try:
    outcome = monitor.once()
    print(json.dumps({"status": outcome.status, "pass_id": outcome.pass_id, "reason": outcome.reason}), flush=True)
except LeaseHeld as held:
    print(json.dumps({"status": "held", "reason": str(held)}), flush=True)
"""


@pytest.mark.slow
def test_monitors_started_at_once_on_one_store_let_one_pass_judge_the_window(store_url, project):
    fill(store_url, project, 400)
    MonitoringStore(store_url)  # the tables exist before the race (as once the server has run)
    racers = _at_once(RACER, store_url, cwd=project["folder"])  # as close to the same moment as four processes can be told
    try:
        said = []
        for racer in racers:
            output, errors = racer.communicate(timeout=300)
            assert racer.returncode == 0 and "Traceback" not in errors, errors
            said.append(json.loads(output.strip().splitlines()[-1]))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    judged = [s for s in said if s["status"] == "done"]
    assert len(judged) == 1, said
    for other in (s for s in said if s["status"] != "done"):
        assert (other["status"] == "held" and "another monitoring pass is running" in other["reason"]) or \
            (other["status"] == "skipped" and other["reason"].startswith("skipped: 0 < 200 rows")), said
    store = MonitoringStore(store_url)
    passes = store.passes_list()
    done = [p for p in passes if p["status"] == "done"]
    assert [p["id"] for p in done] == [judged[0]["pass_id"]]
    assert (done[0]["first_id"], done[0]["last_id"], done[0]["rows"]) == (1, 400, 400)
    for p in passes:  # no two judged windows share an id; skipped ones judged nothing
        if p["status"] == "skipped":
            assert p["rows"] == 0 and p["first_id"] is None
    assert lease_row(store_url)[0] == "", "the pass gave the lease back"


HOLDER = """
import sys
from driftgate.store.monitoring import MonitoringStore
print(MonitoringStore(sys.argv[1]).acquire(600), flush=True)
sys.stdin.readline()  # holds it until told, or killed
"""


def test_a_lease_held_by_a_live_process_blocks_and_is_taken_over_once_that_process_is_killed(store_url, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store_url], env=ENV, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        held_by = holder.stdout.readline().strip()
        assert held_by.startswith(f"{socket.gethostname()}:{holder.pid}:"), (held_by, holder.stderr.read() if holder.poll() is not None else "")
        store = MonitoringStore(store_url)
        with pytest.raises(LeaseHeld) as caught:
            store.acquire(600)
        assert caught.value.holder == held_by and "another monitoring pass is running" in str(caught.value)
        assert lease_row(store_url)[0] == held_by
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    mine = store.acquire(600)  # its process is gone (same host, no such PID): the lease is taken over
    assert mine != held_by and lease_row(store_url)[0] == mine
    store.release(held_by)  # the dead holder's release (were it to come) frees nothing
    assert lease_row(store_url)[0] == mine
    store.release(mine)
    assert lease_row(store_url)[0] == ""


def test_a_lease_of_another_host_blocks_until_it_expires_then_is_taken_over(store_url):
    store = MonitoringStore(store_url)
    far = "another-host:4242:abcdef12"  # a PID on another machine is never presumed dead
    assert store.acquire(600, holder=far) == far
    with pytest.raises(LeaseHeld) as caught:
        store.acquire(600)
    assert caught.value.holder == far and caught.value.expires_at > time.time()
    assert store.acquire(600, holder=far) == far, "its holder renews it"
    with create_engine(database_url(store_url)).begin() as connection:  # its lease runs out
        connection.execute(text("UPDATE monitor_lease SET expires_at = :past WHERE name = :n"), {"past": time.time() - 1, "n": LEASE})
    mine = store.acquire(600)
    holder, expires = lease_row(store_url)
    assert holder == mine != far and expires > time.time() + 500
    with pytest.raises(LeaseHeld):
        store.acquire(600, holder=far)  # the late holder does not get it back


# --------------------------------------------------------------------------- kill -9 of a pass


@pytest.mark.slow
def test_a_pass_killed_with_kill_9_leaves_no_rows_and_the_next_pass_redoes_the_whole_window(store_url, project):
    fill(store_url, project, 6000)
    monitor = [str(BIN / "driftgate"), "monitor", "--once", "--no-notify", "--log", store_url]
    victim = subprocess.Popen(monitor, cwd=project["folder"], env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    try:
        for line in victim.stderr:
            seen.append(line)
            if "testing drift" in line:
                break
        assert victim.poll() is None, f"the pass ended before it tested drift:\n{''.join(seen)}{victim.stdout.read()}"
        victim.send_signal(signal.SIGKILL)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert any("window: 6,000 rows" in line for line in seen), seen
    assert counts(store_url) == {"monitor_passes": 0, "monitor_metrics": 0, "monitor_alerts": 0}
    assert lease_row(store_url)[0].split(":")[1] == str(victim.pid), "killed holding the lease"

    again = subprocess.run(monitor, cwd=project["folder"], env=ENV, text=True, capture_output=True, timeout=600)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stdout + again.stderr
    store = MonitoringStore(store_url)
    passes = store.passes_list()
    assert len(passes) == 1 and passes[0]["status"] == "done", passes
    assert (passes[0]["first_id"], passes[0]["last_id"], passes[0]["rows"]) == (1, 6000, 6000)
    assert f"pass {passes[0]['id']}: {passes[0]['level']}" in again.stdout
    assert counts(store_url)["monitor_metrics"] == len(store.pass_metrics(passes[0]["id"])) > 0
    assert lease_row(store_url)[0] == ""


# --------------------------------------------------------------------------- kill -9 of the server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_server_killed_with_kill_9_under_load_keeps_every_acknowledged_prediction(store_url, project, tmp_path):
    port = _free_port()
    output = tmp_path / "server.log"
    with open(output, "w") as sink:
        server = subprocess.Popen([str(BIN / "driftgate"), "serve", "--log", store_url, "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=project["folder"], env=ENV, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    acknowledged: dict[str, int] = {}  # request_id -> how many predictions it was answered with
    refused: list[str] = []  # the clients' errors once the server is gone
    failures: list[str] = []  # answers that were not 200 with one prediction per record
    workers: list[threading.Thread] = []
    lock, enough, stop = threading.Lock(), threading.Event(), threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            n = worker
            while not stop.is_set():
                size = 1 + n % 5
                body = project["records"][n % len(project["records"])] if size == 1 else \
                    [project["records"][(n + i) % len(project["records"])] for i in range(size)]
                n += 4
                try:
                    answer = client.post("/predict", json=body)
                except httpx.HTTPError as exc:  # the server is gone
                    with lock:
                        refused.append(type(exc).__name__)
                    return
                reply = answer.json() if answer.status_code == 200 else {}
                if len(reply.get("predictions", [])) != size:
                    with lock:
                        failures.append(f"{answer.status_code}: {answer.text[:300]}")
                    return
                with lock:
                    acknowledged[reply["request_id"]] = size
                    if len(acknowledged) >= 300:
                        enough.set()

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, f"the server exited:\n{output.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the server did not start in 180 s:\n{output.read_text()[-3000:]}"
            time.sleep(0.3)
        workers.extend(threading.Thread(target=load, args=(i,), daemon=True) for i in range(4))
        for worker in workers:
            worker.start()
        while not enough.wait(1):
            assert not failures and all(w.is_alive() for w in workers), (failures, refused, output.read_text()[-3000:])
        server.send_signal(signal.SIGKILL)  # mid-load: the four clients are still sending
        server.wait()
        for worker in workers:  # each stops at its first request the dead server cannot answer
            worker.join(timeout=120)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == -signal.SIGKILL
    assert not failures, failures
    assert len(refused) == 4, f"every client was cut off by the kill, mid-load ({refused})"

    with create_engine(database_url(store_url)).connect() as connection:
        logged = dict(connection.execute(text("SELECT request_id, COUNT(*) FROM predictions GROUP BY request_id")).all())
        rows = {(r, n) for r, n in connection.execute(text('SELECT request_id, "row" FROM predictions'))}
    lost = {r: n for r, n in acknowledged.items() if logged.get(r) != n}
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged requests lost rows: {list(lost.items())[:5]}"
    assert all((r, i) in rows for r, n in acknowledged.items() for i in range(n))
    assert PredictionLog(store_url).count() >= sum(acknowledged.values())  # the log opens again after the kill
