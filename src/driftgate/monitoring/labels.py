"""Late labels: read them (a file or a request body), attach them to logged predictions, and
update the realized metrics of the passes whose windows they fall in.

A label names its prediction by `request_id` (and `row`, its position in a request of several
records; 0 by default) or by the value of monitoring.label_key. The label itself is a column
`label` (0/1, true/false, or a class name from data.target.class_names) or the target column as
the dataset has it (data.target.column, binarised with data.target.positive_if_at_least).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftgate.config import Params
from driftgate.errors import DataError, listed
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import LabelsAttached, PredictionLog

LABEL = "label"


@dataclass(frozen=True)
class LabelSet:
    labels: list[int]
    request_ids: list[str] | None
    rows: list[int] | None
    keys: list[str] | None

    def __len__(self) -> int:
        return len(self.labels)


def _binary(values: pd.Series, params: Params, source: str, column: str) -> list[int]:
    target = params.data.target
    if column == target.column and target.positive_if_at_least is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna()]
        if len(bad):
            raise DataError(source, f"column '{column}' has {len(bad):,} value(s) that are not numbers, e.g. {listed(bad.astype(str).unique()[:3], quote=True)}",
                            f"give the {column} of each {params.project.row}, or a 0/1 column '{LABEL}'")
        return (numbers >= target.positive_if_at_least).astype(int).tolist()
    names = {name.lower(): i for i, name in enumerate(target.class_names)}
    known = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, **names}
    mapped = values.map(lambda v: known.get(str(v).strip().lower()) if pd.notna(v) else None)
    bad = values[mapped.isna()]
    if len(bad):
        shown = listed(sorted(map(str, bad.unique())), limit=4, quote=True)
        raise DataError(source, f"column '{column}' has {len(bad):,} label(s) that are not 0/1 or a class name: {shown}",
                        f"use 0/1, true/false or {listed(target.class_names, quote=True)}")
    return mapped.astype(int).tolist()


def parse_labels(frame: pd.DataFrame, params: Params, source: str) -> LabelSet:
    """Labels from a table: which prediction (request_id [+ row], or monitoring.label_key) and its label."""
    key = params.monitoring.label_key
    if frame.empty:
        raise DataError(source, "holds no labels", "give one row per labelled prediction")
    target = params.data.target.column
    label_column = LABEL if LABEL in frame.columns else target if target in frame.columns else None
    if label_column is None:
        raise DataError(source, f"has no column '{LABEL}' (0/1 or a class name) or '{target}' (data.target.column)",
                        f"add one; the columns are {listed(frame.columns, quote=True)}")
    labels = _binary(frame[label_column], params, source, label_column)
    if "request_id" in frame.columns:
        ids = frame["request_id"]
        if ids.isna().any():
            raise DataError(source, f"column 'request_id' is empty in {int(ids.isna().sum()):,} row(s)",
                            "give the request_id /predict answered for each label")
        rows = frame["row"] if "row" in frame.columns else pd.Series(0, index=frame.index)
        rows = pd.to_numeric(rows, errors="coerce")
        if rows.isna().any() or (rows < 0).any() or (rows % 1 != 0).any():
            raise DataError(source, "column 'row' must hold whole numbers from 0 (a record's position in its request)",
                            "fix the column, or leave it out for single-record requests")
        return LabelSet(labels, ids.astype(str).tolist(), rows.astype(int).tolist(), None)
    if key and key in frame.columns:
        keys = frame[key]
        if keys.isna().any():
            raise DataError(source, f"column '{key}' (monitoring.label_key) is empty in {int(keys.isna().sum()):,} row(s)",
                            "give the key of each labelled prediction")
        return LabelSet(labels, None, None, keys.astype(str).tolist())
    wanted = "'request_id' (and 'row')" + (f" or '{key}' (monitoring.label_key)" if key else "")
    raise DataError(source, f"has no column {wanted} naming the prediction each label belongs to",
                    f"add it; the columns are {listed(frame.columns, quote=True)}" +
                    ("" if key else ", or set monitoring.label_key to a field your requests carry"))


def read_labels(path: Path | str, params: Params) -> LabelSet:
    from driftgate.io import read_table

    return parse_labels(read_table(path), params, str(path))


def attach(labels: LabelSet, log: PredictionLog, store: MonitoringStore, threshold: float, params: Params) -> tuple[LabelsAttached, int]:
    """Attach the labels, then update the realized metrics of the passes they fall in.
    Returns what was attached and how many passes changed."""
    from driftgate.monitoring.monitor import refresh_realized

    done = log.attach_labels(labels.labels, labels.request_ids, labels.rows, labels.keys)
    changed = 0
    if done.ids:
        changed = refresh_realized(log, store, done.first_id, done.last_id, threshold, params.monitoring.min_rows)
    return done, changed
