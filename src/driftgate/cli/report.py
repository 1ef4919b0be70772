"""`driftgate report` (the Markdown CI posts) and `driftgate alert` (the email)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from driftgate.cli.common import ParamsOpt, app, handles_errors, out, read_optional, warn
from driftgate.config import DEFAULT_PARAMS, Paths, RunLayout, load_params


@app.command()
@handles_errors
def report(
    gate_path: Annotated[Path, typer.Option("--gate", help="gate.json from `driftgate gate`")] = Paths().gate,
    metrics_path: Annotated[Path, typer.Option("--metrics", help="metrics.json from `driftgate evaluate`")] = Paths().metrics,
    drift_path: Annotated[Path, typer.Option("--drift", help="drift.json from `driftgate drift`")] = Paths().run.drift.json,
    baseline_rev: Annotated[Optional[str], typer.Option("--baseline-rev", help="git revision to compare metrics and params "
                                                        "with (`dvc metrics diff` / `dvc params diff`), e.g. origin/main")] = None,
    workflow: Annotated[str, typer.Option("--workflow", help="what kind of run this is, shown in the report (merge_request, schedule, push)")] = "",
    out_path: Annotated[Path, typer.Option("--out", help="the Markdown report (images are linked relative to it)")] = Paths().run.report,
    summary: Annotated[Optional[Path], typer.Option("--summary", help="also append the report to this file, with the plots "
                                                    "named instead of shown: GitHub's job summary, $GITHUB_STEP_SUMMARY")] = None,
) -> None:
    """Write the report CI posts on the merge request: verdict, gates, metrics and params against
    main, the drift table, plots and a link to Evidently's HTML report. Never fails on a
    missing input: it says what is missing instead (exit 0)."""
    from driftgate.io import write_text
    from driftgate.reporting.report import CiContext, ci_report
    from driftgate.results import DriftResult, GateVerdicts, Metrics

    notes: list[str] = []

    def optional(path: Path, model, what: str):
        result, problem = read_optional(path, model, what)
        if problem:
            notes.append(f"_Missing: {problem}._")
        return result

    gate_result = optional(gate_path, GateVerdicts, "gate verdicts")
    metrics = optional(metrics_path, Metrics, "metrics")
    drift_result = optional(drift_path, DriftResult, "drift results")
    run, report_layout = RunLayout(metrics_path.parent), RunLayout(out_path.parent)
    baseline = params_changed = None
    label = baseline_rev or "main"
    if baseline_rev:
        label = baseline_rev.removeprefix("origin/")
        baseline, params_changed = _against_revision(baseline_rev, metrics_path, notes)
    plots = [run.plots.confusion_png, run.plots.roc_pr_png, drift_path.parent / Paths().run.drift.png.name]
    if baseline_rev:
        against = _curves_against(baseline_rev, label, run, report_layout.curves_against, notes)
        plots[1:2] = [against] if against is not None else plots[1:2]
    ci = CiContext.from_env()
    evidently = drift_path.parent / Paths().run.drift.evidently.name

    def render(images: bool) -> str:
        return ci_report(gate_result, metrics, drift_result, out_path, ci, workflow, baseline, label, params_changed, plots,
                         evidently, notes, drift_markdown=drift_path.with_suffix(".md"), images=images)

    write_text(out_path, render(images=True))
    out.print(f"report -> {out_path}")
    if summary is not None:  # appended: GitHub gathers every step's summary of the job into one page
        try:
            with summary.open("a", encoding="utf-8") as page:
                page.write(render(images=False) + "\n")
        except OSError as exc:
            warn(f"{summary}: the job summary could not be written ({exc.strerror}); the report is in {out_path}")
        else:
            out.print(f"job summary -> {summary}")


def _dvc_json(args: list[str], notes: list[str]) -> dict | None:
    """`dvc ARGS --json`, parsed; a failure becomes a note in the report instead of an error."""
    import json

    from driftgate.data.fetch import dvc

    done = dvc(Path("."), *args, "--json")
    if done.returncode != 0:
        notes.append(f"_`dvc {' '.join(args[:3])}` failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}_")
        return None
    try:
        return json.loads(done.stdout or "{}")
    except ValueError:
        notes.append(f"_`dvc {' '.join(args[:3])}` did not answer in JSON_")
        return None


def _curves_against(rev: str, label: str, run: RunLayout, target: Path, notes: list[str]) -> Path | None:
    """ROC and PR curves against the revision, from `dvc plots diff REV --targets ... --json`."""
    from driftgate.reporting.plots import curves_against_plot

    targets = [str(path) for path in (run.plots.roc, run.plots.prc) if path.is_file()]
    diff = _dvc_json(["plots", "diff", rev, "--targets", *targets], notes) if targets else None
    if not diff:
        return None
    data = {name: [row for plot in plots for row in plot.get("content", {}).get("data", {}).get("values", [])]
            for name, plots in diff.get("data", {}).items()}
    return curves_against_plot(data, label, target)


def _against_revision(rev: str, metrics_path: Path, notes: list[str]) -> tuple[dict | None, dict | None]:
    """The revision's metrics (the numbers `dvc metrics diff REV` compares with) and the params
    that changed since it (`dvc params diff REV`)."""
    diff = _dvc_json(["metrics", "diff", rev, "--all", "--targets", str(metrics_path)], notes)
    baseline = None
    if diff is not None:
        flat = next(iter(diff.values()), {})
        baseline = {}
        for key, change in flat.items():
            split, _, name = key.partition(".")
            if change.get("old") is not None:
                baseline.setdefault(split, {})[name] = change["old"]
        baseline = baseline or None
    params = _dvc_json(["params", "diff", rev], notes)
    changed = None if params is None else {key: change for changes in params.values() for key, change in changes.items()}
    return baseline, changed


@app.command()
@handles_errors
def alert(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    gate_path: Annotated[Path, typer.Option("--gate", help="gate.json from `driftgate gate`; missing counts as a failure")] = Paths().gate,
    attach: Annotated[Optional[list[Path]], typer.Option("--attach", help="files to attach (default: the drift plot)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the message instead of sending it")] = False,
) -> None:
    """Email the gate verdicts (alerts.send_on in params.yaml: failure, always or schedule).

    SMTP settings come from DRIFTGATE_SMTP_* and DRIFTGATE_ALERT_* environment variables (see
    README: CI secrets). No settings at all is a warning (exit 0) unless alerts.required is true;
    a wrong setting (a port that is not a number, an address that is not one) and a server that
    refuses the message are exit 2. The password is never printed.
    """
    from driftgate.reporting import alerts
    from driftgate.reporting.report import CiContext
    from driftgate.results import GateVerdicts

    params = load_params(params_path)
    ci = CiContext.from_env()
    verdicts, problem = read_optional(gate_path, GateVerdicts, "gate verdicts")
    if problem:
        warn(f"{problem}: alerting as a failure")
    verdicts = verdicts or GateVerdicts(passed=False, gates=[])
    if not alerts.should_send(verdicts.passed, params.alerts.send_on, ci):
        out.print(f"{'all gates passed' if verdicts.passed else 'not a scheduled run'}: no alert (alerts.send_on: {params.alerts.send_on})")
        return
    try:
        settings = alerts.SmtpSettings.from_env()
    except alerts.SmtpNotConfigured as exc:  # nothing set: alerts are off, unless they are required
        if params.alerts.required or dry_run:
            raise
        warn(f"no alert sent: {exc.message}")
        return
    files = attach if attach is not None else [Paths().run.drift.png]
    message = alerts.build_message(verdicts, settings, ci, files)
    if dry_run:
        out.print(escape(message.as_string()[:4000]))
        return
    alerts.send(message, settings)
    out.print(f"alert sent to {', '.join(settings.recipients)} via {settings.host}:{settings.port} ({settings.security}): "
              f"{escape(message['Subject'])}")
