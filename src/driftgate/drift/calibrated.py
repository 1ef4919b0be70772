"""Calibrated drift mode: the same scores as Evidently's defaults, with thresholds that hold a
known false-alarm rate.

Evidently's fixed thresholds raise false alarms: chi-square gives p = 0 as soon as a category is
new in the current data, and Jensen-Shannon on a column with many categories crosses 0.1 from
sampling noise alone. In calibrated mode, per column:

1. Rare categories are pooled: categories with a reference share below ``pool_below``, and
   categories new in the current data, count as one "(other)" bucket (new ones are still
   listed as findings).
2. The column keeps its default test's score (Wasserstein normed, Jensen-Shannon, ...), and
   its p-value comes from reference-vs-reference resampling: ``draws`` pairs of samples of the
   reference and current sizes are drawn with replacement from the reference, and the p-value
   is the share of their scores at or above the observed one (with the usual +1 correction).
   Above ``RESAMPLE_CAP`` rows the null is drawn at the cap and rescaled by
   sqrt((1/n + 1/m) / (1/n' + 1/m')), the rate at which these scores shrink with sample size.
3. The p-values of all columns are corrected together (Benjamini-Hochberg by default, or
   Bonferroni) at level ``alpha``. A column drifts when its corrected test rejects. When no
   column truly drifts, both corrections keep the chance of any alarm at or below ``alpha``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from driftgate.drift.stattests import (
    CategoricalSummary,
    ColumnDrift,
    ColumnKind,
    NumericSummary,
    Summary,
    run_test,
    select_test,
)

CORRECTIONS = ("bh", "bonferroni")

RESAMPLE_CAP = 20_000
OTHER = "(other)"


def pool_rare(reference: CategoricalSummary, current: CategoricalSummary, pool_below: float) -> tuple[CategoricalSummary, CategoricalSummary]:
    """Merge rare reference categories and categories new in `current` into one bucket."""
    shares = reference.counts / reference.counts.sum()
    keep = set(shares[shares >= pool_below].index)

    def pooled(summary: CategoricalSummary) -> CategoricalSummary:
        counts = summary.counts
        kept = counts[counts.index.isin(keep)]
        other = counts[~counts.index.isin(keep)].sum()
        if other > 0:
            kept = pd.concat([kept, pd.Series({OTHER: other})])
        return CategoricalSummary(kept.astype(float), summary.missing)

    return pooled(reference), pooled(current)


def null_scores(reference: Summary, test: str, kind: ColumnKind, n_current: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Scores of `test` between two samples of the reference, at the frames' sizes."""
    n_ref = reference.n
    n, m = min(n_ref, RESAMPLE_CAP), min(n_current, RESAMPLE_CAP)
    scale = math.sqrt((1 / n_ref + 1 / n_current) / (1 / n + 1 / m))
    if isinstance(reference, NumericSummary) and reference.weights is None:
        values = reference.values

        def draw(size: int) -> Summary:
            return NumericSummary(np.sort(rng.choice(values, size)), 0)
    elif isinstance(reference, NumericSummary):  # counts per value (or per bin): draw by inverse CDF
        values, cdf = reference.values, np.cumsum(reference.weights)

        def draw(size: int) -> Summary:
            picks = np.searchsorted(cdf, rng.random(size) * cdf[-1], "right")
            return NumericSummary(np.sort(values[np.minimum(picks, len(values) - 1)]), 0)
    else:
        shares = reference.counts.to_numpy() / reference.counts.sum()

        def draw(size: int) -> Summary:
            return CategoricalSummary(pd.Series(rng.multinomial(size, shares).astype(float), index=reference.counts.index), 0)

    scores = np.empty(draws)
    for i in range(draws):
        scores[i] = run_test(test, draw(n), draw(m), kind)
    if test not in ("wasserstein", "jensenshannon"):
        return scores  # p-value tests: their null is already on the p scale, no rescaling
    return scores * scale


def resampled_p_value(test: str, observed: float, null: np.ndarray) -> float:
    """P(null score as extreme as observed): large distances, or small p-values, are extreme.

    Beyond every draw, the empirical p-value would stop at 1 / (draws + 1), too coarse for a
    correction over many columns; there the tail of a normal fitted to the null takes over.
    """
    from scipy import stats

    null = null[np.isfinite(null)]
    if not math.isfinite(observed) or len(null) == 0:
        return float("nan")
    p_scale = test in ("ks", "chisquare", "z")
    extreme = (null <= observed) if p_scale else (null >= observed)
    if extreme.any():
        return float((1 + extreme.sum()) / (1 + len(null)))
    spread = float(np.std(null)) or 1e-12
    z = (float(np.mean(null)) - observed) / spread if p_scale else (observed - float(np.mean(null))) / spread
    return float(min(stats.norm.sf(z), 1 / (1 + len(null))))


def adjust(p_values: list[float], alpha: float, method: str) -> list[bool]:
    """Which hypotheses to reject: Benjamini-Hochberg step-up, or Bonferroni. NaN never rejects."""
    p = np.array([v if math.isfinite(v) else 1.0 for v in p_values])
    k = len(p)
    if k == 0:
        return []
    if method == "bonferroni":
        return list(p <= alpha / k)
    order = np.argsort(p)
    passed = p[order] <= alpha * np.arange(1, k + 1) / k
    cutoff = np.max(np.nonzero(passed)[0]) + 1 if passed.any() else 0
    rejected = np.zeros(k, dtype=bool)
    rejected[order[:cutoff]] = True
    return list(rejected)


def calibrate(
    raw: list[ColumnDrift],
    summaries: dict[str, tuple[ColumnKind, Summary, Summary]],
    small_sample: int = 1000,
    alpha: float = 0.05,
    correction: str = "bh",
    draws: int = 200,
    pool_below: float = 0.005,
    overrides: dict[str, tuple[str | None, float | None]] | None = None,
    seed: int = 0,
) -> list[ColumnDrift]:
    """Turn Evidently-rule results (`raw`, which keep their findings such as new categories)
    into calibrated verdicts, from each column's reference and current summaries. The summaries
    may be exact (in memory) or binned (the chunked and Dask engines' sketches).

    A per-column override (`drift.tests`) is the user's own rule and applies in this mode too:
    a column with its own threshold keeps that fixed rule and is left out of the correction; a
    column with only its own test gets that test's score, calibrated like the others.
    """
    overrides = overrides or {}
    rng = np.random.default_rng(seed)
    results: list[ColumnDrift] = []
    p_values: list[float] = []
    for result in raw:
        kind, ref, cur = summaries[result.column]
        forced_test, forced_threshold = overrides.get(result.column, (None, None))
        if ref.n == 0 or cur.n == 0 or forced_threshold is not None:
            results.append(result)
            p_values.append(float("nan"))
            continue
        if kind == "categorical":
            ref, cur = pool_rare(ref, cur, pool_below)
        test = forced_test or select_test(ref, cur, kind, small_sample)
        score = run_test(test, ref, cur, kind)
        null = null_scores(ref, test, kind, cur.n, draws, rng)
        p_values.append(resampled_p_value(test, score, null))
        results.append(result.model_copy(update={"test": test, "score": score}))
    tested = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    rejected = dict(zip(tested, adjust([p_values[i] for i in tested], alpha, correction)))
    return [result.model_copy(update={"drift": bool(rejected[i]), "threshold": alpha, "p_value": p_values[i]})
            if i in rejected else result for i, result in enumerate(results)]
