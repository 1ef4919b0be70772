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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

ColumnKind = Literal["numeric", "categorical"]

P_VALUE_TESTS = {"ks", "chisquare", "z"}
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1}


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    type: ColumnKind
    test: str
    score: float
    threshold: float
    drift: bool
    reference_rows: int
    current_rows: int
    reference_missing_share: float
    current_missing_share: float
    new_categories: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("column")
        return out


# --------------------------------------------------------------------------- cleaning


def finite_values(values: pd.Series | np.ndarray, kind: ColumnKind) -> pd.Series:
    """Drop NaN/None, and +-inf for numeric columns, as Evidently does before testing."""
    series = pd.Series(values)
    if kind == "numeric":
        series = pd.to_numeric(series, errors="coerce").astype(float)
        return series[np.isfinite(series.to_numpy())]
    return series.dropna()


# --------------------------------------------------------------------------- tests


def ks_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    return float(stats.ks_2samp(reference, current)[1])


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein distance divided by the reference std (ddof 0), floored at 0.001."""
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current) / norm)


def _category_counts(reference: pd.Series, current: pd.Series) -> tuple[list, np.ndarray, np.ndarray]:
    keys = sorted(set(reference.unique()) | set(current.unique()), key=str)  # sorted: same float sums every run
    ref_counts = reference.value_counts()
    cur_counts = current.value_counts()
    ref = np.array([ref_counts.get(k, 0) for k in keys], dtype=float)
    cur = np.array([cur_counts.get(k, 0) for k in keys], dtype=float)
    return keys, ref, cur


def chisquare_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Chi-square goodness of fit of current counts to reference frequencies scaled to len(current)."""
    _, ref, cur = _category_counts(reference, current)
    expected = ref * (len(current) / len(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur, expected)[1])


def z_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Two-sided two-proportion Z-test on the share of the first (sorted) category."""
    ref_unique, cur_unique = reference.unique(), current.unique()
    if len(ref_unique) == 1 and len(cur_unique) == 1 and ref_unique[0] == cur_unique[0]:
        return 1.0
    first = sorted(set(ref_unique) | set(cur_unique))[0]
    n1, n2 = len(reference), len(current)
    p1 = float((reference != first).sum()) / n1
    p2 = float((current != first).sum()) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def binned_shares(reference: pd.Series, current: pd.Series, kind: ColumnKind, n_bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's binning: Sturges histogram over both samples for numeric columns with > 20
    unique reference values; otherwise one bin per value."""
    if kind == "numeric" and reference.nunique() > 20:
        combined = np.concatenate([reference.to_numpy(dtype=float), current.to_numpy(dtype=float)])
        edges = np.histogram_bin_edges(combined, bins="sturges")
        ref = np.histogram(reference.to_numpy(dtype=float), edges)[0] / len(reference)
        cur = np.histogram(current.to_numpy(dtype=float), edges)[0] / len(current)
        return ref, cur
    _, ref_counts, cur_counts = _category_counts(reference, current)
    return ref_counts / len(reference), cur_counts / len(current)


def jensenshannon_distance(reference: pd.Series, current: pd.Series, kind: ColumnKind) -> float:
    ref, cur = binned_shares(reference, current, kind)
    return float(distance.jensenshannon(ref, cur))


# --------------------------------------------------------------------------- selection


def default_test(reference: pd.Series, current: pd.Series, kind: ColumnKind, small_sample: int = 1000) -> str:
    """Evidently's default test for a column (see the module docstring)."""
    n_unique = pd.concat([reference, current]).nunique()
    if len(reference) <= small_sample:
        if kind == "numeric" and n_unique > 5:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    if kind == "numeric" and n_unique > 5:
        return "wasserstein"
    return "jensenshannon"


def run_test(test: str, reference: pd.Series, current: pd.Series, kind: ColumnKind) -> float:
    if test == "ks":
        return ks_pvalue(reference.to_numpy(dtype=float), current.to_numpy(dtype=float))
    if test == "wasserstein":
        return wasserstein_normed(reference.to_numpy(dtype=float), current.to_numpy(dtype=float))
    if test == "chisquare":
        return chisquare_pvalue(reference, current)
    if test == "z":
        return z_pvalue(reference, current)
    if test == "jensenshannon":
        return jensenshannon_distance(reference, current, kind)
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


def column_drift(
    name: str,
    reference: pd.Series | np.ndarray,
    current: pd.Series | np.ndarray,
    kind: ColumnKind,
    small_sample: int = 1000,
) -> ColumnDrift:
    ref_all, cur_all = pd.Series(reference), pd.Series(current)
    ref, cur = finite_values(ref_all, kind), finite_values(cur_all, kind)
    new = sorted(map(str, set(cur.unique()) - set(ref.unique()))) if kind == "categorical" else []
    if len(ref) == 0 or len(cur) == 0:
        test, score = "none", float("nan")
    else:
        test = default_test(ref, cur, kind, small_sample)
        score = run_test(test, ref, cur, kind)
    threshold = DEFAULT_THRESHOLDS.get(test, float("nan"))
    return ColumnDrift(
        column=name,
        type=kind,
        test=test,
        score=score,
        threshold=threshold,
        drift=is_drift(test, score, threshold),
        reference_rows=len(ref),
        current_rows=len(cur),
        reference_missing_share=float(1 - len(ref) / len(ref_all)) if len(ref_all) else 1.0,
        current_missing_share=float(1 - len(cur) / len(cur_all)) if len(cur_all) else 1.0,
        new_categories=new[:20],
    )


def dataset_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    kinds: dict[str, ColumnKind],
    share_threshold: float = 0.5,
    small_sample: int = 1000,
) -> dict:
    """Per-column drift for every column in `kinds` and the dataset-level verdict."""
    results = [column_drift(c, reference[c], current[c], kind, small_sample) for c, kind in kinds.items()]
    drifted = [r.column for r in results if r.drift]
    share = len(drifted) / len(results) if results else float("nan")
    return {
        "dataset_drift": bool(results) and share >= share_threshold,
        "drift_share": share,
        "threshold": share_threshold,
        "n_columns": len(results),
        "n_drifted": len(drifted),
        "drifted_columns": drifted,
        "columns": {r.column: r.as_dict() for r in results},
    }


def ranked(columns: dict[str, dict], limit: int | None = None) -> Sequence[tuple[str, dict]]:
    """Columns ordered most-drifted first: drifted before not, then by distance from threshold."""

    def severity(item: tuple[str, dict]) -> tuple[int, float]:
        _, col = item
        score, threshold = col["score"], col["threshold"]
        if score is None or not np.isfinite(score):
            return (1, 0.0)
        ratio = (threshold / max(score, 1e-300)) if col["test"] in P_VALUE_TESTS else score / threshold
        return (0 if col["drift"] else 1, -min(ratio, 1e300))

    ordered = sorted(columns.items(), key=severity)
    return ordered[:limit] if limit else ordered
