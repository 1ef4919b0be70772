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
) -> None:
    """Start the demo (Gradio UI at /) and the REST API (/predict, /labels, /health, /metrics, the
    monitoring routes, /docs); with --monitor-every, the monitor too, in the same process."""
    from driftgate.serving.ui import create_app
    from driftgate.serving.ui import serve as run_server

    seconds = None
    if monitor_every is not None:
        try:
            seconds = parse_duration(monitor_every, "--monitor-every")
        except ValueError as exc:
            raise ConfigError("--monitor-every", str(exc), "write 30s, 5m, 2h or 1d") from None
    step("loading the model and the demo")
    application = create_app(params_path, model_path, log, monitor_every=seconds)
    if seconds is not None:
        step(f"a monitoring pass every {monitor_every} in this server (only one pass runs at a time, whoever starts it)")
    run_server(application, host, port)
