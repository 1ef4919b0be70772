"""False alarms and power: parity mode (Evidently's defaults) against calibrated mode.

    python benchmarks/calibration.py [--repeats 25]      # needs the pipeline's artifacts/dataset.parquet

A/A: two disjoint random samples of the real training window (Jan-Mar 2013 flights, 15
feature columns), so nothing drifted; an alarm is any column flagged. Power: the same pairs with
one shift injected into the current sample: a mean shift of temp by 0.2 reference std, wind
speed scaled by 1.3 around its mean, carrier frequencies changed (10% of rows moved to the most
common carrier), and a new dest category in 5% of rows; power is the share of runs that flag
the shifted column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def load(root: Path):
    sys.path.insert(0, str(root / "src"))
    from driftgate.config import load_params
    from driftgate.data.dataset import feature_schema, features_frame, select_window

    params = load_params(root / "params.yaml")
    dataset = pd.read_parquet(root / "artifacts" / "dataset.parquet")
    schema = feature_schema(dataset, params.data)
    window = features_frame(select_window(dataset, params.windows.train, "train"), schema).reset_index(drop=True)
    return window, schema.kinds(), params.drift


def pair(window: pd.DataFrame, size: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = rng.permutation(len(window))
    return window.iloc[rows[:size]].reset_index(drop=True), window.iloc[rows[size:2 * size]].reset_index(drop=True)


def inject(kind: str, reference: pd.DataFrame, current: pd.DataFrame, rng: np.random.Generator) -> tuple[str, pd.DataFrame]:
    current = current.copy()
    if kind == "mean shift":
        current["temp"] += 0.2 * reference["temp"].std()
        return "temp", current
    if kind == "scale change":
        mean = reference["wind_speed"].mean()
        current["wind_speed"] = mean + (current["wind_speed"] - mean) * 1.3
        return "wind_speed", current
    if kind == "frequency change":
        moved = rng.uniform(size=len(current)) < 0.10
        current.loc[moved, "carrier"] = reference["carrier"].mode()[0]
        return "carrier", current
    moved = rng.uniform(size=len(current)) < 0.05
    current.loc[moved, "dest"] = "NEW"
    return "dest", current


def run(mode: str, reference, current, kinds, config) -> dict:
    from driftgate.drift import detect

    return detect(reference, current, config.model_copy(update={"mode": mode}), "pandas", kinds=kinds).to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--power-size", type=int, default=5000)
    args = parser.parse_args()
    window, kinds, config = load(ROOT)
    print(f"calibrated mode: {config.correction} at alpha {config.alpha}, {config.draws} draws, pooling below {config.pool_below:.1%}")
    print(f"{len(kinds)} columns; {args.repeats} runs per row\n")
    print(f"{'A/A, rows per sample':<34} | {'parity: runs with an alarm':>27} | {'calibrated':>10} | columns flagged (parity / calibrated)")
    for size in args.sizes:
        rng = np.random.default_rng(size)
        alarms = {"parity": 0, "calibrated": 0}
        flagged = {"parity": {}, "calibrated": {}}
        start = time.perf_counter()
        for _ in range(args.repeats):
            reference, current = pair(window, size, rng)
            for mode in alarms:
                result = run(mode, reference, current, kinds, config)
                alarms[mode] += bool(result["drifted_columns"])
                for column in result["drifted_columns"]:
                    flagged[mode][column] = flagged[mode].get(column, 0) + 1
        def top(counts):
            return ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda x: -x[1])[:3]) or "none"
        print(f"{size:<34,} | {alarms['parity'] / args.repeats:>26.0%} | {alarms['calibrated'] / args.repeats:>10.0%} | "
              f"{top(flagged['parity'])} / {top(flagged['calibrated'])}   ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{'power at ' + format(args.power_size, ',') + ' rows per sample':<34} | {'parity: runs flagging it':>27} | {'calibrated':>10}")
    for seed, kind in enumerate(("mean shift", "scale change", "frequency change", "new category")):
        rng = np.random.default_rng(1000 + seed)
        hits = {"parity": 0, "calibrated": 0}
        for _ in range(args.repeats):
            reference, current = pair(window, args.power_size, rng)
            column, shifted = inject(kind, reference, current, rng)
            for mode in hits:
                hits[mode] += run(mode, reference, shifted, kinds, config)["columns"][column]["drift"]
        print(f"{kind + ' (' + column + ')':<34} | {hits['parity'] / args.repeats:>26.0%} | {hits['calibrated'] / args.repeats:>10.0%}",
              flush=True)


if __name__ == "__main__":
    main()
