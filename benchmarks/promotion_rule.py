"""How often the promotion rule promotes an equally good challenger, and how often a better one.

    python benchmarks/promotion_rule.py [--challengers 200] [--max-iter 60] [--evaluation holdout|2013-04]
                                        [--trials 200] [--out reports/benchmarks/promotion_rule.json]

Reads artifacts/dataset.parquet and params.yaml (`driftgate data && dvc repro validate`). Every
model is the project's pipeline (driftgate.model.train.fit) fitted like `driftgate train` does, on
windows.train minus its holdout, but smaller: model.max_iter is set to --max-iter (60 by default,
300 in params.yaml) so that 200+ fits finish in minutes. All models are scored on the same
evaluation rows that none trained on: the holdout by default, or a later labelled window.

The model's seed alone changes nothing: HistGradientBoostingClassifier without early stopping or
feature subsampling fits the same trees for every random_state (the benchmark checks this and
says so). So each model here is fitted on a bootstrap resample of the training rows drawn with
its seed: retraining on "the same data" then varies the way a real retraining on freshly
collected rows of the same process would.

(a) Null: the champion (seed 0) and N challengers (seeds 1..N) are equally good by construction.
    Share promoted by the rule, and, for contrast, by point estimates on different rows (the
    champion's F1 on one random half of the evaluation rows, the challenger's on the other,
    promote if the difference reaches the margin) and by point estimates on the same rows with
    no interval. Goal: at most 5% for the rule.
(b) Power: challengers made better by a known amount. "corrected champion": the champion with
    randomly chosen wrong decisions turned right until its F1 has risen by +0.01/+0.02/+0.03.
    "corrected retrain": a null challenger (another seed) corrected the same way until its F1 is
    that far above the champion's, so the two still disagree on many rows as retrained models do.
    Goal: at least 80% promoted at +0.02.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GAINS = (0.01, 0.02, 0.03)


def fitted_scores(count: int, max_iter: int, evaluation: str) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Labels of the evaluation rows and the scores of `count` models (row 0: the champion)."""
    from driftgate.config import load_params
    from driftgate.data.dataset import feature_schema, features_frame, labels, load_dataset, select_window, time_split
    from driftgate.model.train import fit

    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={"model": params.model.model_copy(update={"max_iter": max_iter})})
    dataset = load_dataset(ROOT / "artifacts" / "dataset.parquet")
    schema = feature_schema(dataset, params.data)
    fit_rows, holdout = time_split(select_window(dataset, params.windows.train, "train"), params.windows.holdout_fraction)
    if evaluation == "holdout":
        rows, label = holdout, f"holdout: last {params.windows.holdout_fraction:.0%} of {params.windows.train.label}"
    else:
        from driftgate.config import Window

        window = Window.model_validate(evaluation)
        rows, label = select_window(dataset, window, "evaluation"), window.label
    features, y = features_frame(rows, schema), labels(rows)

    def seeded(seed: int, resample: bool):
        model = params.model.model_copy(update={"seed": seed})
        frame = fit_rows
        if resample:
            picked = np.random.default_rng(seed).integers(0, len(fit_rows), size=len(fit_rows))
            frame = fit_rows.iloc[picked]
        return fit(frame, params.model_copy(update={"model": model}), schema).predict_proba(features)[:, 1]

    same_rows = [seeded(seed, resample=False) for seed in (0, 1)]
    seeds_alone_matter = not np.array_equal(*same_rows)
    print(f"model.seed alone changes the scores: {seeds_alone_matter} (so each fit uses a bootstrap resample of "
          f"the {len(fit_rows):,} training rows, drawn with its seed)", file=sys.stderr)
    scores = np.empty((count, len(y)))
    started = time.perf_counter()
    for seed in range(count):
        scores[seed] = seeded(seed, resample=True)
        if seed % 20 == 0:
            print(f"  fitted {seed + 1}/{count} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    info = {"fit_rows": len(fit_rows), "evaluation": label, "evaluation_rows": len(y), "max_iter": max_iter,
            "seed_alone_changes_scores": bool(seeds_alone_matter), "fit_seconds": round(time.perf_counter() - started, 1)}
    return y, scores, params.model.threshold, info


def corrected(y: np.ndarray, pred: np.ndarray, target_f1: float, rng: np.random.Generator) -> np.ndarray | None:
    """`pred` with randomly chosen wrong decisions turned right, the fewest that lift F1 to `target_f1`."""
    positive = y == 1
    tp, fp, fn = np.sum(positive & pred), np.sum(~positive & pred), np.sum(positive & ~pred)
    wrong = rng.permutation(np.flatnonzero(pred != positive))
    missed = positive[wrong]  # a false negative turned right adds a TP; a false positive turned right removes an FP
    tps = tp + np.cumsum(missed)
    fps = fp - np.cumsum(~missed)
    fns = fn - np.cumsum(missed)
    f1 = 2 * tps / (2 * tps + fps + fns)
    reached = np.flatnonzero(f1 >= target_f1 - 1e-12)
    if not reached.size:
        return None
    out = pred.copy()
    out[wrong[: reached[0] + 1]] = positive[wrong[: reached[0] + 1]]
    return out


def run(args) -> dict:
    from driftgate.config import RetrainingConfig
    from driftgate.retraining.rule import decide, f1_at

    settings = RetrainingConfig()
    y, scores, threshold, info = fitted_scores(args.challengers + 1, args.max_iter, args.evaluation)
    champion = scores[0]
    champion_f1 = f1_at(y, champion, threshold)
    f1s = np.array([f1_at(y, s, threshold) for s in scores])
    margin = settings.margin
    rng = np.random.default_rng(12345)

    started = time.perf_counter()
    rule, halves, same = [], [], []
    lowers = []
    for i in range(1, len(scores)):
        decision = decide(y, champion, scores[i], threshold, threshold, settings.model_copy(update={"seed": i}))
        rule.append(decision.promote)
        lowers.append(decision.lower)
        same.append(decision.difference >= margin - 1e-12)
        order = rng.permutation(len(y))
        first, second = order[: len(y) // 2], order[len(y) // 2:]
        halves.append(f1_at(y[second], scores[i][second], threshold) - f1_at(y[first], champion[first], threshold) >= margin)
    rule_seconds = (time.perf_counter() - started) / (len(scores) - 1)

    # The same null over random pairs of seeds, so one lucky or unlucky champion does not decide it.
    pairs = rng.choice(len(scores), size=(args.trials, 2), replace=True)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pair_rule = [decide(y, scores[a], scores[b], threshold, threshold, settings.model_copy(update={"seed": 10_000 + k})).promote
                 for k, (a, b) in enumerate(pairs)]

    power: dict[str, dict[str, float]] = {"corrected champion": {}, "corrected retrain": {}}
    champion_pred = champion >= threshold
    for gain in GAINS:
        for kind in power:
            promoted, made = 0, 0
            for trial in range(args.trials):
                base = champion_pred if kind == "corrected champion" else scores[1 + trial % args.challengers] >= threshold
                better = corrected(y, base, champion_f1 + gain, rng)
                if better is None:
                    continue
                made += 1
                decision = decide(y, champion, better.astype(float), threshold, 0.5,
                                  settings.model_copy(update={"seed": 20_000 + trial}))
                promoted += decision.promote
            power[kind][f"+{gain:.2f}"] = promoted / made if made else float("nan")

    differences = f1s[1:] - champion_f1
    return {
        **info,
        "settings": {"margin": margin, "margin_kind": settings.margin_kind, "confidence": settings.confidence,
                     "draws": settings.draws},
        "challengers": args.challengers,
        "trials": args.trials,
        "champion_f1": champion_f1,
        "challenger_f1_mean": float(f1s[1:].mean()),
        "challenger_f1_sd": float(f1s[1:].std(ddof=1)),
        "difference_sd": float(differences.std(ddof=1)),
        "lower_bound_mean": float(np.mean(lowers)),
        "rule_seconds_per_decision": rule_seconds,
        "null": {
            "rule (paired, same rows, margin + 95% lower bound)": float(np.mean(rule)),
            "point estimates on different rows (halves), diff >= margin": float(np.mean(halves)),
            "point estimates on the same rows, no interval": float(np.mean(same)),
            "rule, random pairs of seeds": float(np.mean(pair_rule)),
        },
        "power": power,
    }


def markdown(result: dict) -> str:
    lines = [
        f"Evaluation: {result['evaluation']} ({result['evaluation_rows']:,} rows); models fitted on "
        f"{result['fit_rows']:,} rows with max_iter {result['max_iter']} (bootstrap resample per seed; "
        f"model.seed alone changes the scores: {result['seed_alone_changes_scores']}).",
        f"Champion F1 {result['champion_f1']:.4f}; challengers' F1 {result['challenger_f1_mean']:.4f} "
        f"± {result['challenger_f1_sd']:.4f} (sd); sd of the difference {result['difference_sd']:.4f}; "
        f"rule: {result['rule_seconds_per_decision'] * 1000:.1f} ms per decision ({result['settings']['draws']} draws).",
        "",
        f"(a) Null: {result['challengers']} equally good challengers (margin {result['settings']['margin']} "
        f"{result['settings']['margin_kind']})",
        "",
        "| rule | share promoted |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {share:.1%} |" for name, share in result["null"].items()]
    lines += ["", f"(b) Power: {result['trials']} trials per gain", "",
              "| challenger | " + " | ".join(f"+{g:.2f}" for g in GAINS) + " |",
              "|---|" + "---:|" * len(GAINS)]
    lines += [f"| {kind} | " + " | ".join(f"{share:.1%}" for share in shares.values()) + " |"
              for kind, shares in result["power"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--challengers", type=int, default=200)
    parser.add_argument("--max-iter", type=int, default=60)
    parser.add_argument("--evaluation", default="holdout", help="holdout, or a labelled window such as 2013-04")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    result = run(args)
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nfigures -> {args.out}")


if __name__ == "__main__":
    main()
