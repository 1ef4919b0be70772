"""driftgate's drift engine against Evidently's DataDriftPreset on the same files.

    python benchmarks/drift_vs_evidently.py                       # 10k, 100k, 1M rows per frame
    python benchmarks/drift_vs_evidently.py --sizes 10000 100000  # pick sizes
    python benchmarks/drift_vs_evidently.py --sizes 1000000 --driftgate-only 5000000 50000000
    python benchmarks/drift_vs_evidently.py --sizes --whole 1000 10000       # whole processes only

Seeded synthetic frames (20 numeric and 5 categorical columns; drift injected into 7 of them:
mean shifts, a scale change, a category-frequency change and a new category; NaN in two
columns) are written as Parquet once per size. Each tool then runs in its own fresh Python
process on the same two files: read both, test every column, report the verdicts. The table
shows wall time (read + test, after imports), peak RSS of that process, the speed-up and how
many column verdicts agree and how many scores agree within 1e-9.

The whole-process table (`--whole`, 1,000 rows by default) times what a user waits for in CI:
the command itself, from start to exit, imports included, the median of `--repeats` runs.
driftgate: `driftgate drift --reference R --current C` (drift.json and drift.md, and with
`--plot` drift.png too). Evidently: a script that imports it, reads both files, runs
DataDriftPreset and saves the snapshot as JSON (and with "+ HTML" its HTML report too).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_NUMERIC, N_CATEGORICAL = 20, 5


def generate(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(N_NUMERIC):
        shift = 0.25 if drifted and i < 3 else 0.0
        scale = 1.6 if drifted and i == 3 else 1.0
        if i % 5 == 4:
            data[f"num_{i:02d}"] = rng.integers(0, 4, rows).astype(float)  # few unique values
        else:
            data[f"num_{i:02d}"] = rng.normal(shift, scale, rows) * (i + 1)
    data["num_01"][rng.uniform(size=rows) < 0.05] = np.nan
    for j in range(N_CATEGORICAL):
        levels = [f"c{j}_{k}" for k in range(5 + 10 * j)]
        weights = np.linspace(1, 2, len(levels))
        if drifted and j == 0:
            weights = weights[::-1] ** 2
        values = rng.choice(levels, rows, p=weights / weights.sum()).astype(object)
        if drifted and j == 1:
            values[rng.uniform(size=rows) < 0.1] = "c1_new"
        if j == 2:
            values[rng.uniform(size=rows) < 0.02] = None
        data[f"cat_{j}"] = values
    return pd.DataFrame(data)


CHUNK = 1_000_000


def files_for(rows: int, folder: Path) -> tuple[Path, Path]:
    """Write the two frames once, a million rows at a time (so 50M rows fit in memory too)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for name, seed, drifted in (("reference", 1, False), ("current", 2, True)):
        path = folder / f"{name}_{rows}.parquet"
        paths.append(path)
        if path.exists():
            continue
        partial = path.with_suffix(".partial")
        writer = None
        for start in range(0, rows, CHUNK):
            table = pa.Table.from_pandas(generate(min(CHUNK, rows - start), seed * 100_003 + start, drifted), preserve_index=False)
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table, row_group_size=CHUNK)
        writer.close()
        partial.rename(path)
    return paths[0], paths[1]


# --------------------------------------------------------------------------- the two tools


def run_driftgate_chunked(reference: Path, current: Path) -> dict:
    import scipy.spatial  # noqa: F401  (imports are not timed: see run_driftgate)
    import scipy.stats  # noqa: F401

    from driftgate.config import DriftConfig
    from driftgate.drift import detect

    start = time.perf_counter()
    result = detect(reference, current, DriftConfig(), "chunked").to_json()
    seconds = time.perf_counter() - start
    columns = result["columns"]
    return {"seconds": seconds, "scores": {c: v["score"] for c, v in columns.items()},
            "drift": {c: v["drift"] for c, v in columns.items()},
            "max_bound": max(v["score_error_bound"] for v in columns.values())}


def run_driftgate(reference: Path, current: Path) -> dict:
    import scipy.spatial  # noqa: F401  (driftgate imports these when a test first needs them;
    import scipy.stats  # noqa: F401   here, as for Evidently, imports are not timed)

    from driftgate.config import DriftConfig
    from driftgate.drift import detect

    start = time.perf_counter()
    result = detect(reference, current, DriftConfig(), "pandas").to_json()
    seconds = time.perf_counter() - start
    columns = result["columns"]
    return {"seconds": seconds, "scores": {c: v["score"] for c, v in columns.items()},
            "drift": {c: v["drift"] for c, v in columns.items()}}


def run_evidently(reference: Path, current: Path) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    definition = DataDefinition(numerical_columns=[c for c in ref if c.startswith("num_")],
                                categorical_columns=[c for c in ref if c.startswith("cat_")])
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                               Dataset.from_pandas(ref, data_definition=definition))
    seconds = time.perf_counter() - start
    scores, drift = {}, {}
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(column="):
            column = name.split("column=", 1)[1].split(",", 1)[0]
            threshold = float(name.rsplit("threshold=", 1)[1].rstrip(")"))
            scores[column] = float(metric["value"])
            p_value = "p_value" in name or "K-S" in name or "chi-square" in name or "Z-test" in name
            drift[column] = scores[column] < threshold if p_value else scores[column] >= threshold
    return {"seconds": seconds, "scores": scores, "drift": drift}


EVIDENTLY_SCRIPT = """
import sys
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
definition = DataDefinition(numerical_columns=[c for c in ref if c.startswith("num_")],
                            categorical_columns=[c for c in ref if c.startswith("cat_")])
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                           Dataset.from_pandas(ref, data_definition=definition))
snapshot.save_json(sys.argv[3] + "/evidently.json")
if len(sys.argv) > 4:
    snapshot.save_html(sys.argv[3] + "/evidently.html")
"""


def whole_process(command: list[str], repeats: int, command_dir: Path) -> tuple[float, float]:
    """Median wall time and median peak RSS (MiB) of `command`, run `repeats` times in `command_dir`."""
    times, peaks = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        completed = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, cwd=command_dir)
        times.append(time.perf_counter() - start)
        if completed.returncode != 0:
            raise SystemExit(f"{command[0]} failed:\n{completed.stderr[-3000:]}")
        peaks.append(int(completed.stderr.strip().splitlines()[-1]) / 1024)
    return float(np.median(times)), float(np.median(peaks))


def whole_processes(sizes: list[int], folder: Path, repeats: int) -> None:
    driftgate = str(Path(sys.executable).with_name("driftgate"))
    out = Path(tempfile.mkdtemp(prefix="driftgate-whole-"))
    print(f"\nWhole processes, imports included (median of {repeats} runs; each writes its report files)")
    header = f"{'rows/frame':>10} | {'tool':<34} | {'seconds':>7} | {'RSS MiB':>7} | {'vs Evidently JSON':>17}"
    print(header)
    print("-" * len(header))
    for rows in sizes:
        reference, current = files_for(rows, folder)
        runs = {
            "Evidently (JSON)": [sys.executable, "-P", "-c", EVIDENTLY_SCRIPT, str(reference), str(current), str(out)],
            "Evidently (JSON + HTML)": [sys.executable, "-P", "-c", EVIDENTLY_SCRIPT, str(reference), str(current), str(out), "html"],
            "driftgate drift": [driftgate, "drift", "--reference", str(reference), "--current", str(current), "--out", str(out)],
            "driftgate drift --plot": [driftgate, "drift", "--reference", str(reference), "--current", str(current),
                                       "--out", str(out), "--plot"],
        }
        measured = {name: whole_process(command, repeats, out) for name, command in runs.items()}
        base = measured["Evidently (JSON)"][0]
        for name, (seconds, rss) in measured.items():
            print(f"{rows:>10,} | {name:<34} | {seconds:>7.2f} | {rss:>7.0f} | {base / seconds:>16.1f}x", flush=True)


def peak_rss_mib() -> float:
    """This process's own peak RSS. (getrusage's ru_maxrss survives exec on Linux, so a child
    would report its parent's peak if that was higher.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(tool: str, reference: Path, current: Path) -> None:
    runner = {"driftgate": run_driftgate, "chunked": run_driftgate_chunked, "evidently": run_evidently}[tool]
    result = runner(reference, current)
    result["peak_rss_mb"] = peak_rss_mib()
    print(json.dumps(result))


def measure(tool: str, reference: Path, current: Path) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--child", tool, str(reference), str(current)],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{tool} failed on {reference.name}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="rows per frame to run both tools on")
    parser.add_argument("--driftgate-only", type=int, nargs="*", default=[],
                        help="rows per frame for driftgate's chunked (out-of-core) engine alone, e.g. 5000000 50000000")
    parser.add_argument("--whole", type=int, nargs="*", default=[1000],
                        help="rows per frame for the whole-process comparison (the command, imports included)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per whole-process measurement (the median is shown)")
    parser.add_argument("--data", type=Path, default=None, help="folder to keep the generated Parquet files in")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "REF", "CUR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    folder = args.data or Path(tempfile.mkdtemp(prefix="driftgate-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    header = f"{'rows/frame':>10} | {'Evidently s':>11} | {'RSS MiB':>7} | {'driftgate s':>11} | {'RSS MiB':>7} | " \
             f"{'speed-up':>8} | {'RSS ratio':>9} | {'verdicts':>8} | {'scores 1e-9':>11}"
    print(f"{N_NUMERIC + N_CATEGORICAL} columns ({N_NUMERIC} numeric, {N_CATEGORICAL} categorical); "
          f"each tool in a fresh process; times are read + test, after imports")
    print(header)
    print("-" * len(header))
    for rows in args.sizes:
        reference, current = files_for(rows, folder)
        theirs = measure("evidently", reference, current)
        ours = measure("driftgate", reference, current)
        agree = sum(theirs["drift"][c] == ours["drift"][c] for c in theirs["drift"])
        close = sum(abs(theirs["scores"][c] - ours["scores"][c]) <= 1e-9 for c in theirs["scores"])
        print(f"{rows:>10,} | {theirs['seconds']:>11.2f} | {theirs['peak_rss_mb']:>7.0f} | {ours['seconds']:>11.2f} | "
              f"{ours['peak_rss_mb']:>7.0f} | {theirs['seconds'] / ours['seconds']:>7.1f}x | "
              f"{ours['peak_rss_mb'] / theirs['peak_rss_mb']:>9.2f} | {agree:>3}/{len(theirs['drift']):<4} | "
              f"{close:>5}/{len(theirs['scores']):<5}", flush=True)
    for rows in args.sizes:
        reference, current = files_for(rows, folder)
        exact, chunked = measure("driftgate", reference, current), measure("chunked", reference, current)
        agree = sum(exact["drift"][c] == chunked["drift"][c] for c in exact["drift"])
        worst = max(abs(exact["scores"][c] - chunked["scores"][c]) for c in exact["scores"])
        print(f"{rows:>10,} | chunked engine {chunked['seconds']:6.2f} s, {chunked['peak_rss_mb']:5.0f} MiB | verdicts equal "
              f"to the exact engine {agree}/{len(exact['drift'])} | largest score difference {worst:.2e} "
              f"(bound {chunked['max_bound']:.2e})", flush=True)
    for rows in args.driftgate_only:
        reference, current = files_for(rows, folder)
        chunked = measure("chunked", reference, current)
        print(f"{rows:>10,} | chunked engine {chunked['seconds']:6.2f} s, {chunked['peak_rss_mb']:5.0f} MiB peak RSS "
              f"(largest error bound {chunked['max_bound']:.2e})", flush=True)
    if args.whole:
        whole_processes(args.whole, folder, args.repeats)


if __name__ == "__main__":
    main()
