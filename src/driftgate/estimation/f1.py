"""Expected F1 from calibrated probabilities, and how far the realised F1 can fall from it.

- `expected_f1`: the confidence-based estimate (NannyML's CBPE): with calibrated probabilities
  p and the model's decisions at the threshold, the expected confusion matrix is
  TP = sum p over predicted positives, FP = sum (1 - p) there, FN = sum p over predicted
  negatives, and F1 = 2 TP / (2 TP + FP + FN).
- `simulate_f1`: F1 under label draws y ~ Bernoulli(p) (a Poisson-binomial count per cell),
  each draw under one bootstrap refit of the calibration: the sampling noise of a window of
  this size plus the calibration's fitting error. It assumes the calibration still holds.
- `shift_margin`: how much the estimate missed on holdout blocks the calibration did not see,
  beyond what their sampling noise explains: the calibration's error when the data moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftgate.errors import DataError
from driftgate.estimation.calibration import Method, apply_mapping, check_pairs, fit_mapping

GRID = 200  # probabilities are pooled on a 1/GRID grid for the draws (one binomial per level, not a draw per row)


def f1_from_counts(tp: np.ndarray | float, fp: np.ndarray | float, fn: np.ndarray | float) -> np.ndarray:
    """F1 from confusion counts; 0 where it is undefined (no predicted and no actual positives)."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def realised_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels, predicted = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    return float(f1_from_counts((labels & predicted).sum(), (~labels & predicted).sum(), (labels & ~predicted).sum()))


def expected_f1(probabilities: np.ndarray, predicted: np.ndarray) -> float:
    """CBPE's point estimate: F1 of the expected confusion matrix."""
    p, predicted = np.asarray(probabilities, dtype=float), np.asarray(predicted, dtype=bool)
    return float(f1_from_counts(p[predicted].sum(), (1 - p[predicted]).sum(), p[~predicted].sum()))


def _levels(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    levels, counts = np.unique(np.rint(p * GRID).astype(np.int64), return_counts=True)
    return levels / GRID, counts


def simulate_f1(probabilities: list[np.ndarray], predicted: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` realised F1 values: labels drawn from the probabilities, cycling through the
    refits' probability vectors (one per refit of the calibration)."""
    predicted = np.asarray(predicted, dtype=bool)
    share = np.full(len(probabilities), draws // len(probabilities))
    share[: draws % len(probabilities)] += 1
    out = []
    for p, n in zip(probabilities, share):
        if n == 0:
            continue
        yes_p, yes_n = _levels(p[predicted])
        no_p, no_n = _levels(p[~predicted])
        tp = rng.binomial(yes_n, yes_p, size=(n, len(yes_p))).sum(axis=1)
        fn = rng.binomial(no_n, no_p, size=(n, len(no_p))).sum(axis=1)
        out.append(f1_from_counts(tp, int(predicted.sum()) - tp, fn))
    return np.concatenate(out)


@dataclass(frozen=True)
class ShiftMargin:
    """How the estimate fared on holdout blocks it was not calibrated on.

    `sd` is the spread of the misses beyond sampling noise (a random-effects variance:
    mean squared miss minus mean sampling variance, floored at 0), used as the standard
    deviation of an extra normal term in every interval.
    """

    sd: float
    blocks: int
    errors: tuple[float, ...]  # estimate - realised F1, per block
    sampling_sds: tuple[float, ...]

    @property
    def rms_error(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.errors))))

    @property
    def bias(self) -> float:
        return float(np.mean(self.errors))


def shift_margin(scores: np.ndarray, labels: np.ndarray, blocks: np.ndarray, threshold: float, method: Method,
                 min_rows: int, min_blocks: int, draws: int, seed: int = 0) -> ShiftMargin:
    """Leave one block out: calibrate on the others, estimate the block's F1, compare with its real F1."""
    scores, labels = check_pairs(scores, labels, "holdout rows")
    blocks = np.asarray(blocks)
    names, sizes = np.unique(blocks, return_counts=True)
    usable = [name for name, size in zip(names, sizes) if size >= min_rows and len(np.unique(labels[blocks != name])) == 2]
    if len(usable) < min_blocks:
        raise DataError(
            "holdout",
            f"{len(usable)} block(s) of at least {min_rows} rows, fewer than the {min_blocks} the shift margin needs",
            "lengthen the holdout (windows.holdout_fraction), or use shorter blocks or a lower min_rows in the estimation settings",
        )
    rng = np.random.default_rng(seed)
    errors, sds = [], []
    for name in usable:
        inside = blocks == name
        p = apply_mapping(fit_mapping(scores[~inside], labels[~inside], method), scores[inside])
        predicted = scores[inside] >= threshold
        errors.append(expected_f1(p, predicted) - realised_f1(labels[inside], predicted))
        sds.append(float(np.std(simulate_f1([p], predicted, draws, rng))))
    excess = float(np.mean(np.square(errors)) - np.mean(np.square(sds)))
    return ShiftMargin(float(np.sqrt(max(excess, 0.0))), len(errors), tuple(errors), tuple(sds))
