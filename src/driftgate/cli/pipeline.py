"""The pipeline's stages: data, validate, train, evaluate, gate (and where a batch's reports go)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from driftgate.cli.common import CurrentOpt, DatasetOpt, ModelOpt, ParamsOpt, app, err, handles_errors, out, read_optional, step, warn
from driftgate.config import DEFAULT_PARAMS, Paths, RunLayout, gate_markdown_path, load_params
from driftgate.errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED


def model_and_dataset(params_path: Path, model_path: Path, dataset_path: Path):
    """What `evaluate` and `drift` start from: settings, the checked model, its schema, the dataset."""
    from driftgate.data.dataset import FeatureSchema, load_dataset
    from driftgate.model import train as training

    params = load_params(params_path)
    pipeline, card = training.load(model_path, model_path.with_suffix(".json"))
    return params, pipeline, FeatureSchema.from_dict(card["features"]), load_dataset(dataset_path)


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
    from driftgate.data.validation import summarise, validate_frame
    from driftgate.io import atomic_path, write_json

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
        if len(findings) > 12:
            err.print(f"  - and {len(findings) - 12} more (all of them are in {report_path})")
        err.print("  -> fix the data, or the rules under `validation:` in params.yaml if the data is right")
        raise typer.Exit(EXIT_BAD_INPUT)
    with atomic_path(out_path) as tmp:
        checked.to_parquet(tmp, index=False)
    out.print(f"validation passed: {len(frame):,} rows; dataset -> {out_path}, report -> {report_path}")


@app.command()
@handles_errors
def train(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    dataset_path: DatasetOpt = Paths().dataset,
    model_path: Annotated[Path, typer.Option("--model", help="where to write the model (joblib)")] = Paths().model,
    card_path: Annotated[Path, typer.Option("--card", help="where to write the model card (JSON)")] = Paths().model_card,
) -> None:
    """Fit the model on the training window (minus the holdout) and save it with its model card."""
    from driftgate.data.dataset import feature_schema, load_dataset, training_rows
    from driftgate.model import train as training

    params = load_params(params_path)
    dataset = load_dataset(dataset_path)
    schema = feature_schema(dataset, params.data)
    fit_rows, holdout = training_rows(dataset, params.windows.train, params.windows.holdout_fraction, "train")
    step(f"fitting on {len(fit_rows):,} rows ({params.windows.train.label}, holdout of {len(holdout):,} held back)")
    pipeline = training.fit(fit_rows, params, schema)
    card = training.model_card(params, schema, fit_rows, training.data_hash(dataset_path))
    training.save(pipeline, card, model_path, card_path)
    out.print(f"model -> {model_path} (sha256 {card['model_sha256'][:12]}), card -> {card_path}")


@app.command()
@handles_errors
def evaluate(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    current: CurrentOpt = None,
    dataset_path: DatasetOpt = Paths().dataset,
    model_path: ModelOpt = Paths().model,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for metrics.json and plots/")] = Paths().reports,
) -> None:
    """Score the holdout and the current batch: F1, precision, recall, ROC-AUC, PR-AUC, confusion matrix."""
    import pandas as pd

    from driftgate.data.batches import current_batch
    from driftgate.data.dataset import LABEL, features_frame, labels, select_window, time_split
    from driftgate.io import atomic_path
    from driftgate.model import evaluate as ev
    from driftgate.reporting.plots import evaluation_pngs
    from driftgate.results import Metrics, SplitMetrics

    layout = RunLayout(out_dir)
    params, pipeline, schema, dataset = model_and_dataset(params_path, model_path, dataset_path)
    _, holdout = time_split(select_window(dataset, params.windows.train, "train"), params.windows.holdout_fraction)
    batch = current_batch(params, current, dataset, schema)
    windows = {"holdout": f"last {params.windows.holdout_fraction:.0%} of {params.windows.train.label}", "current": batch.label}
    threshold = params.model.threshold
    splits: dict[str, SplitMetrics] = {}
    curves: dict = {}
    for split, frame in (("holdout", holdout), ("current", batch.frame)):
        if LABEL not in frame or frame[LABEL].isna().all():
            splits[split] = SplitMetrics(labelled=False, rows=len(frame), window=windows[split])
            continue
        frame = frame[frame[LABEL].notna()]
        step(f"scoring {split} ({len(frame):,} rows)")
        scores = pipeline.predict_proba(features_frame(frame, schema))[:, 1]
        y_true = labels(frame)
        scored = ev.classification_metrics(y_true, scores, threshold)
        splits[split] = SplitMetrics(**scored, window=windows[split])
        curves[split] = (y_true, scores, scored)
    metrics = Metrics(**splits)
    plots = layout.plots
    roc_parts, prc_parts, confusion = [], [], []
    for split, (y_true, scores, _) in curves.items():
        roc, prc = ev.curves(y_true, scores, split)
        roc_parts.append(roc)
        prc_parts.append(prc)
        confusion.append(pd.DataFrame({"actual": y_true, "predicted": (scores >= threshold).astype(int), "split": split}))
    for target, parts in ((plots.roc, roc_parts), (plots.prc, prc_parts), (plots.confusion, confusion)):
        with atomic_path(target) as tmp:
            (pd.concat(parts) if parts else pd.DataFrame()).to_csv(tmp, index=False, float_format="%.5f")
    pngs = evaluation_pngs(curves, plots, params.data.target.class_names)
    metrics.write(layout.metrics)
    for split in ("holdout", "current"):
        m = getattr(metrics, split)
        if m.labelled:
            out.print(f"{split:8s} {m.window}: F1 {m.f1:.3f}  precision {m.precision:.3f}  recall {m.recall:.3f}  "
                      f"ROC-AUC {m.roc_auc:.3f}  PR-AUC {m.pr_auc:.3f}  ({m.rows:,} rows)")
        else:
            out.print(f"{split:8s} {m.window}: {m.rows:,} rows without labels: scored for drift only")
    out.print(f"metrics -> {layout.metrics}; plots -> {', '.join(map(str, pngs)) or 'none (no labelled split)'}")


@app.command()
@handles_errors
def gate(
    params_path: ParamsOpt = DEFAULT_PARAMS,
    metrics_path: Annotated[Path, typer.Option("--metrics", help="metrics.json from `driftgate evaluate`")] = Paths().metrics,
    drift_path: Annotated[Path, typer.Option("--drift", help="drift.json from `driftgate drift`")] = Paths().run.drift.json,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="metrics.json of the main branch, for the F1-drop gate (default gates.baseline)")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="verdicts as JSON (written beside it: gate.md, the gates as "
                                                          "JUnit XML and the numbers as OpenMetrics text)")] = Paths().gate,
) -> None:
    """Apply the gates in params.yaml. Exit 0 when all pass, 1 when any fails, 2 on bad input."""
    from driftgate import gates
    from driftgate.io import write_text
    from driftgate.reporting.render import GATE_HEADERS, gate_headline, gate_markdown, gate_rows
    from driftgate.reporting.widgets import gate_junit, gate_openmetrics
    from driftgate.results import DriftResult, Metrics

    params = load_params(params_path)
    baseline = baseline or params.gates.baseline

    def optional(path: Path | None, model, what: str):
        result, problem = read_optional(path, model, what)
        if problem:
            warn(f"{problem} (the gates that need it fail)")
        return result

    metrics, drift = optional(metrics_path, Metrics, "metrics file"), optional(drift_path, DriftResult, "drift file")
    verdicts = gates.evaluate_gates(
        metrics, drift, params.gates,
        optional(baseline, Metrics, "baseline metrics"), baseline_given=baseline is not None,
        plots=str(RunLayout(metrics_path.parent).plots.dir), drift_report=str(drift_path.with_suffix(".md")),
    )
    verdicts.write(out_path)
    write_text(gate_markdown_path(out_path), gate_markdown(verdicts))
    beside = RunLayout(out_path.parent)  # GitLab's test and metrics widgets read these (.gitlab-ci.yml)
    write_text(beside.gate_junit, gate_junit(verdicts))
    write_text(beside.gate_metrics, gate_openmetrics(verdicts, metrics, drift))
    table = Table(title="driftgate: quality gates", title_justify="left")
    for column in GATE_HEADERS:
        table.add_column(column, overflow="fold")
    colour = {"PASS": "green", "SKIP": "yellow", "FAIL": "bold red"}
    for row in gate_rows(verdicts):
        row[3] = f"[{colour[row[3]]}]{row[3]}[/{colour[row[3]]}]"
        table.add_row(*row)
    out.print(table)
    style = "green" if verdicts.passed else "bold red"
    out.print(f"[{style}]{gate_headline(verdicts)}[/{style}] Verdicts -> {out_path}")
    if not verdicts.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


@app.command("batch-folder")
@handles_errors
def batch_folder(
    batch: Annotated[str, typer.Argument(help="the batch: a window (2013-09), a range, or a CSV/Parquet file")],
) -> None:
    """Print the folder a checked batch's reports go to (reports/batches/<name>), for scripts."""
    typer.echo(str(Paths().batch(batch).out))

