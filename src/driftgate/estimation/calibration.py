"""Probability calibration: the model's scores turned into probabilities of the positive class.

Fitted on the model's holdout (rows the model never saw: the last `windows.holdout_fraction` of
the training window, in time). The model is trained with balanced class weights, so its raw
scores overstate the positive share; a calibrated probability p means "p of such rows are
positive" on the holdout, which is what an expected confusion matrix needs.

Besides the fitted mapping, `refits` holds the same calibration fitted on bootstrap resamples
of the holdout rows, so an interval can carry the calibration's own fitting error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from driftgate.errors import DataError

Method = Literal["isotonic", "platt"]
EDGE = 1e-6  # scores are clipped to [EDGE, 1 - EDGE] before Platt scaling takes their log-odds


def _log_odds(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(scores, dtype=float), EDGE, 1 - EDGE)
    return np.log(clipped / (1 - clipped)).reshape(-1, 1)


def fit_mapping(scores: np.ndarray, labels: np.ndarray, method: Method) -> Any:
    """One calibration mapping, fitted on (score, label) pairs."""
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    return LogisticRegression(C=1e6).fit(_log_odds(scores), labels)


def apply_mapping(mapping: Any, scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if isinstance(mapping, IsotonicRegression):
        return np.clip(mapping.predict(scores), 0.0, 1.0)
    return mapping.predict_proba(_log_odds(scores))[:, 1]


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration and its bootstrap refits."""

    method: Method
    mapping: Any
    refits: tuple[Any, ...]
    rows: int
    positive_share: float  # of the rows it was fitted on

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return apply_mapping(self.mapping, scores)

    def refit_probabilities(self, scores: np.ndarray) -> list[np.ndarray]:
        """The probabilities under every refit (the fitted mapping alone when there are none)."""
        return [apply_mapping(m, scores) for m in self.refits] or [self.probabilities(scores)]


def check_pairs(scores: Sequence[float], labels: Sequence[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise DataError(what, f"{len(scores)} scores and {len(labels)} labels", "pass one score and one label per row")
    if not np.isfinite(scores).all():
        raise DataError(what, f"{int((~np.isfinite(scores)).sum())} score(s) are NaN or infinite", "score every row with the model")
    if len(np.unique(labels)) != 2 or not np.isin(labels, (0, 1)).all():
        raise DataError(what, "labels must be 0/1 with both classes present", "calibrate on rows with both classes")
    return scores, labels.astype(int)


def fit_calibration(scores: Sequence[float], labels: Sequence[int], method: Method = "isotonic", refits: int = 50, seed: int = 0) -> Calibration:
    """Calibrate scores on labelled rows (the holdout), with `refits` bootstrap refits."""
    scores, labels = check_pairs(scores, labels, "calibration rows")
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(refits):
        rows = rng.integers(0, len(scores), len(scores))
        if len(np.unique(labels[rows])) == 2:
            resampled.append(fit_mapping(scores[rows], labels[rows], method))
    return Calibration(method, fit_mapping(scores, labels, method), tuple(resampled), len(scores), float(labels.mean()))
