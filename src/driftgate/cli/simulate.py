"""`driftgate simulate`: replay rows of a window of the dataset to a running server, with their
labels after a delay and drift injected on demand (traffic for a demo a person can watch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from driftgate.cli.common import DatasetOpt, ParamsOpt, app, err, handles_errors, out, step, warn
from driftgate.config import DEFAULT_PARAMS, Paths, load_params
from driftgate.errors import EXIT_BAD_INPUT, DriftgateError

Repeated = Optional[list[str]]


@app.command()
@handles_errors
def simulate(
    url: Annotated[str, typer.Option("--url", help="the server to send to (`make demo` or `driftgate serve` starts one)")] = "http://127.0.0.1:7860",
    window: Annotated[str, typer.Option("--window", help="the rows to replay: a window of the dataset (2013-07, 2013-01..2013-03, "
                                        "2013-07-01..2013-07-15, rows 0..8000, 0.8..1.0)")] = "2013-07",
    rate: Annotated[str, typer.Option("--rate", help="predictions per second: 20/s, 300/m, 1000/h, or max (as fast as the server answers)")] = "20/s",
    rows: Annotated[int, typer.Option("--rows", help="how many rows to send")] = 2000,
    batch: Annotated[int, typer.Option("--batch", help="records per /predict request (1: one JSON object, more: a list)")] = 1,
    label_delay: Annotated[str, typer.Option("--label-delay", help="post each row's true label to /labels this long after its "
                                             "prediction: 30s, 5m, 0 (at once) or off (no labels)")] = "30s",
    order: Annotated[str, typer.Option("--order", help="random: rows drawn at random from the window (a monitor's window then "
                                       "looks like the whole period); time: in time order")] = "random",
    shift: Annotated[Repeated, typer.Option("--shift", help="add to a numeric column: temp=+5 (repeatable)")] = None,
    scale: Annotated[Repeated, typer.Option("--scale", help="multiply a numeric column: wind_speed=1.3 (repeatable)")] = None,
    move: Annotated[Repeated, typer.Option("--move", help="move a share of the rows to a category: carrier=UA:0.2 (repeatable)")] = None,
    missing: Annotated[Repeated, typer.Option("--missing", help="make a share of a numeric column missing: temp=0.3 (repeatable)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the row draw and the injected drift (same seed, same traffic)")] = 0,
    params_path: ParamsOpt = DEFAULT_PARAMS,
    dataset: DatasetOpt = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="the served model: its card beside it (model.json) names the "
                                             "features sent and the categories /predict accepts")] = Paths().model,
) -> None:
    """Replay rows of a window of the dataset to POST /predict at a set rate, and post their true
    labels to POST /labels after a delay, optionally with drift injected (shift or scale a column,
    move category frequencies, make values missing). Ctrl-C stops; a summary ends the run."""
    from driftgate.io import read_json
    from driftgate.monitoring import simulate as sim

    if order not in ("random", "time"):
        raise DriftgateError("--order", f"{order!r} is not an order", "use random or time")
    sim.check_counts(rows, batch)
    params = load_params(params_path)
    card_path = Path(model_path).with_suffix(".json")
    if not card_path.is_file():
        raise DriftgateError(card_path, "model card not found (the features to send are read from it)",
                             "train the model first (`make run`), or point --model at the served model")
    card = read_json(card_path, "model card")
    accepted = sim.Accepted.from_card(card, params.validation, card_path)
    injections = sim.parse_injections(accepted, shift or (), scale or (), move or (), missing or ())
    per_second, delay = sim.parse_rate(rate), sim.parse_delay(label_delay)
    url = sim.check_url(url)
    http, health = sim.connect(url)  # before the data is read: a server that is not up is said at once
    served, version = health.get("model_version"), str(card.get("model_sha256", ""))[:12]
    if served and version and served != version:
        warn(f"the server serves model {served}, not {version} ({card_path}): the rows are sent as that card describes them")
    try:
        found = sim.load_window(dataset, window)
        picked = sim.prepare_rows(found, accepted, rows, order, seed, injections)  # type: ignore[arg-type]
        for what, count in picked.left_out.items():
            warn(f"{count:,} {accepted.rows} of the window left out: {what} never seen by the model, so /predict refuses them")
        if order == "time" and len(picked) < rows:
            warn(f"the window has {len(picked):,} {accepted.rows} /predict accepts: replaying those, not {rows:,}")
        drawn = "at random" if order == "random" else "in time order"
        step(f"replaying {len(picked):,} of the window's {picked.window_rows:,} {accepted.rows} ({window}, {drawn}, seed {seed}) "
             f"to {url}/predict at {rate}" + (f", {batch} per request" if batch > 1 else ""))
        for injection, changed in zip(injections, picked.changed):
            step(f"drift injected: {injection.describe()} ({changed:,} {accepted.rows} changed)")
        step("labels: " + ("off" if delay is None else f"to {url}/labels {label_delay} after each prediction") + "; Ctrl-C stops")
        replay = sim.Replay(url, picked, accepted.schema, batch, per_second, delay, say=step, what=accepted.rows)
    except BaseException:
        http.close()
        raise
    tally = replay.run(http)
    for line in replay.summary():
        out.print(line)
    if tally.failure:
        err.print(f"[bold red]error:[/bold red] {tally.failure}" + (f"\n  -> {tally.hint}" if tally.hint else ""), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT)
