"""`driftgate serve`: the demo and the REST API in one server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from driftgate.cli.common import ParamsOpt, app, handles_errors, step
from driftgate.config import DEFAULT_PARAMS, Paths, parse_duration
from driftgate.errors import ConfigError


@app.command()
@handles_errors
def serve(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    model_path: Annotated[Path, typer.Option("--model", help="the model to serve (its sha256 is checked against model.json)")] = Paths().model,
    host: Annotated[Optional[str], typer.Option("--host", help="address to bind (default GRADIO_SERVER_NAME, else 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="port (default GRADIO_SERVER_PORT, else 7860)")] = None,
    log: Annotated[Optional[str], typer.Option("--log", help="prediction log: a SQLite path or SQLAlchemy URL (default serving.log)")] = None,
    monitor_every: Annotated[Optional[str], typer.Option("--monitor-every", help="also run a monitoring pass every 30s, 5m, 1h ... "
                                                         "inside the server (one line per pass; without it no monitor runs)")] = None,
    retrain_every: Annotated[Optional[str], typer.Option("--retrain-every", help="also retrain every 12h, 1d, 7d ... inside the "
                                                         "server (trigger schedule; the first one after one interval), "
                                                         "as POST /retrain does")] = None,
) -> None:
    """Start the demo (Gradio UI at /) and the REST API (/predict, /labels, /health, /metrics, the
    monitoring and retraining routes, /docs); with --monitor-every, the monitor too, and with
    --retrain-every, scheduled retraining, in the same process."""
    from driftgate.serving.ui import create_app
    from driftgate.serving.ui import serve as run_server

    seconds = _seconds(monitor_every, "--monitor-every")
    retrain_seconds = _seconds(retrain_every, "--retrain-every")
    if retrain_seconds is not None:
        from driftgate.config import load_params

        load_params(params_path).retraining.require_windows()  # refused now, not at the first tick
    step("loading the model and the demo")
    application = create_app(params_path, model_path, log, monitor_every=seconds)
    if seconds is not None:
        step(f"a monitoring pass every {monitor_every} in this server (only one pass runs at a time, whoever starts it)")
    if retrain_seconds is not None:
        application.state.retraining.every(retrain_seconds)
        step(f"a retraining every {retrain_every} in this server (trigger schedule; GET /retraining/status)")
    run_server(application, host, port)


def _seconds(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text, option)
    except ValueError as exc:
        raise ConfigError(option, str(exc), "write 30s, 5m, 2h or 1d") from None
