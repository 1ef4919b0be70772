"""Gates: pass/fail verdicts from metrics.json, drift.json and the thresholds in params.yaml.

Gates fail closed: a missing file, a missing key, a NaN/null value, or a value outside its
domain (an F1 or a share outside [0, 1]) is a failure with a message that says what to look at,
never a pass. A gate that cannot apply for a stated reason (a batch without labels has no F1)
is SKIP, with the reason, never PASS.
"""

from __future__ import annotations

import math
from typing import Any

from driftgate.config import GatesConfig
from driftgate.errors import listed
from driftgate.results import DriftResult, GateResult, GateVerdicts, Metrics

UNIT = (0.0, 1.0)


def _plain(source: Any) -> dict | None:
    """Typed results as the JSON they are written as; anything else as it is."""
    if isinstance(source, (DriftResult, Metrics)):
        return source.to_json()
    return source if isinstance(source, dict) else None


def _number(source: dict | None, *keys: str, domain: tuple[float, float] | None = None) -> tuple[float | None, str]:
    """(value, "") for a finite float at source[k1][k2]..., else (None, why not): missing,
    not a number, NaN, or outside `domain`."""
    value: Any = source
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None, "is missing"
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, "is missing" if value is None else f"is not a number ({value!r})"
    if not math.isfinite(value):
        return None, "is NaN" if math.isnan(value) else "is infinite"
    if domain is not None and not domain[0] <= value <= domain[1]:
        return None, f"is {value:g}, outside [{domain[0]:g}, {domain[1]:g}]"
    return float(value), ""


def _failed_closed(gate: str, op: str, threshold: float, what: str, why: str, look_at: str) -> GateResult:
    return GateResult(gate=gate, value=None, op=op, threshold=threshold, status="FAIL",
                      detail=f"{what} {why}: fails closed; {look_at}")


def _at_least(gate: str, value: tuple[float | None, str], threshold: float, what: str, look_at: str) -> GateResult:
    number, why = value
    if number is None:
        return _failed_closed(gate, ">=", threshold, what, why, look_at)
    passed = number >= threshold
    detail = "" if passed else f"{threshold - number:.3f} below the minimum; {look_at}"
    return GateResult(gate=gate, value=number, op=">=", threshold=threshold, status="PASS" if passed else "FAIL", detail=detail)


def _at_most(gate: str, value: tuple[float | None, str], threshold: float, what: str, look_at: str) -> GateResult:
    number, why = value
    if number is None:
        return _failed_closed(gate, "<=", threshold, what, why, look_at)
    passed = number <= threshold
    detail = "" if passed else f"{number - threshold:.3f} above the maximum; {look_at}"
    return GateResult(gate=gate, value=number, op="<=", threshold=threshold, status="PASS" if passed else "FAIL", detail=detail)


def f1_gates(metrics: Metrics | dict | None, config: GatesConfig, baseline: Metrics | dict | None, baseline_given: bool,
             plots: str = "reports/plots", drift_report: str = "reports/drift/drift.md") -> list[GateResult]:
    metrics, baseline = _plain(metrics), _plain(baseline)
    holdout = _number(metrics, "holdout", "f1", domain=UNIT)
    results = [_at_least("f1 (holdout)", holdout, config.f1_min, "holdout F1",
                         f"see the confusion matrices in {plots} and the `model:` params")]
    current = (metrics or {}).get("current")
    if isinstance(current, dict) and current.get("labelled") is False:
        results.append(GateResult(gate="f1 (current)", value=None, op=">=", threshold=config.f1_min, status="SKIP",
                                  detail=f"not computed: the current batch ({current.get('window') or 'no window'}) has no labels"))
    else:
        window = current.get("window", "") if isinstance(current, dict) else ""
        results.append(_at_least(f"f1 (current {window})".replace(" )", ")"), _number(metrics, "current", "f1", domain=UNIT),
                                 config.f1_min, "current-batch F1", f"the batch may have drifted: see {drift_report}"))
    if baseline_given:
        old = _number(baseline, "holdout", "f1", domain=UNIT)
        if old[0] is None:
            drop, what = (None, old[1]), "baseline F1"
        elif holdout[0] is None:
            drop, what = (None, holdout[1]), "holdout F1"
        else:
            drop, what = (old[0] - holdout[0], ""), ""
        results.append(_at_most("f1 drop vs baseline", drop, config.f1_max_drop, what,
                                "compare params and data with `dvc params diff main` / `dvc metrics diff main`"))
    return results


def drift_gates(drift: DriftResult | dict | None, config: GatesConfig, drift_report: str = "reports/drift/drift.md") -> list[GateResult]:
    drift = _plain(drift)
    drifted = (drift or {}).get("drifted_columns", [])
    drifted = listed(drifted) if isinstance(drifted, list) and drifted else "none"
    results = [_at_most("drift share", _number(drift, "drift_share", domain=UNIT), config.drift_share_max, "drift share",
                        f"drifted columns: {drifted}; see {drift_report}")]
    columns = (drift or {}).get("columns", {})
    for name in config.drift_columns:
        column = columns.get(name) if isinstance(columns, dict) else None
        score, _ = _number(column, "score") if isinstance(column, dict) else (None, "")
        gate = f"no drift in {name}"
        if column is None or score is None or not isinstance(column.get("drift"), bool):
            results.append(GateResult(gate=gate, value=score, op="no drift", threshold=None, status="FAIL",
                                      detail=f"no drift result for column '{name}': fails closed; is it in drift.columns?"))
            continue
        detail = f"{column['test']} {score:.4g} vs threshold {column['threshold']:g}; see {drift_report}" if column["drift"] else ""
        results.append(GateResult(gate=gate, value=score, op=column["test"], threshold=column.get("threshold"),
                                  status="FAIL" if column["drift"] else "PASS", detail=detail))
    return results


def evaluate_gates(metrics: Metrics | dict | None, drift: DriftResult | dict | None, config: GatesConfig,
                   baseline: Metrics | dict | None = None, baseline_given: bool = False, plots: str = "reports/plots",
                   drift_report: str = "reports/drift/drift.md") -> GateVerdicts:
    """All gates, in table order. `plots` and `drift_report` only go into the hints."""
    return GateVerdicts.of([*f1_gates(metrics, config, baseline, baseline_given, plots, drift_report),
                            *drift_gates(drift, config, drift_report)])
