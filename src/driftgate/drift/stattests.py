"""Drift statistics: pure functions of arrays, and the per-column / dataset verdicts.

The default test for each column and its threshold follow Evidently's rule
(evidently/legacy/calculations/stattests/registry.py, `_get_default_stattest`), so a team moving
from Evidently gets the same verdicts:

============================  ==========================  ==============================
reference rows                numeric, > 5 unique values  categorical, or <= 5 unique
============================  ==========================  ==============================
<= 1000 (``small_sample``)    Kolmogorov-Smirnov, p<=0.05 chi-square p<0.05 (> 2 unique),
                                                          Z-test p<0.05 (<= 2 unique)
> 1000                        Wasserstein / ref std,      Jensen-Shannon distance >= 0.1
                              drift if >= 0.1
============================  ==========================  ==============================

Unique values are counted over reference and current together. NaN and +-inf are dropped
before any test. The dataset drifts when the share of drifted columns is >= ``share_threshold``
(0.5 by default, as in Evidently's DataDriftPreset).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from driftgate.errors import DataError
from driftgate.results import P_VALUE_TESTS, ColumnDrift, ColumnKind, DriftResult

DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1,
                      "psi": 0.1, "hellinger": 0.1}
NUMERIC_ONLY_TESTS = {"ks", "wasserstein"}


# --------------------------------------------------------------------------- summaries
#
# Every test below reads a column *summary*, built once per column and frame: the sorted finite
# values of a numeric column, or the value counts of a categorical one. Building them is the
# only pass over the raw data; the tests themselves are cheap. This is what makes driftgate
# fast where Evidently re-scans each column several times.


@dataclass(frozen=True)
class NumericSummary:
    values: np.ndarray  # finite values, sorted ascending (distinct values when weights are given)
    missing: int  # NaN, None and +-inf
    weights: np.ndarray | None = None  # count of each value, for summaries built from counts

    @property
    def n(self) -> int:
        return len(self.values) if self.weights is None else int(self.weights.sum())

    @property
    def distinct(self) -> np.ndarray:
        if self.weights is not None or len(self.values) == 0:
            return self.values
        keep = np.empty(len(self.values), dtype=bool)
        keep[0] = True
        np.not_equal(self.values[1:], self.values[:-1], out=keep[1:])
        return self.values[keep]

    def counts(self) -> pd.Series:
        """Counts per distinct value (for the few-values tests), indexed by value."""
        if self.weights is not None:
            return pd.Series(self.weights, index=self.values, dtype=float)
        if self.n == 0:
            return pd.Series(dtype=float)
        starts = np.flatnonzero(np.r_[True, self.values[1:] != self.values[:-1]])
        sizes = np.diff(np.r_[starts, self.n])
        return pd.Series(sizes, index=self.values[starts], dtype=float)

    def std(self) -> float:
        if self.weights is None:
            return float(np.std(self.values))
        mean = np.average(self.values, weights=self.weights)
        return float(np.sqrt(np.average((self.values - mean) ** 2, weights=self.weights)))

    def expanded(self) -> np.ndarray:
        return self.values if self.weights is None else np.repeat(self.values, self.weights.astype(np.int64))


@dataclass(frozen=True)
class CategoricalSummary:
    counts: pd.Series  # count per category, missing values excluded
    missing: int

    @property
    def n(self) -> int:
        return int(self.counts.sum())


Summary = NumericSummary | CategoricalSummary


def summarise(values: pd.Series | np.ndarray, kind: ColumnKind) -> Summary:
    """One pass over a column: drop NaN/None (and +-inf for numeric), as Evidently does before testing."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if kind == "numeric":
        if series.dtype == np.float64:
            array = series.to_numpy()  # a view: the one copy made is the sort's
        elif pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
            array = series.to_numpy(dtype=float, na_value=np.nan)
        else:
            array = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ordered = np.sort(array)  # -inf first; +inf, then NaN, last
        finite = ordered[np.searchsorted(ordered, -np.inf, "right"):np.searchsorted(ordered, np.inf, "left")]
        return NumericSummary(finite, len(array) - len(finite))
    counts = series.value_counts(dropna=False, sort=False)  # one hash pass, NaN counted too
    missing = counts.index.isna()
    counts, n_missing = counts[~missing], int(counts[missing].sum())
    counts = counts[counts > 0]  # unused categories of a categorical dtype
    return CategoricalSummary(counts.astype(float), n_missing)




def _aligned_counts(reference: Summary, current: Summary) -> tuple[list, np.ndarray, np.ndarray]:
    """Counts of both frames over the union of their values, in sorted key order."""
    ref = reference.counts() if isinstance(reference, NumericSummary) else reference.counts
    cur = current.counts() if isinstance(current, NumericSummary) else current.counts
    keys = sorted(set(ref.index) | set(cur.index), key=str)  # sorted: the same float sums every run
    return keys, ref.reindex(keys, fill_value=0).to_numpy(dtype=float), cur.reindex(keys, fill_value=0).to_numpy(dtype=float)


# --------------------------------------------------------------------------- tests


# scipy's submodules are imported where a test needs them: importing scipy.stats alone costs
# about half a second, a large share of a whole `driftgate drift` run on small files.


def ks_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy import stats

    return float(stats.ks_2samp(reference, current)[1])




BLOCK = 1 << 15  # breakpoints per step: temporaries stay small enough to be reused, not page-faulted in


def _wasserstein_sorted(u: np.ndarray, v: np.ndarray, u_weights: np.ndarray | None = None,
                        v_weights: np.ndarray | None = None) -> float:
    """W1 between two samples given sorted, as scipy's `wasserstein_distance` computes it.

    W1 is the integral of |F_u - F_v| over x, which equals the integral of |Q_u - Q_v| over
    t in (0, 1], Q being the quantile functions. Both are step functions: Q_u steps at the
    cumulative shares of u, Q_v at those of v. Each step of the merged partition ends at a
    breakpoint of u or of v, so summing over u's breakpoints and then v's visits every step
    once (a tie is claimed by u's). Without weights the breakpoints are i/n and j/m and their
    interleaving is integer arithmetic: no sort, no search, one pass. Optional weights (counts
    per value) give the same result as repeating each value that many times.
    """
    total_u = len(u) if u_weights is None else float(np.sum(u_weights))
    total_v = len(v) if v_weights is None else float(np.sum(v_weights))
    both = _one_side(u, v, u_weights, v_weights, total_u, total_v, strict=True)
    both += _one_side(v, u, v_weights, u_weights, total_v, total_u, strict=False)
    return both / (total_u * total_v)


def _one_side(a: np.ndarray, b: np.ndarray, a_weights: np.ndarray | None, b_weights: np.ndarray | None,
              total_a: float, total_b: float, strict: bool) -> float:
    """Sum, over the steps of |Q_a - Q_b| that end at one of a's breakpoints, of step length
    times height, with t scaled by total_a * total_b so that unweighted lengths are integers."""
    counting = a_weights is None and b_weights is None and len(a) * len(b) < 2**53
    cum_a = None if a_weights is None else np.r_[0.0, np.cumsum(a_weights)] * total_b
    cum_b = np.arange(len(b) + 1) * float(total_a) if b_weights is None else np.r_[0.0, np.cumsum(b_weights)] * total_a
    total = 0.0
    for lo in range(0, len(a), BLOCK):
        hi = min(lo + BLOCK, len(a))
        if counting:  # a step ends at k * len(b); b's breakpoints are l * len(a)
            ends = np.arange(lo + 1, hi + 1, dtype=float)
            ends *= len(b)
            # b's breakpoints before (or at) each end; exact in floats while len(a) * len(b) < 2**53
            below = np.floor((ends - 1 if strict else ends) / len(a))
            length = ends - below * len(a)
            np.minimum(length, len(b), out=length)  # the step starts at max(previous end, b's breakpoint)
            below = below.astype(np.intp)
        else:
            ends, starts = (cum_a[lo + 1:hi + 1], cum_a[lo:hi]) if cum_a is not None else \
                (np.arange(lo + 1, hi + 1) * float(total_b), np.arange(lo, hi) * float(total_b))
            below = np.searchsorted(cum_b[1:], ends, "left" if strict else "right")
            length = np.maximum(ends - np.maximum(starts, cum_b[below]), 0)
        if below[-1] >= len(b):  # only at a's last breakpoint, where the step has no length
            below[-1] = len(b) - 1
        height = a[lo:hi] - b[below]
        np.abs(height, out=height)
        total += float(np.dot(height, length))
    return total


def chisquare_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """Chi-square goodness of fit of current counts to reference frequencies scaled to len(current)."""
    from scipy import special

    expected = reference * (current.sum() / reference.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(np.sum((current - expected) ** 2 / expected))
    return float(special.chdtrc(len(current) - 1, statistic))  # scipy.stats.chisquare's p: the chi2 sf


def z_from_counts(keys: list, reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided two-proportion Z-test on the share of values other than the first (sorted) key."""
    present_ref, present_cur = reference > 0, current > 0
    if present_ref.sum() == 1 and present_cur.sum() == 1 and np.array_equal(present_ref, present_cur):
        return 1.0
    first = keys.index(sorted(keys)[0])
    n1, n2 = reference.sum(), current.sum()
    p1, p2 = (n1 - reference[first]) / n1, (n2 - current[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    from scipy import special

    return float(2 * (1 - special.ndtr(np.abs(z))))  # scipy.stats.norm.cdf is special.ndtr


def jensenshannon_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.spatial import distance

    return float(distance.jensenshannon(reference, current))


def binned_shares(reference: Summary, current: Summary, kind: ColumnKind, n_bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's binning: Sturges histogram over both samples for numeric columns with > 20
    unique reference values; otherwise one bin per value."""
    if kind == "numeric" and len(reference.distinct) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference.expanded(), current.expanded()]), bins="sturges")
        ref = np.histogram(reference.values, edges, weights=reference.weights)[0] / reference.n
        cur = np.histogram(current.values, edges, weights=current.weights)[0] / current.n
        return ref, cur
    _, ref_counts, cur_counts = _aligned_counts(reference, current)
    return ref_counts / reference.n, cur_counts / current.n


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Evidently's replacement of empty bins before a logarithm (get_binned_data, feel_zeroes)."""
    nonzero = shares[shares != 0]
    smallest = nonzero.min() if len(nonzero) else 1.0
    return np.where(shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, shares)


def psi(reference: Summary, current: Summary, kind: ColumnKind) -> float:
    """Population stability index on Evidently's bins: sum((r - c) * ln(r / c))."""
    ref, cur = (_fill_zeroes(x) for x in binned_shares(reference, current, kind))
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def hellinger(reference: Summary, current: Summary, kind: ColumnKind) -> float:
    """Hellinger distance as Evidently computes it: per category, or on Sturges density bins
    over the distinct values of both frames."""
    if kind == "categorical":
        _, ref, cur = _aligned_counts(reference, current)
        overlap = float(np.sum(np.sqrt((ref / ref.sum()) * (cur / cur.sum()))))
    else:
        edges = np.histogram_bin_edges(np.union1d(reference.distinct, current.distinct), bins="sturges")
        h1 = np.histogram(reference.values, edges, weights=reference.weights, density=True)[0]
        h2 = np.histogram(current.values, edges, weights=current.weights, density=True)[0]
        width = (edges.max() - edges.min()) / (len(edges) - 1)
        overlap = float(np.sum(np.sqrt(h1 * h2)) * width)
    return float(np.sqrt(1 - np.clip(overlap, 0, 1)))


# Thin wrappers over raw values, for one-off use and for tests against scipy.








# --------------------------------------------------------------------------- selection


def n_unique_at_least(reference: Summary, current: Summary, limit: int = 5) -> int:
    """Distinct values of both frames together, exact up to `limit + 1` (all the rule needs)."""
    if isinstance(reference, CategoricalSummary):
        return len(set(reference.counts.index) | set(current.counts.index))
    ref, cur = _first_distinct(reference.values, limit + 1), _first_distinct(current.values, limit + 1)
    if len(ref) > limit or len(cur) > limit:
        return max(len(ref), len(cur))
    return len(np.union1d(ref, cur))


def _first_distinct(values: np.ndarray, limit: int) -> np.ndarray:
    """Up to `limit` smallest distinct values of a sorted array, by binary search (no full pass)."""
    found, start = [], 0
    while start < len(values) and len(found) < limit:
        found.append(values[start])
        start = int(np.searchsorted(values, values[start], "right"))
    return np.asarray(found, dtype=float)


def select_test(reference: Summary, current: Summary, kind: ColumnKind, small_sample: int = 1000) -> str:
    """Evidently's default test for a column (see the module docstring)."""
    n_unique = n_unique_at_least(reference, current)
    if reference.n <= small_sample:
        if kind == "numeric" and n_unique > 5:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    if kind == "numeric" and n_unique > 5:
        return "wasserstein"
    return "jensenshannon"




def run_test(test: str, reference: Summary, current: Summary, kind: ColumnKind) -> float:
    if test == "ks":
        return ks_pvalue(reference.expanded(), current.expanded())
    if test == "wasserstein":
        norm = max(reference.std(), 0.001)
        return _wasserstein_sorted(reference.values, current.values, reference.weights, current.weights) / norm
    if test == "jensenshannon":
        return jensenshannon_from_shares(*binned_shares(reference, current, kind))
    if test == "psi":
        return psi(reference, current, kind)
    if test == "hellinger":
        return hellinger(reference, current, kind)
    keys, ref, cur = _aligned_counts(reference, current)
    if test == "chisquare":
        return chisquare_from_counts(ref, cur)
    if test == "z":
        return z_from_counts(keys, ref, cur)
    raise ValueError(f"unknown drift test {test!r}")


def is_drift(test: str, score: float, threshold: float) -> bool:
    """p-value tests drift when p is small, distances when they are large. NaN never drifts
    here (Evidently's convention); the gate treats a NaN score as a failure on its own."""
    if not np.isfinite(score):
        return False
    if test == "ks":
        return score <= threshold
    if test in P_VALUE_TESTS:
        return score < threshold
    return score >= threshold


def compare(name: str, reference: Summary, current: Summary, kind: ColumnKind, small_sample: int = 1000,
            test: str | None = None, threshold: float | None = None) -> ColumnDrift:
    """The drift verdict for one column from the summaries of both frames. `test` and
    `threshold` override Evidently's default choice for this column."""
    if reference.n == 0 or current.n == 0:
        test, score = "none", float("nan")
    else:
        test = test or select_test(reference, current, kind, small_sample)
        score = run_test(test, reference, current, kind)
    new, out_of_range = [], 0.0
    if kind == "categorical":
        new = sorted(map(str, set(current.counts.index) - set(reference.counts.index)))
    elif reference.n and current.n:
        low, high = reference.values[0], reference.values[-1]  # sorted: the reference's range
        outside = np.searchsorted(current.values, low, "left") + current.n - np.searchsorted(current.values, high, "right")
        if current.weights is not None:
            outside = current.weights[(current.values < low) | (current.values > high)].sum()
        out_of_range = float(outside / current.n)
    threshold = threshold if threshold is not None and test != "none" else DEFAULT_THRESHOLDS.get(test, float("nan"))
    return verdict_for(name, kind, test, score, threshold, reference, current,
                       new_categories=new[:20], new_category_count=len(new), out_of_range_share=out_of_range)


def verdict_for(name: str, kind: ColumnKind, test: str, score: float, threshold: float, reference, current,
                **findings) -> ColumnDrift:
    """A column's result from its test and score; `reference` and `current` are anything with
    `n` (values tested) and `missing` (values dropped): summaries or sketches."""
    ref_total, cur_total = reference.n + reference.missing, current.n + current.missing
    return ColumnDrift(
        column=name,
        type=kind,
        test=test,
        score=score,
        threshold=threshold,
        drift=is_drift(test, score, threshold),
        reference_rows=reference.n,
        current_rows=current.n,
        reference_missing_share=reference.missing / ref_total if ref_total else 1.0,
        current_missing_share=current.missing / cur_total if cur_total else 1.0,
        **findings,
    )




def compare_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    kinds: dict[str, ColumnKind],
    small_sample: int = 1000,
    overrides: dict[str, tuple[str | None, float | None]] | None = None,
    workers: int | None = None,
) -> tuple[list[ColumnDrift], dict[str, tuple[ColumnKind, Summary, Summary]]]:
    """Per-column results for every column in `kinds`, and the summaries they came from.

    `overrides` maps a column to (test, threshold), either may be None for the default.
    Columns are summarised in parallel threads (numpy releases the GIL while sorting and counting).
    """
    overrides = overrides or {}

    def one(item: tuple[str, ColumnKind]) -> tuple[ColumnDrift, tuple[ColumnKind, Summary, Summary]]:
        name, kind = item
        ref, cur = summarise(reference[name], kind), summarise(current[name], kind)
        test, threshold = overrides.get(name, (None, None))
        return compare(name, ref, cur, kind, small_sample, test, threshold), (kind, ref, cur)

    # one BLAS thread per column thread: BLAS's own threads would only fight ours for the cores
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        done = list(pool.map(one, kinds.items()))
    return [result for result, _ in done], {result.column: summaries for result, summaries in done}


def verdict(results: list[ColumnDrift], share_threshold: float, ignore: frozenset[str] | set[str] = frozenset(),
            **about) -> DriftResult:
    """The dataset verdict: the share of drifted columns, over the columns not in `ignore`
    (they are reported, marked, and left out of the share)."""
    results = [r.model_copy(update={"ignored": True}) if r.column in ignore else r for r in results]
    counted = [r for r in results if not r.ignored]
    drifted = [r.column for r in counted if r.drift]
    share = len(drifted) / len(counted) if counted else float("nan")
    return DriftResult(
        dataset_drift=bool(counted) and share >= share_threshold,
        drift_share=share,
        threshold=share_threshold,
        n_columns=len(counted),
        n_drifted=len(drifted),
        drifted_columns=drifted,
        columns={r.column: r for r in results},
        ignored_columns=[r.column for r in results if r.ignored],
        **about,
    )


def kind_of(values: pd.Series) -> ColumnKind:
    """Numeric for numeric dtypes (not bool), categorical for everything else."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return "numeric" if numeric else "categorical"


def common_kinds(reference: dict[str, ColumnKind], current: dict[str, ColumnKind], reference_name: str, current_name: str,
                 empty: frozenset[str] = frozenset()) -> dict[str, ColumnKind]:
    """The columns both frames share, with the reference's type; a type that differs between the
    frames is an error naming the column, except for columns in `empty` (all missing in the
    current frame, so their dtype says nothing)."""
    common = [c for c in reference if c in current]
    if not common:
        raise DataError(current_name, f"has no column in common with {reference_name}",
                        f"both need the same column names; {reference_name} has: {', '.join(map(str, list(reference)[:20]))}")
    for column in common:
        if reference[column] != current[column] and column not in empty:
            raise DataError(current_name, f"column '{column}' is {current[column]} here but {reference[column]} in {reference_name}",
                            "fix the values that make it differ (e.g. text in a number column), or drop the column")
    return {c: reference[c] for c in common}


def infer_kinds(reference: pd.DataFrame, current: pd.DataFrame, reference_name: str, current_name: str) -> dict[str, ColumnKind]:
    """`common_kinds` of two frames, typed from their dtypes (an all-empty column takes the
    other frame's type)."""
    ref_empty = {c for c in reference.columns if _all_missing(reference[c])}
    cur_empty = {c for c in current.columns if _all_missing(current[c])}
    ref_kinds = {c: kind_of(reference[c]) for c in reference.columns}
    cur_kinds = {c: kind_of(current[c]) for c in current.columns}
    for column in ref_empty & set(cur_kinds):
        ref_kinds[column] = cur_kinds[column]
    return common_kinds(ref_kinds, cur_kinds, reference_name, current_name, frozenset(cur_empty))


def _all_missing(values: pd.Series) -> bool:
    """True when a column holds no value at all; a look at its head settles most columns."""
    return not values.iloc[:64].notna().any() and not values.notna().any()
