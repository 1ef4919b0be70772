"""The forge's widgets: the gates as JUnit XML (GitLab's test widget) and the run's numbers as
OpenMetrics text (GitLab's metrics widget), read back with parsers that do not share our code."""

import xml.etree.ElementTree as ET

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from driftgate.reporting.widgets import gate_junit, gate_openmetrics, metric_name
from driftgate.results import DriftResult, GateVerdicts, Metrics

VERDICTS = GateVerdicts.of([
    *GateVerdicts.model_validate({"passed": False, "gates": [
        {"gate": "f1 (holdout)", "value": 0.4503, "op": ">=", "threshold": 0.38, "status": "PASS", "detail": ""},
        {"gate": "f1 (current 2013-09)", "value": 0.3123, "op": ">=", "threshold": 0.38, "status": "FAIL",
         "detail": "0.068 below the minimum; the batch may have drifted: see reports/drift/drift.md"},
        {"gate": "f1 (current)", "value": None, "op": ">=", "threshold": 0.38, "status": "SKIP",
         "detail": "not computed: the current batch (2013-10) has no labels"},
        {"gate": "no drift in <dep_time> & \"co\"", "value": 0.2, "op": "psi", "threshold": 0.1, "status": "FAIL",
         "detail": "psi 0.2 vs threshold 0.1; see drift.md"},
    ]}).gates,
])


def _cases(xml: str) -> tuple[ET.Element, list[ET.Element]]:
    root = ET.fromstring(xml)
    return root, root.findall("./testsuite/testcase")


def test_junit_has_the_structure_gitlabs_parser_reads():
    """testsuites > testsuite > testcase(name, classname); counts on both suite elements agree with the cases."""
    root, cases = _cases(gate_junit(VERDICTS))
    assert root.tag == "testsuites" and [s.tag for s in root] == ["testsuite"]
    suite = root.find("testsuite")
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("skipped"), element.get("errors")) == ("4", "2", "1", "0")
    assert all(case.get("classname") == "driftgate.gates" and case.get("time") == "0" for case in cases)
    assert [case.get("name") for case in cases] == [g.gate for g in VERDICTS.gates]  # names escaped, read back intact


def test_junit_failed_gate_is_a_failure_with_value_threshold_and_what_to_look_at():
    _, cases = _cases(gate_junit(VERDICTS))
    by_name = {case.get("name"): case for case in cases}
    failure = by_name["f1 (current 2013-09)"].find("failure")
    expected = "value 0.3123, threshold >= 0.38: 0.068 below the minimum; the batch may have drifted: see reports/drift/drift.md"
    assert failure.text == expected and failure.get("message") == expected
    assert by_name["no drift in <dep_time> & \"co\""].find("failure").text.startswith("value 0.2, threshold psi 0.1: psi 0.2")
    assert list(by_name["f1 (holdout)"]) == []  # a passed gate is a bare testcase


def test_junit_skip_gate_is_skipped_with_its_reason():
    _, cases = _cases(gate_junit(VERDICTS))
    [skipped] = [case for case in cases if case.find("skipped") is not None]
    assert skipped.get("name") == "f1 (current)" and skipped.find("failure") is None
    assert skipped.find("skipped").text == "not computed: the current batch (2013-10) has no labels"


def test_junit_of_a_failed_gate_that_fails_closed_says_the_value_is_missing():
    verdicts = GateVerdicts.of(GateVerdicts.model_validate({"passed": False, "gates": [
        {"gate": "drift share", "value": None, "op": "<=", "threshold": 0.55, "status": "FAIL",
         "detail": "drift share is missing: fails closed; drifted columns: none; see drift.md"}]}).gates)
    _, [case] = _cases(gate_junit(verdicts))
    assert case.find("failure").text == ("value missing, threshold <= 0.55: drift share is missing: fails closed; "
                                         "drifted columns: none; see drift.md")


def test_junit_never_shows_green_when_no_gate_could_be_computed():
    """Every gate skipped, or none at all: the verdict is not passed, so one failed testcase says why."""
    only_skipped = GateVerdicts.of([VERDICTS.gates[2]])
    root, cases = _cases(gate_junit(only_skipped))
    assert root.get("failures") == "1" and cases[-1].get("name") == "gate verdicts"
    assert "No gate could be computed" in cases[-1].find("failure").text
    root, [case] = _cases(gate_junit(GateVerdicts.of([])))
    assert root.get("failures") == "1" and "gate verdicts are missing" in case.find("failure").text


def test_openmetrics_report_parses_as_openmetrics_and_carries_the_headline_numbers():
    metrics = Metrics.model_validate({"holdout": {"f1": 0.45032594, "rows": 15562},
                                      "current": {"labelled": False, "rows": 900, "window": "2013-10"}})
    drift = DriftResult.model_validate({"dataset_drift": True, "drift_share": 0.6470588, "threshold": 0.5, "n_columns": 17,
                                        "n_drifted": 11, "drifted_columns": [], "columns": {}})
    text = gate_openmetrics(VERDICTS, metrics, drift)
    assert text.endswith("# EOF\n")
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples == {"driftgate_gates_passed": 0, "driftgate_gates_failed": 2, "driftgate_gates_skipped": 1,
                       "driftgate_holdout_f1": 0.4503, "driftgate_holdout_rows": 15562, "driftgate_current_rows": 900,
                       "driftgate_drift_share": 0.6471, "driftgate_drifted_columns": 11, "driftgate_dataset_drift": 1}
    # one `name value` line per sample, as GitLab's metrics widget reads them; no F1 for the unlabelled batch
    assert all(len(line.split(" ")) == 2 for line in text.splitlines() if not line.startswith("#"))
    assert "driftgate_current_f1" not in text


def test_metric_names_stay_in_the_openmetrics_alphabet():
    assert metric_name("current", "roc-auc (2013-09)") == "driftgate_current_roc_auc_2013_09"
