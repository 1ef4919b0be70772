"""One monitoring pass over a window of the prediction log, and what late labels change.

    outcome = run_pass(params, log, store, model, paths)     # -> PassOutcome

A pass takes the store's lease (one pass at a time, however many processes share the store),
checks the model's frozen reference, reads the window (the predictions since the last judged
pass, or a sliding time window), and, if it holds at least monitoring.min_rows predictions,
tests drift through `drift.detect` (features, scores and decisions; missing shares, values out
of the reference's range and new categories are in its result), estimates F1 without labels,
takes the realized F1 of the labels in so far, judges the alert rules and writes it all in one
transaction. Notifications go out after the commit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftgate.config import Params, Paths
from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION, features_frame
from driftgate.errors import DriftgateError
from driftgate.monitoring.levels import NOTIFIED, conditions, transitions, worst
from driftgate.monitoring.reference import FrozenReference, ModelInfo, frozen
from driftgate.results import AlertRow, DriftResult, MonitorPass
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import PredictionLog

Say = Callable[[str], None]


@dataclass
class PassOutcome:
    pass_id: int
    status: str  # done | skipped
    reason: str
    level: str
    rows: int
    metrics: dict[str, Any] = field(default_factory=dict)
    drift: DriftResult | None = None
    estimate_reason: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    model_version: str = ""
    retraining: Any = None  # the RetrainOutcome, when this pass triggered a retraining (retraining.on_alert)

    @property
    def notifiable(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["event"] in NOTIFIED]

    def result(self) -> MonitorPass:
        """The typed result the renderers read."""
        return MonitorPass(pass_id=self.pass_id, status=self.status, reason=self.reason, level=self.level, rows=self.rows,
                           model_version=self.model_version, metrics=self.metrics, estimate_reason=self.estimate_reason,
                           alerts=[AlertRow(**a) for a in self.alerts], drift=self.drift)


_ESTIMATORS: dict[str, Any] = {}  # frozen reference sha256 -> estimation.Reference (fitting it takes seconds)


def estimator(reference: FrozenReference, params: Params):
    """The label-free estimator of a frozen reference, fitted once per process."""
    key = f"{reference.stored.sha256}:{params.monitoring.estimation.model_dump_json()}"
    if key not in _ESTIMATORS:
        from driftgate.estimation import fit_reference

        holdout = reference.holdout
        _ESTIMATORS[key] = fit_reference(holdout["score"].to_numpy(), holdout["label"].to_numpy(), holdout["time"],
                                         reference.frame, reference.feature_kinds, reference.threshold,
                                         params.monitoring.estimation, params.project.rows)
    return _ESTIMATORS[key]


def realized(labelled: pd.DataFrame, threshold: float) -> dict[str, float | None]:
    """F1, precision and recall of labelled predictions (None where undefined)."""
    if labelled.empty:
        return {"realized_f1": None, "realized_precision": None, "realized_recall": None, "labelled_rows": 0.0}
    y = labelled["label"].to_numpy(dtype=int)
    predicted = labelled["probability"].to_numpy(dtype=float) >= threshold
    tp = float(np.sum(predicted & (y == 1)))
    fp, fn = float(np.sum(predicted & (y == 0))), float(np.sum(~predicted & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    return {"realized_f1": f1, "realized_precision": precision, "realized_recall": recall, "labelled_rows": float(len(y))}


def _window(log: PredictionLog, store: MonitoringStore, params: Params, model: ModelInfo, started: datetime):
    settings = params.monitoring
    if settings.sliding is not None:
        since = started - timedelta(seconds=settings.sliding)
        return log.window(since=since, model_version=model.version, limit=settings.max_rows), f"the last {settings.window}"
    last = store.last_judged(model.version)
    after = int(last["last_id"]) if last else 0
    return log.window(after_id=after, model_version=model.version, limit=settings.max_rows), \
        (f"predictions after #{after}" if after else "every prediction so far")


def _missing_rise(drift: DriftResult, kinds: dict[str, str]) -> tuple[float, str | None]:
    rises = {name: col.current_missing_share - col.reference_missing_share
             for name, col in drift.columns.items() if name in kinds and math.isfinite(col.current_missing_share)}
    if not rises:
        return 0.0, None
    column = max(rises, key=rises.get)
    return max(0.0, float(rises[column])), column if rises[column] > 0 else None


def _tested(reference: FrozenReference, params: Params) -> dict[str, str]:
    kinds = dict(reference.feature_kinds)
    if params.drift.columns is not None:
        kinds = {c: k for c, k in kinds.items() if c in params.drift.columns}
    if params.drift.prediction:
        kinds[PREDICTION], kinds[PREDICTED_LABEL] = "numeric", "categorical"
    return kinds


def run_pass(params: Params, log: PredictionLog, store: MonitoringStore, model: ModelInfo, paths: Paths = Paths(),
             model_path: Path | None = None, say: Say | None = None, notify: Callable[[PassOutcome], None] | None = None,
             seed: int = 0) -> PassOutcome:
    """One pass (see the module's docstring). Raises store.monitoring.LeaseHeld when another
    process holds the lease, and DataError on a reference or a log that cannot be used."""
    say = say or (lambda _message: None)
    settings = params.monitoring
    holder = store.acquire(settings.lease)
    clock = time.perf_counter()
    try:
        started = datetime.now(UTC)
        reference = frozen(store, params, model, paths, model_path or paths.model)
        window, described = _window(log, store, params, model, started)
        base = {"started_at": started, "model_version": model.version, "reference_sha256": reference.stored.sha256,
                "rows": len(window), "first_id": window.first_id, "last_id": window.last_id,
                "first_at": window.timestamps.iloc[0].to_pydatetime() if len(window) else None,
                "last_at": window.timestamps.iloc[-1].to_pydatetime() if len(window) else None}
        if len(window) < settings.min_rows:
            reason = f"skipped: {len(window):,} < {settings.min_rows:,} {params.project.rows} ({described})"
            say(reason)
            pass_id = store.record_pass({**base, "finished_at": datetime.now(UTC), "status": "skipped", "reason": reason,
                                        "level": "ok"}, [], [])
            return PassOutcome(pass_id, "skipped", reason, "ok", len(window), seconds=time.perf_counter() - clock,
                               model_version=model.version)
        cut = f"; cut to the newest {settings.max_rows:,}" if len(window) == settings.max_rows else ""
        reason = f"{len(window):,} {params.project.rows}: {described}{cut}"
        say(f"window: {reason}")
        current = window.inputs
        current.attrs["source"] = f"prediction log {log.url.split('/')[-1]}"
        current = features_frame(current, model.schema)
        current[PREDICTION] = window.probability
        current[PREDICTED_LABEL] = (window.probability >= reference.threshold).astype(int).astype(str)
        kinds = _tested(reference, params)

        from driftgate.drift.detect import detect

        say(f"testing drift of {len(kinds)} columns ({settings.mode} mode)")
        drift = detect(reference.frame, current, params.drift.model_copy(update={"mode": settings.mode}), kinds=kinds,
                       labels=(f"reference of model {model.version}", f"predictions #{window.first_id}..#{window.last_id}"),
                       seed=seed)
        rise, rise_column = _missing_rise(drift, reference.feature_kinds)

        say("estimating F1 without labels")
        from driftgate.estimation import PerformanceEstimate, estimate_f1

        try:
            estimate = estimate_f1(estimator(reference, params), window.probability, current[list(reference.feature_kinds)])
        except DriftgateError as exc:  # e.g. a holdout too small to measure the shift margin on: no estimate, said why
            estimate = PerformanceEstimate(estimate=None, lower=None, upper=None, rows=len(window), abstained=True,
                                           reason=f"no estimate: {exc.problem}", domain_auc=None,
                                           coverage=settings.estimation.coverage, threshold=reference.threshold)
        labelled = realized(log.labelled(window.first_id, window.last_id), reference.threshold)
        metrics: dict[str, Any] = {
            "drift_share": drift.drift_share, "drifted_columns": float(drift.n_drifted), "tested_columns": float(drift.n_columns),
            "prediction_drift": float(any(drift.columns[c].drift for c in (PREDICTION, PREDICTED_LABEL) if c in drift.columns)),
            "missing_share_rise": rise, "estimated_f1": estimate.estimate, "estimated_lower": estimate.lower,
            "estimated_upper": estimate.upper, **labelled,
            "estimate_error": _error(estimate.estimate, labelled, settings.min_rows),
        }
        latest_realized = labelled["realized_f1"] if labelled["labelled_rows"] >= settings.min_rows else _latest_realized(store, model, settings.min_rows)
        judged = conditions({**metrics, "realized_f1": latest_realized, "missing_share_column": rise_column},
                            {name: col.drift for name, col in drift.columns.items() if not col.ignored}, settings.alerts,
                            prediction_columns=(PREDICTION, PREDICTED_LABEL))
        alerts = transitions(store.open_incidents(), judged, datetime.now(UTC), settings.cooldown)
        level = worst(c.level for c in judged)
        rows = [{"name": name, "column": column, "value": value}
                for column, col in drift.columns.items()
                for name, value in (("drift_score", col.score), ("p_value", col.p_value), ("drifted", float(col.drift)),
                                    ("missing_share", col.current_missing_share),
                                    ("missing_share_reference", col.reference_missing_share))
                if value is not None and math.isfinite(value)]
        row = {**base, "finished_at": datetime.now(UTC), "status": "done", "reason": reason, "level": level,
               **metrics, "estimate_abstained": estimate.abstained,
               "estimate_reason": estimate.reason, "drift": drift.to_json()}
        if labelled["labelled_rows"]:
            row["realized_at"] = datetime.now(UTC)
        pass_id = store.record_pass(row, rows, alerts)
        outcome = PassOutcome(pass_id, "done", reason, level, len(window), metrics, drift, estimate.reason, alerts,
                              time.perf_counter() - clock, model.version)
    finally:
        store.release(holder)
    say(f"pass {outcome.pass_id}: {level}" + "".join(f"\n  {a['event']}: {a['message']}" for a in alerts))
    if notify and outcome.notifiable:
        notify(outcome)
    return outcome


def _error(estimate: float | None, labelled: dict, min_rows: int) -> float | None:
    """The estimate's own error, once the window has enough labels: realized - estimated."""
    if estimate is None or labelled["realized_f1"] is None or labelled["labelled_rows"] < min_rows:
        return None
    return float(labelled["realized_f1"] - estimate)


def _latest_realized(store: MonitoringStore, model: ModelInfo, min_rows: int) -> float | None:
    for row in store.passes_list(limit=50, model_version=model.version, status="done"):
        if (row["labelled_rows"] or 0) >= min_rows and row["realized_f1"] is not None:
            return float(row["realized_f1"])
    return None


def refresh_realized(log: PredictionLog, store: MonitoringStore, first_id: int, last_id: int, threshold: float,
                     min_rows: int) -> int:
    """Recompute the realized metrics (and the estimate's error) of every judged pass whose
    window holds a prediction id in [first_id, last_id]: late labels update past windows.
    Returns how many passes changed."""
    changed = 0
    for row in store.passes_covering(first_id, last_id):
        values = realized(log.labelled(row["first_id"], row["last_id"]), threshold)
        values["estimate_error"] = _error(row["estimated_f1"], values, min_rows)
        store.update_realized(row["id"], values)
        changed += 1
    return changed
