"""The label-free F1 estimate of a window: point, interval, or an abstention that says why.

    reference = holdout_reference(params, pipeline, dataset)          # once per model
    result = estimate_f1(reference, window_scores, window_features)   # per window

The point is CBPE's expected F1 from scores calibrated on the holdout. The interval is the
`coverage` quantile range of the realised F1 under three sources of error, simulated together:

1. sampling: the window's labels drawn from the calibrated probabilities (Poisson-binomial);
2. calibration fitting: each draw under a bootstrap refit of the calibration;
3. shift: a normal term whose standard deviation is how much the estimate missed holdout blocks
   it was not calibrated on, beyond their sampling noise (`ShiftMargin`). That error does not
   shrink with more rows, so it sets the interval's floor.

The estimate abstains when the window has fewer than `min_rows` rows, or when a domain
classifier separates it from the reference with an AUC above `max_domain_auc`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from driftgate.config import Params
from driftgate.data.dataset import TIME, feature_schema, features_frame, labels, select_window, time_split
from driftgate.errors import DataError
from driftgate.estimation.calibration import Calibration, _log_odds, check_pairs, fit_calibration
from driftgate.estimation.f1 import ShiftMargin, expected_f1, shift_margin, simulate_f1
from driftgate.estimation.result import PerformanceEstimate
from driftgate.estimation.settings import EstimationSettings
from driftgate.estimation.support import abstention, domain_auc

SHIFT_DRAWS = 50  # normal shift draws added to each simulated F1 (a cheap, smooth convolution)


@dataclass(frozen=True)
class Reference:
    """What every window is estimated against: built once per model."""

    calibration: Calibration
    shift: ShiftMargin
    threshold: float
    features: pd.DataFrame  # reference rows for the support check (the model's feature columns)
    kinds: dict[str, str]  # feature column -> numeric | categorical
    settings: EstimationSettings
    rows_word: str = "rows"  # what the rows are called in reasons (params.yaml: project.rows)


def time_blocks(times: pd.Series | np.ndarray, block: str) -> np.ndarray:
    """The period (e.g. the calendar day for block "D") each timestamp falls in."""
    return pd.Series(pd.to_datetime(times)).dt.to_period(block).astype(str).to_numpy()


def fit_reference(scores: np.ndarray, y: np.ndarray, times: pd.Series | np.ndarray, features: pd.DataFrame, kinds: dict[str, str],
                  threshold: float, settings: EstimationSettings | None = None, rows_word: str = "rows") -> Reference:
    """Calibrate on labelled holdout rows (`scores`, `y`, `times`) and measure the shift margin on
    their time blocks; `features` are the reference rows windows are checked against."""
    settings = settings or EstimationSettings()
    scores, y = check_pairs(scores, y, "holdout rows")
    calibration = fit_calibration(scores, y, settings.calibration, settings.refits, settings.seed)
    shift = shift_margin(scores, y, time_blocks(times, settings.block), threshold, settings.calibration,
                         settings.min_rows, settings.min_blocks, settings.draws, settings.seed)
    return Reference(calibration, shift, float(threshold), features[list(kinds)].reset_index(drop=True), dict(kinds), settings, rows_word)


def holdout_reference(params: Params, pipeline, dataset: pd.DataFrame, settings: EstimationSettings | None = None) -> Reference:
    """The reference of a trained model: calibrated on its holdout (the last
    `windows.holdout_fraction` of `windows.train`, in time), with the reference window's rows
    (`windows.reference`, else `windows.train`) for the support check."""
    schema = feature_schema(dataset, params.data)
    _, holdout = time_split(select_window(dataset, params.windows.train, "train"), params.windows.holdout_fraction)
    reference = select_window(dataset, params.windows.reference_window, "reference")
    scores = pipeline.predict_proba(features_frame(holdout, schema))[:, 1]
    return fit_reference(scores, labels(holdout), holdout[TIME], features_frame(reference, schema), schema.kinds(),
                         params.model.threshold, settings, params.project.rows)


def f1_interval(reference: Reference, scores: np.ndarray, shift: bool = True) -> tuple[float, float, float, float]:
    """(estimate, lower, upper, sampling sd) for scores of one window, with no support check;
    `shift=False` leaves the shift margin out (sampling and calibration error only)."""
    settings = reference.settings
    scores = np.asarray(scores, dtype=float)
    predicted = scores >= reference.threshold
    estimate = expected_f1(reference.calibration.probabilities(scores), predicted)
    rng = np.random.default_rng(settings.seed)
    # The draws read only how many rows sit at each pooled probability level, so the rows may come
    # in any order: in score order the level counting (a sort per refit) has little left to do.
    ordered = np.sort(scores)
    sampled = simulate_f1(_refit_probabilities(reference.calibration, ordered), ordered >= reference.threshold,
                          settings.draws, rng)
    sd = reference.shift.sd if shift else 0.0
    total = (sampled[:, None] + rng.normal(0.0, sd, (len(sampled), SHIFT_DRAWS))).ravel() if sd > 0 else sampled
    tail = (1 - settings.coverage) / 2
    lower, upper = np.clip(np.quantile(total, [tail, 1 - tail]), 0.0, 1.0)
    return estimate, float(min(lower, estimate)), float(max(upper, estimate)), float(np.std(sampled))


def _refit_probabilities(calibration: Calibration, scores: np.ndarray) -> list[np.ndarray]:
    """`calibration.refit_probabilities(scores)`, the same numbers: for Platt scaling the scores'
    log-odds are taken once for every refit, and each refit's logistic curve applied to them as
    scikit-learn's predict_proba computes it (expit of the scores times the slope plus the intercept)."""
    refits = calibration.refits
    if calibration.method != "platt" or not refits or not all(isinstance(m, LogisticRegression) for m in refits):
        return calibration.refit_probabilities(scores)
    from scipy.special import expit

    odds = _log_odds(scores)
    return [expit((odds @ mapping.coef_.T + mapping.intercept_).reshape(-1)) for mapping in refits]


def estimate_f1(reference: Reference, scores: np.ndarray, features: pd.DataFrame) -> PerformanceEstimate:
    """F1 of a window of served predictions before its labels arrive (or why not)."""
    settings = reference.settings
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(features):
        raise DataError("window", f"{len(scores)} scores for {len(features)} rows", "score every row of the window once")
    if not np.isfinite(scores).all():
        raise DataError("window", f"{int((~np.isfinite(scores)).sum())} score(s) are NaN or infinite", "score every row with the model")
    common = {"rows": len(scores), "coverage": settings.coverage, "threshold": reference.threshold}
    why = abstention(len(scores), None, settings, reference.rows_word)
    if why:
        return PerformanceEstimate(estimate=None, lower=None, upper=None, abstained=True, reason=why, domain_auc=None, **common)
    auc = domain_auc(reference.features, features, reference.kinds, settings)
    why = abstention(len(scores), auc, settings, reference.rows_word)
    if why:
        return PerformanceEstimate(estimate=None, lower=None, upper=None, abstained=True, reason=why, domain_auc=auc, **common)
    estimate, lower, upper, sampling_sd = f1_interval(reference, scores)
    reason = (f"domain AUC {auc:.3f} <= {settings.max_domain_auc:.2f}; the {settings.coverage:.0%} interval holds label draws and "
              f"calibration refits (sd {sampling_sd:.3f}) and the shift margin from {reference.shift.blocks} holdout blocks "
              f"(sd {reference.shift.sd:.3f})")
    return PerformanceEstimate(estimate=estimate, lower=lower, upper=upper, abstained=False, reason=reason, domain_auc=auc,
                               sampling_sd=sampling_sd, shift_sd=reference.shift.sd, **common)
