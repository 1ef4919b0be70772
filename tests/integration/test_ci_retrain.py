"""The scheduled retrain job, for real: the GitLab schedule pipeline's scheduled-retrain job run by
gitlab-ci-local on a copy of the project (shell executor, its own build folder), with the recording
`cml` (tests/fixtures/bin/cml) on PATH. A promoted challenger becomes one `cml pr create` call
carrying the moved windows, dvc.lock and the outputs git keeps, the decision's report as its
description; a rejected one makes no call, and the job passes either way.

The settings make the promotion deterministic and quick: the champion (this commit's model) is
trained on the first two weeks of January, the challenger on May and June, both with 20 boosting
iterations, scored on July (+0.10 F1 here, lower bound +0.08 with 3 refits).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, copy_project, run
from tests.integration.test_ci import FIXTURE_BIN, TOOLS_BIN, _artifact, _cml, _job_log, _tool, run_env

PROMOTING = {  # (section, key): value, set in the clone's params.yaml with its comments kept
    ("windows", "train"): "2013-01-01..2013-01-15",
    ("model", "max_iter"): "20",
    ("retraining", "window"): "2013-05..2013-06",
    ("retraining", "evaluation"): "2013-07",
    ("retraining", "margin"): "0.01",
    ("retraining", "draws"): "500",
    ("retraining", "replicas"): "3",
}
REJECTING = {**PROMOTING, ("retraining", "margin"): "0.5", ("retraining", "replicas"): "0"}  # +0.10 is not +0.50


def set_lines(path: Path, settings: dict[tuple[str, str], str]) -> None:
    """Set `key: value` lines inside top-level sections of a params file, keeping every comment;
    a section (or key) the file lacks is added."""
    lines = path.read_text().splitlines()
    for (section, key), value in settings.items():
        start = next((i for i, line in enumerate(lines) if re.match(rf"{section}:(\s|$)", line)), None)
        if start is None:
            lines += ["", f"{section}:"]
            start = len(lines) - 1
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"\S", lines[i])), len(lines))
        for i in range(start + 1, end):
            found = re.match(rf"(  {key}:\s*)(\S+)(.*)$", lines[i])
            if found:
                lines[i] = f"{found[1]}{value}{found[3]}"
                break
        else:
            lines.insert(end, f"  {key}: {value}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def schedule(tmp_path_factory):
    """A clone of this repository on `main` (with `origin/main`), and a runner of the schedule
    pipeline's retrain job with given params settings (committed first, as a schedule runs a commit)."""
    clone = copy_project(tmp_path_factory.mktemp("retrain"), with_data=False)
    run("git remote add origin https://gitlab.example.org/ml/flights.git && git update-ref refs/remotes/origin/main HEAD",
        clone, check=True)
    record = tmp_path_factory.mktemp("cml-calls")
    gitlab_ci_local = _tool("gitlab-ci-local")

    def pipeline(settings: dict[tuple[str, str], str], **variables: str):
        set_lines(clone / "params.yaml", settings)
        run("git -c user.email=t@t -c user.name=t commit -qam 'Retraining settings for the test' || true", clone, check=True)
        for old in record.glob("call-*.json"):
            old.unlink()
        values = {"CI_PIPELINE_SOURCE": "schedule", "DRIFTGATE_RETRAIN": "true", "PYTHONPATH": "src",
                  "REPO_TOKEN": "glpat-test", "CML_RECORD": str(record), **variables}
        command = [gitlab_ci_local, "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source", "--no-color",
                   *[arg for key, value in values.items() for arg in ("--variable", f"{key}={value}")], "scheduled-retrain"]
        env = {**os.environ, "PATH": os.pathsep.join([str(FIXTURE_BIN), str(TOOLS_BIN), str(BIN), os.environ["PATH"]]),
               "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}
        result = run_env(command, clone, env, timeout=900)
        calls = [json.loads(p.read_text()) for p in sorted(record.glob("call-*.json"))]
        return result, calls

    return clone, pipeline


@pytest.mark.slow
def test_a_promotion_opens_one_merge_request_with_the_moved_windows_and_the_report(schedule):
    clone, pipeline = schedule
    result, calls = pipeline(PROMOTING)
    committed = run(["git", "show", "HEAD:params.yaml"], clone, check=True).stdout  # what the schedule ran on
    committed_lock = yaml.safe_load(run(["git", "show", "HEAD:dvc.lock"], clone, check=True).stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " PASS  scheduled-retrain" in result.stdout
    log = _job_log(result, "scheduled-retrain")
    assert "promoted: windows.train 2013-01-01..2013-01-15 -> 2013-05..2013-06" in log

    report = _artifact(clone, "scheduled-retrain", "reports/retrain.md").read_text()
    decision = json.loads(_artifact(clone, "scheduled-retrain", "reports/retrain.json").read_text())
    assert decision["promote"] is True
    title = ("driftgate retrain: windows.train 2013-01-01..2013-01-15 -> 2013-05..2013-06, "
             "windows.current 2013-04 -> 2013-07")
    [call] = calls
    carried = call["globs"]
    assert call["argv"] == ["pr", "create", "--branch=driftgate-retrain/2013-05-to-2013-06", f"--title={title}",
                            f"--message={title}\n\n{decision['reason']}", f"--body={report}", *carried]
    assert call["repo_token_set"] and call["options"]["body"] == report
    # the description is the report: both models' F1 on the same rows, the reason
    assert f"F1 {decision['champion_f1']:.3f} -> {decision['challenger_f1']:.3f}" in report
    assert re.search(r"^\| champion +\|", report, re.M) and re.search(r"^\| challenger +\|", report, re.M)
    assert "2013-05..2013-06" in report and "2013-07" in report

    # what the request carries: every file changed against the commit, none of the job's own files
    assert {"params.yaml", "dvc.lock", "artifacts/model.json", "reports/metrics.json"} <= set(carried)
    assert all(call["files"][path]["changed"] for path in carried) and call["unmatched_globs"] == []
    assert not {"reports/retrain.md", "reports/retrain.json"} & set(carried)
    # params.yaml: the two windows moved, every other line (comments included) as committed
    params = call["files"]["params.yaml"]["content"]
    changed = [(old, new) for old, new in zip(committed.splitlines(), params.splitlines()) if old != new]
    assert len(params.splitlines()) == len(committed.splitlines()) and len(changed) == 2
    assert re.fullmatch(r"  train: 2013-05\.\.2013-06 +# training and reference window", changed[0][1])
    assert re.fullmatch(r'  current: 2013-07 +# the "production" batch checked for drift and scored', changed[1][1])
    assert yaml.safe_load(params)["windows"] == {**yaml.safe_load(committed)["windows"], "train": "2013-05..2013-06",
                                                 "current": "2013-07"}
    # dvc.lock: the train stage ran on the new window and made another model
    lock = yaml.safe_load(call["files"]["dvc.lock"]["content"])
    train = lock["stages"]["train"]
    assert train["params"]["params.yaml"]["windows.train"] == "2013-05..2013-06"

    def model_md5(stage: dict) -> str:
        return next(out["md5"] for out in stage["outs"] if out["path"] == "artifacts/model.joblib")

    assert model_md5(train) != model_md5(committed_lock["stages"]["train"])
    assert "windows.train: 2013-05..2013-06" in call["files"]["dvc.lock"]["diff"]
    card = json.loads(call["files"]["artifacts/model.json"]["content"])
    assert card["train_window"] == "2013-05..2013-06"
    # the model the merge request's pipeline trains is the challenger the rule promoted, byte for byte
    [row] = [line for line in call["options"]["body"].splitlines() if line.startswith("| challenger")]
    assert f"`{card['model_sha256'][:12]}`" in row, (card["model_sha256"], row)


@pytest.mark.slow
def test_a_rejected_challenger_opens_nothing_and_the_job_passes_with_its_report(schedule, tmp_path):
    """With DRIFTGATE_MONITOR_LOG the decision is recorded in the served model's store."""
    from driftgate.store.registry import ModelRegistry

    clone, pipeline = schedule
    store = f"sqlite:///{tmp_path / 'served.sqlite'}"
    result, calls = pipeline(REJECTING, DRIFTGATE_MONITOR_LOG=store)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " PASS  scheduled-retrain" in result.stdout
    assert calls == []
    assert "not promoted: no merge request" in _job_log(result, "scheduled-retrain")
    report = _artifact(clone, "scheduled-retrain", "reports/retrain.md").read_text()
    decision = json.loads(_artifact(clone, "scheduled-retrain", "reports/retrain.json").read_text())
    assert decision["promote"] is False and "rejected" in report and decision["reason"][1:] in report
    [row] = ModelRegistry(store).decisions()
    assert row["outcome"] == "rejected" and row["trigger"] == "schedule"
    assert (row["training_window"], row["evaluation_window"]) == ("2013-05..2013-06", "2013-07")


@pytest.mark.slow
def test_the_retrain_job_runs_on_schedules_that_ask_for_it_only(schedule):
    clone, _ = schedule
    tool = _tool("gitlab-ci-local")
    env = {**os.environ, "PATH": os.pathsep.join([str(TOOLS_BIN), str(BIN), os.environ["PATH"]]),
           "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}

    def jobs(source: str, **variables: str) -> list[str]:
        extra = [arg for key, value in variables.items() for arg in ("--variable", f"{key}={value}")]
        listed = run_env([tool, "--list", "--force-shell-executor", "--variable", f"CI_PIPELINE_SOURCE={source}", *extra], clone, env)
        assert listed.returncode == 0, listed.stderr
        table = listed.stdout[listed.stdout.index("name "):].splitlines()[1:]
        return [line.split()[0] for line in table if line.strip()]

    assert "scheduled-retrain" in jobs("schedule", DRIFTGATE_RETRAIN="true")
    assert "scheduled-retrain" not in jobs("schedule")
    assert "scheduled-retrain" not in jobs("schedule", DRIFTGATE_RETRAIN="false")
    assert "scheduled-retrain" not in jobs("merge_request_event", DRIFTGATE_RETRAIN="true")
    assert "scheduled-retrain" not in jobs("push", DRIFTGATE_RETRAIN="true", CI_COMMIT_BRANCH="main", CI_DEFAULT_BRANCH="main")


# --------------------------------------------------------------------------- without a pipeline


@pytest.mark.parametrize("args, refusal", [
    (["--title=t", "--squash", "--merge", "params.yaml"], "Arguments squash and merge are mutually exclusive"),
    (["--auto-merge", "--rebase", "params.yaml"], "Arguments merge and rebase are mutually exclusive"),
    (["--rebase", "--squash", "params.yaml"], "Arguments rebase and squash are mutually exclusive"),
    (["--body-file=reports/report.md", "params.yaml"], "Unknown argument: body-file"),  # CML takes the body as a string
    (["--target=pr", "params.yaml"], "Unknown argument: target"),  # a `comment` option
])
def test_cml_stand_in_refuses_what_cml_pr_create_refuses(tmp_path, args, refusal):
    result, calls = _cml(["pr", "create", *args], tmp_path)
    assert result.returncode == 1 and calls == []
    assert result.stderr.rstrip().endswith(refusal), result.stderr


def test_cml_stand_in_records_a_pr_create_with_the_files_it_would_carry(tmp_path):
    run("git init -q && echo 'a: 1  # kept' > params.yaml && echo lock > dvc.lock && git add -A"
        " && git -c user.email=t@t -c user.name=t commit -qm init && echo 'a: 2  # kept' > params.yaml", tmp_path, check=True)
    result, calls = _cml(["pr", "create", "--squash", "--branch", "retrain/x", "--title=t", "--body=## b\nline",
                          "--message=m", "params.yaml", "dvc.lock"], tmp_path)
    assert result.returncode == 0, result.stderr
    [call] = calls
    assert call["options"] == {"squash": True, "branch": "retrain/x", "title": "t", "body": "## b\nline", "message": "m"}
    assert call["globs"] == ["params.yaml", "dvc.lock"]
    assert call["files"]["params.yaml"]["content"] == "a: 2  # kept\n" and call["files"]["params.yaml"]["changed"]
    assert "+a: 2  # kept" in call["files"]["params.yaml"]["diff"]
    assert not call["files"]["dvc.lock"]["changed"] and call["files"]["dvc.lock"]["diff"] == ""


def test_an_unknown_merge_setting_fails_the_retrain_job_before_any_work(tmp_path):
    (tmp_path / "pipelines").mkdir()
    for name in ("lib.sh", "retrain.sh"):
        (tmp_path / "pipelines" / "ci").mkdir(exist_ok=True)
        (tmp_path / "pipelines" / "ci" / name).write_bytes((ROOT / "pipelines" / "ci" / name).read_bytes())
    (tmp_path / "pipelines" / "ci" / "retrain.sh").chmod(0o755)
    result = run_env(["pipelines/ci/retrain.sh"], tmp_path, {**os.environ, "DRIFTGATE_RETRAIN_MERGE": "fast-forward"})
    assert result.returncode == 2
    assert "DRIFTGATE_RETRAIN_MERGE is 'fast-forward': set it to merge, rebase or squash" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_the_github_retrain_job_runs_on_schedules_only_with_write_permissions_of_its_own():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "driftgate.yml").read_text())
    jobs = workflow["jobs"]
    job = jobs["scheduled-retrain"]
    assert job["if"] == "github.event_name == 'schedule' && vars.DRIFTGATE_RETRAIN == 'true'"
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert workflow["permissions"] == {}
    assert [step.get("run") for step in job["steps"] if "run" in step] == ["pipelines/ci/retrain.sh"]
    assert any(step.get("uses", "").startswith("iterative/setup-cml@") for step in job["steps"])
    writers = {name for name, other in jobs.items() if other.get("permissions", {}).get("contents") == "write"}
    assert writers == {"scheduled-retrain", "scheduled-report"}
