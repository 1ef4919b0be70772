"""`driftgate retrain`, `driftgate rollback` and `driftgate models` (the registry and its history)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from driftgate.cli.common import ModelOpt, ParamsOpt, app, handles_errors, out, step
from driftgate.cli.monitor import LogOpt
from driftgate.config import DEFAULT_PARAMS, Paths, load_params
from driftgate.errors import ConfigError
from driftgate.io import write_text

Trigger = Literal["manual", "alert", "schedule", "api"]


def _registry(log: str | None, params):
    from driftgate.store.registry import ModelRegistry

    return ModelRegistry(log or params.serving.log)


@app.command()
@handles_errors
def retrain(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    model_path: ModelOpt = Paths().model,
    log: LogOpt = None,
    trigger: Annotated[Trigger, typer.Option("--trigger", help="what asked for it, recorded with the decision")] = "manual",
    decision_out: Annotated[Optional[Path], typer.Option("--out", help="write the decision here as JSON")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="write the decision here as Markdown (champion vs "
                                                   "challenger, the interval, the gates)")] = None,
    move_window: Annotated[bool, typer.Option("--move-window", help="on a promotion, set windows.train to "
                                              "retraining.window and windows.current to retraining.evaluation in the "
                                              "params file (comments kept), so `dvc repro` trains and gates the new "
                                              "champion; CI's scheduled retrain job opens a merge request with it")] = False,
) -> None:
    """Train a challenger on retraining.window, score it and the champion on retraining.evaluation
    (the same rows), and promote it only if it is better by the margin with a paired bootstrap
    lower bound (rows and retraining noise) above 0 and it passes every gate. Every decision is a
    row in the registry. Exit code 0 for a decision either way (--out says which), 2 for bad input."""
    from driftgate.config import set_params
    from driftgate.reporting.render import retrain_markdown
    from driftgate.retraining.controller import retrain as run

    params = load_params(params_path)
    outcome = run(params, Paths(), _registry(log, params), trigger, model_path, say=step)
    d = outcome.decision
    out.print(f"{outcome.outcome}: champion {outcome.champion[:12]} F1 {d.champion_f1:.3f}, challenger {outcome.challenger[:12]} "
              f"F1 {d.challenger_f1:.3f} on {d.rows:,} {params.project.rows} (decision {outcome.decision_id})")
    out.print(d.reason)
    if decision_out is not None:
        d.write(decision_out)
    if report is not None:
        write_text(report, retrain_markdown(outcome, params.project.rows, params.project.title))
        step(f"report -> {report}")
    if move_window and d.promote:
        moved = {"windows.train": outcome.training_window, "windows.current": outcome.evaluation_window}
        before = set_params(params_path, moved)
        for key, value in moved.items():
            step(f"{params_path}: {key} {before[key]} -> {value}")
        step("run `dvc repro` to train the new champion and gate it")


@app.command()
@handles_errors
def rollback(params_path: ParamsOpt = DEFAULT_PARAMS, log: LogOpt = None) -> None:
    """Make the previous champion serve again (its sha256 checked), and record it."""
    from driftgate.retraining.controller import rollback as run

    params = load_params(params_path)
    done = run(_registry(log, params))
    out.print(f"rolled back: {done.restored[:12]} serves again instead of {done.replaced[:12]} "
              f"(decision {done.decision_id}, {done.seconds:.2f} s)")


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("--at", f"cannot read {text!r} as a time", "write an ISO time such as 2026-12-02T14:30:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command()
@handles_errors
def models(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    log: LogOpt = None,
    at: Annotated[Optional[str], typer.Option("--at", help="which model was champion at this UTC time (ISO, e.g. 2026-12-02T14:30Z)")] = None,
) -> None:
    """The registered models, the champion's history (from, until) and the last decisions."""
    params = load_params(params_path)
    registry = _registry(log, params)
    if at is not None:
        when = _when(at)
        found = registry.champion_at(when)
        out.print(f"champion at {when.isoformat()}: {found}" if found else f"no champion at {when.isoformat()}")
        return
    step("champion history (oldest first)")
    for row in registry.alias_history():
        until = row["until"].isoformat() if row["until"] else "now"
        out.print(f"  {row['sha256'][:12]}  {row['since'].isoformat()} .. {until}  {row['reason']}")
    step("decisions (newest first)")
    for row in registry.decisions(limit=20):
        out.print(f"  #{row['id']} {row['at'].isoformat()} {row['outcome']}: {row['reason']}")
