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
   Each column draws from its own stream (seeded by the seed and the column's name), the
   samples as counts per distinct reference value where the test reads only those (Wasserstein,
   Jensen-Shannon), and a null is kept per (reference content, column, test, sizes): above the
   cap every window of a column shares one null, drawn once per process, not once per pass.
3. The p-values of all columns are corrected together (Benjamini-Hochberg by default, or
   Bonferroni) at level ``alpha``. A column drifts when its corrected test rejects. When no
   column truly drifts, both corrections keep the chance of any alarm at or below ``alpha``.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

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


def column_rng(seed: int, column: str) -> np.random.Generator:
    """The random stream of one column's null: fixed by the seed and the column's name, so a
    column's null is the same whatever columns are tested beside it, and a cached null equals
    a freshly drawn one."""
    return np.random.default_rng([seed, zlib.crc32(column.encode())])


def fingerprint(summary: Summary) -> str:
    """A digest of a summary's content (the values, or the categories and their counts)."""
    digest = hashlib.blake2b(digest_size=16)
    if isinstance(summary, CategoricalSummary):
        digest.update(b"categorical\0" + "\x1f".join(f"{type(k).__name__}:{k}" for k in summary.counts.index).encode())
        digest.update(summary.counts.to_numpy(dtype=float).tobytes())
    else:
        digest.update(b"numeric\0" + np.ascontiguousarray(summary.values, dtype=float).tobytes())
        if summary.weights is not None:
            digest.update(b"weights\0" + np.ascontiguousarray(summary.weights, dtype=float).tobytes())
    return digest.hexdigest()


_NULLS: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (fingerprint, column, test, kind, n, m, draws, seed) -> raw null
_NULLS_LOCK = threading.Lock()
NULLS_KEPT = 1024  # cached nulls (200 draws each: about 1.6 MB in all)


def null_sizes(n_ref: int, n_current: int) -> tuple[int, int, float]:
    """The sample sizes a null is drawn at (capped at RESAMPLE_CAP) and the factor that rescales
    a distance's null from those sizes to the frames' own."""
    n, m = min(n_ref, RESAMPLE_CAP), min(n_current, RESAMPLE_CAP)
    return n, m, math.sqrt((1 / n_ref + 1 / n_current) / (1 / n + 1 / m))


def null_scores(reference: Summary, test: str, kind: ColumnKind, n_current: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Scores of `test` between two samples of the reference, at the frames' sizes."""
    n, m, scale = null_sizes(reference.n, n_current)
    return _rescaled(test, _raw_null(reference, test, kind, n, m, draws, rng), scale)


def cached_null(reference: Summary, test: str, kind: ColumnKind, n_current: int, draws: int, seed: int, column: str) -> np.ndarray:
    """`null_scores` with the column's own stream (`column_rng`), kept per (reference content,
    column, test, sizes, draws, seed). Above RESAMPLE_CAP rows both sizes are capped, so every
    large window of a column shares one null: drawn once per process, not once per pass. The
    cache holds the null at the capped sizes; the rescaling to the frames' sizes is applied
    on the way out, so a cached null is exactly the one `null_scores` would draw."""
    n, m, scale = null_sizes(reference.n, n_current)
    key = (fingerprint(reference), column, test, kind, n, m, draws, seed)
    with _NULLS_LOCK:
        raw = _NULLS.get(key)
        if raw is not None:
            _NULLS.move_to_end(key)
    if raw is None:
        raw = _raw_null(reference, test, kind, n, m, draws, column_rng(seed, column))
        raw.setflags(write=False)
        with _NULLS_LOCK:
            _NULLS[key] = raw
            while len(_NULLS) > NULLS_KEPT:
                _NULLS.popitem(last=False)
    return _rescaled(test, raw, scale)


def clear_null_cache() -> None:
    with _NULLS_LOCK:
        _NULLS.clear()


def _rescaled(test: str, raw: np.ndarray, scale: float) -> np.ndarray:
    if test not in ("wasserstein", "jensenshannon"):
        return raw.copy()  # p-value tests: their null is already on the p scale, no rescaling
    return raw * scale


MULTINOMIAL_MAX = 1000  # distinct values up to which a sample's counts are drawn at once (multinomial)
BLOCK_CELLS = 2_000_000  # draws x values (or rows) held at a time by the counts path


def _raw_null(reference: Summary, test: str, kind: ColumnKind, n: int, m: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` scores of `test` between a sample of `n` and a sample of `m` rows drawn with
    replacement from the reference, at those sizes (no rescaling)."""
    values, counts = _distinct_counts(reference)
    if _counts_path(reference, test, kind, values):
        return _counts_null(values, counts, test, n, m, draws, rng)
    return _sampled_null(reference, test, kind, n, m, draws, rng)


def _distinct_counts(summary: Summary) -> tuple[np.ndarray | None, np.ndarray]:
    """The distinct values (None for categories) and how many rows hold each."""
    if isinstance(summary, CategoricalSummary):
        return None, summary.counts.to_numpy(dtype=float)
    if summary.weights is not None:
        return np.asarray(summary.values, dtype=float), np.asarray(summary.weights, dtype=float)
    counts = summary.counts()
    return counts.index.to_numpy(dtype=float), counts.to_numpy(dtype=float)


def _counts_path(reference: Summary, test: str, kind: ColumnKind, values: np.ndarray | None) -> bool:
    """Whether `test`'s score of two samples of the reference is a function of their counts per
    distinct reference value that `scores_from_counts` computes: Wasserstein always;
    Jensen-Shannon per category, or per value where Evidently's rule bins each value alone
    (at most 20 distinct values)."""
    if test == "wasserstein":
        return isinstance(reference, NumericSummary)
    if test == "jensenshannon":
        return kind == "categorical" or (values is not None and len(values) <= 20)
    return False


def _counts_null(values: np.ndarray | None, counts: np.ndarray, test: str, n: int, m: int, draws: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The null from samples drawn as counts per distinct value, in blocks of draws: the same
    samples as drawing rows with replacement, without materialising or sorting them."""
    k, total = len(counts), counts.sum()
    shares = counts / total
    whole = bool(np.all(counts == np.rint(counts))) and total <= GROUP_ROWS_MAX
    rows_of = np.repeat(np.arange(k), counts.astype(np.int64)) if k > MULTINOMIAL_MAX and whole else None
    cumulative = np.cumsum(counts) if k > MULTINOMIAL_MAX and not whole else None
    rows = max(1, min(draws, BLOCK_CELLS // max(n, m, k)))
    out = []
    for start in range(0, draws, rows):
        size = min(rows, draws - start)
        first = _draw_counts(rng, shares, rows_of, cumulative, n, size)
        second = _draw_counts(rng, shares, rows_of, cumulative, m, size)
        out.append(scores_from_counts(test, values, first, second))
    return np.concatenate(out)


GROUP_ROWS_MAX = 20_000_000  # up to this many reference rows, a draw picks a row and takes its value's index


def _draw_counts(rng: np.random.Generator, shares: np.ndarray, rows_of: np.ndarray | None, cumulative: np.ndarray | None,
                 size: int, rows: int) -> np.ndarray:
    """`rows` samples of `size` draws with replacement, as counts per distinct value (rows x K):
    a multinomial draw for few values; else rows picked at random (`rows_of`: the value index of
    each reference row) or, for fractional weights, by inverse CDF (`cumulative`)."""
    k = len(shares)
    if rows_of is None and cumulative is None:
        return rng.multinomial(size, shares, size=rows).astype(float)
    if rows_of is not None:
        picks = rows_of[rng.integers(0, len(rows_of), (rows, size))]
    else:
        picks = np.searchsorted(cumulative, rng.random((rows, size)) * cumulative[-1], "right")
        np.minimum(picks, k - 1, out=picks)
    picks += (np.arange(rows) * k)[:, None]
    return np.bincount(picks.ravel(), minlength=rows * k).reshape(rows, k).astype(float)


def scores_from_counts(test: str, values: np.ndarray | None, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """`test`'s score (as `run_test` gives it, the first sample as the reference) of each pair of
    samples given as counts per distinct value (rows of `first` and `second`; `values` are the
    distinct values, sorted, or None for categories).

    - Wasserstein: the integral of |F1 - F2| over x, the two empirical CDFs stepping at the
      distinct values, over the first sample's standard deviation (at least 0.001);
    - Jensen-Shannon: between the two samples' shares per category or value.
    """
    n, m = first.sum(axis=1), second.sum(axis=1)
    if test == "wasserstein":
        gaps = np.r_[np.diff(values), 0.0]  # F1 - F2 is 0 past the last value
        apart = first * m[:, None]  # (F1 - F2) * n * m, cumulated in place: whole numbers, exact
        apart -= second * n[:, None]
        np.cumsum(apart, axis=1, out=apart)
        np.abs(apart, out=apart)
        distance = apart @ gaps / (n * m)
        centred = values - values.mean()  # a shift leaves the variance as it is, with less rounding
        mean = first @ centred / n
        variance = np.maximum(first @ (centred * centred) / n - mean * mean, 0.0)
        return distance / np.maximum(np.sqrt(variance), 0.001)
    from scipy.spatial import distance as distances

    return distances.jensenshannon(first / n[:, None], second / m[:, None], axis=1)


def _sampled_null(reference: Summary, test: str, kind: ColumnKind, n: int, m: int, draws: int,
                  rng: np.random.Generator) -> np.ndarray:
    """The null from samples drawn row by row, scored by `run_test`: every other test."""
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
    return scores


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

    def one(result: ColumnDrift) -> tuple[ColumnDrift, float]:
        kind, ref, cur = summaries[result.column]
        forced_test, forced_threshold = overrides.get(result.column, (None, None))
        if ref.n == 0 or cur.n == 0 or forced_threshold is not None:
            return result, float("nan")
        if kind == "categorical":
            ref, cur = pool_rare(ref, cur, pool_below)
        test = forced_test or select_test(ref, cur, kind, small_sample)
        score = run_test(test, ref, cur, kind)
        null = cached_null(ref, test, kind, cur.n, draws, seed, result.column)
        return result.model_copy(update={"test": test, "score": score}), resampled_p_value(test, score, null)

    # columns in parallel threads (numpy releases the GIL while drawing and counting), one BLAS thread each
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=min(len(raw), os.cpu_count() or 1) or 1) as pool:
        done = list(pool.map(one, raw))
    results = [result for result, _ in done]
    p_values = [p for _, p in done]
    tested = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    rejected = dict(zip(tested, adjust([p_values[i] for i in tested], alpha, correction)))
    return [result.model_copy(update={"drift": bool(rejected[i]), "threshold": alpha, "p_value": p_values[i]})
            if i in rejected else result for i, result in enumerate(results)]
