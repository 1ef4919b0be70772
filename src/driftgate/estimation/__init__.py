"""Label-free performance estimates: F1 of a window before its labels arrive, with an interval,
or an abstention that says why (too few rows, or a window outside the reference's support).

    reference = holdout_reference(params, pipeline, dataset, EstimationSettings())
    result = estimate_f1(reference, scores, features)   # -> PerformanceEstimate

See docs/estimation.md for the method and how well it does on the bundled data.
"""

from driftgate.estimation.calibration import Calibration, fit_calibration
from driftgate.estimation.estimator import Reference, estimate_f1, f1_interval, fit_reference, holdout_reference
from driftgate.estimation.f1 import ShiftMargin, expected_f1
from driftgate.estimation.result import PerformanceEstimate
from driftgate.estimation.settings import EstimationSettings

__all__ = [
    "Calibration",
    "EstimationSettings",
    "PerformanceEstimate",
    "Reference",
    "ShiftMargin",
    "estimate_f1",
    "expected_f1",
    "f1_interval",
    "fit_calibration",
    "fit_reference",
    "holdout_reference",
]
