"""The settings of a label-free estimate: every threshold, with its default and why.

They are meant to live in params.yaml (under ``monitoring.estimation``); the defaults are the
values docs/estimation.md measured. A value out of range fails when the settings are built,
with the key named, like every other section of params.yaml.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class EstimationSettings(BaseModel):
    """How an F1 estimate is made, how wide its interval is, and when it abstains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the interval
    coverage: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9
    """Nominal coverage of the interval: 0.9 puts 5% of the estimate's distribution below it and 5% above."""
    calibration: Literal["isotonic", "platt"] = "platt"
    """How the model's scores become probabilities, fitted on the holdout: Platt scaling (a
    logistic curve on the score's log-odds) or isotonic regression (no shape assumed). Platt
    missed the holdout's days by less (rms 0.082 against 0.086 F1; docs/estimation.md)."""
    refits: Annotated[int, Field(ge=0, le=1000)] = 50
    """Bootstrap refits of the calibration on resampled holdout rows: the calibration's own fitting error."""
    draws: Annotated[int, Field(ge=50, le=100_000)] = 400
    """Simulated label draws per estimate (Poisson-binomial): the sampling noise of the window's F1."""
    block: str = "D"
    """The holdout is cut into blocks of this length (a pandas period: D, W, h ...); how far the
    estimate misses each block, beyond its sampling noise, is the shift margin added to every interval."""
    min_blocks: Annotated[int, Field(ge=3)] = 5
    """Fewest holdout blocks (of at least min_rows rows each) to measure the shift margin from."""

    # abstention
    min_rows: Annotated[int, Field(ge=1)] = 500
    """Fewer rows than this: abstain. On the bundled model the sampling part of the interval is
    about +-0.09 F1 at 200 rows, +-0.06 at 500 and +-0.03 at 2,000 (the shift margin adds to it)."""
    max_domain_auc: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    """Abstain when a classifier tells reference rows from window rows with a cross-validated
    ROC-AUC above this (1.0: never abstain for shift). Months inside the bundled training window
    score 0.69-0.75 against it, weeks 0.87-0.95: shorter windows need a higher limit."""
    domain_rows: Annotated[int, Field(ge=100)] = 5000
    """Rows sampled from each side for the domain classifier."""
    domain_folds: Annotated[int, Field(ge=2, le=10)] = 3
    """Cross-validation folds of the domain classifier (its AUC is out of fold)."""

    seed: int = 0
