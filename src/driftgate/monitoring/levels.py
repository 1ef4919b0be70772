"""Alert levels and incidents, pure: a pass's metrics and the rules give conditions; conditions
and the open incidents give alert rows.

    conditions(metrics, drifted, rules)            -> [Condition]   one per rule that could be judged
    transitions(open, conditions, now, cooldown)   -> [alert row]   fired, renotified, escalated, ...

An incident fires once, is notified again after `cooldown` while it persists, escalates (warning
-> critical) or eases (critical -> warning) as its level changes, and resolves when its rule is
judged ok. A rule that could not be judged (no labels yet, an estimate that abstained) leaves its
incident as it was: no news is not good news.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftgate.config import AlertLevel, AlertRules, Levels

RANK = {"ok": 0, "warning": 1, "critical": 2}
NOTIFIED = ("fired", "renotified", "escalated", "resolved")  # the events a channel is told about


@dataclass(frozen=True)
class Condition:
    rule: str  # drift_share, column:<name>, prediction_drift, estimated_f1, realized_f1, missing_share
    level: AlertLevel
    value: float | None
    threshold: float | None
    message: str


def worst(levels: Iterable[str]) -> AlertLevel:
    return max(levels, key=RANK.__getitem__, default="ok")  # type: ignore[return-value]


def _above(rule: str, value: float, levels: Levels, text: str) -> Condition:
    """At or above a limit is a breach (drift share, missing share)."""
    for level in ("critical", "warning"):
        limit = getattr(levels, level)
        if limit is not None and value >= limit:
            return Condition(rule, level, value, limit, f"{text} {value:.3g} >= {limit:g} ({level})")
    limit = levels.warning if levels.warning is not None else levels.critical
    return Condition(rule, "ok", value, limit, f"{text} {value:.3g}" + (f" < {limit:g}" if limit is not None else ""))


def _below(rule: str, value: float, levels: Levels, text: str) -> Condition:
    """Below a limit is a breach (F1)."""
    for level in ("critical", "warning"):
        limit = getattr(levels, level)
        if limit is not None and value < limit:
            return Condition(rule, level, value, limit, f"{text} {value:.3f} < {limit:g} ({level})")
    limit = levels.warning if levels.warning is not None else levels.critical
    return Condition(rule, "ok", value, limit, f"{text} {value:.3f}" + (f" >= {limit:g}" if limit is not None else ""))


def conditions(metrics: dict[str, Any], drifted: dict[str, bool], rules: AlertRules, prediction_columns: Iterable[str] = ()) -> list[Condition]:
    """The conditions of one pass: `metrics` holds drift_share, missing_share_rise (and the column
    it is in, missing_share_column), estimated_f1 (None when abstained), realized_f1 (None until
    labels are in); `drifted` is each tested column's verdict."""
    out: list[Condition] = []
    if metrics.get("drift_share") is not None:
        out.append(_above("drift_share", float(metrics["drift_share"]), rules.drift_share, "drift share"))
    for column, level in rules.columns.items():
        if column in drifted:
            out.append(Condition(f"column:{column}", level if drifted[column] else "ok", float(drifted[column]), None,
                                 f"{column} {'drifts' if drifted[column] else 'does not drift'}"))
    judged = [c for c in prediction_columns if c in drifted]
    if judged and rules.prediction_drift != "ok":
        moved = [c for c in judged if drifted[c]]
        out.append(Condition("prediction_drift", rules.prediction_drift if moved else "ok", float(bool(moved)), None,
                             f"prediction drift in {', '.join(moved)}" if moved else "no prediction drift"))
    if metrics.get("missing_share_rise") is not None:
        where = metrics.get("missing_share_column")
        out.append(_above("missing_share", float(metrics["missing_share_rise"]), rules.missing_share,
                          f"missing share rise{f' ({where})' if where else ''}"))
    if metrics.get("estimated_f1") is not None:
        out.append(_below("estimated_f1", float(metrics["estimated_f1"]), rules.estimated_f1, "estimated F1"))
    if metrics.get("realized_f1") is not None:
        out.append(_below("realized_f1", float(metrics["realized_f1"]), rules.realized_f1, "realized F1"))
    return out


def transitions(open_incidents: dict[str, dict], found: list[Condition], now: datetime, cooldown: float) -> list[dict[str, Any]]:
    """Alert rows for one pass. `open_incidents` maps a rule to its incident's newest row (with
    `incident`, `level` and `notified_at`); a new incident's rows carry incident None."""
    rows: list[dict[str, Any]] = []
    for condition in found:
        incident = open_incidents.get(condition.rule)
        row = {"rule": condition.rule, "level": condition.level, "value": condition.value,
               "threshold": condition.threshold, "message": condition.message}
        if condition.level == "ok":
            if incident:
                rows.append({**row, "event": "resolved", "incident": incident["incident"]})
            continue
        if incident is None:
            rows.append({**row, "event": "fired", "incident": None})
        elif RANK[condition.level] > RANK[incident["level"]]:
            rows.append({**row, "event": "escalated", "incident": incident["incident"]})
        elif RANK[condition.level] < RANK[incident["level"]]:
            rows.append({**row, "event": "deescalated", "incident": incident["incident"]})
        else:
            notified = incident.get("notified_at")
            if notified is None or (now - notified).total_seconds() >= cooldown:
                rows.append({**row, "event": "renotified", "incident": incident["incident"]})
    return rows
