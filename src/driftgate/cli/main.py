"""The `driftgate` command line: one command per pipeline stage.

Exit codes: 0 success / all gates pass, 1 a gate failed, 2 bad input or usage.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from driftgate.config import DEFAULT_PARAMS, Paths, Window, load_params, parse_window
from driftgate.errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED, DataError, DriftgateError

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
Engine = Literal["pandas", "chunked", "dask"]
Mode = Literal["parity", "calibrated"]
CurrentOpt = Annotated[
    Optional[str],
    typer.Option("--current", help="current batch: a window (2013-07, 2013-06..2013-08) or a CSV/Parquet file; default windows.current"),
]


def step(message: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


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


def _model_and_dataset(params_path: Path, model_path: Path, dataset_path: Path):
    """What `evaluate` and `drift` start from: settings, the checked model, its schema, the dataset."""
    from driftgate.model import train as training
    from driftgate.data.dataset import FeatureSchema, load_dataset

    params = load_params(params_path)
    pipeline, card = training.load(model_path, model_path.with_suffix(".json"))
    return params, pipeline, FeatureSchema.from_dict(card["features"]), load_dataset(dataset_path)


def _prediction_log_batch(source: str):
    """The served predictions' inputs as the current batch (no labels: drift only)."""
    try:
        from driftgate.store.predictions import PredictionLog
    except ImportError as exc:
        raise DriftgateError(source, "reading a prediction log needs the serving extras", 'pip install "driftgate[serve]"') from exc
    if "://" not in source and not Path(source).is_file():
        raise DataError(source, "prediction log not found", "serve the model first (`make demo`), or check serving.log")
    frame = PredictionLog(source).frame()
    if frame.empty:
        raise DataError(source, "the prediction log is empty", "make some predictions first")
    return frame, f"prediction log ({len(frame):,} predictions)"


def _current_batch(params, current: Optional[str], dataset):
    """The current batch as (frame, label): a window of the dataset, or a separate file."""
    from driftgate.data.dataset import prepare_frame, select_window
    from driftgate.io import read_table

    if current and (Path(current).suffix.lower() in {".sqlite", ".db"} or "://" in current):
        return _prediction_log_batch(current)
    if current and Path(current).suffix.lower() in {".csv", ".parquet", ".pq"}:
        frame, _ = prepare_frame(read_table(current), params, current, require_label=False)
        return frame, Path(current).name
    window: Window = parse_window(current) if current else params.windows.current
    return select_window(dataset, window, "current"), window.label


@app.command()
@handles_errors
def data(
    params_path: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Get the raw data: check it against data.dvc, else `dvc pull`, else rebuild the bundled files."""
    from driftgate.data.fetch import ensure_raw_data

    load_params(params_path)
    for line in ensure_raw_data(Path("."), log=step):
        out.print(line)


@app.command()
@handles_errors
def validate(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    out_path: Annotated[Path, typer.Option("--out", help="validated dataset (Parquet)")] = Paths().dataset,
    report_path: Annotated[Path, typer.Option("--report", help="validation report (JSON)")] = Paths().validation,
) -> None:
    """Check columns, types, null shares, ranges, categories, labels and row count; write the dataset."""
    from driftgate.data.dataset import load_raw, prepare_frame
    from driftgate.io import atomic_path, write_json
    from driftgate.data.validation import summarise, validate_frame

    params = load_params(params_path)
    source = str(params.data.path) + (f" + {params.data.join.path}" if params.data.join else "")
    step(f"reading {source}")
    frame, schema = prepare_frame(load_raw(params), params, source)
    step(f"validating {len(frame):,} rows x {len(schema.columns)} features")
    checked, findings = validate_frame(frame, params, schema)
    write_json(report_path, summarise(frame, schema, findings, source))
    if findings:
        err.print(f"[bold red]error:[/bold red] {source}: {len(findings)} validation check(s) failed (report: {report_path})")
        for finding in findings[:12]:
            err.print(f"  - {finding.line()}", soft_wrap=True)
        err.print("  -> fix the data, or the rules under `validation:` in params.yaml if the data is right")
        raise typer.Exit(EXIT_BAD_INPUT)
    with atomic_path(out_path) as tmp:
        checked.to_parquet(tmp, index=False)
    out.print(f"validation passed: {len(frame):,} rows; dataset -> {out_path}, report -> {report_path}")


@app.command()
@handles_errors
def train(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    dataset_path: Annotated[Path, typer.Option("--dataset", help="validated dataset from `driftgate validate`")] = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="where to write the model (joblib)")] = Paths().model,
    card_path: Annotated[Path, typer.Option("--card", help="where to write the model card (JSON)")] = Paths().model_card,
) -> None:
    """Fit the model on the training window (minus the holdout) and save it with its model card."""
    from driftgate.model import train as training
    from driftgate.data.dataset import feature_schema, load_dataset, select_window, time_split
    from driftgate.data.fetch import tracked_hash
    from driftgate.io import sha256_file

    params = load_params(params_path)
    dataset = load_dataset(dataset_path)
    schema = feature_schema(dataset, params.data)
    window = select_window(dataset, params.windows.train, "train")
    fit_rows, holdout = time_split(window, params.windows.holdout_fraction)
    step(f"fitting on {len(fit_rows):,} rows ({params.windows.train.label}, holdout of {len(holdout):,} held back)")
    pipeline = training.fit(fit_rows, params, schema)
    data_hash = {"dataset": str(dataset_path), "dataset_sha256": sha256_file(dataset_path),
                 "raw_data_dvc_md5": tracked_hash(Path("."))}
    card = training.model_card(params, schema, fit_rows, data_hash)
    training.save(pipeline, card, model_path, card_path)
    out.print(f"model -> {model_path} (sha256 {card['model_sha256'][:12]}), card -> {card_path}")


@app.command()
@handles_errors
def evaluate(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    dataset_path: Annotated[Path, typer.Option("--dataset", help="validated dataset")] = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="trained model")] = Paths().model,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for metrics.json and plots/")] = Paths().reports,
) -> None:
    """Score the holdout and the current batch: F1, precision, recall, ROC-AUC, PR-AUC, confusion matrix."""
    import pandas as pd

    from driftgate.model import evaluate as ev
    from driftgate.data.dataset import LABEL, features_frame, labels, select_window, time_split
    from driftgate.io import atomic_path, write_json

    params, pipeline, schema, dataset = _model_and_dataset(params_path, model_path, dataset_path)
    _, holdout = time_split(select_window(dataset, params.windows.train, "train"), params.windows.holdout_fraction)
    batch, batch_label = _current_batch(params, current, dataset)
    threshold = params.model.threshold
    metrics: dict = {}
    curves: dict = {}
    for split, frame in (("holdout", holdout), ("current", batch)):
        if LABEL not in frame or frame[LABEL].isna().all():
            metrics[split] = {"labelled": False, "rows": len(frame)}
            continue
        frame = frame[frame[LABEL].notna()]
        step(f"scoring {split} ({len(frame):,} rows)")
        scores = pipeline.predict_proba(features_frame(frame, schema))[:, 1]
        y_true = labels(frame)
        metrics[split] = ev.classification_metrics(y_true, scores, threshold)
        curves[split] = (y_true, scores, metrics[split])
    metrics["current"]["window"] = batch_label
    metrics["holdout"]["window"] = f"last {params.windows.holdout_fraction:.0%} of {params.windows.train.label}"
    plots = out_dir / "plots"
    roc_parts, prc_parts, confusion = [], [], []
    for split, (y_true, scores, _) in curves.items():
        roc, prc = ev.curves(y_true, scores, split)
        roc_parts.append(roc)
        prc_parts.append(prc)
        confusion.append(pd.DataFrame({"actual": y_true, "predicted": (scores >= threshold).astype(int), "split": split}))
    for name, parts in (("roc.csv", roc_parts), ("prc.csv", prc_parts), ("confusion.csv", confusion)):
        with atomic_path(plots / name) as tmp:
            pd.concat(parts).to_csv(tmp, index=False, float_format="%.5f")
    pngs = ev.plot_pngs(curves, plots, params.data.target.class_names)
    write_json(out_dir / "metrics.json", metrics)
    for split in ("holdout", "current"):
        m = metrics[split]
        if "f1" in m:
            out.print(f"{split:8s} {m['window']}: F1 {m['f1']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
                      f"ROC-AUC {m['roc_auc']:.3f}  PR-AUC {m['pr_auc']:.3f}  ({m['rows']:,} rows)")
    out.print(f"metrics -> {out_dir / 'metrics.json'}; plots -> {', '.join(map(str, pngs))}")


@app.command()
@handles_errors
def drift(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    reference_path: Annotated[Optional[Path], typer.Option(
        "--reference", help="reference CSV/Parquet file: compare two files instead of the pipeline's windows (--current must be a file)")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="with --reference: the label column (tested for drift too)")] = None,
    prediction: Annotated[Optional[str], typer.Option("--prediction", help="with --reference: the model score/prediction column")] = None,
    dataset_path: Annotated[Path, typer.Option("--dataset", help="validated dataset (reference window is read from it)")] = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="model used for prediction drift")] = Paths().model,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for drift.json, drift.md and drift.png")] = Paths().drift_dir,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="exit 1 when the dataset drifts")] = False,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="parity: Evidently's tests and thresholds. calibrated: "
                                                 "resampled p-values with a multiple-testing correction (default drift.mode)")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="pandas: in memory, exact. chunked: reads files in batches "
                                           "into mergeable summaries (with --reference; bounded memory, documented error bound). "
                                           "dask: the same summaries computed on a Dask cluster")] = "pandas",
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="with --engine dask: a scheduler address "
                                                     "(tcp://host:8786); default a local cluster on 127.0.0.1")] = None,
) -> None:
    """Compare a reference with a current batch, column by column and on model scores.

    Pipeline mode (default): the reference window of the dataset vs windows.current (or --current),
    with the model's scores as an extra column. File mode: --reference FILE --current FILE, any
    two tables with the same columns; no model needed.
    """
    from driftgate.drift.calibrated import calibrated_drift
    from driftgate.drift.stattests import dataset_drift

    if engine in ("chunked", "dask"):
        with _dask_client(scheduler) if engine == "dask" else contextlib.nullcontext() as client:
            result, ref, cur = _drift_chunked(params_path, reference_path, current, out_dir, mode, client), None, None
        result["engine"] = engine
    else:
        if reference_path is not None:
            config, ref, cur, kinds, labels = _drift_files(params_path, reference_path, current, target, prediction)
        else:
            config, ref, cur, kinds, labels = _drift_pipeline(params_path, current, model_path, dataset_path)
        step(f"testing {len(kinds)} columns: {len(ref):,} reference rows ({labels[0]}) vs {len(cur):,} current ({labels[1]})")
        if (mode or config.mode) == "calibrated":
            result = calibrated_drift(ref, cur, kinds, config.share_threshold, config.small_sample, config.alpha,
                                      config.correction, config.draws, config.pool_below)
        else:
            result = dataset_drift(ref, cur, kinds, config.share_threshold, config.small_sample,
                                   overrides=config.overrides(kinds))
        result = {"reference_window": labels[0], "current_window": labels[1],
                  "reference_rows": len(ref), "current_rows": len(cur), **result}
    result = {**({"target": target} if target else {}), **({"prediction": prediction} if prediction else {}), **result}
    _write_drift(result, ref, cur, out_dir)
    verdict = "dataset drift" if result["dataset_drift"] else "no dataset drift"
    out.print(f"{verdict}: {result['n_drifted']}/{result['n_columns']} columns drifted "
              f"({', '.join(result['drifted_columns']) or 'none'}); -> {out_dir / 'drift.json'}, {out_dir / 'drift.md'}")
    if fail_on_drift and result["dataset_drift"]:
        raise typer.Exit(EXIT_GATE_FAILED)


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


def _drift_chunked(params_path: Path, reference_path: Optional[Path], current: Optional[str], out_dir: Path,
                   mode: Optional[str] = None, client=None) -> dict:
    """Drift with the chunked engine, with a progress bar; stores the reference summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftgate.drift.scan import SUMMARY_SUFFIX, chunked_drift

    if reference_path is None or not current:
        raise DriftgateError("--engine chunked/dask", "needs --reference FILE|SUMMARY and --current FILE",
                             f"a reference summary ({SUMMARY_SUFFIX}) from an earlier run can stand for the reference")
    config = _drift_settings(params_path)
    summary_out = None if str(reference_path).endswith(SUMMARY_SUFFIX) else out_dir / f"reference{SUMMARY_SUFFIX}"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=not err.is_terminal) as bar:
        def progress(what: str, total: int | None):
            if not err.is_terminal:  # CI logs: a plain line every 10% instead of a bar
                return _progress_lines(f"scanning {what}", total)
            task = bar.add_task(f"scanning {what}", total=total)
            return lambda rows: bar.advance(task, rows)

        calibration = None
        if (mode or config.mode) == "calibrated":
            calibration = {"alpha": config.alpha, "correction": config.correction, "draws": config.draws,
                           "pool_below": config.pool_below}
        result = chunked_drift(reference_path, Path(current), config.share_threshold, config.small_sample, summary_out,
                               progress, client, calibration)
    if summary_out is not None:
        out.print(f"reference summary -> {summary_out} (pass it as --reference next time to skip the reference scan)")
    return {"reference_window": Path(reference_path).name, "current_window": Path(current).name, **result, "engine": "chunked"}


def _progress_lines(what: str, total: int | None, every: float = 0.1) -> Callable[[int], None]:
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


def _write_drift(result: dict, ref, cur, out_dir: Path) -> None:
    """drift.json, drift.md and, when the frames are in memory, drift.png."""
    from driftgate.io import write_json, write_text
    from driftgate.reporting.report import drift_markdown, drift_plot

    plot = drift_plot(result, ref, cur, out_dir / "drift.png") if ref is not None else None
    write_json(out_dir / "drift.json", result)
    write_text(out_dir / "drift.md", drift_markdown(result, plot.name if plot else None))


def _drift_pipeline(params_path: Path, current: Optional[str], model_path: Path, dataset_path: Path):
    from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION, features_frame, select_window

    params, pipeline, schema, dataset = _model_and_dataset(params_path, model_path, dataset_path)
    reference_window = params.windows.reference_window
    reference = select_window(dataset, reference_window, "reference")
    batch, batch_label = _current_batch(params, current, dataset)
    ref, cur = features_frame(reference, schema), features_frame(batch, schema)
    kinds = schema.kinds()
    if params.drift.columns is not None:
        unknown = sorted(set(params.drift.columns) - set(kinds))
        if unknown:
            raise DriftgateError(f"params.yaml: drift.columns: {unknown[0]}", "not a model feature", f"use some of: {', '.join(kinds)}")
        kinds = {c: kinds[c] for c in params.drift.columns}
    if params.drift.prediction:  # the model's scores, and its decisions at model.threshold
        for frame in (ref, cur):
            frame[PREDICTION] = pipeline.predict_proba(frame[schema.columns])[:, 1]
            frame[PREDICTED_LABEL] = (frame[PREDICTION] >= params.model.threshold).astype(int).astype(str)
        kinds[PREDICTION] = "numeric"
        kinds[PREDICTED_LABEL] = "categorical"
    return params.drift, ref, cur, kinds, (reference_window.label, batch_label)


def _drift_settings(params_path: Path):
    """`drift:` from params.yaml; file mode also runs where there is none (defaults apply)."""
    from driftgate.config import DriftConfig

    return load_params(params_path).drift if Path(params_path).is_file() else DriftConfig()


def _drift_files(params_path: Path, reference_path: Path, current: Optional[str], target: Optional[str], prediction: Optional[str]):
    from driftgate.drift.stattests import infer_kinds
    from driftgate.io import read_table

    if not current:
        raise DriftgateError("--current", "is required with --reference", "pass the current batch as a CSV or Parquet file")
    config = _drift_settings(params_path)
    ref, cur = read_table(reference_path, strings_as_categories=True), read_table(current, strings_as_categories=True)
    kinds = infer_kinds(ref, cur, str(reference_path), current)
    for option, column in (("--target", target), ("--prediction", prediction)):
        if column is not None and column not in kinds:
            raise DriftgateError(option, f"column '{column}' is not in both {reference_path} and {current}",
                                 f"columns in both: {', '.join(kinds)}")
    return config, ref, cur, kinds, (Path(reference_path).name, Path(current).name)


@app.command("drift-report")
@handles_errors
def drift_report(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    dataset_path: Annotated[Path, typer.Option("--dataset", help="validated dataset")] = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="model used for the prediction column")] = Paths().model,
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Paths().drift_dir / "evidently.html",
) -> None:
    """Evidently's interactive HTML drift report on a sample (drift.report_sample rows per frame)."""
    from driftgate.drift.evidently_report import write_report

    config, ref, cur, kinds, labels = _drift_pipeline(params_path, current, model_path, dataset_path)
    step(f"building Evidently's report on up to {config.report_sample:,} of {len(ref):,} / {len(cur):,} rows")
    write_report(ref, cur, kinds, config.report_sample, out_path)
    out.print(f"Evidently report (sampled) -> {out_path}")


@app.command()
@handles_errors
def gate(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    metrics_path: Annotated[Path, typer.Option("--metrics", help="metrics.json from `driftgate evaluate`")] = Paths().metrics,
    drift_path: Annotated[Path, typer.Option("--drift", help="drift.json from `driftgate drift`")] = Paths().drift_dir / "drift.json",
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="metrics.json of the main branch, for the F1-drop gate (default gates.baseline)")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="verdicts as JSON (a .md table is written beside it)")] = Paths().gate,
) -> None:
    """Apply the gates in params.yaml. Exit 0 when all pass, 1 when any fails, 2 on bad input."""
    from driftgate import gates
    from driftgate.io import write_json, write_text

    params = load_params(params_path)
    baseline = baseline or params.gates.baseline

    def optional(path: Path | None, what: str) -> dict | None:
        if path is None:
            return None
        payload, problem = _json_object(path, what)
        if problem:
            err.print(f"[yellow]warning:[/yellow] {problem} (the gates that need it fail)")
        return payload

    results = gates.evaluate_gates(
        optional(metrics_path, "metrics file"), optional(drift_path, "drift file"), params.gates,
        optional(baseline, "baseline metrics"), baseline_given=baseline is not None,
        plots=str(metrics_path.parent / "plots"), drift_report=str(drift_path.with_suffix(".md")),
    )
    passed = gates.all_passed(results)
    write_json(out_path, {"passed": passed, "gates": [r.as_dict() for r in results]})
    write_text(out_path.with_suffix(".md"), gates.markdown(results))
    table = Table(title="driftgate: quality gates", title_justify="left")
    for column in ("gate", "value", "threshold", "status", "what to look at"):
        table.add_column(column, overflow="fold")
    for row, result in zip(gates.rows(results), results):
        row[3] = f"[green]{row[3]}[/green]" if result.passed else f"[bold red]{row[3]}[/bold red]"
        table.add_row(*row)
    out.print(table)
    if passed:
        out.print(f"[green]All {len(results)} gates passed.[/green] Verdicts -> {out_path}")
        return
    failed = [r.gate for r in results if not r.passed]
    out.print(f"[bold red]{len(failed)} gate(s) failed: {', '.join(failed)}.[/bold red] Verdicts -> {out_path}")
    raise typer.Exit(EXIT_GATE_FAILED)


@app.command()
@handles_errors
def report(
    gate_path: Annotated[Path, typer.Option("--gate", help="gate.json from `driftgate gate`")] = Paths().gate,
    metrics_path: Annotated[Path, typer.Option("--metrics", help="metrics.json from `driftgate evaluate`")] = Paths().metrics,
    drift_path: Annotated[Path, typer.Option("--drift", help="drift.json from `driftgate drift`")] = Paths().drift_dir / "drift.json",
    baseline_rev: Annotated[Optional[str], typer.Option("--baseline-rev", help="git revision to compare metrics and params "
                                                        "with (`dvc metrics diff` / `dvc params diff`), e.g. origin/main")] = None,
    workflow: Annotated[str, typer.Option("--workflow", help="what kind of run this is, shown in the report (merge_request, schedule, push)")] = "",
    out_path: Annotated[Path, typer.Option("--out", help="the Markdown report (images are linked relative to it)")] = Paths().reports / "report.md",
) -> None:
    """Write the report CI posts on the merge request: verdict, gates, metrics and params against
    main, the drift table, plots and a link to Evidently's HTML report. Never fails on a
    missing input: it says what is missing instead (exit 0)."""
    from driftgate.io import write_text
    from driftgate.reporting.report import CiContext, ci_report

    def optional(path: Path, what: str) -> dict | None:
        payload, problem = _json_object(path, what)
        if problem:
            notes.append(f"_Missing: {problem}._")
        return payload

    notes: list[str] = []
    gate_result, metrics, drift_result = optional(gate_path, "gate verdicts"), optional(metrics_path, "metrics"), optional(drift_path, "drift results")
    baseline = params_changed = None
    label = baseline_rev or "main"
    if baseline_rev:
        label = baseline_rev.removeprefix("origin/")
        baseline, params_changed = _against_revision(baseline_rev, metrics_path, notes)
    plots = [metrics_path.parent / "plots" / "confusion_matrix.png", metrics_path.parent / "plots" / "roc_pr.png",
             drift_path.parent / "drift.png"]
    if baseline_rev:
        against = _curves_against(baseline_rev, label, metrics_path.parent / "plots", out_path.parent, notes)
        plots[1:2] = [against] if against is not None else plots[1:2]
    text = ci_report(gate_result, metrics, drift_result, out_path, CiContext.from_env(), workflow, baseline, label,
                     params_changed, plots, drift_path.parent / "evidently.html", notes)
    write_text(out_path, text)
    out.print(f"report -> {out_path}")


def _dvc_json(args: list[str], notes: list[str]) -> dict | None:
    """`dvc ARGS --json`, parsed; a failure becomes a note in the report instead of an error."""
    import json

    from driftgate.data.fetch import dvc

    done = dvc(Path("."), *args, "--json")
    if done.returncode != 0:
        notes.append(f"_`dvc {' '.join(args[:3])}` failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}_")
        return None
    return json.loads(done.stdout or "{}")


def _json_object(path: Path, what: str) -> tuple[dict | None, str | None]:
    """A JSON object read from `path`, or None with the one-line reason it could not be read
    (a file that holds something other than an object is None without a reason)."""
    from driftgate.io import read_json

    try:
        payload = read_json(path, what)
    except DriftgateError as exc:
        return None, exc.message.splitlines()[0]
    return (payload if isinstance(payload, dict) else None), None


def _curves_against(rev: str, label: str, plots_dir: Path, out_dir: Path, notes: list[str]) -> Path | None:
    """ROC and PR curves against the revision, from `dvc plots diff REV --targets ... --json`."""
    from driftgate.reporting.report import curves_against_plot

    targets = [str(plots_dir / name) for name in ("roc.csv", "prc.csv") if (plots_dir / name).is_file()]
    diff = _dvc_json(["plots", "diff", rev, "--targets", *targets], notes) if targets else None
    if not diff:
        return None
    data = {name: [row for plot in plots for row in plot.get("content", {}).get("data", {}).get("values", [])]
            for name, plots in diff.get("data", {}).items()}
    return curves_against_plot(data, label, out_dir / "curves_against_main.png")


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
    README: CI secrets). Missing settings are a warning (exit 0) unless alerts.required is true;
    a server that refuses the message is exit 2. The password is never printed.
    """
    from driftgate.reporting import alerts
    from driftgate.reporting.report import CiContext

    params = load_params(params_path)
    ci = CiContext.from_env()
    verdicts, problem = _json_object(gate_path, "gate verdicts")
    if problem:
        err.print(f"[yellow]warning:[/yellow] {problem}: alerting as a failure")
    verdicts = verdicts or {}
    passed = bool(verdicts.get("passed")) and bool(verdicts.get("gates"))
    if not alerts.should_send(passed, params.alerts.send_on, ci):
        out.print(f"{'all gates passed' if passed else 'not a scheduled run'}: no alert (alerts.send_on: {params.alerts.send_on})")
        return
    try:
        settings = alerts.SmtpSettings.from_env()
    except DriftgateError as exc:
        if params.alerts.required or dry_run:
            raise
        err.print(f"[yellow]warning:[/yellow] no alert sent: {exc.message}")
        return
    files = attach if attach is not None else [Paths().drift_dir / "drift.png"]
    message = alerts.build_message(verdicts, settings, ci, files)
    if dry_run:
        out.print(escape(message.as_string()[:4000]))
        return
    alerts.send(message, settings)
    out.print(f"alert sent to {', '.join(settings.recipients)} via {settings.host}:{settings.port} ({settings.security}): "
              f"{escape(message['Subject'])}")


@app.command()
@handles_errors
def serve(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    model_path: Annotated[Path, typer.Option("--model", help="the model to serve (its sha256 is checked against model.json)")] = Paths().model,
    host: Annotated[Optional[str], typer.Option("--host", help="address to bind (default GRADIO_SERVER_NAME, else 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="port (default GRADIO_SERVER_PORT, else 7860)")] = None,
    log: Annotated[Optional[str], typer.Option("--log", help="prediction log: a SQLite path or SQLAlchemy URL (default serving.log)")] = None,
) -> None:
    """Start the demo (Gradio UI at /) and the REST API (/predict, /health, /metrics, /docs)."""
    from driftgate.serving.ui import create_app
    from driftgate.serving.ui import serve as run_server

    step("loading the model and the demo")
    application = create_app(params_path, model_path, log)
    run_server(application, host, port)
