"""Load on the serving API against bare FastAPI endpoints with the same model, in one run.

    python benchmarks/serve_load.py                    # 200 requests/s for 30 s each, then 10,000 concurrent
    python benchmarks/serve_load.py --rate 100 --duration 10 --concurrent 2000

Three servers run in their own processes on 127.0.0.1 with the pipeline's model
(artifacts/model.joblib, after `make run`), loaded one after the other:

- bare FastAPI + sklearn: a route that only turns the JSON into a DataFrame and calls the
  pipeline's predict_proba (about 12-20 ms for one row here, so it cannot keep up with 200
  requests/s on 2 cores: its latencies grow for the whole run and some requests time out);
- bare FastAPI + Treelite: the same route scoring with driftgate's FastScorer, as driftgate
  does: against it, the ratio measures what driftgate adds, not the model runtime;
- driftgate /predict: `app.py`'s server (the REST API with the Gradio UI mounted, pydantic
  validation, the SQLite prediction log and Prometheus metrics).

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
from driftgate.inference import FastScorer
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


async def open_loop(url: str, body: dict, rate: float, duration: float) -> tuple[np.ndarray, int]:
    """Latencies (ms) of the answered requests, and how many failed (refused, reset or not 200)."""
    import httpx

    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one() -> None:
            nonlocal failures
            start = time.perf_counter()
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError:
                failures += 1
                return
            if response.status_code != 200:
                failures += 1
                return
            latencies.append(time.perf_counter() - start)

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * duration)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return np.array(latencies) * 1000, failures


async def burst(url: str, body: dict, count: int, in_flight: int = 200) -> tuple[float, int]:
    """Seconds for `count` requests with `in_flight` at a time, and how many were answered 200."""
    import httpx

    gate = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=in_flight), timeout=60) as client:
        async def one() -> int:
            async with gate:
                try:
                    return (await client.post(url, json=body)).status_code
                except httpx.HTTPError:
                    return 0

        start = time.perf_counter()
        codes = await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - start, sum(code == 200 for code in codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load per server")
    parser.add_argument("--concurrent", type=int, default=10_000, help="predictions sent at once to check the log")
    args = parser.parse_args()

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
        OURS: ([sys.executable, "-c", f"from driftgate.ui import create_app, serve; serve(create_app(log={str(log_path)!r}))"],
               {**os.environ, "GRADIO_SERVER_PORT": str(ports[OURS]), "GRADIO_SERVER_NAME": "127.0.0.1",
                "GRADIO_ANALYTICS_ENABLED": "False"}, "/health"),
    }
    results = {}
    print(f"server logs in {work}", file=sys.stderr)
    for i, (name, (argv, env, ready)) in enumerate(commands.items()):
        # One server at a time, stopped before the next starts: a server that fell behind keeps
        # working off its queue after the run, which must not slow the next one down.
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(work / f"{i}.log", "w"), stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{ports[name]}{ready}", process)
            url = f"http://127.0.0.1:{ports[name]}/predict"
            print(f"loading {name}", file=sys.stderr)
            asyncio.run(open_loop(url, record, args.rate, 2))  # warm up
            results[name] = asyncio.run(open_loop(url, record, args.rate, args.duration))
            if name == OURS:
                health = f"http://127.0.0.1:{ports[OURS]}/health"
                before = json.loads(urllib.request.urlopen(health).read())["predictions_logged"]
                seconds, answered = asyncio.run(burst(url, record, args.concurrent))
                after = json.loads(urllib.request.urlopen(health).read())["predictions_logged"]
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    print(f"open-loop load: {args.rate:g} requests/s for {args.duration:g} s per server, one record per request, 2 cores")
    header = f"{'server':<26} | {'answered':>8} | {'failed':>6} | {'p50 ms':>8} | {'p90 ms':>8} | {'p99 ms':>8} | {'max ms':>8}"
    print(header)
    print("-" * len(header))
    for name, (latencies, failed) in results.items():
        p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) if len(latencies) else (np.nan,) * 3
        print(f"{name:<26} | {len(latencies):>8} | {failed:>6} | {p50:>8.2f} | {p90:>8.2f} | {p99:>8.2f} | "
              f"{latencies.max() if len(latencies) else np.nan:>8.2f}")
    ours_ms = results[OURS][0]
    for name in (BARE_SKLEARN, BARE_TREELITE):
        bare_ms = results[name][0]
        print(f"ratio driftgate / {name}: p50 {np.percentile(ours_ms, 50) / np.percentile(bare_ms, 50):.2f}x, "
              f"p99 {np.percentile(ours_ms, 99) / np.percentile(bare_ms, 99):.2f}x")
    grown = after - before
    print(f"{args.concurrent:,} concurrent predictions (200 in flight) in {seconds:.1f} s: {answered:,} answered, "
          f"the log grew by {grown:,} rows ({'exactly one per answered prediction' if grown == answered else 'MISMATCH'})")


if __name__ == "__main__":
    main()
