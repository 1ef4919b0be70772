"""The forge's widgets from the CI job scripts themselves: the gate job's JUnit and metrics files
and GitHub's job summary (gate.sh run with GITHUB_STEP_SUMMARY set, as GitHub sets it), and the
scheduled report on one pinned issue (comment.sh under the recording cml stand-in, which parses
--target the way CML 0.20 does). The GitLab pipeline itself, with the artifacts:reports paths
its gate job produced, is run in test_ci.py."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from driftgate.results import DriftResult, Metrics
from tests.conftest import BIN, ROOT
from tests.integration.test_ci import CML, FIXTURE_BIN, _cml, _comment, run_env

CI_PREFIXES = ("CI_", "GITHUB_", "GITLAB_")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CI_PREFIXES) and k != "REPO_TOKEN"
           and not k.startswith("DRIFTGATE_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}", "DVC_NO_ANALYTICS": "1", **extra}


@pytest.fixture
def gate_workspace(tmp_path) -> Path:
    """What the gate job finds after `reproduce`: the scripts, params.yaml and the run's metrics
    and drift results; the current batch's F1 (0.3123) is below gates.f1_min."""
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines")
    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    Metrics.model_validate({"holdout": {"f1": 0.4503, "precision": 0.42, "recall": 0.48, "rows": 15562,
                                        "window": "last 20% of 2013-01..2013-03"},
                            "current": {"f1": 0.3123, "rows": 26000, "window": "2013-04"}}).write(tmp_path / "reports" / "metrics.json")
    column = {"type": "numeric", "test": "wasserstein", "score": 0.05, "threshold": 0.1, "drift": False, "reference_rows": 10,
              "current_rows": 10, "reference_missing_share": 0.0, "current_missing_share": 0.0}
    DriftResult.model_validate({"dataset_drift": False, "drift_share": 0.0, "threshold": 0.5, "n_columns": 1, "n_drifted": 0,
                                "drifted_columns": [], "columns": {"dep_delay": column}, "reference_window": "2013-01..2013-03",
                                "current_window": "2013-04"}).write(tmp_path / "reports" / "drift" / "drift.json")
    (tmp_path / "reports" / "plots").mkdir()
    (tmp_path / "reports" / "plots" / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n")
    return tmp_path


def test_gate_job_writes_the_report_to_githubs_job_summary_and_the_widgets_files(gate_workspace, tmp_path_factory):
    summary = tmp_path_factory.mktemp("runner") / "step_summary.md"
    summary.write_text("## an earlier step's summary\n")
    env = _clean_env(GITHUB_EVENT_NAME="pull_request", GITHUB_REPOSITORY="ml/flights", GITHUB_RUN_ID="42",
                     GITHUB_SERVER_URL="https://github.example.org", GITHUB_STEP_SUMMARY=str(summary))
    result = run_env(["pipelines/ci/gate.sh"], gate_workspace, env, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # the gate's own verdict
    page = summary.read_text()
    assert page.startswith("## an earlier step's summary\n## :x: driftgate: 1 of 3 gates failed: f1 (current 2013-04)")
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in page.splitlines() if line.startswith("| ")}
    assert ("f1 (current 2013-04)", "0.3123", ">= 0.38", "**FAIL**") in {row[:4] for row in rows}
    assert "![" not in page  # no local image links, which the summary page cannot show
    assert "Plots (confusion matrices) are in [the run's artifacts](https://github.example.org/ml/flights/actions/runs/42#artifacts)." in page
    report = (gate_workspace / "reports" / "report.md").read_text()
    assert "![Confusion matrices](plots/confusion_matrix.png)" in report  # the comment keeps its images
    assert page.removeprefix("## an earlier step's summary\n").split("Plots (")[0] == report.split("### Plots")[0]
    [failed] = [case for case in ET.parse(gate_workspace / "reports" / "gate-junit.xml").getroot().iter("testcase")
                if case.find("failure") is not None]
    assert failed.get("name") == "f1 (current 2013-04)"
    assert failed.find("failure").text.startswith("value 0.3123, threshold >= 0.38: 0.068 below the minimum")
    assert "driftgate_current_f1 0.3123\n" in (gate_workspace / "reports" / "gate-metrics.txt").read_text()


def test_gate_job_without_githubs_summary_variable_writes_no_summary(gate_workspace):
    result = run_env(["pipelines/ci/gate.sh"], gate_workspace, _clean_env(CI_PIPELINE_SOURCE="merge_request_event"), timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "job summary ->" not in result.stdout and (gate_workspace / "reports" / "report.md").is_file()


# --------------------------------------------------------------------------- the pinned issue

SCHEDULED_ON_ISSUE = ["comment", "update", "--target=issue/12", "--watermark-title=driftgate scheduled drift", "reports/report.md"]


@pytest.mark.parametrize("source", [{"CI_PIPELINE_SOURCE": "schedule"}, {"GITHUB_EVENT_NAME": "schedule"}])
@pytest.mark.parametrize("issue", ["12", "#12"])
def test_scheduled_report_goes_to_the_pinned_issue_updated_in_place(tmp_path, source, issue):
    result, calls = _comment({**source, "REPO_TOKEN": "token", "DRIFTGATE_REPORT_ISSUE": issue}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in calls] == [SCHEDULED_ON_ISSUE]
    assert calls[0]["target"] == {"target": "issue", "issueId": "12"} and calls[0]["markdown"] == "## driftgate\n"


def test_scheduled_report_without_an_issue_stays_a_commit_comment(tmp_path):
    result, calls = _comment({"CI_PIPELINE_SOURCE": "schedule", "REPO_TOKEN": "token", "DRIFTGATE_REPORT_ISSUE": ""}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["argv"][2] for c in calls] == ["--target=commit"] and calls[0]["target"] == {"target": "commit"}


def test_report_issue_is_only_for_scheduled_runs(tmp_path):
    result, calls = _comment({"CI_PIPELINE_SOURCE": "merge_request_event", "REPO_TOKEN": "t", "DRIFTGATE_REPORT_ISSUE": "12"}, tmp_path)
    assert result.returncode == 0 and [c["argv"][2] for c in calls] == ["--target=pr"]


@pytest.mark.parametrize("issue", ["twelve", "12a", "0", "-3"])
def test_report_issue_that_is_not_an_issue_number_fails_the_job_saying_what_to_set(tmp_path, issue):
    result, calls = _comment({"GITHUB_EVENT_NAME": "schedule", "REPO_TOKEN": "t", "DRIFTGATE_REPORT_ISSUE": issue}, tmp_path)
    assert result.returncode == 2 and calls == []
    assert f"DRIFTGATE_REPORT_ISSUE is '{issue}'" in result.stderr and "number of the issue" in result.stderr


@pytest.mark.parametrize("target, message", [
    ("issue#12", 'comment target "issue#12" could not be parsed'),  # CML's separator is '/'
    ("ticket/12", 'unsupported comment target "ticket/12"'),
    ("Issue/12", "is not a function"),
])
def test_cml_stand_in_refuses_comment_targets_cml_cannot_parse(tmp_path, target, message):
    result, calls = _cml(["comment", "update", f"--target={target}", "reports/report.md"], tmp_path)
    assert result.returncode == 1 and calls == [] and message in result.stderr


@pytest.mark.parametrize("args, target", [
    (["--target=issue/1337"], {"target": "issue", "issueId": "1337"}),
    (["--target=pr/42"], {"target": "pr", "prNumber": "42"}),
    (["--target=COMMIT"], {"target": "commit"}),
    ([], {"target": "auto"}),
    (["--commit-sha=f00bar"], {"target": "commit", "commitSha": "f00bar"}),
])
def test_cml_stand_in_reads_the_targets_cml_documents(tmp_path, args, target):
    result, calls = _cml(["comment", "create", *args, "reports/report.md"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0]["target"] == target


def test_github_schedule_job_may_comment_on_issues_and_passes_the_variable():
    import yaml

    job = yaml.safe_load((ROOT / ".github" / "workflows" / "driftgate.yml").read_text())["jobs"]["scheduled-report"]
    assert job["permissions"]["issues"] == "write"
    [step] = [s for s in job["steps"] if s.get("run", "").startswith("pipelines/ci/comment.sh")]
    assert step["env"]["DRIFTGATE_REPORT_ISSUE"] == "${{ vars.DRIFTGATE_REPORT_ISSUE }}"
    assert CML.is_file() and FIXTURE_BIN.is_dir()
