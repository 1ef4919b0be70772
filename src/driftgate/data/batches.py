"""A current batch, wherever it comes from, and the two frames drift is tested on.

A batch is a window of the dataset (2013-04, 2013-06..2013-08), a CSV/Parquet file, or the
prediction log (a SQLite file or a database URL). The CLI's `evaluate` and `drift`, CI's batch
check and the demo's Batch tab all get their frames here, so they test the same columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from driftgate.config import Params, Window, parse_window
from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION, FeatureSchema, features_frame, select_window
from driftgate.errors import DataError, DriftgateError
from driftgate.results import ColumnKind

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
LOG_SUFFIXES = {".sqlite", ".db"}

Scorer = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Batch:
    frame: pd.DataFrame
    label: str  # how reports name it: the window, the file name, or "prediction log (N predictions)"


def is_log(source: str) -> bool:
    return Path(source).suffix.lower() in LOG_SUFFIXES or "://" in source


def current_batch(params: Params, current: str | None, dataset: pd.DataFrame | None,
                  schema: FeatureSchema | None = None) -> Batch:
    """The current batch: `current` (a window, a file or a prediction log), else windows.current.
    A file or a log is checked as `validate` checks the dataset (io.check_table) against the
    model's features (`schema`, from its card): repeated or empty columns, text, true/false or
    +-inf in a number column are an error naming the source and the column."""
    if current and is_log(current):
        return log_batch(current, schema)
    if current and Path(current).suffix.lower() in TABLE_SUFFIXES:
        from driftgate.data.dataset import prepare_frame
        from driftgate.io import read_table

        frame, _ = prepare_frame(read_table(current), params, current, require_label=False, schema=schema)
        return Batch(frame, Path(current).name)
    window: Window = parse_window(current) if current else params.windows.current
    if dataset is None:
        raise DataError("--current", f"the window {window.label} needs the validated dataset", "run `driftgate validate` first")
    return Batch(select_window(dataset, window, "current"), window.label)


def log_batch(source: str, schema: FeatureSchema | None = None) -> Batch:
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
    if schema is not None:
        from driftgate.io import check_table

        missing = [c for c in schema.columns if c not in frame.columns]
        if missing:
            raise DataError(source, f"the logged inputs lack the model's column(s) {', '.join(missing)}",
                            "the log was written for another model: point --current at this model's log")
        check_table(frame, source, numeric_columns=schema.numeric, columns=schema.columns)
    return Batch(frame, f"prediction log ({len(frame):,} predictions)")


def drift_frames(params: Params, schema: FeatureSchema, reference: pd.DataFrame, current: pd.DataFrame,
                 score: Scorer | None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, ColumnKind]]:
    """The model's features of both frames (drift.columns of them, if set) and, when
    drift.prediction is on and a `score` function is given, the model's scores and its
    decisions at model.threshold as two more columns."""
    ref, cur = features_frame(reference, schema), features_frame(current, schema)
    kinds: dict[str, ColumnKind] = dict(schema.kinds())
    if params.drift.columns is not None:
        unknown = [c for c in params.drift.columns if c not in kinds]
        if unknown:
            raise DriftgateError(f"params.yaml: drift.columns: {unknown[0]}", "not a model feature", f"use some of: {', '.join(kinds)}")
        kinds = {c: kinds[c] for c in params.drift.columns}
    if params.drift.prediction and score is not None:
        for frame in (ref, cur):
            frame[PREDICTION] = score(frame[schema.columns])
            frame[PREDICTED_LABEL] = (frame[PREDICTION] >= params.model.threshold).astype(int).astype(str)
        kinds[PREDICTION] = "numeric"
        kinds[PREDICTED_LABEL] = "categorical"
    return ref, cur, kinds
