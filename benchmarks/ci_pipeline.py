"""How long the GitLab pipeline takes, run locally by gitlab-ci-local, and what it produces.

    python benchmarks/ci_pipeline.py [--out DIR]

In a fresh clone of this working tree (with `origin/main` at its base, on a branch), runs three
pipelines as the tests do: a merge request that passes, the same with `gates.f1_min` raised to
0.42 (the gate fails), and a schedule on the 2013-09 batch. Prints each job's time as
gitlab-ci-local reports it, and writes the two merge-request reports and the received alert to
DIR. Needs `make tools` (gitlab-ci-local, rsync). CML is the recording stand-in from
tests/fixtures/bin.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = [ROOT / "tests" / "fixtures" / "bin", ROOT / ".tools" / "node_modules" / ".bin", Path(sys.executable).parent]


def sh(command: str, cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, shell=True, check=True, capture_output=True)


def clone_to(dest: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    sh("git init -q -b main && git add -A && git -c user.email=b@b -c user.name=b commit -qm base"
       " && git remote add origin https://gitlab.example.org/ml/flights.git"
       " && git update-ref refs/remotes/origin/main HEAD && git checkout -q -b feature", dest)
    return dest


def pipeline(clone: Path, source: str, jobs: list[str], port: int, record: Path, **extra: str) -> tuple[int, float, dict, str]:
    variables = {"CI_PIPELINE_SOURCE": source, "PYTHONPATH": "src", "REPO_TOKEN": "glpat-bench", "CML_RECORD": str(record),
                 "DRIFTGATE_SMTP_HOST": "127.0.0.1", "DRIFTGATE_SMTP_PORT": str(port), "DRIFTGATE_SMTP_SECURITY": "none",
                 "DRIFTGATE_ALERT_FROM": "driftgate@example.org", "DRIFTGATE_ALERT_TO": "ml-team@example.org", **extra}
    command = ["gitlab-ci-local", "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source", "--no-color",
               *[a for k, v in variables.items() for a in ("--variable", f"{k}={v}")], *jobs]
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, PATHS), os.environ["PATH"]]),
           "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    times = {m.group(1): m.group(2) for m in re.finditer(r"^(\S+)\s+(?:finished|failed) in (.+)$", done.stdout, re.M)}
    (record.parent / f"{source}-{len(list(record.parent.glob(source + '-*.log')))}.log").write_text(done.stdout)
    return done.returncode, seconds, times, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="driftgate-ci-")))
    args = parser.parse_args()
    from aiosmtpd.controller import Controller

    class Inbox:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="driftgate-ci-clone-"))
    try:
        clone = clone_to(work / "repo")
        runs = []
        code, seconds, times, _ = pipeline(clone, "merge_request_event", ["reproduce", "gate", "report"], port, work / "cml")
        shutil.copy(clone / ".gitlab-ci-local/artifacts/gate/reports/report.md", args.out / "report-pass.md")
        runs.append(("merge request, gates pass", code, seconds, times))
        params = clone / "params.yaml"
        params.write_text(params.read_text().replace("f1_min: 0.38", "f1_min: 0.42"))
        sh("git commit -qam 'Raise the F1 bar'", clone)
        code, seconds, times, _ = pipeline(clone, "merge_request_event", ["reproduce", "gate", "report"], port, work / "cml")
        shutil.copy(clone / ".gitlab-ci-local/artifacts/gate/reports/report.md", args.out / "report-fail.md")
        runs.append(("merge request, f1_min raised to 0.42", code, seconds, times))
        code, seconds, times, _ = pipeline(clone, "schedule", ["scheduled-drift", "scheduled-report"], port, work / "cml",
                                           DRIFTGATE_BATCH="2013-09")
        runs.append(("schedule, batch 2013-09", code, seconds, times))
    finally:
        smtp.stop()
        for log in work.glob("*.log"):  # each pipeline's full output
            shutil.copy(log, args.out / log.name)
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'pipeline':<38} | {'exit':>4} | {'wall s':>6} | jobs (as gitlab-ci-local times them)")
    print("-" * 110)
    for name, code, seconds, times in runs:
        print(f"{name:<38} | {code:>4} | {seconds:>6.1f} | " + ", ".join(f"{job} {t}" for job, t in times.items()))
    for i, message in enumerate(inbox.messages):
        (args.out / f"alert-{i}.txt").write_text(f"Subject: {message['Subject']}\n\n" + message.get_body(("plain",)).get_content())
        print(f"\nalert {i}: {message['Subject']}\n" + message.get_body(("plain",)).get_content())
    print(f"reports and alerts -> {args.out}")


if __name__ == "__main__":
    main()
