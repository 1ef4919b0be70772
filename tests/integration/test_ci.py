"""The CI files, for real: schema and lint checks, the GitLab pipeline run locally by
gitlab-ci-local (shell executor, each job in its own build folder so artifacts really pass
between jobs), and the job scripts under GitHub's environment variables.

CML's npm package cannot be installed here: a recording `cml` (tests/fixtures/bin/cml) stands
on PATH and keeps each command line and the report it was handed, with the images it links.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import BIN, ROOT, copy_project, fill_log, run

FIXTURE_BIN = ROOT / "tests" / "fixtures" / "bin"
TOOLS_BIN = ROOT / ".tools" / "node_modules" / ".bin"


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{TOOLS_BIN}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} is not installed: `make tools` installs it (and .ci/run does)"
    return found


# --------------------------------------------------------------------------- static checks


def test_gitlab_ci_file_validates_against_gitlabs_schema():
    result = run([_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml"], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_validate_against_the_schema_and_actionlint():
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    schema = run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows], ROOT)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    _tool("shellcheck")  # actionlint checks every run: step with it when it is on PATH
    lint = run([_tool("actionlint"), *workflows], ROOT)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_dockerfile_passes_hadolint():
    result = run([_tool("hadolint"), "Dockerfile"], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_job_scripts_pass_shellcheck():
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pipelines").rglob("*.sh"))
    result = run([_tool("shellcheck"), "-x", "-e", "SC1091", *scripts], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- GitHub's environment


def _comment(env: dict[str, str], tmp_path: Path) -> tuple[object, list[dict]]:
    record = tmp_path / "cml"
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports" / "report.md").write_text("## driftgate\n")
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines", dirs_exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITHUB_", "GITLAB_")) and k != "REPO_TOKEN"}
    result = run_env(["pipelines/ci/comment.sh", "reports/report.md"], tmp_path,
                     {**clean, "PATH": f"{FIXTURE_BIN}{os.pathsep}{clean['PATH']}", "CML_RECORD": str(record), **env})
    calls = [json.loads(p.read_text()) for p in sorted(record.glob("call-*.json"))] if record.exists() else []
    return result, calls


def run_env(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_github_pull_request_comment_is_one_updated_comment(tmp_path):
    result, calls = _comment({"GITHUB_EVENT_NAME": "pull_request", "REPO_TOKEN": "ghs_token"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in calls] == [["comment", "update", "--target=pr", "--watermark-title=driftgate merge request",
                                           "reports/report.md"]]


def test_github_fork_pull_request_without_token_skips_the_comment_cleanly(tmp_path):
    result, calls = _comment({"GITHUB_EVENT_NAME": "pull_request", "REPO_TOKEN": ""}, tmp_path)
    assert result.returncode == 0 and calls == []
    assert "REPO_TOKEN is not set" in result.stdout and "not commenting" in result.stdout


def test_github_scheduled_run_comments_on_the_commit(tmp_path):
    result, calls = _comment({"GITHUB_EVENT_NAME": "schedule", "REPO_TOKEN": "ghs_token"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0]["argv"][:4] == ["comment", "update", "--target=commit", "--watermark-title=driftgate scheduled drift"]


def test_missing_report_fails_the_comment_job(tmp_path):
    (tmp_path / "reports").mkdir()
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines")
    result = run_env(["pipelines/ci/comment.sh", "reports/report.md"], tmp_path,
                     {**os.environ, "PATH": f"{FIXTURE_BIN}{os.pathsep}{os.environ['PATH']}", "REPO_TOKEN": "x"})
    assert result.returncode == 2 and "reports/report.md is missing" in result.stderr


# --------------------------------------------------------------------------- the cml stand-in
# It refuses what CML 0.20 refuses (its option table comes from CML's yargs definitions), so a
# typo in a job script's cml call fails here instead of in the first real pipeline.

CML = FIXTURE_BIN / "cml"


def _cml(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    record = tmp_path / "cml-record"
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports" / "report.md").write_text("## driftgate\n")
    result = run_env([str(CML), *args], tmp_path, {**os.environ, "CML_RECORD": str(record)})
    calls = [json.loads(p.read_text()) for p in sorted(record.glob("call-*.json"))] if record.exists() else []
    return result, calls


@pytest.mark.parametrize("args, unknown", [
    (["--target=pr", "--watermark=driftgate", "reports/report.md"], "watermark"),  # it is --watermark-title
    (["reports/report.md", "--title", "driftgate"], "title"),
    (["--target=pr", "--md=reports/report.md", "reports/report.md"], "md"),
    (["-t", "pr", "reports/report.md"], "t"),  # CML defines no short options
    (["--target=pr", "reports/report.md", "reports/other.md"], "reports/other.md"),  # one file only
])
def test_cml_stand_in_rejects_an_unknown_argument_like_cml(tmp_path, args, unknown):
    result, calls = _cml(["comment", "update", *args], tmp_path)
    assert result.returncode == 1 and calls == []
    assert result.stderr.rstrip().endswith(f"Unknown argument: {unknown}"), result.stderr


@pytest.mark.parametrize("args", [
    ["comment", "update", "--target=pr", "--watermark-title=driftgate merge request"],
    ["comment", "create"],
    ["comment"],
])
def test_cml_stand_in_rejects_a_missing_argument(tmp_path, args):
    result, calls = _cml(args, tmp_path)
    assert result.returncode == 1 and calls == []
    assert "Not enough non-option arguments: got 0, need at least 1" in result.stderr


def test_cml_stand_in_names_an_unknown_flag_that_swallowed_the_markdown_file(tmp_path):
    """As in yargs, an unknown flag takes the next word as its value: the file goes missing."""
    result, calls = _cml(["comment", "update", "--watermark", "reports/report.md"], tmp_path)
    assert result.returncode == 1 and calls == []
    assert "Not enough non-option arguments: got 0, need at least 1" in result.stderr and "--watermark" in result.stderr


def test_cml_stand_in_rejects_a_missing_markdown_file_bad_choices_and_unknown_commands(tmp_path):
    result, calls = _cml(["comment", "update", "--target=pr", "reports/missing.md"], tmp_path)
    assert result.returncode == 1 and calls == []
    assert "ENOENT: no such file or directory, open 'reports/missing.md'" in result.stderr
    result, _ = _cml(["comment", "update", "--driver=jenkins", "reports/report.md"], tmp_path)
    assert result.returncode == 1 and 'Argument: driver, Given: "jenkins"' in result.stderr
    result, _ = _cml(["comment", "update", "--pr", "--target=pr", "reports/report.md"], tmp_path)
    assert result.returncode == 1 and "Arguments pr and target are mutually exclusive" in result.stderr
    result, _ = _cml(["comment", "delete", "reports/report.md"], tmp_path)
    assert result.returncode == 1 and "Unknown argument: delete" in result.stderr
    result, _ = _cml(["check", "create", "reports/report.md"], tmp_path)  # not modelled: refused, never passed
    assert result.returncode == 1 and "models only `cml comment create|update`" in result.stderr


def test_cml_stand_in_accepts_cmls_own_spellings(tmp_path):
    """Aliases, camelCase, negation, `--opt value` and global options before the command."""
    result, calls = _cml(["--log", "debug", "comment", "update", "--target", "commit/f00bar", "--watermarkTitle=x",
                          "--no-publish", "--native", "--token", "glpat-x", "--driver=gitlab", "reports/report.md"],
                         tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["markdown"] for c in calls] == ["## driftgate\n"]


def test_every_cml_call_in_the_ci_files_is_one_the_stand_in_models():
    """Only `cml comment update` and `cml pr create` are called; a new cml command needs its options in the stand-in."""
    sources = [*(ROOT / "pipelines").rglob("*.sh"), ROOT / ".gitlab-ci.yml", *(ROOT / ".github").rglob("*.yml")]
    calls = {(path.name, match) for path in sources
             for match in re.findall(r"(?:^|[\s;&|(])cml\s+([a-z-]+(?:\s+[a-z-]+)?)", path.read_text(), re.M)}
    assert calls == {("comment.sh", "comment update"), ("retrain.sh", "pr create")}


@pytest.mark.parametrize("env, argv", [
    ({"CI_PIPELINE_SOURCE": "merge_request_event"}, ["--target=pr", "--watermark-title=driftgate merge request"]),
    ({"GITHUB_EVENT_NAME": "pull_request"}, ["--target=pr", "--watermark-title=driftgate merge request"]),
    ({"CI_PIPELINE_SOURCE": "schedule"}, ["--target=commit", "--watermark-title=driftgate scheduled drift"]),
    ({"GITHUB_EVENT_NAME": "schedule"}, ["--target=commit", "--watermark-title=driftgate scheduled drift"]),
    ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_REF_NAME": "main"}, ["--target=commit", "--watermark-title=driftgate main"]),
    ({"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "release/1.2"},
     ["--target=commit", "--watermark-title=driftgate release/1.2"]),
])
def test_cml_stand_in_accepts_each_command_line_the_comment_job_runs(tmp_path, env, argv):
    """comment.sh itself, on each branch of its event switch, with both CI systems' variables."""
    result, calls = _comment({**env, "REPO_TOKEN": "token"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in calls] == [["comment", "update", *argv, "reports/report.md"]]
    assert calls[0]["markdown"] == "## driftgate\n" and calls[0]["repo_token_set"]


# --------------------------------------------------------------------------- GitLab, run locally


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def gitlab(tmp_path_factory, smtp):
    """A clone of this repository on a merge-request branch, with `origin/main` at its base
    (the baseline the report and the F1-drop gate compare with) and a runner for pipelines."""
    clone = copy_project(tmp_path_factory.mktemp("gitlab"), with_data=False)
    run("git remote add origin https://gitlab.example.org/ml/flights.git && git update-ref refs/remotes/origin/main HEAD"
        " && git checkout -q -b feature", clone, check=True)
    record = tmp_path_factory.mktemp("cml-calls")
    gitlab_ci_local = _tool("gitlab-ci-local")
    _, port = smtp

    def pipeline(source: str, *jobs: str, **variables: str):
        for old in record.glob("call-*.json"):
            old.unlink()
        settings = {"CI_PIPELINE_SOURCE": source, "PYTHONPATH": "src", "REPO_TOKEN": "glpat-test", "CML_RECORD": str(record),
                    "DRIFTGATE_SMTP_HOST": "127.0.0.1", "DRIFTGATE_SMTP_PORT": str(port), "DRIFTGATE_SMTP_SECURITY": "none",
                    "DRIFTGATE_ALERT_FROM": "driftgate@example.org", "DRIFTGATE_ALERT_TO": "ml-team@example.org", **variables}
        command = [gitlab_ci_local, "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source", "--no-color",
                   *[arg for key, value in settings.items() for arg in ("--variable", f"{key}={value}")], *jobs]
        env = {**os.environ, "PATH": os.pathsep.join([str(FIXTURE_BIN), str(TOOLS_BIN), str(BIN), os.environ["PATH"]]),
               "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}
        result = run_env(command, clone, env, timeout=900)
        calls = [json.loads(p.read_text()) for p in sorted(record.glob("call-*.json"))]
        return result, calls

    return clone, pipeline


def _job_log(result, job: str) -> str:
    return "\n".join(line for line in result.stdout.splitlines() if line.startswith(f"{job} "))


def _artifact(clone: Path, job: str, path: str) -> Path:
    return clone / ".gitlab-ci-local" / "artifacts" / job / path


def _widget_reports(clone: Path, job: str) -> dict[str, Path]:
    """The job's artifacts:reports as gitlab-ci-local expands the file (extends merged), each path
    resolved to what the job left in its artifacts."""
    import yaml

    env = {**os.environ, "PATH": os.pathsep.join([str(TOOLS_BIN), str(BIN), os.environ["PATH"]])}
    preview = run_env([_tool("gitlab-ci-local"), "--preview", "--force-shell-executor"], clone, env)
    assert preview.returncode == 0, preview.stderr
    reports = next(yaml.safe_load_all(preview.stdout))[job]["artifacts"]["reports"]
    return {kind: _artifact(clone, job, path) for kind, path in reports.items()}


def _junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.find("testsuite") is not None
    return {case.get("name"): case for case in root.iter("testcase")}


@pytest.mark.slow
def test_gitlab_jobs_each_pipeline_source_selects(gitlab):
    clone, _ = gitlab
    tool = _tool("gitlab-ci-local")
    env = {**os.environ, "PATH": os.pathsep.join([str(TOOLS_BIN), str(BIN), os.environ["PATH"]]),
           "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}

    def jobs(source: str, **variables: str) -> list[str]:
        extra = [arg for key, value in variables.items() for arg in ("--variable", f"{key}={value}")]
        listed = run_env([tool, "--list", "--force-shell-executor", "--variable", f"CI_PIPELINE_SOURCE={source}", *extra], clone, env)
        assert listed.returncode == 0, listed.stderr
        table = listed.stdout[listed.stdout.index("name "):].splitlines()[1:]
        return [line.split()[0] for line in table if line.strip()]

    assert jobs("merge_request_event") == ["test", "reproduce", "gate", "report"]
    assert jobs("schedule") == ["scheduled-drift", "scheduled-report"]
    assert jobs("schedule", DRIFTGATE_MONITOR_LOG="sqlite:///log.sqlite") == ["scheduled-drift", "scheduled-monitor", "scheduled-report"]
    assert jobs("push", CI_COMMIT_BRANCH="main", CI_DEFAULT_BRANCH="main") == ["test", "reproduce", "gate", "demo-image"]
    assert jobs("push", CI_COMMIT_BRANCH="feature", CI_DEFAULT_BRANCH="main") == ["test", "reproduce", "gate"]


def test_gitlab_workflow_avoids_duplicate_branch_and_merge_request_pipelines():
    """gitlab-ci-local does not apply --variable values to workflow:rules, so this one is read
    from the file: a push to a branch with an open merge request is dropped, before the rule
    that admits branch pipelines."""
    import yaml

    rules = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["workflow"]["rules"]
    conditions = [rule.get("if", "") for rule in rules]
    duplicate = next(i for i, rule in enumerate(rules) if "$CI_OPEN_MERGE_REQUESTS" in rule.get("if", ""))
    assert rules[duplicate]["when"] == "never" and "$CI_COMMIT_BRANCH" in conditions[duplicate]
    assert duplicate < conditions.index("$CI_COMMIT_BRANCH")
    assert conditions[0] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert '$CI_PIPELINE_SOURCE == "schedule"' in conditions


@pytest.mark.slow
def test_gitlab_merge_request_pipeline_passes_and_posts_one_report(gitlab, smtp):
    """The test job is pytest itself (this suite), so the run starts at reproduce."""
    clone, pipeline = gitlab
    inbox, _ = smtp
    sent_before = len(inbox.messages)
    result, calls = pipeline("merge_request_event", "reproduce", "gate", "report")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    gate_log = _job_log(result, "gate")
    assert "All 4 gates passed" in gate_log and "f1 drop vs baseline" in gate_log
    assert [c["argv"] for c in calls] == [["comment", "update", "--target=pr", "--watermark-title=driftgate merge request",
                                           "reports/report.md"]]
    [call] = calls
    report = call["markdown"]
    assert report.startswith("## :white_check_mark: driftgate: all 4 gates passed")
    assert "### Model metrics against `main`" in report and "No params changed against `main`." in report
    assert "### Drift: 2013-01..2013-03 vs 2013-04" in report
    # ROC/PR curves against main come from `dvc plots diff origin/main`
    assert call["images"] == ["plots/confusion_matrix.png", "curves_against_main.png", "drift/drift.png"]
    assert call["missing_images"] == []
    assert "artifacts/file/reports/drift/evidently.html" in report
    assert len(inbox.messages) == sent_before  # alerts.send_on: failure
    assert _artifact(clone, "gate", "reports/report.md").read_text() == report
    widgets = _widget_reports(clone, "gate")
    assert sorted(widgets) == ["junit", "metrics"]
    cases = _junit_cases(widgets["junit"])
    assert list(cases) == ["f1 (holdout)", "f1 (current 2013-04)", "f1 drop vs baseline", "drift share"]
    assert all(len(case) == 0 for case in cases.values())  # all passed
    assert "driftgate_gates_passed 1\n" in widgets["metrics"].read_text()


@pytest.mark.slow
def test_gitlab_breached_threshold_fails_the_gate_job_still_reports_and_alerts(gitlab, smtp):
    clone, pipeline = gitlab
    inbox, _ = smtp
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("f1_min: 0.38", "f1_min: 0.42"))
    run("git commit -qam 'Raise the F1 bar'", clone, check=True)
    sent_before = len(inbox.messages)
    result, calls = pipeline("merge_request_event", "reproduce", "gate", "report")
    assert result.returncode == 1, result.stdout[-4000:]
    assert " PASS  reproduce" in result.stdout and " FAIL  gate" in result.stdout and " PASS  report" in result.stdout
    gate_log = _job_log(result, "gate")
    assert "f1 (current 2013-04)" in gate_log and "1 of 4 gates failed: f1 (current 2013-04)" in gate_log
    [call] = calls  # the report job ran although the gate failed
    report = call["markdown"]
    assert report.startswith("## :x: driftgate: 1 of 4 gates failed: f1 (current 2013-04)")
    assert "| `gates.f1_min` |" in report and "0.42" in report  # the params that changed against main
    assert call["missing_images"] == []
    [alert] = inbox.messages[sent_before:]
    assert alert["Subject"] == "[driftgate] ml/flights: FAILED f1 (current 2013-04) on feature"
    text = alert.get_body(("plain",)).get_content()
    assert "1 of 4 gates failed." in text and "0.3998" in text
    assert [a.get_filename() for a in alert.iter_attachments()] == ["drift.png"]
    # the merge request's test widget lists the failed gate by name, with its value, threshold and what to look at
    widgets = _widget_reports(clone, "gate")
    failed = {name: case.find("failure") for name, case in _junit_cases(widgets["junit"]).items() if case.find("failure") is not None}
    assert list(failed) == ["f1 (current 2013-04)"]
    assert failed["f1 (current 2013-04)"].text.startswith("value 0.3998, threshold >= 0.42: 0.020 below the minimum; "
                                                           "the batch may have drifted: see reports/drift/drift.md")
    assert "driftgate_gates_failed 1\n" in widgets["metrics"].read_text()


@pytest.mark.slow
def test_gitlab_schedule_runs_the_drift_job_on_the_chosen_batch_and_reports_to_the_pinned_issue(gitlab, smtp):
    clone, pipeline = gitlab
    inbox, _ = smtp
    sent_before = len(inbox.messages)
    result, calls = pipeline("schedule", "scheduled-drift", "scheduled-report", DRIFTGATE_BATCH="2013-09",
                             DRIFTGATE_REPORT_ISSUE="7")
    assert result.returncode == 1, result.stdout[-4000:]
    assert " FAIL  scheduled-drift" in result.stdout and " PASS  scheduled-report" in result.stdout
    assert "drift share" in _job_log(result, "scheduled-drift")
    [call] = calls
    assert call["argv"] == ["comment", "update", "--target=issue/7", "--watermark-title=driftgate scheduled drift",
                            "reports/report.md"]
    assert call["target"] == {"target": "issue", "issueId": "7"}
    cases = _junit_cases(_widget_reports(clone, "scheduled-drift")["junit"])
    assert "f1 (current 2013-09)" in cases  # the batch's gates, not main's committed ones
    assert cases["drift share"].find("failure") is not None
    assert "### Drift: 2013-01..2013-03 vs 2013-09" in call["markdown"] and call["missing_images"] == []
    [alert] = inbox.messages[sent_before:]
    assert "FAILED" in alert["Subject"] and "drift share" in alert["Subject"]


@pytest.mark.slow
def test_gitlab_schedule_makes_a_monitoring_pass_over_a_log_given_by_url(gitlab, smtp, flights_project, tmp_path):
    """A team without a long-running monitor: the schedule's job reads the prediction log named by
    DRIFTGATE_MONITOR_LOG, records the pass in it, fails on critical and sends the alert."""
    from driftgate.store.monitoring import MonitoringStore

    clone, pipeline = gitlab
    inbox, _ = smtp
    sent_before = len(inbox.messages)
    log = f"sqlite:///{tmp_path / 'served.sqlite'}"
    fill_log(flights_project, log, "2013-07", 500)  # what the served model logged: July
    result, _ = pipeline("schedule", "scheduled-monitor", DRIFTGATE_MONITOR_LOG=log)
    assert result.returncode == 1, result.stdout[-4000:]
    assert " FAIL  scheduled-monitor" in result.stdout
    job_log = _job_log(result, "scheduled-monitor")
    assert "pass 1: critical" in job_log and "Monitoring pass 1: flight delay risk: CRITICAL" in job_log
    [judged] = MonitoringStore(log).passes_list()
    assert judged["status"] == "done" and judged["rows"] == 500 and judged["level"] == "critical"
    assert "CRITICAL" in _artifact(clone, "scheduled-monitor", "reports/monitor.md").read_text()
    [alert] = inbox.messages[sent_before:]
    assert "CRITICAL" in alert["Subject"] and "drift share" in alert["Subject"]
