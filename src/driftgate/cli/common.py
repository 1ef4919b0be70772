"""What every command shares: the Typer app, the two consoles, progress lines, error handling
and the common options. Exit codes: 0 success / all gates pass, 1 a gate failed, 2 bad input."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console

from driftgate.errors import EXIT_BAD_INPUT, DriftgateError

app = typer.Typer(
    help="Quality gates for ML pipelines: validate, train, evaluate, detect drift, gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_WIDTH = None if sys.stdout.isatty() else 120  # logs in CI are wider than 80 columns
err = Console(stderr=True, highlight=False, width=_WIDTH, soft_wrap=True)
out = Console(highlight=False, width=_WIDTH)

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="params.yaml with data, windows, model, drift and gate settings")]
Mode = Literal["parity", "calibrated"]
CurrentOpt = Annotated[
    Optional[str],
    typer.Option("--current", help="current batch: a window (2013-07, 2013-06..2013-08), a CSV/Parquet file, "
                 "or a prediction log (.sqlite or a database URL); default windows.current"),
]
DatasetOpt = Annotated[Path, typer.Option("--dataset", help="validated dataset from `driftgate validate` (the windows are read from it)")]
ModelOpt = Annotated[Path, typer.Option("--model", help="trained model from `driftgate train` (its sha256 is checked against model.json)")]


def step(message: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)


def handles_errors(command: Callable) -> Callable:
    """Turn DriftgateError into one readable message on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DriftgateError as exc:
            err.print(f"[bold red]error:[/bold red] {exc.message}", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def progress_lines(what: str, total: int | None, every: float = 0.1) -> Callable[[int], None]:
    """A progress callback that prints one log line per `every` of `total` rows (or per 10 s
    when the total is unknown): readable in a CI job log, where a redrawn bar is not."""
    seen, next_mark, started = 0, every, time.monotonic()
    last = started

    def advance(rows: int) -> None:
        nonlocal seen, next_mark, last
        seen += rows
        now = time.monotonic()
        if total:
            if seen / total + 1e-12 < next_mark and seen < total:
                return
            while next_mark <= seen / total + 1e-12:
                next_mark += every
            step(f"{what}: {seen:,} / {total:,} rows ({seen / total:.0%}, {now - started:.1f} s)")
        elif now - last >= 10:
            step(f"{what}: {seen:,} rows ({now - started:.1f} s)")
        last = now

    return advance


def read_optional(path: Path | None, model, what: str):
    """A typed result read from `path`, or (None, the one-line reason it could not be read)."""
    if path is None:
        return None, None
    try:
        return model.read(path, what), None
    except DriftgateError as exc:
        return None, exc.message.splitlines()[0]
