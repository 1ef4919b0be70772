"""How often the promotion rule promotes an equally good challenger, and how often a better one.

    python benchmarks/promotion_rule.py [--challengers 200] [--max-iter 300] [--evaluation holdout|2013-04]
                                        [--trials 2000] [--out reports/benchmarks/promotion_rule.json]
                                        [--cache reports/benchmarks/promotion_rule_scores.npz]

Reads artifacts/dataset.parquet and params.yaml (`driftgate data && dvc repro validate`). Every
model is the project's pipeline (driftgate.model.train.fit) fitted like `driftgate train` does, on
windows.train minus its holdout, at the real size (model.max_iter 300 as in params.yaml; one fit
takes 1.5-3 s on one core, so the 201 fits take about 10 minutes with OMP_NUM_THREADS=1). All
models are scored on the same evaluation rows that none trained on: the holdout by default, or a
later labelled window. The fitted scores are kept in --cache (not part of the repository); a rerun
with the same fits, max_iter, evaluation rows, data and model settings reuses them, any other
settings refit.

The model's seed alone changes nothing: HistGradientBoostingClassifier without early stopping or
feature subsampling fits the same trees for every random_state (the benchmark checks this and
says so). So each model here is fitted on a bootstrap resample of the training rows drawn with
its seed: retraining on "the same data" then varies the way a real retraining on freshly
collected rows of the same process would.

The pool holds N + 1 such fits (fit 0 and N challengers). Every trial gives the rule a retraining
spread measured the way the controller measures it (retraining.replicas refits of the recipe on
resampled rows, driftgate.retraining.controller._refits): the sd (ddof=1) of the F1 of
`replicas` other fits of the pool, neither the trial's champion nor its challenger.

(a) Null: champion and challenger are two fits of the pool, equally good by construction. Share
    promoted, with a 95% Wilson interval, by the rule with the retraining spread (the current
    rule), by the rule without it (the paired rows-only bound, the previous rule), by the peers'
    point estimates on different rows (the champion's F1 on one random half of the evaluation rows,
    the challenger's on the other, promote if the difference reaches the margin), and by point
    estimates on the same rows with no interval. Each for a fixed champion (fit 0, challengers
    1..N), for --trials random pairs of distinct fits, and for --trials random pairs whose champion
    is among the 10% worst fits of the pool (an unlucky champion is where a null rule fails).
    Goal: at most 5% for the rule.
(b) Power: challengers made better by a known amount. "corrected champion": the champion with
    randomly chosen wrong decisions turned right until its F1 has risen by +0.01/+0.02/+0.03.
    "corrected retrain": another fit of the pool corrected the same way until its F1 is that far
    above the champion's (left as it is if it is already that far above), so the two still
    disagree on many rows as retrained models do. For the fixed champion (N trials) and for
    --trials random champions. Goal: at least 80% promoted at +0.02.

The intervals treat trials as independent. They are not quite: trials that share a fit are
correlated, and the fixed-champion column shares one champion, so it describes that champion only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GAINS = (0.01, 0.02, 0.03)
CACHE = ROOT / "reports" / "benchmarks" / "promotion_rule_scores.npz"
WORST = 0.10  # "unlucky champions": the lowest decile of the pool's F1
CACHE_FORMAT = 1  # bump when the way a fit is made changes


def _stop(message: str) -> None:
    print(f"promotion_rule.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def fitted_scores(count: int, max_iter: int, evaluation: str, cache: Path | None) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Labels of the evaluation rows, the scores of `count` fits (row 0: fit 0) and the threshold."""
    from pydantic import ValidationError

    from driftgate.config import Window, load_params
    from driftgate.data.dataset import feature_schema, features_frame, labels, load_dataset, select_window, time_split
    from driftgate.errors import DriftgateError
    from driftgate.model.train import fit

    dataset_path = ROOT / "artifacts" / "dataset.parquet"
    if not dataset_path.exists():
        _stop(f"{dataset_path} is missing: build it with `driftgate data && dvc repro validate`")
    try:
        params = load_params(ROOT / "params.yaml")
    except DriftgateError as error:
        _stop(str(error))
    params = params.model_copy(update={"model": params.model.model_copy(update={"max_iter": max_iter})})
    try:
        window = None if evaluation == "holdout" else Window.model_validate(evaluation)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        _stop(f"--evaluation {evaluation!r}: {reason}; use holdout or a labelled window such as 2013-04")
    settings = {
        "format": CACHE_FORMAT, "fits": count, "max_iter": max_iter, "evaluation": evaluation,
        "dataset_sha256": _sha256(dataset_path.read_bytes()),
        "recipe_sha256": _sha256(json.dumps([params.data.model_dump(mode="json"), params.windows.model_dump(mode="json"),
                                             params.model.model_dump(mode="json")], sort_keys=True, default=str)),
    }
    if cache is not None and cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                stored_settings = json.loads(str(stored["settings"]))
                if stored_settings == settings:
                    info = json.loads(str(stored["info"]))
                    print(f"reusing the {count} fits in {cache} (same settings)", file=sys.stderr)
                    shown = cache.resolve().relative_to(ROOT) if cache.resolve().is_relative_to(ROOT) else cache
                    return stored["y"], stored["scores"], float(stored["threshold"]), {**info, "from_cache": str(shown)}
                changed = sorted(k for k in settings if stored_settings.get(k) != settings[k])
                print(f"{cache} holds other settings ({', '.join(changed)} differ): refitting", file=sys.stderr)
        except (OSError, KeyError, ValueError) as error:
            print(f"{cache} cannot be read ({error}): refitting", file=sys.stderr)

    try:
        dataset = load_dataset(dataset_path)
        schema = feature_schema(dataset, params.data)
        fit_rows, holdout = time_split(select_window(dataset, params.windows.train, "train"), params.windows.holdout_fraction)
    except DriftgateError as error:
        _stop(str(error))
    if window is None:
        rows, label = holdout, f"holdout: last {params.windows.holdout_fraction:.0%} of {params.windows.train.label}"
    else:
        try:
            rows, label = select_window(dataset, window, "evaluation"), window.label
        except DriftgateError as error:
            _stop(f"--evaluation {evaluation!r}: {error.problem}; pick a labelled window inside the data, such as 2013-04")
    if len(rows) == 0:
        _stop(f"--evaluation {evaluation!r}: the window holds no rows of {dataset_path}; pick a labelled month such as 2013-04")
    features, y = features_frame(rows, schema), labels(rows)

    def seeded(seed: int, resample: bool) -> np.ndarray:
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
        done = seed + 1
        if done % 10 == 0 or done == count:
            elapsed = time.perf_counter() - started
            print(f"  fitted {done}/{count} ({elapsed:.0f} s, {elapsed / done:.2f} s per fit, "
                  f"about {elapsed / done * (count - done):.0f} s left)", file=sys.stderr)
    seconds = time.perf_counter() - started
    info = {"fit_rows": len(fit_rows), "evaluation": label, "evaluation_rows": len(y), "max_iter": max_iter,
            "seed_alone_changes_scores": bool(seeds_alone_matter), "fits": count, "fit_seconds": round(seconds, 1),
            "seconds_per_fit": round(seconds / count, 2), "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "from_cache": None}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, y=y, scores=scores, threshold=np.float64(params.model.threshold),
                            settings=np.str_(json.dumps(settings)), info=np.str_(json.dumps(info)))
        print(f"fitted scores -> {cache}", file=sys.stderr)
    return y, scores, float(params.model.threshold), info


def corrected(y: np.ndarray, pred: np.ndarray, target_f1: float, rng: np.random.Generator) -> np.ndarray | None:
    """`pred` with randomly chosen wrong decisions turned right, the fewest that lift F1 to `target_f1`
    (none if it is there already; None if no number of corrections gets there)."""
    positive = y == 1
    tp, fp, fn = np.sum(positive & pred), np.sum(~positive & pred), np.sum(positive & ~pred)
    if 2 * tp / max(2 * tp + fp + fn, 1) >= target_f1 - 1e-12:
        return pred.copy()
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


def share(promoted: int, trials: int) -> dict:
    """Share promoted with its 95% Wilson interval."""
    from scipy.stats import binomtest

    if trials == 0:
        return {"promoted": 0, "trials": 0, "share": None, "ci95": [None, None]}
    interval = binomtest(int(promoted), int(trials)).proportion_ci(0.95, method="wilson")
    return {"promoted": int(promoted), "trials": int(trials), "share": promoted / trials,
            "ci95": [float(interval.low), float(interval.high)]}


def run(args) -> dict:
    from driftgate.config import RetrainingConfig
    from driftgate.retraining.rule import decide, f1_at

    settings = RetrainingConfig()
    replicas, margin = settings.replicas, settings.margin
    fits = args.challengers + 1
    y, scores, threshold, info = fitted_scores(fits, args.max_iter, args.evaluation, args.cache)
    preds = scores >= threshold
    f1s = np.array([f1_at(y, s, threshold) for s in scores])
    order = np.argsort(f1s, kind="stable")
    worst = order[: max(1, int(np.ceil(WORST * fits)))]
    spreads: list[float] = []

    def spread(rng: np.random.Generator, *taken: int) -> float:
        """sd (ddof=1) of the F1 of `replicas` fits of the pool other than `taken`: the controller's measure."""
        others = np.setdiff1d(np.arange(fits), np.array(taken))
        sd = float(np.std(f1s[rng.choice(others, size=replicas, replace=False)], ddof=1))
        spreads.append(sd)
        return sd

    def pair(rng: np.random.Generator, champions: np.ndarray) -> tuple[int, int]:
        a = int(rng.choice(champions))
        b = int(rng.integers(fits - 1))
        return a, b + (b >= a)

    print("null trials ...", file=sys.stderr)
    started = time.perf_counter()
    rules = ("the rule with the retraining spread (current)", "the rule without it (rows-only bound, previous rule)",
             "point estimates on different rows (halves), diff >= margin", "point estimates on the same rows, no interval")
    columns = {"fixed champion (fit 0)": [(0, b) for b in range(1, fits)],
               "random pairs": None, f"champion among the {WORST:.0%} worst fits": None}
    rng = np.random.default_rng([12345, 1])
    columns["random pairs"] = [pair(rng, np.arange(fits)) for _ in range(args.trials)]
    columns[f"champion among the {WORST:.0%} worst fits"] = [pair(rng, worst) for _ in range(args.trials)]
    null: dict[str, dict[str, dict]] = {name: {} for name in rules}
    decisions, lowers = 0, []
    for c, (column, pairs) in enumerate(columns.items()):
        counts = np.zeros(len(rules), dtype=int)
        for k, (a, b) in enumerate(pairs):
            rule_settings = settings.model_copy(update={"seed": 100_000 * (c + 1) + k})
            with_spread = decide(y, scores[a], scores[b], threshold, threshold, rule_settings,
                                 retrain_sd=spread(rng, a, b), replicas=replicas)
            rows_only = decide(y, scores[a], scores[b], threshold, threshold, rule_settings)
            decisions += 2
            lowers.append(with_spread.lower)
            halves = rng.permutation(len(y))
            first, second = halves[: len(y) // 2], halves[len(y) // 2:]
            split = f1_at(y[second], scores[b][second], threshold) - f1_at(y[first], scores[a][first], threshold)
            counts += [with_spread.promote, rows_only.promote, split >= margin - 1e-12,
                       with_spread.difference >= margin - 1e-12]
        for name, promoted in zip(rules, counts):
            null[name][column] = share(promoted, len(pairs))
    rule_seconds = (time.perf_counter() - started) / max(decisions, 1)

    print("power trials ...", file=sys.stderr)
    power: dict[str, dict] = {}
    rng = np.random.default_rng([12345, 2])
    for kind in ("corrected champion", "corrected retrain"):
        for who, trials in (("fixed champion (fit 0)", args.challengers), ("random champions", args.trials)):
            for bound in ("with the retraining spread", "rows-only bound"):
                power[f"{kind} | {who} | {bound}"] = {}
            for gain in GAINS:
                counts, made, already, gains = np.zeros(2, dtype=int), 0, 0, []
                for trial in range(trials):
                    a = 0 if who.startswith("fixed") else int(rng.integers(fits))
                    if kind == "corrected champion":
                        base, taken = preds[a], (a,)
                    else:
                        b = 1 + trial if who.startswith("fixed") else pair(rng, np.array([a]))[1]
                        base, taken = preds[b], (a, b)
                    better = corrected(y, base, f1s[a] + gain, rng)
                    if better is None:
                        continue
                    made += 1
                    already += bool(np.array_equal(better, base))
                    rule_settings = settings.model_copy(update={"seed": 1_000_000 + trial})
                    with_spread = decide(y, scores[a], better.astype(float), threshold, 0.5, rule_settings,
                                         retrain_sd=spread(rng, *taken), replicas=replicas)
                    rows_only = decide(y, scores[a], better.astype(float), threshold, 0.5, rule_settings)
                    gains.append(with_spread.difference)
                    counts += [with_spread.promote, rows_only.promote]
                for bound, promoted in zip(("with the retraining spread", "rows-only bound"), counts):
                    power[f"{kind} | {who} | {bound}"][f"+{gain:.2f}"] = {
                        **share(promoted, made), "mean_gain": float(np.mean(gains)) if gains else None,
                        "already_that_far_above": already}

    challengers = f1s[1:]
    pool_sd = float(f1s.std(ddof=1))
    spread_values = np.array(spreads)
    power_02 = {key: shares["+0.02"] for key, shares in power.items() if key.endswith("with the retraining spread")}
    return {
        **info,
        "settings": {"margin": margin, "margin_kind": settings.margin_kind, "confidence": settings.confidence,
                     "draws": settings.draws, "replicas": replicas},
        "challengers": args.challengers,
        "trials": args.trials,
        "pool": {
            "f1_mean": float(f1s.mean()), "f1_sd": pool_sd, "f1_min": float(f1s.min()), "f1_max": float(f1s.max()),
            "worst_decile": {"fits": len(worst), "f1_at_most": float(f1s[worst].max())},
            "f1": [round(float(v), 6) for v in f1s],
        },
        "fixed_champion": {
            "f1": float(f1s[0]), "rank_from_worst": int(np.flatnonzero(order == 0)[0]) + 1, "of": fits,
            "z_vs_challengers": float((f1s[0] - challengers.mean()) / challengers.std(ddof=1)),
            "challenger_f1_mean": float(challengers.mean()), "challenger_f1_sd": float(challengers.std(ddof=1)),
        },
        "retrain_sd_given": {"mean": float(spread_values.mean()), "p05": float(np.quantile(spread_values, 0.05)),
                             "p95": float(np.quantile(spread_values, 0.95)), "trials": len(spread_values)},
        "null_lower_bound_mean": float(np.mean(lowers)),
        "rule_seconds_per_decision": rule_seconds,
        "null": null,
        "power": power,
        "goals": {
            **{f"null at most 5% (rule with the spread, {column})": {**entry, "met": bool(entry["share"] <= 0.05)}
               for column, entry in null[rules[0]].items()},
            **{"power at least 80% at +0.02 (" + ", ".join(key.split(" | ")[:2]) + ")":
               {**entry, "met": bool(entry["share"] is not None and entry["share"] >= 0.8)} for key, entry in power_02.items()},
        },
    }


def _cell(entry: dict) -> str:
    if entry["share"] is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['share']:.1%} [{low:.1%}, {high:.1%}]"


def markdown(result: dict) -> str:
    pool, fixed, given, rule = result["pool"], result["fixed_champion"], result["retrain_sd_given"], result["settings"]
    fitting = (f"fitting took {result['fit_seconds']:.0f} s ({result['seconds_per_fit']:.2f} s per fit, "
               f"OMP_NUM_THREADS={result['omp_num_threads']})")
    if result["from_cache"]:
        fitting += f"; the scores were reused from {Path(result['from_cache']).name}"
    lines = [
        f"# Promotion rule: {result['evaluation']}",
        "",
        f"Evaluation: {result['evaluation']} ({result['evaluation_rows']:,} rows). Pool: {result['fits']} fits of the "
        f"project's pipeline (max_iter {result['max_iter']}), each on a bootstrap resample of the {result['fit_rows']:,} "
        f"training rows drawn with its seed (model.seed alone changes the scores: {result['seed_alone_changes_scores']}); "
        f"{fitting}.",
        "",
        f"Pool F1 {pool['f1_mean']:.4f} ± {pool['f1_sd']:.4f} (sd), {pool['f1_min']:.4f} to {pool['f1_max']:.4f}; "
        f"its {pool['worst_decile']['fits']} worst fits have F1 <= {pool['worst_decile']['f1_at_most']:.4f}. "
        f"Fixed champion (fit 0): F1 {fixed['f1']:.4f}, rank {fixed['rank_from_worst']} of {fixed['of']} from the worst, "
        f"z = {fixed['z_vs_challengers']:+.2f} against its challengers ({fixed['challenger_f1_mean']:.4f} ± "
        f"{fixed['challenger_f1_sd']:.4f}).",
        "",
        f"Rule: margin {rule['margin']} ({rule['margin_kind']}), one-sided {rule['confidence']:.0%} paired bootstrap lower "
        f"bound > 0 ({rule['draws']} draws), {result['rule_seconds_per_decision'] * 1000:.1f} ms per decision. Retraining "
        f"spread given per trial: the F1 sd of {rule['replicas']} other fits of the pool, mean {given['mean']:.4f} "
        f"(5-95%: {given['p05']:.4f} to {given['p95']:.4f}).",
        "",
        "## Null: equally good challengers (goal: at most 5% promoted)",
        "",
        "Share promoted [95% Wilson interval]; fixed champion: its "
        f"{result['challengers']} challengers; the other columns: {result['trials']} random pairs of distinct fits each.",
        "",
    ]
    columns = list(next(iter(result["null"].values())))
    lines += ["| rule | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(_cell(cells[c]) for c in columns) + " |" for name, cells in result["null"].items()]
    lines += ["", "## Power: challengers better by a known margin (goal: at least 80% promoted at +0.02)", "",
              f"Share promoted [95% Wilson interval]; fixed champion: {result['challengers']} trials, random champions: "
              f"{result['trials']}. A corrected retrain already that far above the champion is left as it is "
              "(its gain is then larger; counted in the JSON).", "",
              "| challenger | champion | bound | " + " | ".join(f"+{g:.2f}" for g in GAINS) + " |",
              "|---|---|---|" + "---:|" * len(GAINS)]
    for key, shares in result["power"].items():
        kind, who, bound = key.split(" | ")
        lines.append(f"| {kind} | {who} | {bound} | " + " | ".join(_cell(s) for s in shares.values()) + " |")
    lines += ["", "## Goals", "", "Met or not by the measured share; the interval says how sure that is.", "",
              "| goal | measured | met |", "|---|---:|---|"]
    lines += [f"| {goal} | {_cell(entry)} | {'yes' if entry['met'] else 'no'} |" for goal, entry in result["goals"].items()]
    lines += ["", "The intervals treat trials as independent; trials sharing a fit are correlated, and the fixed-champion "
              "column describes that one champion."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--challengers", type=int, default=200, help="N: the pool holds N + 1 fits")
    parser.add_argument("--max-iter", type=int, default=300, help="model.max_iter of every fit (params.yaml: 300)")
    parser.add_argument("--evaluation", default="holdout", help="holdout, or a labelled window such as 2013-04")
    parser.add_argument("--trials", type=int, default=2000, help="random pairs / random champions per row")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here, and the summary next to it (.md)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="fitted scores kept between runs (not committed)")
    args = parser.parse_args()
    from driftgate.config import RetrainingConfig

    replicas = RetrainingConfig().replicas
    if args.challengers < replicas + 1:
        _stop(f"--challengers {args.challengers}: each trial needs {replicas} fits besides its champion and challenger; "
              f"use {replicas + 1} or more (200 by default)")
    if args.trials < 1 or args.max_iter < 1:
        _stop("--trials and --max-iter must be 1 or more")
    result = run(args)
    summary = markdown(result)
    print(summary)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(summary + "\n")
        print(f"\nfigures -> {args.out}, summary -> {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
