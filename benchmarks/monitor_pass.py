"""How long one monitoring pass takes, and that its cost grows with the window, not the log.

    .venv/bin/python benchmarks/monitor_pass.py                  # 5,000,000 and 200,000 rows
    .venv/bin/python benchmarks/monitor_pass.py --rows 1000000 --dir /tmp/logs --keep

For each log size the benchmark builds a SQLite prediction log (in a temp folder, or --dir):
rows of the bundled dataset scored once by the bundled model (artifacts/), cycled in time
order, their inputs stored as the server stores them (one JSON object per prediction), 100 rows
per request id, inserted with executemany in transactions of 200,000 rows. The newest
`--window` rows are drawn at random from `--sample` (the training window by default, so the
label-free estimate does not abstain and the pass does all its work).

Then, in a fresh process per log (so its peak RSS is the monitor's own):

1. a judged pass row is recorded up to id N - window - 5,000 and a first pass runs over those
   5,000 rows: the process's cold start (the reference read, the estimator fitted, the
   resampled nulls drawn);
2. the newest `--window` rows are appended, and `--repeat` times a judged pass row up to id
   N - window is recorded and `run_pass` reads the window since it: the newest 100,000 rows of
   a log of N, through the real monitor (lease, frozen reference, drift.detect in calibrated
   mode, estimate, history rows).

It prints the pass's time and its parts (read window, drift, estimate, write: the store's one
transaction; "other" is the rest: lease, reference check, features, labels, rules), the peak
RSS, and the ratio of the pass on the big log to the pass on the small one (about 1 when the
cost grows with the window only). --out writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200_000  # rows per insert transaction
REQUEST = 100  # predictions per request id
WARMUP = 5_000  # rows of the first (cold) pass


def scored_rows(sample: str, seed: int, draws: int):
    """The bundled dataset's rows as the server logs them (JSON inputs, probability, decision),
    in time order, and `draws` rows drawn at random (with replacement) from the `sample` window."""
    import numpy as np
    import pandas as pd

    from driftgate.config import Paths, load_params, parse_window
    from driftgate.data.dataset import features_frame, select_window
    from driftgate.model import train
    from driftgate.monitoring.reference import ModelInfo

    paths = Paths()
    params = load_params()
    model = ModelInfo.from_card(paths.model)
    pipeline, _ = train.load(paths.model, paths.model_card)
    data = pd.read_parquet(paths.dataset)
    features = features_frame(data, model.schema)
    probability = pipeline.predict_proba(features)[:, 1]
    records = json.loads(features[model.schema.columns].to_json(orient="records"))
    inputs = [json.dumps(record) for record in records]  # the text SQLAlchemy's JSON type stores
    names = params.data.target.class_names
    decisions = [names[1] if p >= model.threshold else names[0] for p in probability]
    rows = list(zip(probability.tolist(), decisions, inputs))
    chosen = select_window(data, parse_window(sample), "sample").index
    positions = data.index.get_indexer(chosen)
    order = np.random.default_rng(seed).choice(positions, draws, replace=True)
    return rows, [rows[i] for i in order], model.version


def insert(path: Path, rows, start_id: int, count: int, model_version: str, started: datetime) -> None:
    """`count` predictions cycling through `rows`, ids start_id+1.., one second apart."""
    import numpy as np

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")  # building only; the monitor opens it as usual
    sql = ('INSERT INTO predictions (id, timestamp, request_id, source, model_version, probability, decision, inputs, "row", "key") '
           "VALUES (?, ?, ?, 'rest', ?, ?, ?, ?, ?, NULL)")
    origin = np.datetime64(started.replace(tzinfo=None), "us")
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        first = start_id + done  # 0-based position in the log
        positions = np.arange(first, first + size)
        stamps = np.char.replace(np.datetime_as_string(origin + positions * np.timedelta64(1, "s"), unit="us"), "T", " ")
        requests = {r: str(uuid.uuid4()) for r in range(first // REQUEST, (first + size - 1) // REQUEST + 1)}
        batch = [(i + 1, stamp, requests[i // REQUEST], model_version, *rows[(done + k) % len(rows)], i % REQUEST)
                 for k, (i, stamp) in enumerate(zip(range(first, first + size), stamps.tolist()))]
        with connection:
            connection.executemany(sql, batch)
        done += size
    connection.close()


def build(path: Path, history, window, total: int, window_rows: int, model_version: str, say) -> tuple[float, datetime]:
    """A log of total - window_rows rows (the last window rows are appended by the measuring process)."""
    from driftgate.store.monitoring import MonitoringStore
    from driftgate.store.predictions import PredictionLog

    PredictionLog(path), MonitoringStore(path)  # the tables, as the monitor creates them
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=total + 3600)
    clock = time.perf_counter()
    old = total - window_rows - WARMUP
    insert(path, history, 0, old, model_version, started)
    insert(path, window[window_rows:], old, WARMUP, model_version, started)  # the cold pass's rows: same window, other rows
    say(f"  built {total - window_rows:,} rows in {time.perf_counter() - clock:.1f} s ({path.stat().st_size / 1e9:.2f} GB)")
    return time.perf_counter() - clock, started


# --------------------------------------------------------------------------- the measuring process


def marker(store, model_version: str, last_id: int) -> None:
    """A judged pass row up to `last_id`: the next since_last pass reads the rows after it."""
    now = datetime.now(UTC)
    store.record_pass({"started_at": now, "finished_at": now, "model_version": model_version, "status": "done",
                       "reason": f"benchmark: rows up to #{last_id:,} judged", "first_id": 1, "last_id": last_id,
                       "rows": last_id, "level": "ok"}, [], [])


def measure(args) -> dict:
    """Run the passes on one built log (in its own process) and return the figures."""
    import driftgate.drift.detect  # noqa: F401  (the module; driftgate.drift exports the function under its name)
    import driftgate.estimation as estimation
    from driftgate.config import Paths, load_params
    from driftgate.monitoring.monitor import run_pass
    from driftgate.monitoring.reference import ModelInfo
    from driftgate.store.monitoring import MonitoringStore
    from driftgate.store.predictions import PredictionLog

    path, total, window_rows = Path(args.measure), args.rows, args.window
    params, paths = load_params(), Paths()
    model = ModelInfo.from_card(paths.model)
    log, store = PredictionLog(path), MonitoringStore(path)
    parts: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*a, **k):
            clock = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - clock
        return wrapper

    log.window = timed("read window", log.window)
    store.record_pass = timed("write", store.record_pass)
    detect_module = sys.modules["driftgate.drift.detect"]
    detect_module.detect = timed("drift", detect_module.detect)
    estimation.estimate_f1 = timed("estimate", estimation.estimate_f1)

    def one_pass() -> dict:
        parts.clear()
        clock = time.perf_counter()
        outcome = run_pass(params, log, store, model, paths)
        seconds = time.perf_counter() - clock
        figures = {"seconds": seconds, "rows": outcome.rows, "status": outcome.status, "level": outcome.level,
                   "estimate_abstained": outcome.metrics.get("estimated_f1") is None, **parts}
        figures["other"] = seconds - sum(parts.values())
        return figures

    old = total - window_rows - WARMUP
    marker(store, model.version, old)
    cold = one_pass()
    window = [tuple(row) for row in json.loads(Path(args.rows_file).read_text())]
    started = datetime.fromisoformat(args.started)
    clock = time.perf_counter()
    insert(path, window, total - window_rows, window_rows, model.version, started)
    del window
    appended = time.perf_counter() - clock
    warm = []
    for _ in range(args.repeat):
        marker(store, model.version, total - window_rows)
        warm.append(one_pass())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {"log_rows": log.last_id(), "cold": cold, "warm": warm, "append_seconds": appended, "peak_rss_mb": peak}


# --------------------------------------------------------------------------- the table


PARTS = ("read window", "drift", "estimate", "write", "other")


def median_pass(result: dict) -> dict:
    seconds = [p["seconds"] for p in result["warm"]]
    best = sorted(result["warm"], key=lambda p: p["seconds"])[len(seconds) // 2]
    return {**best, "seconds": statistics.median(seconds)}


def _seconds(passes: list[dict]) -> str:
    return ", ".join(f"{p['seconds']:.2f}" for p in passes)


def table(results: dict[int, dict], window_rows: int) -> str:
    lines = [f"| log rows | pass over the newest {window_rows:,} | " + " | ".join(PARTS) + " | cold first pass (5,000 rows) | peak RSS |",
             "|---:|---:|" + "---:|" * len(PARTS) + "---:|---:|"]
    for rows, result in results.items():
        warm = median_pass(result)
        lines.append(f"| {rows:,} | {warm['seconds']:.2f} s (of {len(result['warm'])}: "
                     f"{_seconds(result['warm'])}) | "
                     + " | ".join(f"{warm.get(part, 0.0):.2f}" for part in PARTS)
                     + f" | {result['cold']['seconds']:.2f} s | {result['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the big log")
    parser.add_argument("--small", type=int, default=200_000, help="rows of the small log")
    parser.add_argument("--window", type=int, default=100_000, help="new predictions the timed pass reads")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per log (the median is shown)")
    parser.add_argument("--sample", default="2013-01..2013-03", help="window of the dataset the newest rows are drawn from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="folder for the logs (default: a temp folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--started", help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.measure:
        print(json.dumps(measure(args)))
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    folder = Path(args.dir or tempfile.mkdtemp(prefix="monitor-pass-"))
    folder.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    history, window, version = scored_rows(args.sample, args.seed, args.window + WARMUP)
    say(f"scored {len(history):,} dataset rows in {time.perf_counter() - clock:.1f} s; "
        f"{len(window):,} drawn from {args.sample}")
    rows_file = folder / "window-rows.json"
    rows_file.write_text(json.dumps(window[:args.window]))  # the rows the measuring process appends
    results, builds = {}, {}
    for total in (args.rows, args.small):
        path = folder / f"log-{total}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        say(f"log of {total:,} rows: {path}")
        builds[total], started = build(path, history, window, total, args.window, version, say)
        command = [sys.executable, __file__, "--measure", str(path), "--rows", str(total), "--window", str(args.window),
                   "--repeat", str(args.repeat), "--sample", args.sample, "--seed", str(args.seed),
                   "--started", started.isoformat(), "--rows-file", str(rows_file)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            say(done.stderr)
            raise SystemExit(f"the measuring process failed on {path}")
        results[total] = json.loads(done.stdout.strip().splitlines()[-1])
        say(f"  passes: {_seconds(results[total]['warm'])} s")
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    big, small = median_pass(results[args.rows])["seconds"], median_pass(results[args.small])["seconds"]
    print(f"\n{os.cpu_count()} cores; logs built in " + ", ".join(f"{s:.0f} s ({n:,} rows)" for n, s in builds.items()))
    print(table(results, args.window))
    print(f"\nratio (pass on the {args.rows:,}-row log / pass on the {args.small:,}-row log): {big / small:.2f}")
    print(f"goal: <= 2 s for {args.window:,} new predictions in a log of {args.rows:,}: {'met' if big <= 2 else 'NOT met'} ({big:.2f} s)")
    if args.out:
        args.out.write_text(json.dumps({"builds": builds, "results": results, "ratio": big / small}, indent=2, default=str))
    rows_file.unlink()
    if not args.keep and not args.dir:
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
