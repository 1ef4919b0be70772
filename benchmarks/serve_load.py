"""Load on the serving API against bare FastAPI endpoints with the same model, in one run.

    python benchmarks/serve_load.py                    # 200 requests/s for 30 s each, then 10,000 concurrent
    python benchmarks/serve_load.py --rate 100 --duration 10 --concurrent 2000
    python benchmarks/serve_load.py --sweep 200,400,600,800,1000,1200 --p99-ms 25   # each server's knee

Three servers run in their own processes on 127.0.0.1 with the pipeline's model
(artifacts/model.joblib, after `make run`). The scikit-learn one is loaded alone first; the
other two then take turns (`--rounds`), so a change in the machine's load hits both alike:

- bare FastAPI + sklearn: a route that only turns the JSON into a DataFrame and calls the
  pipeline's predict_proba (about 12-20 ms for one row here, so it cannot keep up with 200
  requests/s on 2 cores: its latencies grow for the whole run and some requests time out);
- bare FastAPI + Treelite: the same route scoring with driftgate's FastScorer, as driftgate
  does: against it, the ratio measures what driftgate adds, not the model runtime;
- driftgate /predict: `app.py`'s server (the REST API with the Gradio UI mounted, pydantic
  validation, the SQLite prediction log and Prometheus metrics). Its small requests are checked
  on the event loop and those that arrive together are scored in one call and logged in one
  transaction (`Service.predict_soon`); the bare routes take a thread-pool hop and a model call
  per request, as a plain FastAPI route does. So under load driftgate can hold more than the
  bare route: the knee ratio is then above 1, and says what batching buys, not that logging is free.

`--sweep` loads the Treelite endpoint and driftgate at each rate in turn (the scikit-learn one
cannot hold even 200 requests/s and is left out) and reports each server's knee: the highest
rate up to which it holds every swept rate, answering every request with p99 at most `--p99-ms`.
The ratio of the knees is what driftgate's extras cost in throughput.

The load is open-loop: requests are sent on a fixed schedule whatever the responses do, so a
slow server shows up as latency, not as a lower rate. Then `--concurrent` predictions are sent
to driftgate at once (200 in flight) and the prediction log must have grown by exactly one row
per answered prediction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BARE_SKLEARN, BARE_TREELITE, OURS = "bare FastAPI + sklearn", "bare FastAPI + Treelite", "driftgate /predict"

BARE = """
import sys, joblib, pandas as pd, uvicorn
from fastapi import FastAPI
pipeline = joblib.load(sys.argv[1])
app = FastAPI()

@app.post("/predict")
def predict(record: dict):
    return {"probability": float(pipeline.predict_proba(pd.DataFrame([record]))[0, 1])}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""

# The same bare route scoring with driftgate's FastScorer (Treelite), as driftgate's /predict
# does: against it, the ratio is the cost of what driftgate adds (validation, the log, metrics,
# the mounted UI), not of the model runtime.
BARE_FAST = """
import sys, joblib, uvicorn
from fastapi import FastAPI
from driftgate.model.scorer import FastScorer
scorer, reason = FastScorer.from_pipeline(joblib.load(sys.argv[1]))
assert scorer is not None, reason
app = FastAPI()

@app.post("/predict")
def predict(record: dict):
    return {"probability": float(scorer.score_records([record])[0])}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {timeout} s")


async def open_loop(url: str, body: dict, rate: float, duration: float,
                    max_in_flight: int = 200) -> tuple[np.ndarray, int, int]:
    """Latencies (ms) of the answered requests, how many failed (refused, reset, timed out or not
    200), and how many were not sent because `max_in_flight` were still waiting: a server that
    falls behind shows as those, instead of an unbounded queue in the client.

    The client is aiohttp: it shares the 2 cores with the server, and httpx's client took 1.3 ms
    of CPU per request here (more than the server's 1 ms), aiohttp's 0.4 ms; with httpx the
    client, not the server, gave out first."""
    import aiohttp

    latencies: list[float] = []
    failures = skipped = in_flight = 0
    data, headers = json.dumps(body).encode(), {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def one() -> None:
            nonlocal failures, in_flight
            start = time.perf_counter()
            in_flight += 1
            try:
                async with client.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError):
                failures += 1
                return
            finally:
                in_flight -= 1
            if status != 200:
                failures += 1
                return
            latencies.append(time.perf_counter() - start)

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * duration)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                skipped += 1
                continue
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return np.array(latencies) * 1000, failures, skipped


async def burst(url: str, body: dict, count: int, in_flight: int = 200) -> tuple[float, int]:
    """Seconds for `count` requests with `in_flight` at a time, and how many were answered 200."""
    import aiohttp

    gate = asyncio.Semaphore(in_flight)
    data, headers = json.dumps(body).encode(), {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight),
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        async def one() -> int:
            async with gate:
                try:
                    async with client.post(url, data=data, headers=headers) as response:
                        await response.read()
                        return response.status
                except (TimeoutError, aiohttp.ClientError):
                    return 0

        start = time.perf_counter()
        codes = await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - start, sum(code == 200 for code in codes)


def percentile(latencies: np.ndarray, q: float) -> float:
    return float(np.percentile(latencies, q)) if len(latencies) else float("nan")


def scheduled(rate: float, duration: float, rounds: int) -> int:
    """Requests `rounds` open loops of `duration / rounds` seconds each schedule at `rate`."""
    return rounds * int(rate * duration / rounds)


def holds(result: tuple[np.ndarray, int, int], sent: int, p99_ms: float) -> bool:
    """Every request sent on schedule and answered 200, with p99 at most `p99_ms`."""
    latencies, failed, skipped = result
    return not failed and not skipped and len(latencies) == sent and percentile(latencies, 99) <= p99_ms


def knee(held: dict[float, bool]) -> float:
    """The highest rate up to which every swept rate held (0 if the lowest did not)."""
    found = 0.0
    for rate in sorted(held):
        if not held[rate]:
            break
        found = rate
    return found


def print_sweep(table: dict[float, dict[str, tuple[np.ndarray, int, int]]], seconds: float, rounds: int,
                p99_ms: float) -> None:
    names = (BARE_TREELITE, OURS)
    print(f"open-loop rate sweep: {seconds:g} s per server per rate, one record per request, 2 cores; "
          f"a server holds a rate when it answers every request with p99 <= {p99_ms:g} ms")
    header = f"{'requests/s':>10} | " + " | ".join(f"{name + ' p99 ms':>32} | {'holds':>5}" for name in names)
    print(header)
    print("-" * len(header))
    held: dict[str, dict[float, bool]] = {name: {} for name in names}
    for rate, results in table.items():
        cells = []
        for name in names:
            latencies = results[name][0]
            sent = scheduled(rate, seconds, rounds)
            ok = holds(results[name], sent, p99_ms)
            held[name][rate] = ok
            lost = f" ({sent - len(latencies):,} not answered)" if len(latencies) < sent else ""
            cells.append(f"{percentile(latencies, 99):>8.2f}{lost:>24} | {'yes' if ok else 'no':>5}")
        print(f"{rate:>10g} | " + " | ".join(cells))
    knees = {name: knee(held[name]) for name in names}
    for name in names:
        print(f"knee of {name}: {knees[name]:g} requests/s")
    if knees[BARE_TREELITE]:
        print(f"ratio of the knees, driftgate / {BARE_TREELITE}: {knees[OURS] / knees[BARE_TREELITE]:.2f}")
    else:
        print(f"{BARE_TREELITE} held none of the swept rates: no ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load per server")
    parser.add_argument("--concurrent", type=int, default=10_000, help="predictions sent at once to check the log")
    parser.add_argument("--rounds", type=int, default=3, help="turns the Treelite and driftgate servers take")
    parser.add_argument("--no-sklearn", action="store_true", help="leave out the bare scikit-learn server (it takes the longest)")
    parser.add_argument("--sweep", help="comma-separated rates (requests/s): report each server's knee instead")
    parser.add_argument("--p99-ms", type=float, default=25, help="with --sweep: the p99 a server must hold (ms)")
    args = parser.parse_args()
    rates = sorted({float(r) for r in args.sweep.split(",") if r.strip()}) if args.sweep else []
    if args.sweep and (not rates or min(rates) <= 0):
        parser.error(f"--sweep {args.sweep!r}: give positive rates separated by commas, e.g. 200,400,600")

    card = json.loads((ROOT / "artifacts" / "model.json").read_text())
    profile = card["feature_profile"]
    record = {name: info["median"] for name, info in profile["numeric"].items()}
    record |= {name: info["most_frequent"] for name, info in profile["categorical"].items()}

    work = Path(tempfile.mkdtemp(prefix="driftgate-load-"))
    model = str(ROOT / "artifacts" / "model.joblib")
    log_path = work / "predictions.sqlite"
    ports = {name: free_port() for name in (BARE_SKLEARN, BARE_TREELITE, OURS)}
    # The bare servers get one OpenMP thread per request too (driftgate sets that itself):
    # without it the servers oversubscribe the cores and the comparison measures only that.
    bare_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    commands = {
        BARE_SKLEARN: ([sys.executable, "-c", BARE, model, str(ports[BARE_SKLEARN])], bare_env, "/docs"),
        BARE_TREELITE: ([sys.executable, "-c", BARE_FAST, model, str(ports[BARE_TREELITE])], bare_env, "/docs"),
        OURS: ([sys.executable, "-c", f"from driftgate.serving.ui import create_app, serve; serve(create_app(log={str(log_path)!r}))"],
               {**os.environ, "GRADIO_SERVER_PORT": str(ports[OURS]), "GRADIO_SERVER_NAME": "127.0.0.1",
                "GRADIO_ANALYTICS_ENABLED": "False"}, "/health"),
    }
    results: dict[str, tuple[np.ndarray, int, int]] = {}
    print(f"server logs in {work}", file=sys.stderr)

    def start(name: str) -> subprocess.Popen:
        argv, env, ready = commands[name]
        with open(work / f"{len(logs)}.log", "w") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        logs.append(process)
        wait_ready(f"http://127.0.0.1:{ports[name]}{ready}", process)
        asyncio.run(open_loop(f"http://127.0.0.1:{ports[name]}/predict", record, args.rate, 2))  # warm up
        return process

    def stop(process: subprocess.Popen) -> None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()

    logs: list[subprocess.Popen] = []
    if rates:
        table: dict[float, dict[str, tuple[np.ndarray, int, int]]] = {}
        try:
            for name in (BARE_TREELITE, OURS):
                start(name)
            for rate in rates:
                runs: dict[str, list] = {BARE_TREELITE: [], OURS: []}
                for round_ in range(args.rounds):  # turns, so a change in the machine's load falls on both alike
                    for name in runs:
                        print(f"{rate:g} requests/s: {name}, round {round_ + 1} of {args.rounds}", file=sys.stderr)
                        runs[name].append(asyncio.run(open_loop(f"http://127.0.0.1:{ports[name]}/predict", record, rate,
                                                                args.duration / args.rounds)))
                table[rate] = {name: (np.concatenate([r[0] for r in got]), sum(r[1] for r in got), sum(r[2] for r in got))
                               for name, got in runs.items()}
                sent = scheduled(rate, args.duration, args.rounds)
                if not any(holds(result, sent, args.p99_ms) for result in table[rate].values()):
                    break  # neither held: a higher rate cannot move either knee
        finally:
            for process in logs:
                if process.poll() is None:
                    stop(process)
        print_sweep(table, args.duration, args.rounds, args.p99_ms)
        return
    try:
        if not args.no_sklearn:
            # Alone, and stopped before the others start: it falls behind and keeps working off
            # its queue after the run, which must not slow the next server down.
            print(f"loading {BARE_SKLEARN}", file=sys.stderr)
            process = start(BARE_SKLEARN)
            results[BARE_SKLEARN] = asyncio.run(open_loop(f"http://127.0.0.1:{ports[BARE_SKLEARN]}/predict", record,
                                                          args.rate, args.duration))
            stop(process)
        # The two that keep up take turns, `--rounds` times each, so a change in the machine's
        # load during the run falls on both alike; their rounds are pooled.
        for name in (BARE_TREELITE, OURS):
            start(name)
        pooled: dict[str, list] = {BARE_TREELITE: [], OURS: []}
        for round_ in range(args.rounds):
            for name in pooled:
                print(f"loading {name}, round {round_ + 1} of {args.rounds}", file=sys.stderr)
                pooled[name].append(asyncio.run(open_loop(f"http://127.0.0.1:{ports[name]}/predict", record, args.rate,
                                                          args.duration / args.rounds)))
        for name, runs in pooled.items():
            results[name] = (np.concatenate([r[0] for r in runs]), sum(r[1] for r in runs), sum(r[2] for r in runs))
        health = f"http://127.0.0.1:{ports[OURS]}/health"
        before = json.loads(urllib.request.urlopen(health).read())["predictions_logged"]
        seconds, answered = asyncio.run(burst(f"http://127.0.0.1:{ports[OURS]}/predict", record, args.concurrent))
        after = json.loads(urllib.request.urlopen(health).read())["predictions_logged"]
    finally:
        for process in logs:
            if process.poll() is None:
                stop(process)

    print(f"open-loop load: {args.rate:g} requests/s for {args.duration:g} s per server, one record per request, 2 cores")
    header = (f"{'server':<26} | {'answered':>8} | {'failed':>6} | {'not sent':>8} | {'p50 ms':>8} | {'p90 ms':>8} | "
              f"{'p99 ms':>8} | {'max ms':>8}")
    print(header)
    print("-" * len(header))
    for name, (latencies, failed, skipped) in results.items():
        p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) if len(latencies) else (np.nan,) * 3
        print(f"{name:<26} | {len(latencies):>8} | {failed:>6} | {skipped:>8} | {p50:>8.2f} | {p90:>8.2f} | {p99:>8.2f} | "
              f"{latencies.max() if len(latencies) else np.nan:>8.2f}")
    print("(not sent: due while 200 requests were already waiting; the server had fallen behind)")
    ours_ms = results[OURS][0]
    for name in [n for n in (BARE_SKLEARN, BARE_TREELITE) if n in results]:
        bare_ms = results[name][0]
        print(f"ratio driftgate / {name}: p50 {np.percentile(ours_ms, 50) / np.percentile(bare_ms, 50):.2f}x, "
              f"p99 {np.percentile(ours_ms, 99) / np.percentile(bare_ms, 99):.2f}x")
    grown = after - before
    if args.concurrent:
        print(f"{args.concurrent:,} concurrent predictions (200 in flight) in {seconds:.1f} s: {answered:,} answered, "
              f"the log grew by {grown:,} rows ({'exactly one per answered prediction' if grown == answered else 'MISMATCH'})")


if __name__ == "__main__":
    main()
