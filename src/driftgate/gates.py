"""Gates: pass/fail verdicts from metrics.json, drift.json and the thresholds in params.yaml.

Gates fail closed: a missing file, a missing key, or a NaN/null value is a failure with a
message that says what to look at, never a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from driftgate.config import GatesConfig


@dataclass(frozen=True)
class GateResult:
    gate: str
    value: float | None
    op: str
    threshold: float | None
    passed: bool
    detail: str = ""

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict:
        return asdict(self) | {"status": self.status}


def _number(source: dict | None, *keys: str) -> float | None:
    """A finite float at source[k1][k2]..., or None when missing, non-numeric or NaN."""
    value: Any = source
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _at_least(gate: str, value: float | None, threshold: float, what: str, look_at: str) -> GateResult:
    if value is None:
        return GateResult(gate, None, ">=", threshold, False, f"{what} is missing or NaN: fails closed; {look_at}")
    passed = value >= threshold
    detail = "" if passed else f"{threshold - value:.3f} below the minimum; {look_at}"
    return GateResult(gate, value, ">=", threshold, passed, detail)


def _at_most(gate: str, value: float | None, threshold: float, what: str, look_at: str) -> GateResult:
    if value is None:
        return GateResult(gate, None, "<=", threshold, False, f"{what} is missing or NaN: fails closed; {look_at}")
    passed = value <= threshold
    detail = "" if passed else f"{value - threshold:.3f} above the maximum; {look_at}"
    return GateResult(gate, value, "<=", threshold, passed, detail)


def f1_gates(metrics: dict | None, config: GatesConfig, baseline: dict | None, baseline_given: bool,
             plots: str = "reports/plots", drift_report: str = "reports/drift/drift.md") -> list[GateResult]:
    results = [
        _at_least("f1 (holdout)", _number(metrics, "holdout", "f1"), config.f1_min, "holdout F1",
                  f"see {plots}/confusion_matrix.png and the `model:` params"),
    ]
    current = (metrics or {}).get("current")
    if isinstance(current, dict) and current.get("labelled") is False:
        results.append(GateResult("f1 (current)", None, ">=", config.f1_min, True, "skipped: the current batch has no labels"))
    else:
        window = current.get("window", "") if isinstance(current, dict) else ""
        results.append(_at_least(f"f1 (current {window})".replace(" )", ")"), _number(metrics, "current", "f1"), config.f1_min,
                                 "current-batch F1", f"the batch may have drifted: see {drift_report}"))
    if baseline_given:
        new, old = _number(metrics, "holdout", "f1"), _number(baseline, "holdout", "f1")
        drop = None if new is None or old is None else old - new
        what = "baseline F1" if old is None else "holdout F1"
        gate = _at_most("f1 drop vs baseline", drop, config.f1_max_drop, what,
                        "compare params and data with `dvc params diff main` / `dvc metrics diff main`")
        results.append(gate)
    return results


def drift_gates(drift: dict | None, config: GatesConfig, drift_report: str = "reports/drift/drift.md") -> list[GateResult]:
    share = _number(drift, "drift_share")
    drifted = ", ".join((drift or {}).get("drifted_columns", [])[:6]) or "none"
    results = [
        _at_most("drift share", share, config.drift_share_max, "drift share",
                 f"drifted columns: {drifted}; see {drift_report}"),
    ]
    columns = (drift or {}).get("columns", {})
    for name in config.drift_columns:
        column = columns.get(name) if isinstance(columns, dict) else None
        score = _number(column, "score") if isinstance(column, dict) else None
        if column is None or score is None or not isinstance(column.get("drift"), bool):
            results.append(GateResult(f"no drift in {name}", score, "no drift", None, False,
                                      f"no drift result for column '{name}': fails closed; is it in drift.columns?"))
            continue
        detail = f"{column['test']} {score:.4g} vs threshold {column['threshold']:g}; see {drift_report}" if column["drift"] else ""
        results.append(GateResult(f"no drift in {name}", score, column["test"], column.get("threshold"), not column["drift"], detail))
    return results


def evaluate_gates(metrics: dict | None, drift: dict | None, config: GatesConfig, baseline: dict | None = None,
                   baseline_given: bool = False, plots: str = "reports/plots",
                   drift_report: str = "reports/drift/drift.md") -> list[GateResult]:
    """All gates, in table order. `plots` and `drift_report` only go into the hints."""
    return [*f1_gates(metrics, config, baseline, baseline_given, plots, drift_report), *drift_gates(drift, config, drift_report)]


def all_passed(results: list[GateResult]) -> bool:
    return bool(results) and all(r.passed for r in results)


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4g}"


def rows(results: list[GateResult]) -> list[list[str]]:
    return [[r.gate, _fmt(r.value), f"{r.op} {_fmt(r.threshold)}" if r.threshold is not None else r.op, r.status, r.detail]
            for r in results]


def markdown(results: list[GateResult]) -> str:
    from tabulate import tabulate

    verdict = "All gates passed." if all_passed(results) else "Failed: " + ", ".join(r.gate for r in results if not r.passed) + "."
    body = tabulate(rows(results), headers=["gate", "value", "threshold", "status", "what to look at"], tablefmt="github")
    return f"**{verdict}**\n\n{body}\n"
