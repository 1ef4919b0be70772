"""Mergeable column summaries for data larger than memory (the `chunked` and `dask` engines).

A frame is read in batches; each batch updates one sketch per column, and sketches of
different batches, files or machines merge by addition. Nothing else is kept.

- Categorical columns: exact value counts. Their tests (chi-square, Z, Jensen-Shannon) are exact.
- Numeric columns: exact count, missing count, mean and variance (Chan's parallel update), the
  exact distinct values while there are at most 21 of them (with their counts, so the
  few-values tests are exact too), and a histogram on a fixed grid of width ``w`` anchored at 0.

Wasserstein on the grid moves every value by at most ``w / 2`` in each frame, so the normed
score is within ``w / std(reference)`` of the exact one: that is the documented error bound,
reported per column as ``score_error_bound``. ``w`` starts at a power of two near
``std / GRID_PER_STD`` of the first batch and doubles (merging neighbouring bins) whenever a
histogram would exceed ``MAX_BINS`` bins, so memory stays bounded whatever the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftgate.drift.stattests import (
    DEFAULT_THRESHOLDS,
    CategoricalSummary,
    ColumnDrift,
    ColumnKind,
    NumericSummary,
    Summary,
    verdict_for,
)

GRID_PER_STD = 1000  # bins per standard deviation before any coarsening: error bound ~0.001
MAX_BINS = 1 << 20  # per column; beyond this the grid coarsens (w doubles)
MAX_DISTINCT = 21  # exact distinct values kept up to this many (the rule needs > 5 and > 20)
MAX_EXACT = 1001  # exact values kept up to this many (the KS test at <= 1000 reference rows)


def _power_of_two_at_most(value: float) -> float:
    return 2.0 ** math.floor(math.log2(value)) if value > 0 and math.isfinite(value) else 1.0


@dataclass
class NumericSketch:
    width: float | None = None  # grid width w; set by the first non-constant batch or by the reference
    n: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    offset: int = 0  # grid index of counts[0]
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    distinct: dict[float, int] | None = field(default_factory=dict)  # None once there are too many
    exact: np.ndarray | None = field(default_factory=lambda: np.zeros(0))  # None once there are too many

    # ------------------------------------------------------------------ updating

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        self.missing += len(values) - len(finite)
        if len(finite) == 0:
            return
        self._moments(len(finite), float(finite.mean()), float(((finite - finite.mean()) ** 2).sum()))
        if self.distinct is not None:
            # a cheap look at the head first: most numeric columns have many values
            if len(np.unique(finite[:4096])) > MAX_DISTINCT:
                self.distinct = None
            else:
                uniques, counts = np.unique(finite, return_counts=True)
                if len(uniques) > MAX_DISTINCT:
                    self.distinct = None
                else:
                    for value, count in zip(uniques.tolist(), counts.tolist()):
                        self.distinct[value] = self.distinct.get(value, 0) + count
                    if len(self.distinct) > MAX_DISTINCT:
                        self.distinct = None
        if self.exact is not None:
            self.exact = np.concatenate([self.exact, finite]) if len(self.exact) + len(finite) <= MAX_EXACT else None
        if self.width is None:
            spread = float(np.std(finite))
            self.width = _power_of_two_at_most(spread / GRID_PER_STD) if spread > 0 else _power_of_two_at_most(abs(float(finite[0])) / 1e6 or 1e-6)
        keys = np.floor(finite / self.width).astype(np.int64)
        low, high = int(keys.min()), int(keys.max())
        self._add_bins(low, np.bincount(keys - low, minlength=high - low + 1))

    def _moments(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def _add_bins(self, offset: int, counts: np.ndarray) -> None:
        if self.counts.size == 0:
            self.offset, self.counts = offset, counts.astype(np.int64)
        else:
            low = min(self.offset, offset)
            high = max(self.offset + len(self.counts), offset + len(counts))
            merged = np.zeros(high - low, dtype=np.int64)
            merged[self.offset - low:self.offset - low + len(self.counts)] += self.counts
            merged[offset - low:offset - low + len(counts)] += counts
            self.offset, self.counts = low, merged
        while len(self.counts) > MAX_BINS:
            self.coarsen()

    def coarsen(self, factor: int = 2) -> None:
        """Double the grid width (merge bins pairwise); the error bound doubles with it."""
        start = self.offset - (self.offset % factor)  # floor to a multiple, also for negatives
        padded = np.zeros(((self.offset - start) + len(self.counts) + factor - 1) // factor * factor, dtype=np.int64)
        padded[self.offset - start:self.offset - start + len(self.counts)] = self.counts
        self.counts = padded.reshape(-1, factor).sum(axis=1)
        self.offset = start // factor
        self.width *= factor

    def align(self, width: float) -> None:
        """Coarsen to a wider grid (a power-of-two multiple of this one)."""
        if self.width is None:
            self.width = width
            return
        while self.width < width:
            self.coarsen()

    def merge(self, other: NumericSketch) -> NumericSketch:
        if other.n == 0 and other.counts.size == 0:
            self.missing += other.missing
            return self
        if self.width is not None and other.width is not None and other.width != self.width:
            wider = max(self.width, other.width)
            self.align(wider)
            other.align(wider)
        self.width = self.width or other.width
        self.missing += other.missing
        if other.n:
            self._moments(other.n, other.mean, other.m2)
        if other.counts.size:
            self._add_bins(other.offset, other.counts)
        if self.distinct is None or other.distinct is None:
            self.distinct = None
        else:
            for value, count in other.distinct.items():
                self.distinct[value] = self.distinct.get(value, 0) + count
            if len(self.distinct) > MAX_DISTINCT:
                self.distinct = None
        if self.exact is None or other.exact is None or len(self.exact) + len(other.exact) > MAX_EXACT:
            self.exact = None
        else:
            self.exact = np.concatenate([self.exact, other.exact])
        return self

    # ------------------------------------------------------------------ reading

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")

    def summary(self) -> NumericSummary | None:
        """An exact summary when every value is known (few distinct values, or few rows)."""
        if self.exact is not None:
            return NumericSummary(np.sort(self.exact), self.missing)
        if self.distinct is not None:
            keys = sorted(self.distinct)
            return NumericSummary(np.array(keys, dtype=float), self.missing,
                                  np.array([self.distinct[k] for k in keys], dtype=float))
        return None

    def binned(self) -> NumericSummary:
        """The histogram as a summary: each non-empty bin's count at its centre."""
        used = np.flatnonzero(self.counts)
        centres = (used + self.offset + 0.5) * (self.width or 1.0)
        return NumericSummary(centres.astype(float), self.missing, self.counts[used].astype(float))

    def to_dict(self) -> dict:
        return {"kind": "numeric", "width": self.width, "n": self.n, "missing": self.missing, "mean": self.mean,
                "m2": self.m2, "offset": self.offset, "counts": self.counts,
                "distinct": None if self.distinct is None else [[k, v] for k, v in self.distinct.items()],
                "exact": self.exact}

    @classmethod
    def from_dict(cls, data: dict) -> NumericSketch:
        distinct = None if data["distinct"] is None else {float(k): int(v) for k, v in data["distinct"]}
        exact = None if data["exact"] is None else np.asarray(data["exact"], dtype=float)
        return cls(data["width"], int(data["n"]), int(data["missing"]), float(data["mean"]), float(data["m2"]),
                   int(data["offset"]), np.asarray(data["counts"], dtype=np.int64), distinct, exact)


@dataclass
class CategoricalSketch:
    counts: dict = field(default_factory=dict)
    missing: int = 0

    def update_counts(self, values: list, counts: list) -> None:
        for value, count in zip(values, counts):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                self.missing += int(count)
            else:
                self.counts[value] = self.counts.get(value, 0) + int(count)

    def update(self, values) -> None:
        series = pd.Series(values).value_counts(dropna=False, sort=False)
        self.update_counts(list(series.index), list(series.to_numpy()))

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        self.update_counts(list(other.counts), list(other.counts.values()))
        self.missing += other.missing
        return self

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> CategoricalSummary:
        return CategoricalSummary(pd.Series(self.counts, dtype=float), self.missing)

    def to_dict(self) -> dict:
        return {"kind": "categorical", "missing": self.missing, "counts": [[str(k), v] for k, v in self.counts.items()]}

    @classmethod
    def from_dict(cls, data: dict) -> CategoricalSketch:
        return cls({k: int(v) for k, v in data["counts"]}, int(data["missing"]))


Sketch = NumericSketch | CategoricalSketch


def new_sketch(kind: ColumnKind) -> Sketch:
    return NumericSketch() if kind == "numeric" else CategoricalSketch()


# --------------------------------------------------------------------------- comparing


def as_summaries(reference: Sketch, current: Sketch) -> tuple[Summary, Summary]:
    """Summaries for the calibrated mode: exact where both sketches hold every value, else both
    histograms on their common grid (Wasserstein between them equals `grid_wasserstein`)."""
    ref, cur = reference.summary(), current.summary()
    if ref is not None and cur is not None:
        return ref, cur
    width = max((w for w in (reference.width, current.width) if w), default=1.0)
    reference.align(width)
    current.align(width)
    return reference.binned(), current.binned()


def grid_wasserstein(reference: NumericSketch, current: NumericSketch) -> float:
    """W1 between the two histograms on their common grid (bin masses at bin centres)."""
    width = max(reference.width, current.width)
    reference.align(width)
    current.align(width)
    low = min(reference.offset, current.offset)
    high = max(reference.offset + len(reference.counts), current.offset + len(current.counts))
    ref = np.zeros(high - low)
    cur = np.zeros(high - low)
    ref[reference.offset - low:reference.offset - low + len(reference.counts)] = reference.counts / reference.n
    cur[current.offset - low:current.offset - low + len(current.counts)] = current.counts / current.n
    return float(np.abs(np.cumsum(ref) - np.cumsum(cur))[:-1].sum() * width)


def compare_sketches(name: str, reference: Sketch, current: Sketch, kind: ColumnKind, small_sample: int = 1000,
                     test: str | None = None, threshold: float | None = None) -> ColumnDrift:
    """The drift verdict from two sketches, with the same rule and thresholds as the exact engine.

    Exact wherever the sketches hold every value (categoricals, few-valued numerics, small
    frames); otherwise Wasserstein on the grid, with its error bound. `test` and `threshold`
    override the default rule for this column (drift.tests), as in the exact engine; a test
    other than Wasserstein (or KS on a small reference) reads the binned histograms.
    """
    from driftgate.drift.stattests import compare

    ref_exact, cur_exact = reference.summary(), current.summary()
    if kind == "categorical" or (ref_exact is not None and cur_exact is not None):
        return compare(name, ref_exact, cur_exact, kind, small_sample, test, threshold)
    if test not in (None, "wasserstein") and not (test == "ks" and reference.exact is not None):
        ref_binned, cur_binned = as_summaries(reference, current)
        return compare(name, ref_binned, cur_binned, kind, small_sample, test, threshold)
    many_values = reference.distinct is None or current.distinct is None  # > 21 distinct: numeric test path
    if reference.n == 0 or current.n == 0:
        test, score, bound = "none", float("nan"), 0.0
    elif test == "ks" or (test is None and reference.n <= small_sample and many_values):
        test, score, bound = "ks", _ks_from_sketch(reference, current), 0.0
    else:
        test = "wasserstein"
        norm = max(reference.std, 0.001)
        score = grid_wasserstein(reference, current) / norm
        bound = max(reference.width, current.width) / norm
    if threshold is None or test == "none":
        threshold = DEFAULT_THRESHOLDS.get(test, float("nan"))
    return verdict_for(name, kind, test, score, threshold, reference, current, score_error_bound=bound)


def _ks_from_sketch(reference: NumericSketch, current: NumericSketch) -> float:
    """KS with an exact small reference and a binned current frame (asymptotic p-value)."""
    from scipy import stats

    ref = np.sort(reference.exact)
    edges = (np.arange(len(current.counts) + 1) + current.offset) * current.width
    cdf_cur_edges = np.concatenate([[0.0], np.cumsum(current.counts) / current.n])
    points = np.union1d(ref, edges)
    cdf_ref = np.searchsorted(ref, points, side="right") / len(ref)
    cdf_cur = np.interp(points, edges, cdf_cur_edges, left=0.0, right=1.0)
    statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
    n, m = len(ref), current.n
    return float(stats.kstwobign.sf(statistic * math.sqrt(n * m / (n + m))))

