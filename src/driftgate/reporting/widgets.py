"""What the forge's own merge-request widgets read: the gates as JUnit XML (GitLab's test
widget, `artifacts:reports:junit`) and the run's numbers as OpenMetrics text (GitLab's metrics
widget, `artifacts:reports:metrics`).

GitLab's JUnit parser (lib/gitlab/ci/parsers/test/junit.rb) reads `testsuites` > `testsuite` >
`testcase` with `name` and `classname`; a `failure` child makes the case failed, a `skipped` one
skipped, and the element's text is what the widget shows when the case is opened. So every gate
is one testcase named as the gate table names it, and a failed gate's text carries its value,
its threshold and what to look at, the same words as the gate table.

GitLab's metrics widget compares each `name value` line with the target branch's; lines
starting with `#` are comments, and OpenMetrics ends the exposition with `# EOF`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from driftgate.reporting.render import gate_headline, gate_threshold, number
from driftgate.results import DriftResult, GateResult, GateVerdicts, Metrics

SUITE = "driftgate gates"
CLASSNAME = "driftgate.gates"


def gate_message(gate: GateResult) -> str:
    """One line: the value against the threshold, then what to look at."""
    line = f"value {number(gate.value)}, threshold {gate_threshold(gate)}"
    return f"{line}: {gate.detail}" if gate.detail else line


def gate_junit(verdicts: GateVerdicts, suite: str = SUITE) -> str:
    """The gates as a JUnit XML document: one testcase per gate; FAIL is a failure, SKIP is
    skipped with its reason. Verdicts that did not pass with no failed gate (none computed)
    add one failed testcase saying so, so the widget never shows a failed run as green."""
    cases: list[tuple[str, str, str]] = []  # (name, status, text)
    for gate in verdicts.gates:
        text = gate_message(gate) if gate.status != "SKIP" else (gate.detail or "skipped")
        cases.append((gate.gate, gate.status, text))
    if not verdicts.passed and not verdicts.failed:
        cases.append(("gate verdicts", "FAIL", gate_headline(verdicts)))
    failures = sum(status == "FAIL" for _, status, _ in cases)
    skipped = sum(status == "SKIP" for _, status, _ in cases)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped), "time": "0"}
    root = ET.Element("testsuites", {"name": "driftgate", **counts})
    testsuite = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    for name, status, text in cases:
        case = ET.SubElement(testsuite, "testcase", {"classname": CLASSNAME, "name": name, "time": "0"})
        if status == "FAIL":
            ET.SubElement(case, "failure", {"type": "gate", "message": text}).text = text
        elif status == "SKIP":
            ET.SubElement(case, "skipped", {"message": text}).text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------- metrics

_NAME = re.compile(r"[^a-zA-Z0-9_]+")


def metric_name(*parts: str) -> str:
    """`driftgate_<parts>` in the OpenMetrics name alphabet ([a-zA-Z_][a-zA-Z0-9_]*)."""
    return "_".join(["driftgate", *(_NAME.sub("_", part).strip("_").lower() for part in parts)])


def _value(value: float | int | bool) -> str:
    """Integers as they are; scores to 4 decimals, as the report shows them (GitLab compares the
    values as strings, so noise past that would show every run as changed)."""
    return str(int(value)) if isinstance(value, (bool, int)) else f"{value:.4f}"


def gate_openmetrics(verdicts: GateVerdicts, metrics: Metrics | None, drift: DriftResult | None) -> str:
    """The run's numbers, one `name value` line each (unknown-typed OpenMetrics samples), ending
    in `# EOF`. A number the run does not have (an unlabelled batch's F1) is left out, not 0."""
    samples: list[tuple[str, float | int | bool]] = [
        (metric_name("gates_passed"), verdicts.passed),
        (metric_name("gates_failed"), len(verdicts.failed)),
        (metric_name("gates_skipped"), sum(g.status == "SKIP" for g in verdicts.gates)),
    ]
    if metrics is not None:
        for split in ("holdout", "current"):
            scores = getattr(metrics, split)
            for name in ("f1", "precision", "recall", "roc_auc", "pr_auc"):
                value = getattr(scores, name)
                if value is not None:
                    samples.append((metric_name(split, name), value))
            samples.append((metric_name(split, "rows"), scores.rows))
    if drift is not None:
        samples += [(metric_name("drift_share"), drift.drift_share), (metric_name("drifted_columns"), drift.n_drifted),
                    (metric_name("dataset_drift"), drift.dataset_drift)]
    lines = [f"{name} {_value(value)}" for name, value in samples
             if isinstance(value, bool) or value == value]  # NaN never reaches the widget
    return "\n".join([*lines, "# EOF"]) + "\n"
