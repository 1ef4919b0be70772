"""Batch uploads (the demo's Batch tab): reading the file, and its problems and warnings, one
line each naming the column. The same hard limits as REST /predict (params.yaml's
validation.ranges and validation.allowed) refuse a batch; what the model never saw is noted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from driftgate.errors import DriftgateError
from driftgate.serving.model import ServedModel

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")  # what the Batch tab reads


def read_batch(path: Path, model: ServedModel, max_mb: float, max_rows: int) -> tuple[pd.DataFrame | None, str, list[str]]:
    """An uploaded batch: (frame, "", warnings), or (None, why it is refused, []). Refused: not
    named .csv or .parquet, over the size cap, unreadable (empty, malformed, binary), over the
    row cap, or with problems in its columns (`batch_problems`)."""
    from driftgate.io import read_table

    if path.suffix.lower() not in TABLE_SUFFIXES:
        return None, (f"**{path.name} is not a CSV or Parquet file** (by its name): upload a .csv or .parquet file "
                      "with the model's columns."), []
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        return None, (f"**{path.name} is {size / 1e6:.1f} MB**, over the {max_mb:g} MB limit "
                      "(serving.max_upload_mb in params.yaml)."), []
    try:
        frame = read_table(path)
    except DriftgateError as exc:
        # read_table's hints speak of params.yaml; an upload needs its own
        return None, (f"**Cannot read {path.name}:** {exc.problem}. Upload a CSV or Parquet file with a header "
                      "row and at least one row of data."), []
    if len(frame) > max_rows:
        return None, f"**{path.name} has {len(frame):,} rows**, over serving.max_batch_rows ({max_rows:,}).", []
    problems, warnings = batch_problems(frame, model, path.name)
    if problems:
        return None, "**Cannot score this batch:**\n\n" + "\n".join(f"- {p}" for p in problems), []
    return frame, "", warnings


def batch_problems(frame: pd.DataFrame, model: ServedModel, name: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a batch, one line each, naming the column. Problems stop the
    scoring: missing columns, text or infinities in a number column, values outside the hard
    limits of params.yaml (validation.ranges, validation.allowed). Warnings do not: numbers
    outside the training range, and categories the model never saw (scored as missing, which
    is what the model's encoder does with them)."""
    if frame.empty:
        return [f"{name} has no rows"], []
    schema = model.schema
    missing = [c for c in schema.columns if c not in frame.columns]
    if len(missing) == len(schema.columns):
        return [f"{name} has none of the model's columns ({', '.join(schema.columns)})"], []
    problems = [f"missing column(s): {', '.join(missing)}"] if missing else []
    warnings: list[str] = []
    for column in schema.columns:
        if column in frame.columns:
            check = _number_column if column in schema.numeric else _category_column
            found, noted = check(frame[column], column, model)
            problems += found
            warnings += noted
    return problems, warnings


def _number_column(column: pd.Series, name: str, model: ServedModel) -> tuple[list[str], list[str]]:
    """(problems, warnings) of one number column of a batch."""
    if column.isna().all():
        return [_empty(name)], []
    if pd.api.types.is_bool_dtype(column) or column.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return [f"column '{name}' holds true/false values, not numbers"], []
    problems: list[str] = []
    values = pd.to_numeric(column, errors="coerce")
    text = column[values.isna() & column.notna()]
    huge = text[text.map(_overflows)]
    if len(huge):
        problems.append(f"column '{name}' has {len(huge)} number(s) too large to use, e.g. {huge.iloc[0]!r}")
    text = text.drop(huge.index)
    if len(text):
        problems.append(f"column '{name}' has {len(text)} value(s) that are not numbers, e.g. {text.iloc[0]!r}")
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(numbers)
    if infinite.any():
        problems.append(f"column '{name}' has {int(infinite.sum())} infinite value(s)")
    finite = numbers[np.isfinite(numbers)]
    if name in model.limits.ranges:
        low, high = model.limits.ranges[name]
        outside = finite[(finite < low) | (finite > high)]
        if len(outside):
            problems.append(f"column '{name}' has {len(outside)} value(s) outside the allowed range [{low:g}, {high:g}] "
                            f"(validation.ranges in params.yaml), e.g. {outside[0]:g}")
    if problems:
        return problems, []
    info = model.card.get("feature_profile", {}).get("numeric", {}).get(name, {})
    if info.get("min") is not None and info.get("max") is not None:
        unseen = int(((finite < info["min"]) | (finite > info["max"])).sum())
        if unseen:
            return [], [f"column '{name}': {unseen:,} row(s) outside the training range {info['min']:g} to "
                        f"{info['max']:g}: the model never saw such values, so treat their scores with care"]
    return [], []


def _category_column(column: pd.Series, name: str, model: ServedModel) -> tuple[list[str], list[str]]:
    """(problems, warnings) of one category column of a batch."""
    if column.isna().all():
        return [_empty(name)], []
    values = column.dropna().astype(str)
    if name in model.limits.allowed:
        refused = sorted(set(values) - set(model.limits.allowed[name]))
        if refused:
            rows = int((~values.isin(model.limits.allowed[name])).sum())
            return [f"column '{name}' has {rows:,} value(s) that are not allowed (validation.allowed in params.yaml: "
                    f"{', '.join(model.limits.allowed[name])}), e.g. {refused[0]!r}"], []
    known = set(model.card.get("feature_profile", {}).get("categorical", {}).get(name, {}).get("categories", []))
    unknown = sorted(set(values) - known) if known else []
    if unknown:
        rows = int((~values.isin(known)).sum())
        return [], [f"column '{name}': {rows:,} row(s) with categories the model never saw, scored as "
                    f"missing: {', '.join(unknown[:8])}" + (" ..." if len(unknown) > 8 else "")]
    return [], []


def _overflows(value) -> bool:
    """Text that is a number too large for a float (pandas leaves "1e400" as text)."""
    try:
        return math.isinf(float(value)) and "inf" not in str(value).lower()
    except (TypeError, ValueError):
        return False


def _empty(name: str) -> str:
    return (f"column '{name}' has no values (it is empty in every row): fill it in; a value missing "
            "in some rows is fine")
