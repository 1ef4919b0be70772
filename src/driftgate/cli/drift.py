"""`driftgate drift` and `driftgate drift-report`: a reference against a current batch."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from driftgate.cli.common import (
    CurrentOpt,
    DatasetOpt,
    Mode,
    ModelOpt,
    ParamsOpt,
    app,
    err,
    handles_errors,
    out,
    progress_lines,
    step,
    warn,
)
from driftgate.cli.pipeline import model_and_dataset
from driftgate.config import DEFAULT_PARAMS, DriftConfig, DriftFiles, Paths, load_params
from driftgate.config import DriftEngine as Engine
from driftgate.errors import EXIT_GATE_FAILED, DriftgateError, listed


@app.command()
@handles_errors
def drift(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    reference_path: Annotated[Optional[Path], typer.Option(
        "--reference", help="reference CSV/Parquet file: compare two files instead of the pipeline's windows (--current must be a file)")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="with --reference: the label column (tested for drift too)")] = None,
    prediction: Annotated[Optional[str], typer.Option("--prediction", help="with --reference: the model score/prediction column")] = None,
    dataset_path: DatasetOpt = Paths().dataset,
    model_path: ModelOpt = Paths().model,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for drift.json, drift.md and drift.png")] = Paths().drift_dir,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="exit 1 when the dataset drifts")] = False,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="parity: Evidently's tests and thresholds. calibrated: "
                                                 "resampled p-values with a multiple-testing correction (default drift.mode)")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="pandas: in memory, exact. chunked: reads files in batches "
                                           "into mergeable summaries (with --reference; bounded memory, documented error bound). "
                                           "dask: the same summaries computed on a Dask cluster")] = "pandas",
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="with --engine dask: a scheduler address "
                                                     "(tcp://host:8786); default a local cluster on 127.0.0.1")] = None,
    plot: Annotated[Optional[bool], typer.Option("--plot/--no-plot", help="draw drift.png (the most drifted columns, "
                                                 "reference vs current); default: in pipeline mode yes, comparing two files no "
                                                 "(drawing it costs more than testing small files)")] = None,
) -> None:
    """Compare a reference with a current batch, column by column and on model scores.

    Pipeline mode (default): the reference window of the dataset vs windows.current (or --current),
    with the model's scores as an extra column. File mode: --reference FILE --current FILE, any
    two tables with the same columns; no model needed. Every engine and mode applies drift.tests,
    drift.ignore and drift.share_threshold from params.yaml.
    """
    from driftgate.drift import detect

    files = DriftFiles(out_dir)
    if engine in ("chunked", "dask") and (reference_path is None or not current):
        raise DriftgateError("--engine chunked/dask", "needs --reference FILE|SUMMARY and --current FILE",
                             f"a reference summary ({files.reference_summary.name}) from an earlier run can stand for the reference")
    settings = _settings(params_path, mode, pipeline=reference_path is None)
    if engine in ("chunked", "dask"):
        summary_out = None if str(reference_path).endswith(".summary.npz") else files.reference_summary
        with _dask_client(scheduler) if engine == "dask" else contextlib.nullcontext() as client, _progress() as progress:
            step(f"scanning {reference_path} and {current} ({engine} engine, {settings.mode} mode)")
            result = detect(reference_path, current, settings, engine, client=client, summary_out=summary_out,
                            progress=progress)
        if summary_out is not None:
            out.print(f"reference summary -> {summary_out} (pass it as --reference next time to skip the reference scan)")
        ref = cur = None
    else:
        if reference_path is not None:
            ref, cur, kinds, labels = _drift_files(reference_path, current, target, prediction)
        else:
            ref, cur, kinds, labels = pipeline_frames(params_path, current, model_path, dataset_path)
        step(f"testing {len(kinds)} columns: {len(ref):,} reference rows ({labels[0]}) vs {len(cur):,} current ({labels[1]})")
        result = detect(ref, cur, settings, "pandas", kinds=kinds, labels=labels)
    result = result.model_copy(update={"target": target, "prediction": prediction})
    for warning in result.warnings:
        warn(warning)
    if plot is None:
        plot = reference_path is None
    if plot and ref is None:
        warn("--plot needs the frames in memory: the chunked and Dask engines write no drift.png")
    write_drift(result, ref if plot else None, cur, files)
    verdict = "dataset drift" if result.dataset_drift else "no dataset drift"
    out.print(f"{verdict}: {result.n_drifted}/{result.n_columns} columns drifted "
              f"({listed(result.drifted_columns) or 'none'}); -> {files.json}, {files.markdown}")
    if fail_on_drift and result.dataset_drift:
        raise typer.Exit(EXIT_GATE_FAILED)


def _settings(params_path: Path, mode: Optional[str], pipeline: bool) -> DriftConfig:
    """`drift:` from params.yaml, with --mode applied; comparing two files also runs where there
    is no params.yaml (the defaults apply)."""
    settings = load_params(params_path).drift if pipeline or Path(params_path).is_file() else DriftConfig()
    return settings.model_copy(update={"mode": mode}) if mode else settings


@contextlib.contextmanager
def _progress():
    """Yields a progress factory: a bar on a terminal; in CI logs, a plain line every 10%."""
    if not err.is_terminal:
        yield lambda what, total: progress_lines(f"scanning {what}", total)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err) as bar:
        def start(what: str, total: int | None):
            task = bar.add_task(f"scanning {what}", total=total)
            return lambda rows: bar.advance(task, rows)

        yield start


@contextlib.contextmanager
def _dask_client(scheduler: Optional[str]):
    """A Dask client: on `scheduler`, or on a local cluster bound to 127.0.0.1."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise DriftgateError("--engine dask", "needs Dask", 'pip install "driftgate[dask]"') from exc
    if scheduler:
        step(f"connecting to the Dask scheduler at {scheduler}")
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise DriftgateError("--scheduler", f"cannot reach {scheduler} ({exc})", "check the address and that the scheduler runs") from exc
        with client:
            yield client
        return
    step("starting a local Dask cluster (2 workers on 127.0.0.1)")
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster, Client(cluster) as client:
        yield client


def write_drift(result, ref, cur, files: DriftFiles) -> None:
    """drift.json, drift.md and, when the frames are in memory, drift.png."""
    from driftgate.io import write_text
    from driftgate.reporting.render import drift_markdown

    plot = None
    if ref is not None:
        from driftgate.reporting.plots import drift_plot

        plot = drift_plot(result, ref, cur, files.png)
    result.write(files.json)
    write_text(files.markdown, drift_markdown(result, plot.name if plot else None))


def pipeline_frames(params_path: Path, current: Optional[str], model_path: Path, dataset_path: Path):
    """The pipeline's reference window and current batch, as drift tests them (features, and the
    model's scores and decisions when drift.prediction is on), with their labels."""
    from driftgate.data.batches import current_batch, drift_frames
    from driftgate.data.dataset import select_window

    params, pipeline, schema, dataset = model_and_dataset(params_path, model_path, dataset_path)
    reference_window = params.windows.reference_window
    reference = select_window(dataset, reference_window, "reference")
    batch = current_batch(params, current, dataset, schema)
    ref, cur, kinds = drift_frames(params, schema, reference, batch.frame, lambda frame: pipeline.predict_proba(frame)[:, 1])
    return ref, cur, kinds, (reference_window.label, batch.label)


def _drift_files(reference_path: Path, current: Optional[str], target: Optional[str], prediction: Optional[str]):
    from driftgate.drift.stattests import infer_kinds
    from driftgate.io import read_table

    if not current:
        raise DriftgateError("--current", "is required with --reference", "pass the current batch as a CSV or Parquet file")
    from driftgate.io import check_table

    ref, cur = read_table(reference_path, strings_as_categories=True), read_table(current, strings_as_categories=True)
    kinds = infer_kinds(ref, cur, str(reference_path), current)
    numeric = [c for c, kind in kinds.items() if kind == "numeric"]
    check_table(ref, reference_path, numeric_columns=numeric, columns=list(kinds))
    check_table(cur, current, numeric_columns=numeric, columns=list(kinds))
    for option, column in (("--target", target), ("--prediction", prediction)):
        if column is not None and column not in kinds:
            raise DriftgateError(option, f"column '{column}' is not in both {reference_path} and {current}",
                                 f"columns in both: {listed(kinds)}")
    return ref, cur, kinds, (Path(reference_path).name, Path(current).name)


@app.command("drift-report")
@handles_errors
def drift_report(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    dataset_path: DatasetOpt = Paths().dataset,
    model_path: ModelOpt = Paths().model,
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Paths().run.drift.evidently,
) -> None:
    """Evidently's interactive HTML drift report on a sample (drift.report_sample rows per frame)."""
    from driftgate.drift.evidently_report import write_report

    settings = load_params(params_path).drift
    ref, cur, kinds, _ = pipeline_frames(params_path, current, model_path, dataset_path)
    step(f"building Evidently's report on up to {settings.report_sample:,} of {len(ref):,} / {len(cur):,} rows")
    write_report(ref, cur, kinds, settings.report_sample, out_path)
    out.print(f"Evidently report (sampled) -> {out_path}")
