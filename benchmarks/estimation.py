"""Label-free F1 estimates against the real F1, for every month (and week) of the bundled data.

    python benchmarks/estimation.py [--calibration platt|isotonic] [--no-weeks]

Needs the pipeline's artifacts (artifacts/dataset.parquet, artifacts/model.joblib and its card:
`driftgate data && dvc repro train`). For each window it prints the estimate with its interval
(or the abstention and why), the domain classifier's AUC, the real F1 from the labels the data
already has, and plain CBPE for comparison: the same calibrated point estimate with a
sampling-only interval (label draws and calibration refits) and no abstention. Then coverage
(share of estimated windows whose interval holds the real F1) and mean absolute error, on
windows after the training window only: rows inside it were seen in training (the model's
scores are in-sample there, and March is partly the holdout the calibration is fitted on),
so they are shown but not counted; nor are windows under min_rows rows (the estimator abstains
on them, and a point estimate on a few dozen rows says little). Last, how coverage and error move with max_domain_auc.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.8, 0.85, 0.9, 0.95, 0.99, 1.0)


@dataclass
class Row:
    window: str
    rows: int
    in_sample: bool
    real: float
    result: object  # PerformanceEstimate
    unguarded: tuple[float, float, float]  # the interval with shift margin, had it not abstained
    plain: tuple[float, float, float]  # CBPE with a sampling-only interval


def windows(dataset: pd.DataFrame, freq: str) -> list[tuple[str, np.ndarray]]:
    from driftgate.data.dataset import TIME

    codes, names = pd.factorize(dataset[TIME].dt.to_period(freq), sort=True)
    return [(str(name), np.flatnonzero(codes == i)) for i, name in enumerate(names)]


def evaluate(freq: str, dataset, scores, features, reference, train_end) -> list[Row]:
    from driftgate.data.dataset import LABEL, TIME
    from driftgate.estimation import estimate_f1, f1_interval
    from driftgate.estimation.f1 import realised_f1

    out = []
    for name, rows in windows(dataset, freq):
        window_scores = scores[rows]
        real = realised_f1(dataset[LABEL].to_numpy(dtype=int)[rows], window_scores >= reference.threshold)
        result = estimate_f1(reference, window_scores, features.iloc[rows])
        unguarded = f1_interval(reference, window_scores)[:3]
        plain = f1_interval(reference, window_scores, shift=False)[:3]
        out.append(Row(name, len(rows), bool(dataset[TIME].iloc[rows].min() < train_end), real, result, unguarded, plain))
    return out


def summary(rows: list[Row], pick) -> tuple[int, float, float]:
    """(windows, coverage, mean absolute error) over the windows `pick` keeps: (row) -> (est, lo, hi) | None."""
    kept = [(row.real, *picked) for row in rows if (picked := pick(row)) is not None]
    if not kept:
        return 0, float("nan"), float("nan")
    real, est, lo, hi = (np.array(v) for v in zip(*kept))
    return len(kept), float(np.mean((lo <= real) & (real <= hi))), float(np.mean(np.abs(est - real)))


def short_reason(result) -> str:
    if not result.abstained:
        return ""
    return "too few rows" if result.domain_auc is None else "outside support"


def table(rows: list[Row]) -> str:
    head = ("| window | rows | real F1 | estimate [interval] | covers | domain AUC | abstained | had it not abstained | "
            "plain CBPE [sampling interval] | covers | CBPE error |\n"
            "|---|---:|---:|---|:-:|---:|---|---|---|:-:|---:|")
    lines = [head]
    for row in rows:
        r = row.result
        name = f"{row.window} (in-sample)" if row.in_sample else row.window
        if r.abstained:
            mine, covers = "-", "-"
        else:
            mine, covers = f"{r.estimate:.3f} [{r.lower:.3f}, {r.upper:.3f}]", "yes" if r.covers(row.real) else "NO"
        if r.abstained:
            est, lo, hi = row.unguarded
            unguarded = f"{est:.3f} [{lo:.3f}, {hi:.3f}] {'covers' if lo <= row.real <= hi else 'misses'}"
        else:
            unguarded = "-"
        est, lo, hi = row.plain
        auc = "-" if r.domain_auc is None else f"{r.domain_auc:.3f}"
        lines.append(f"| {name} | {row.rows:,} | {row.real:.3f} | {mine} | {covers} | {auc} | {short_reason(r) or 'no'} | {unguarded} | "
                     f"{est:.3f} [{lo:.3f}, {hi:.3f}] | {'yes' if lo <= row.real <= hi else 'NO'} | {est - row.real:+.3f} |")
    return "\n".join(lines)


def report(label: str, rows: list[Row], settings) -> None:
    small = [row.window for row in rows if not row.in_sample and row.rows < settings.min_rows]
    later = [row for row in rows if not row.in_sample and row.rows >= settings.min_rows]
    n, cov, mae = summary(later, lambda row: None if row.result.abstained else (row.result.estimate, row.result.lower, row.result.upper))
    n_plain, cov_plain, mae_plain = summary(later, lambda row: row.plain)
    same = {row.window for row in later if not row.result.abstained}
    n_same, cov_same, mae_same = summary([row for row in later if row.window in same], lambda row: row.plain)
    print(f"\n{label} after the training window, with at least {settings.min_rows} rows: {len(later)}"
          + (f" (not counted, too few rows: {', '.join(small)})" if small else ""))
    print(f"  this estimator: estimates {n}, abstains on {len(later) - n}; coverage {cov:.0%}, MAE {mae:.3f} (on the {n} estimated)")
    print(f"  plain CBPE:     estimates all {n_plain}; coverage {cov_plain:.0%}, MAE {mae_plain:.3f}"
          f" (on the same {n_same}: coverage {cov_same:.0%}, MAE {mae_same:.3f})")
    print(f"\n  max_domain_auc | {label} estimated | coverage | MAE   (default {settings.max_domain_auc}; interval with shift margin)")
    for limit in THRESHOLDS:
        def pick(row, limit=limit):
            auc = row.result.domain_auc
            return None if auc is None or auc > limit else row.unguarded
        n, cov, mae = summary(later, pick)
        print(f"  {limit:>14.2f} | {n:>3} of {len(later):<10} | {cov:>8.0%} | {mae:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", choices=["isotonic", "platt"], default=None, help="default: the settings' default")
    parser.add_argument("--no-weeks", action="store_true", help="months only")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from driftgate.config import Paths, load_params
    from driftgate.data.dataset import feature_schema, features_frame, load_dataset
    from driftgate.estimation import EstimationSettings, holdout_reference
    from driftgate.model.train import load

    start = time.perf_counter()
    paths = Paths(ROOT)
    params = load_params(ROOT / "params.yaml")
    dataset = load_dataset(paths.dataset)
    pipeline, _ = load(paths.model, paths.model_card)
    settings = EstimationSettings(**({"calibration": args.calibration} if args.calibration else {}))
    reference = holdout_reference(params, pipeline, dataset, settings)
    shift = reference.shift
    print(f"calibration: {settings.calibration} on the holdout ({reference.calibration.rows:,} rows, last "
          f"{params.windows.holdout_fraction:.0%} of {params.windows.train.label}), {len(reference.calibration.refits)} refits; "
          f"threshold {reference.threshold}")
    print(f"shift margin: {shift.blocks} holdout blocks ({settings.block}); misses rms {shift.rms_error:.3f}, bias {shift.bias:+.3f}, "
          f"sampling sd rms {np.sqrt(np.mean(np.square(shift.sampling_sds))):.3f} -> shift sd {shift.sd:.3f}")
    print(f"interval: {settings.coverage:.0%}; abstain under {settings.min_rows} rows or above domain AUC {settings.max_domain_auc}")
    schema = feature_schema(dataset, params.data)
    features = features_frame(dataset, schema)
    scores = pipeline.predict_proba(features)[:, 1]
    train_end = params.windows.train.end
    months = evaluate("M", dataset, scores, features, reference, train_end)
    print("\n" + table(months))
    report("months", months, settings)
    if not args.no_weeks:
        weeks = evaluate("W", dataset, scores, features, reference, train_end)
        report("weeks", weeks, settings)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
