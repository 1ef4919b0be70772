"""Typed results: what the stages write as JSON, and what every reader gets back.

`drift.json`, `metrics.json` and `gate.json` are these models dumped; reading one of those files
gives the model back, validated, with the file named in any error. The statistics build
`ColumnDrift`, `drift.detect()` returns a `DriftResult`, the gates return `GateVerdicts`, and the
renderers in `driftgate.reporting` read only these types.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from driftgate.errors import DataError

ColumnKind = Literal["numeric", "categorical"]
GateStatus = Literal["PASS", "FAIL", "SKIP"]

P_VALUE_TESTS = frozenset({"ks", "chisquare", "z"})

T = TypeVar("T", bound="Result")


class Result(BaseModel):
    """A result that is written as, and read from, one JSON file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="python")

    def write(self, path: Path | str) -> Path:
        from driftgate.io import write_json

        return write_json(path, self.to_json())

    @classmethod
    def read(cls: type[T], path: Path | str, what: str | None = None) -> T:
        from driftgate.io import read_json

        payload = read_json(path, what or cls.__name__)
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"]) or "(top level)"
            raise DataError(path, f"{key}: {first['msg']}", "write it again with the driftgate command that produces it") from None


def _nan_if_none(value: Any) -> Any:
    return float("nan") if value is None else value


# --------------------------------------------------------------------------- drift


class ColumnDrift(Result):
    """One column's drift verdict. `score` is NaN when the column could not be tested."""

    column: str = Field(exclude=True)
    type: ColumnKind
    test: str
    score: float
    threshold: float
    drift: bool
    reference_rows: int
    current_rows: int
    reference_missing_share: float
    current_missing_share: float
    new_categories: list[str] = []  # the first 20 categories the reference does not have, sorted
    new_category_count: int = 0  # how many there are in all
    out_of_range_share: float = 0.0  # numeric: share of current values outside the reference's [min, max]
    score_error_bound: float = 0.0  # 0 where the score is exact; see driftgate.drift.sketch
    p_value: float | None = None  # calibrated mode: resampled p-value before correction
    ignored: bool = False  # drift.ignore: reported, but left out of the drift share

    _none_is_nan = field_validator("score", "threshold", mode="before")(_nan_if_none)

    def as_dict(self) -> dict[str, Any]:
        return self.to_json()

    @property
    def rule(self) -> str:
        """When this column counts as drifted, in words: `p <= 0.05`, `>= 0.1`, `bh p at 0.05`."""
        if self.p_value is not None:
            return f"adjusted p <= {self.threshold:g}"
        if self.test == "ks":
            return f"p <= {self.threshold:g}"
        if self.test in P_VALUE_TESTS:
            return f"p < {self.threshold:g}"
        if self.test == "none" or not math.isfinite(self.threshold):
            return "not tested"
        return f">= {self.threshold:g}"


class DriftResult(Result):
    """drift.json: the dataset verdict, one `ColumnDrift` per column, and how it was computed."""

    dataset_drift: bool
    drift_share: float
    threshold: float
    n_columns: int
    n_drifted: int
    drifted_columns: list[str]
    columns: dict[str, ColumnDrift]
    ignored_columns: list[str] = []
    mode: Literal["parity", "calibrated"] = "parity"
    engine: Literal["pandas", "chunked", "dask"] = "pandas"
    alpha: float | None = None
    correction: str | None = None
    draws: int | None = None
    pool_below: float | None = None
    reference_window: str = "reference"
    current_window: str = "current"
    reference_rows: int | None = None
    current_rows: int | None = None
    target: str | None = None
    prediction: str | None = None
    warnings: list[str] = []

    _none_is_nan = field_validator("drift_share", mode="before")(_nan_if_none)

    @field_validator("columns", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: ({**col, "column": name} if isinstance(col, dict) else col) for name, col in value.items()}
        return value

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="python")
        out["columns"] = {name: col.to_json() for name, col in self.columns.items()}
        return out

    def ranked(self, limit: int | None = None) -> list[ColumnDrift]:
        """Columns most drifted first: drifted before not, then by distance from the threshold."""

        def severity(col: ColumnDrift) -> tuple[int, float]:
            if col.p_value is not None:  # calibrated mode: the smaller p, the more drifted
                return (0 if col.drift else 1, col.p_value)
            if not math.isfinite(col.score):
                return (1, 0.0)
            ratio = (col.threshold / max(col.score, 1e-300)) if col.test in P_VALUE_TESTS else col.score / col.threshold
            return (0 if col.drift else 1, -min(ratio, 1e300))

        ordered = sorted(self.columns.values(), key=severity)
        return ordered[:limit] if limit else ordered


# --------------------------------------------------------------------------- metrics


class ConfusionCounts(Result):
    tn: int
    fp: int
    fn: int
    tp: int


class SplitMetrics(Result):
    """The model's scores on one split (holdout or current). Unlabelled splits carry only rows."""

    labelled: bool = True
    rows: int
    window: str = ""
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    roc_auc: float | None = None
    pr_auc: float | None = None
    positive_share: float | None = None
    threshold: float | None = None
    confusion_matrix: ConfusionCounts | None = None


class Metrics(Result):
    """metrics.json."""

    holdout: SplitMetrics
    current: SplitMetrics


# --------------------------------------------------------------------------- gates


class GateResult(Result):
    gate: str
    value: float | None
    op: str
    threshold: float | None
    status: GateStatus
    detail: str = ""

    @property
    def passed(self) -> bool:
        """SKIP counts as not failed: a gate that could not be computed for a stated reason
        (no labels in the batch) neither passes nor blocks; its reason is shown."""
        return self.status != "FAIL"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="python") | {"passed": self.passed}


class GateVerdicts(Result):
    """gate.json."""

    passed: bool
    gates: list[GateResult]

    @classmethod
    def of(cls, gates: list[GateResult]) -> GateVerdicts:
        """Passed when at least one gate ran and none failed (an empty list fails closed)."""
        ran = [g for g in gates if g.status != "SKIP"]
        return cls(passed=bool(ran) and all(g.passed for g in gates), gates=gates)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "gates": [g.to_json() for g in self.gates]}

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "FAIL"]


# --------------------------------------------------------------------------- monitoring


class AlertRow(Result):
    """One row of the alert history: an incident fired, was notified again, changed level or resolved."""

    rule: str
    level: Literal["ok", "warning", "critical"]
    event: Literal["fired", "renotified", "escalated", "deescalated", "resolved"]
    value: float | None = None
    threshold: float | None = None
    message: str
    incident: int | None = None


class MonitorPass(Result):
    """One monitoring pass as the CLI, the CI schedule's report and the notifications show it."""

    pass_id: int
    status: Literal["done", "skipped"]
    reason: str
    level: Literal["ok", "warning", "critical"]
    rows: int
    model_version: str = ""
    metrics: dict[str, float | None] = {}
    estimate_reason: str | None = None
    alerts: list[AlertRow] = []
    drift: DriftResult | None = None


# --------------------------------------------------------------------------- retraining


class PromotionDecision(Result):
    """The promotion rule's verdict on a champion and a challenger scored on the same rows."""

    promote: bool
    rows: int  # evaluation rows both models were scored on
    champion_f1: float
    challenger_f1: float
    difference: float  # challenger - champion, on the same rows
    lower: float  # one-sided paired bootstrap lower bound of the difference at `confidence`
    confidence: float
    margin: float  # as configured
    margin_kind: Literal["absolute", "relative"]
    required: float  # the margin in F1 points (relative: margin x champion F1)
    gates_passed: bool
    # With refits (retraining.replicas), champion_f1 and challenger_f1 are the recipes' mean F1 over
    # their fits (the model and its refits on resampled rows); the models' own F1s are these:
    champion_model_f1: float | None = None
    challenger_model_f1: float | None = None
    champion_fits: int = 1
    challenger_fits: int = 1
    champion_sd: float | None = None  # sd of F1 over the champion's fits (None: one fit)
    challenger_sd: float | None = None
    reason: str  # in words: why promoted, or the first condition that failed
