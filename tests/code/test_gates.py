"""Gate logic: thresholds, by-how-much messages, and failing closed on anything missing."""

import math

import pytest

from driftgate.config import GatesConfig
from driftgate.gates import evaluate_gates
from driftgate.reporting.render import gate_markdown as markdown
from driftgate.results import GateVerdicts


def all_passed(verdicts):
    return verdicts.passed

CONFIG = GatesConfig(f1_min=0.4, f1_max_drop=0.05, drift_share_max=0.5, drift_columns=["prediction"])


def metrics(holdout=0.45, current=0.42):
    return {"holdout": {"f1": holdout}, "current": {"f1": current, "window": "2013-04"}}


def drift(share=0.2, prediction_drift=False, score=0.05):
    return {
        "drift_share": share,
        "drifted_columns": ["temp"],
        "columns": {"prediction": {"test": "wasserstein", "score": score, "threshold": 0.1, "drift": prediction_drift}},
    }


def by_gate(verdicts):
    return {r.gate: r for r in verdicts.gates}


def test_all_gates_pass_on_good_metrics_and_little_drift():
    results = evaluate_gates(metrics(), drift(), CONFIG)
    assert all_passed(results)
    assert set(by_gate(results)) == {"f1 (holdout)", "f1 (current 2013-04)", "drift share", "no drift in prediction"}


def test_low_current_f1_fails_and_says_by_how_much_and_where_to_look():
    results = by_gate(evaluate_gates(metrics(current=0.31), drift(), CONFIG, drift_report="out/drift.md"))
    gate = results["f1 (current 2013-04)"]
    assert not gate.passed
    assert "0.090 below the minimum" in gate.detail and "out/drift.md" in gate.detail
    assert results["f1 (holdout)"].passed


def test_f1_exactly_at_the_minimum_passes():
    assert by_gate(evaluate_gates(metrics(holdout=0.4), drift(), CONFIG))["f1 (holdout)"].passed


@pytest.mark.parametrize("bad", [float("nan"), None, "0.9", True])
def test_nan_null_or_non_numeric_f1_fails_closed(bad):
    gate = by_gate(evaluate_gates(metrics(holdout=bad), drift(), CONFIG))["f1 (holdout)"]
    assert not gate.passed and gate.value is None and "fails closed" in gate.detail


def test_missing_metrics_and_drift_files_fail_every_gate_that_needs_them():
    results = evaluate_gates(None, None, CONFIG)
    assert not any(r.passed for r in results.gates)
    assert not all_passed(results)


def test_no_gates_is_not_a_pass():
    assert not GateVerdicts.of([]).passed


def test_missing_current_section_fails_but_an_unlabelled_batch_is_skipped():
    missing = by_gate(evaluate_gates({"holdout": {"f1": 0.5}}, drift(), CONFIG))
    assert not missing["f1 (current)"].passed
    unlabelled = evaluate_gates({"holdout": {"f1": 0.5}, "current": {"labelled": False, "window": "log"}}, drift(), CONFIG)
    skipped = by_gate(unlabelled)["f1 (current)"]
    assert skipped.status == "SKIP" and "no labels" in skipped.detail and "log" in skipped.detail
    assert unlabelled.passed  # a skipped gate does not block ...
    assert "SKIP" in markdown(unlabelled) and "PASS | not computed" not in markdown(unlabelled)  # ... and never shows as PASS


def test_a_run_where_every_gate_was_skipped_is_not_a_pass():
    from driftgate.results import GateResult

    only_skipped = GateVerdicts.of([GateResult(gate="f1 (current)", value=None, op=">=", threshold=0.4, status="SKIP")])
    assert not only_skipped.passed


@pytest.mark.parametrize(("holdout", "share"), [(1.2, 0.2), (-0.1, 0.2), (0.45, 1.5), (0.45, -0.2)])
def test_values_outside_their_domain_fail_closed(holdout, share):
    gates = by_gate(evaluate_gates(metrics(holdout=holdout), drift(share=share), CONFIG))
    broken = gates["f1 (holdout)"] if not 0 <= holdout <= 1 else gates["drift share"]
    assert broken.status == "FAIL" and "outside [0, 1]" in broken.detail and "fails closed" in broken.detail


def test_drift_share_above_the_maximum_fails_and_lists_drifted_columns():
    gate = by_gate(evaluate_gates(metrics(), drift(share=0.75), CONFIG))["drift share"]
    assert not gate.passed and "0.250 above the maximum" in gate.detail and "temp" in gate.detail


def test_nan_drift_share_fails_closed():
    assert not by_gate(evaluate_gates(metrics(), drift(share=math.nan), CONFIG))["drift share"].passed


def test_per_column_gate_fails_when_that_column_drifts():
    gate = by_gate(evaluate_gates(metrics(), drift(prediction_drift=True, score=0.3), CONFIG))["no drift in prediction"]
    assert not gate.passed and "wasserstein 0.3" in gate.detail


def test_per_column_gate_fails_closed_when_the_column_was_not_tested():
    results = by_gate(evaluate_gates(metrics(), {"drift_share": 0.1, "columns": {}}, CONFIG))
    assert not results["no drift in prediction"].passed


def test_f1_drop_against_baseline():
    baseline = {"holdout": {"f1": 0.52}}
    dropped = by_gate(evaluate_gates(metrics(holdout=0.45), drift(), CONFIG, baseline, baseline_given=True))
    assert not dropped["f1 drop vs baseline"].passed
    assert dropped["f1 drop vs baseline"].value == pytest.approx(0.07)
    kept = by_gate(evaluate_gates(metrics(holdout=0.50), drift(), CONFIG, baseline, baseline_given=True))
    assert kept["f1 drop vs baseline"].passed


def test_baseline_given_but_unreadable_fails_closed_and_absent_baseline_adds_no_gate():
    failed = by_gate(evaluate_gates(metrics(), drift(), CONFIG, None, baseline_given=True))
    assert not failed["f1 drop vs baseline"].passed and "baseline F1" in failed["f1 drop vs baseline"].detail
    assert "f1 drop vs baseline" not in by_gate(evaluate_gates(metrics(), drift(), CONFIG))


def test_markdown_has_a_verdict_line_naming_failed_gates():
    text = markdown(evaluate_gates(metrics(current=0.1), drift(share=0.9), CONFIG))
    first = text.splitlines()[0]
    assert first.startswith("**2 of 4 gates failed:") and "f1 (current 2013-04)" in first and "drift share" in first
    assert "| gate" in text
    assert markdown(evaluate_gates(metrics(), drift(), CONFIG)).startswith("**All 4 gates passed.**")
