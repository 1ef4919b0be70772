"""`driftgate monitor` (passes over the prediction log) and `driftgate labels` (late labels)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from driftgate.cli.common import ModelOpt, ParamsOpt, app, err, handles_errors, out, step
from driftgate.config import DEFAULT_PARAMS, Paths, load_params, parse_duration
from driftgate.errors import EXIT_GATE_FAILED, ConfigError

LogOpt = Annotated[Optional[str], typer.Option("--log", envvar="DRIFTGATE_MONITOR_LOG",
                                               help="prediction log and history: a SQLite path or SQLAlchemy URL "
                                                    "(default serving.log; env DRIFTGATE_MONITOR_LOG)")]
FailOn = Literal["never", "warning", "critical"]


def _duration(value: str, option: str) -> float:
    try:
        return parse_duration(value, option)
    except ValueError as exc:
        raise ConfigError(option, str(exc), "write 30s, 5m, 2h or 1d") from None


@app.command()
@handles_errors
def monitor(
    once: Annotated[bool, typer.Option("--once", help="run one pass and exit")] = False,
    every: Annotated[Optional[str], typer.Option("--every", help="run a pass every 30s, 5m, 1h ... until stopped "
                                                 "(without --once or --every: monitoring.every)")] = None,
    params_path: ParamsOpt = DEFAULT_PARAMS,
    model_path: ModelOpt = Paths().model,
    log: LogOpt = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="exit 1 when a pass is at this level or worse "
                                            "(a CI schedule's job then fails)")] = "never",
    no_notify: Annotated[bool, typer.Option("--no-notify", help="record alerts but send no email or webhook")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="with --once: write the pass as Markdown here "
                                                   "(level, window, drift, F1, alerts, the drift table; the retraining decision when the pass triggered one)")] = None,
) -> None:
    """Judge the newest window of the prediction log: drift of the inputs, the scores and the
    decisions, data quality, F1 (realized once labels are in, else estimated), alert levels.
    Each pass is a row in the store; only one pass runs at a time, whoever starts it."""
    from driftgate.monitoring.service import Monitor
    from driftgate.store.monitoring import LeaseHeld

    if once and every is not None:
        raise ConfigError("driftgate monitor", "takes --once or --every, not both", "e.g. `driftgate monitor --once`")
    params = load_params(params_path)
    interval = None if once else _duration(every, "--every") if every else params.monitoring.every
    monitor_ = Monitor.open(params, log or params.serving.log, model_path, say=step, notify=not no_notify)
    ranks = {"never": 3, "warning": 1, "critical": 2, "ok": 0}
    if interval is None:
        try:
            outcome = monitor_.once()
        except LeaseHeld as held:
            out.print(f"{held}: nothing done")
            return
        out.print(outcome.reason if outcome.status == "skipped" else f"pass {outcome.pass_id}: {outcome.level} ({outcome.reason})")
        if outcome.retraining is not None:
            out.print(f"retraining decision {outcome.retraining.decision_id}: {outcome.retraining.decision.reason}")
        if report is not None:
            from driftgate.io import write_text
            from driftgate.reporting.render import pass_markdown, retrain_markdown

            text = pass_markdown(outcome.result(), params.project.title)
            if outcome.retraining is not None:  # this pass went critical and retrained (retraining.on_alert)
                text += "\n" + retrain_markdown(outcome.retraining, params.project.rows, "after this pass went critical")
            write_text(report, text)
            step(f"wrote {report}")
        if ranks[outcome.level] >= ranks[fail_on]:
            raise typer.Exit(EXIT_GATE_FAILED)
        return
    step(f"a pass every {every or params.monitoring.window_every} (Ctrl-C stops)")
    stop = threading.Event()
    try:
        monitor_.every(interval, stop)
    except KeyboardInterrupt:
        err.print("stopped")


@app.command()
@handles_errors
def labels(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet: request_id (+ row) or monitoring.label_key, and label "
                                         "(0/1, a class name) or the target column")],
    params_path: ParamsOpt = DEFAULT_PARAMS,
    model_path: ModelOpt = Paths().model,
    log: LogOpt = None,
) -> None:
    """Attach labels that arrived late to logged predictions; the realized F1, precision and
    recall of the passes they fall in are updated."""
    from driftgate.monitoring.labels import attach, read_labels
    from driftgate.monitoring.reference import ModelInfo
    from driftgate.store.monitoring import MonitoringStore
    from driftgate.store.predictions import PredictionLog

    params = load_params(params_path)
    found = read_labels(path, params)
    setting = log or params.serving.log
    done, changed = attach(found, PredictionLog(setting), MonitoringStore(setting), ModelInfo.from_card(model_path).threshold, params)
    out.print(f"{done.attached:,} label(s) attached ({done.replaced:,} replaced an earlier one); "
              f"{changed:,} pass(es) updated")
    if done.unmatched:
        from driftgate.errors import listed

        out.print(f"{len(done.unmatched):,} name no logged prediction: {listed(done.unmatched, quote=True)}")
