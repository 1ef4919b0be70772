"""The CI report and the run context it links to: content for passing, failing and broken runs."""


from driftgate.reporting.report import CiContext, ci_report
from driftgate.results import GateVerdicts, Metrics

GATE_FAILED = GateVerdicts.model_validate({"passed": False, "gates": [
    {"gate": "f1 (current 2013-09)", "value": 0.3123, "op": ">=", "threshold": 0.38, "status": "FAIL", "detail": "see plots"},
    {"gate": "drift share", "value": 0.6471, "op": "<=", "threshold": 0.55, "status": "FAIL", "detail": "see drift.md"},
    {"gate": "f1 (holdout)", "value": 0.4503, "op": ">=", "threshold": 0.38, "status": "PASS", "detail": ""},
]})
METRICS = Metrics.model_validate({"holdout": {"f1": 0.4503, "rows": 15562, "window": "last 20% of 2013-01..2013-03"},
                                  "current": {"f1": 0.3123, "rows": 26000, "window": "2013-09"}})


def test_github_and_gitlab_contexts_come_from_their_own_variables():
    github = CiContext.from_env({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REPOSITORY": "ml/flights", "GITHUB_RUN_ID": "9",
                                 "GITHUB_SERVER_URL": "https://github.example.org", "GITHUB_HEAD_REF": "feature"})
    assert (github.event, github.project, github.ref) == ("merge_request", "ml/flights", "feature")
    assert github.pipeline_url == "https://github.example.org/ml/flights/actions/runs/9"
    gitlab = CiContext.from_env({"CI_PIPELINE_SOURCE": "schedule", "CI_PROJECT_PATH": "ml/flights", "CI_JOB_URL": "https://g/j/1"})
    assert gitlab.scheduled and gitlab.evidently_url == "https://g/j/1/artifacts/file/reports/drift/evidently.html"
    assert CiContext.from_env({}).event == "local" and CiContext.from_env({}).links() == []


def test_failed_run_report_leads_with_the_failed_gates_and_compares_with_main(tmp_path):
    report = ci_report(GATE_FAILED, METRICS, None, tmp_path / "report.md", CiContext("ml/flights"), "merge_request",
                       baseline={"current": {"f1": 0.40}}, params_changed={"gates.f1_min": {"old": 0.38, "new": 0.42}})
    first, *_ = report.splitlines()
    assert first == "## :x: driftgate: 2 of 3 gates failed: f1 (current 2013-09), drift share"
    assert report.count("| drift share") == 1
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in report.splitlines() if line.startswith("| ")}
    assert ("f1 (current 2013-09)", "0.3123", ">= 0.38", "**FAIL**", "see plots") in rows
    assert ("current f1", "0.3123", "0.4000", "-0.0877") in rows  # against main
    assert ("`gates.f1_min`", "0.3800", "0.4200") in rows


def test_report_with_missing_verdicts_counts_as_failed_and_links_only_existing_images(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc_pr.png").write_bytes(b"\x89PNG")
    report = ci_report(None, None, None, tmp_path / "report.md", CiContext("p"),
                       plots=[tmp_path / "plots" / "roc_pr.png", tmp_path / "plots" / "confusion_matrix.png"])
    assert report.startswith("## :x: driftgate: the gate verdicts are missing")
    assert "![ROC and precision-recall curves](plots/roc_pr.png)" in report and "confusion_matrix" not in report
