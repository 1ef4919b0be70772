"""The typed result of a label-free estimate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class PerformanceEstimate(BaseModel):
    """A window's estimated metric before its labels arrive, or why there is none.

    When `abstained` is true, `estimate`, `lower` and `upper` are None and `reason` says why in
    words (too few rows, or a domain AUC above the limit); otherwise `reason` says what the
    interval is made of. `domain_auc` is None only when the support check did not run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["f1"] = "f1"
    estimate: float | None
    lower: float | None
    upper: float | None
    rows: int
    abstained: bool
    reason: str
    domain_auc: float | None
    coverage: float  # nominal coverage of [lower, upper]
    threshold: float  # the decision threshold the metric is computed at
    sampling_sd: float | None = None  # spread from label draws and calibration refits
    shift_sd: float | None = None  # the shift margin's standard deviation, measured on holdout blocks

    def covers(self, value: float) -> bool:
        """Whether `value` (e.g. the F1 once the labels arrive) lies in the interval."""
        return not self.abstained and self.lower is not None and self.upper is not None and self.lower <= value <= self.upper
