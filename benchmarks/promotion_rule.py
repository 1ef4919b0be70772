"""How often the promotion rule, which compares recipes, promotes an equally good recipe, and how often a better one.

    python benchmarks/promotion_rule.py [--challengers 200] [--max-iter 300] [--evaluation holdout|2013-04]
                                        [--trials 2000] [--out reports/benchmarks/promotion_rule.json]
                                        [--cache reports/benchmarks/promotion_rule_scores.npz]

Reads artifacts/dataset.parquet and params.yaml (`driftgate data && dvc repro validate`). Every
model is the project's pipeline (driftgate.model.train.fit) fitted like `driftgate train` does, on
windows.train minus its holdout, at the real size (model.max_iter 300 as in params.yaml; one fit
takes 1.5-3.5 s on one core, so the 201 fits take about 10 minutes with OMP_NUM_THREADS=1). All
models are scored on the same evaluation rows that none trained on: the holdout by default, or a
later labelled window. The fitted scores are kept in --cache (not part of the repository); a rerun
with the same fits, max_iter, evaluation rows, data and model settings reuses them, any other
settings refit.

The model's seed alone changes nothing: HistGradientBoostingClassifier without early stopping or
feature subsampling fits the same trees for every random_state (the benchmark checks this and
says so). So each model here is fitted on a bootstrap resample of the training rows drawn with
its seed: retraining on "the same data" then varies the way a real retraining on freshly
collected rows of the same process would, and the way the controller's refits do
(driftgate.retraining.controller._refits).

The rule is driftgate.retraining.rule.decide as the controller calls it, with params.yaml's
retraining settings: with retraining.replicas = R >= 2 it is given the F1s of R refits of each
recipe (champion_refits=, challenger_refits=) and compares the mean F1s of the 1 + R fits of each
side; with R = 0 it compares the two models with the rows' noise only. A retraining then fits
2R + 1 models (the challenger and R refits of each recipe). The pool holds N + 1 fits of one
recipe (fit 0 and N others); each trial takes 2R + 2 distinct fits of it: the champion model and
its R refits, the challenger model and its R refits.

(a) Null: champion and challenger recipes are the same recipe, so equally good by construction.
    Share promoted, with a 95% Wilson interval, by the rule (R refits per side), by the recipes'
    mean F1s with no interval (difference >= margin), by the rows-only paired bound (decide
    without refits: two models, the rule before refits), by the peers' point estimates on
    different rows (the champion's F1 on one random half of the evaluation rows, the
    challenger's on the other, promote if the difference reaches the margin), and by the two
    models' point estimates on the same rows with no interval. Each for a fixed champion model
    (fit 0, challengers 1..N), for --trials random draws, and for --trials draws whose champion
    model is among the 10% worst fits of the pool (an unlucky champion is where a null rule
    fails). Goal: at most 5% for the rule.
(b) Power: challenger recipes better by a known amount, made by turning randomly chosen wrong
    decisions right (the fewest that lift F1 by the gain). "corrected champion": the challenger
    model is the champion model corrected to +0.01/+0.02/+0.03 above it, and each of its R
    refits is one of the champion's refits corrected the same way above itself. "corrected
    retrain": the challenger is another fit corrected to the gain above itself, and its refits
    are R other fits each corrected to the gain above itself, so the recipe is better by the
    gain while its model may be above or below the champion's, as a retrained model is. For
    the fixed champion (N trials) and for --trials random champions. Goal: at least 80%
    promoted at +0.02.
(c) R sweep: the rule's null (random draws and worst-decile champions) and its power at +0.02
    (random champions) for R in 0, 4, 8 and 16, on the same draws (the first R refits of 16),
    with the fits and the time a retraining then takes.

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
SWEEP = (0, 4, 8, 16)  # retraining.replicas values compared
SWEEP_GAIN = 0.02  # the gain the power goal and the sweep use
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
    from driftgate.config import load_params
    from driftgate.retraining.rule import decide, f1_at

    settings = load_params(ROOT / "params.yaml").retraining
    replicas, margin = settings.replicas, settings.margin
    sweep = sorted(set(SWEEP) | {replicas})
    deepest = max(sweep)
    fits = args.challengers + 1
    y, scores, threshold, info = fitted_scores(fits, args.max_iter, args.evaluation, args.cache)
    preds = scores >= threshold
    f1s = np.array([f1_at(y, s, threshold) for s in scores])
    order = np.argsort(f1s, kind="stable")
    worst = order[: max(1, int(np.ceil(WORST * fits)))]
    everyone = np.arange(fits)
    timing = {"seconds": 0.0, "decisions": 0}
    spreads: list[float] = []

    def draw(rng: np.random.Generator, champions: np.ndarray, challenger: int | None = None):
        """(champion model, challenger model, the champion's `deepest` refits, the challenger's): distinct fits."""
        a = int(rng.choice(champions))
        rest = rng.permutation(np.setdiff1d(everyone, [a] if challenger is None else [a, challenger]))
        if challenger is None:
            challenger, rest = int(rest[0]), rest[1:]
        return a, int(challenger), rest[:deepest], rest[deepest:2 * deepest]

    def rule(a: int, challenger_scores: np.ndarray, challenger_threshold: float, champion_refits: np.ndarray,
             challenger_refits: np.ndarray, count: int, seed: int):
        """decide() as the controller calls it with retraining.replicas = count (0: no refits)."""
        rule_settings = settings.model_copy(update={"seed": seed})
        extra = {} if count == 0 else {"champion_refits": champion_refits[:count], "challenger_refits": challenger_refits[:count]}
        started = time.perf_counter()
        decision = decide(y, scores[a], challenger_scores, threshold, challenger_threshold, rule_settings, **extra)
        timing["seconds"] += time.perf_counter() - started
        timing["decisions"] += 1
        return decision

    def lifted(indices: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray | None:
        """F1 of each fit in `indices` corrected to `gain` above itself (None if one cannot get there)."""
        found = [corrected(y, preds[i], f1s[i] + gain, rng) for i in indices]
        if any(better is None for better in found):
            return None
        return np.array([f1_at(y, better.astype(float), 0.5) for better in found])

    print("null trials ...", file=sys.stderr)
    rules = (f"the rule: recipes, {replicas} refits per side (current)",
             f"the recipes' mean F1s ({replicas} refits per side), no interval",
             "rows-only paired bound, no refits (the rule before refits)",
             "point estimates on different rows (halves), diff >= margin",
             "point estimates on the same rows, no interval")
    worst_name = f"champion among the {WORST:.0%} worst fits"
    rng = np.random.default_rng([12345, 1])
    columns = {"fixed champion (fit 0)": [draw(rng, np.array([0]), b) for b in range(1, fits)],
               "random draws": [draw(rng, everyone) for _ in range(args.trials)],
               worst_name: [draw(rng, worst) for _ in range(args.trials)]}
    null: dict[str, dict[str, dict]] = {name: {} for name in rules}
    null_sweep: dict[str, dict[int, int]] = {"random draws": dict.fromkeys(sweep, 0), worst_name: dict.fromkeys(sweep, 0)}
    lowers = []
    for c, (column, trials) in enumerate(columns.items()):
        counts = np.zeros(len(rules), dtype=int)
        for k, (a, b, champion_fits, challenger_fits) in enumerate(trials):
            seed = 100_000 * (c + 1) + k
            champion_refits, challenger_refits = f1s[champion_fits], f1s[challenger_fits]
            counted = sweep if column in null_sweep else sorted({0, replicas})
            decisions = {r: rule(a, scores[b], threshold, champion_refits, challenger_refits, r, seed) for r in counted}
            for r in counted if column in null_sweep else ():
                null_sweep[column][r] += decisions[r].promote
            current, rows_only = decisions[replicas], decisions[0]
            lowers.append(current.lower)
            if replicas:
                spreads.extend([current.champion_sd, current.challenger_sd])
            halves = rng.permutation(len(y))
            first, second = halves[: len(y) // 2], halves[len(y) // 2:]
            split = f1_at(y[second], scores[b][second], threshold) - f1_at(y[first], scores[a][first], threshold)
            counts += [current.promote, current.difference >= current.required - 1e-12, rows_only.promote,
                       split >= margin - 1e-12, rows_only.difference >= margin - 1e-12]
        for name, promoted in zip(rules, counts):
            null[name][column] = share(promoted, len(trials))

    print("power trials ...", file=sys.stderr)
    bounds = (f"the rule: recipes, {replicas} refits per side", "rows-only paired bound, no refits")
    power: dict[str, dict] = {}
    power_sweep: dict[str, dict[int, int]] = {}
    power_trials: dict[str, int] = {}
    rng = np.random.default_rng([12345, 2])
    for kind in ("corrected champion", "corrected retrain"):
        for who, count in (("fixed champion (fit 0)", args.challengers), ("random champions", args.trials)):
            fixed = who.startswith("fixed")
            for bound in bounds:
                power[f"{kind} | {who} | {bound}"] = {}
            for gain in GAINS:
                swept = not fixed and abs(gain - SWEEP_GAIN) < 1e-12
                counted = sweep if swept else sorted({0, replicas})
                promoted, made, differences = dict.fromkeys(counted, 0), 0, ([], [])
                for trial in range(count):
                    a, b, champion_fits, challenger_fits = (draw(rng, np.array([0]), 1 + trial) if fixed
                                                            else draw(rng, everyone))
                    model, refitted = (a, champion_fits) if kind == "corrected champion" else (b, challenger_fits)
                    better = corrected(y, preds[model], f1s[model] + gain, rng)
                    challenger_refits = lifted(refitted[: max(counted)], gain, rng)
                    if better is None or challenger_refits is None:
                        continue
                    made += 1
                    seed = 1_000_000 + trial
                    decisions = {r: rule(a, better.astype(float), 0.5, f1s[champion_fits], challenger_refits, r, seed)
                                 for r in counted}
                    for r in counted:
                        promoted[r] += decisions[r].promote
                    differences[0].append(decisions[replicas].difference)
                    differences[1].append(decisions[0].difference)
                for bound, r, found in zip(bounds, (replicas, 0), differences):
                    power[f"{kind} | {who} | {bound}"][f"+{gain:.2f}"] = {
                        **share(promoted[r], made), "mean_difference": float(np.mean(found)) if found else None}
                if swept:
                    power_sweep[kind], power_trials[kind] = promoted, made

    seconds_per_fit = info.get("seconds_per_fit")
    r_sweep = [{"replicas": r, "fits_per_retraining": 2 * r + 1,
                "fit_seconds_per_retraining": round((2 * r + 1) * seconds_per_fit, 1) if seconds_per_fit else None,
                "null_random_draws": share(null_sweep["random draws"][r], args.trials),
                "null_worst_champions": share(null_sweep[worst_name][r], args.trials),
                **{f"power_{SWEEP_GAIN:+.2f}_{kind.replace(' ', '_')}": share(power_sweep[kind][r], power_trials[kind])
                   for kind in power_sweep}}
               for r in sweep]
    challengers = f1s[1:]
    spread_values = np.array(spreads)
    power_goal = {key: shares[f"+{SWEEP_GAIN:.2f}"] for key, shares in power.items() if key.endswith(bounds[0])}
    return {
        **info,
        "settings": {"margin": margin, "margin_kind": settings.margin_kind, "confidence": settings.confidence,
                     "draws": settings.draws, "replicas": replicas},
        "challengers": args.challengers,
        "trials": args.trials,
        "pool": {
            "f1_mean": float(f1s.mean()), "f1_sd": float(f1s.std(ddof=1)), "f1_min": float(f1s.min()),
            "f1_max": float(f1s.max()), "worst_decile": {"fits": len(worst), "f1_at_most": float(f1s[worst].max())},
            "f1": [round(float(v), 6) for v in f1s],
        },
        "fixed_champion": {
            "f1": float(f1s[0]), "rank_from_worst": int(np.flatnonzero(order == 0)[0]) + 1, "of": fits,
            "z_vs_challengers": float((f1s[0] - challengers.mean()) / challengers.std(ddof=1)),
            "challenger_f1_mean": float(challengers.mean()), "challenger_f1_sd": float(challengers.std(ddof=1)),
        },
        "refit_sd_per_side": {"mean": float(spread_values.mean()), "p05": float(np.quantile(spread_values, 0.05)),
                              "p95": float(np.quantile(spread_values, 0.95)), "sides": len(spread_values)},
        "null_lower_bound_mean": float(np.mean(lowers)),
        "rule_seconds_per_decision": timing["seconds"] / max(timing["decisions"], 1),
        "null": null,
        "power": power,
        "replicas_sweep": r_sweep,
        "goals": {
            **{f"null at most 5% (the rule, {column})": {**entry, "met": bool(entry["share"] <= 0.05)}
               for column, entry in null[rules[0]].items()},
            **{f"power at least 80% at +{SWEEP_GAIN:.2f} (" + ", ".join(key.split(" | ")[:2]) + ")":
               {**entry, "met": bool(entry["share"] is not None and entry["share"] >= 0.8)}
               for key, entry in power_goal.items()},
        },
    }


def _cell(entry: dict) -> str:
    if entry["share"] is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['share']:.1%} [{low:.1%}, {high:.1%}]"


def markdown(result: dict) -> str:
    pool, fixed, given, rule = result["pool"], result["fixed_champion"], result["refit_sd_per_side"], result["settings"]
    fitting = (f"fitting took {result['fit_seconds']:.0f} s ({result['seconds_per_fit']:.2f} s per fit, "
               f"OMP_NUM_THREADS={result['omp_num_threads']})")
    if result["from_cache"]:
        fitting += f"; the scores were reused from {Path(result['from_cache']).name}"
    replicas = rule["replicas"]
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
        f"Rule (params.yaml's retraining): margin {rule['margin']} ({rule['margin_kind']}), replicas {replicas}: each "
        f"side is its model and {replicas} refits of its recipe, the mean F1s of the {replicas + 1} fits decide, and the "
        f"one-sided {rule['confidence']:.0%} lower bound of their difference (the pair's paired bootstrap rows' noise, "
        f"{rule['draws']} draws, plus se x t(df), Welch) must be above 0; {result['rule_seconds_per_decision'] * 1000:.1f} "
        f"ms per decision. Each trial takes {2 * replicas + 2} distinct fits of the pool; the refits' F1 sd per side was "
        f"{given['mean']:.4f} on average (5-95%: {given['p05']:.4f} to {given['p95']:.4f}).",
        "",
        "## Null: equally good recipes (goal: at most 5% promoted)",
        "",
        "Share promoted [95% Wilson interval]; fixed champion: its "
        f"{result['challengers']} challengers; the other columns: {result['trials']} random draws of distinct fits each.",
        "",
    ]
    columns = list(next(iter(result["null"].values())))
    lines += ["| rule | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(_cell(cells[c]) for c in columns) + " |" for name, cells in result["null"].items()]
    lines += ["", "## Power: recipes better by a known margin (goal: at least 80% promoted at +0.02)", "",
              f"Share promoted [95% Wilson interval]; fixed champion: {result['challengers']} trials, random champions: "
              f"{result['trials']}. Corrected champion: the challenger model and each of its refits are the champion "
              "model and its refits corrected by the gain. Corrected retrain: the challenger and its refits are other "
              "fits, each corrected by the gain above itself. +0.01 is the margin itself: a recipe exactly that much better "
              "falls under it about as often as over it.", "",
              "| challenger | champion | bound | " + " | ".join(f"+{g:.2f}" for g in GAINS) + " |",
              "|---|---|---|" + "---:|" * len(GAINS)]
    for key, shares in result["power"].items():
        kind, who, bound = key.split(" | ")
        lines.append(f"| {kind} | {who} | {bound} | " + " | ".join(_cell(s) for s in shares.values()) + " |")
    sweep = result["replicas_sweep"]
    power_keys = [k for k in sweep[0] if k.startswith("power_")]
    lines += ["", "## retraining.replicas: what more refits buy", "",
              f"The same draws for every R (the first R of 16 refits per side); {result['trials']} trials per cell. "
              "R = 0 is decide() without refits. Fit time per retraining: fits x the pool's seconds per fit.", "",
              "| R | fits per retraining | fit time | null, random draws | null, champion among the 10% worst | "
              + " | ".join(f"power {k.split('_')[1]}, {k.split('_', 2)[2].replace('_', ' ')}" for k in power_keys) + " |",
              "|---:|---:|---:|---:|---:|" + "---:|" * len(power_keys)]
    for row in sweep:
        time_cell = f"{row['fit_seconds_per_retraining']:.0f} s" if row["fit_seconds_per_retraining"] is not None else "n/a"
        lines.append(f"| {row['replicas']} | {row['fits_per_retraining']} | {time_cell} | {_cell(row['null_random_draws'])} | "
                     f"{_cell(row['null_worst_champions'])} | " + " | ".join(_cell(row[k]) for k in power_keys) + " |")
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
    parser.add_argument("--trials", type=int, default=2000, help="random draws / random champions per row")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here, and the summary next to it (.md)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="fitted scores kept between runs (not committed)")
    args = parser.parse_args()
    from driftgate.config import load_params
    from driftgate.errors import DriftgateError

    try:
        replicas = load_params(ROOT / "params.yaml").retraining.replicas
    except DriftgateError as error:
        _stop(str(error))
    deepest = max(max(SWEEP), replicas)
    if args.challengers < 2 * deepest + 1:
        _stop(f"--challengers {args.challengers}: a trial with {deepest} refits per side needs {2 * deepest + 2} distinct "
              f"fits; use {2 * deepest + 1} or more (200 by default)")
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
