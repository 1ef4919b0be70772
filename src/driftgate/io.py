"""Thin I/O helpers: atomic writes and table reading with clear errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftgate.errors import DataError, listed

TABLE_SUFFIXES = {".csv", ".parquet", ".pq", ".zip", ".gz"}


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it over `target` only if the block succeeds.

    A crash or error inside the block leaves the previous `target` (or nothing) in place,
    never a half-written file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _json_safe(value: Any) -> Any:
    """NaN and inf are not JSON; write them as null so readers fail closed, not crash."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _json_safe(value.item())
    return value


def write_json(path: Path | str, payload: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_json_safe(payload), indent=2, sort_keys=False) + "\n")
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_json(path: Path | str, what: str = "file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found", "run the stage that writes it first (`dvc repro`)")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"{what} is not valid JSON ({exc})", "re-run the stage that writes it") from exc


SNIFF_BYTES = 1 << 16
SPREADSHEETS = {".xlsx", ".xls", ".xlsm", ".ods", ".numbers"}
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}
_TABLE_HINT = "use a UTF-8 CSV with a header row, or a Parquet file"


def _sniff_csv(path: Path) -> None:
    """Refuse what is not a UTF-8 text table before pandas guesses at it: binary data (a NUL
    byte reads as an empty cell), a Parquet file named .csv, another encoding or a byte-order mark."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(b"PAR1"):
        raise DataError(path, "is a Parquet file, not a CSV", "rename it to .parquet")
    for bom, name in ((b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if head.startswith(bom):
            raise DataError(path, f"is encoded as {name}", "save it as UTF-8 without a byte-order mark")
    nul = head.find(b"\0")
    if nul >= 0:
        raise DataError(path, f"holds binary data (a NUL byte at offset {nul}), not CSV text", _TABLE_HINT)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) < SNIFF_BYTES or exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise DataError(path, f"is not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start})",
                            "save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") from None


def _csv_header(path: Path) -> list[str]:
    """The header row as written: pandas renames a repeated name `a` to `a.1` silently."""
    try:
        first = pd.read_csv(path, nrows=1, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, ValueError, pd.errors.ParserError):
        return []
    return [str(v) for v in first.iloc[0].tolist()] if len(first) else []


def duplicated_names(names) -> list[str]:
    seen: set[str] = set()
    return list(dict.fromkeys(str(n) for n in names if str(n) in seen or seen.add(str(n))))


def read_table(path: Path | str, columns: list[str] | None = None, strings_as_categories: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file; raise DataError naming the file for anything unusable.

    Refused, with the file named: a missing or empty file, binary data or another encoding in a
    CSV, a header without rows, repeated column names, and a CSV separated by something other
    than commas. `strings_as_categories` keeps Parquet text columns dictionary-encoded (pandas
    category dtype): far less memory and faster counting, for code that only counts values.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", "check `data.path` in params.yaml, or run `make data`")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(path, "file is empty", "point params.yaml at a file with a header and rows")
    suffixes = {s.lower() for s in path.suffixes}
    if path.suffix.lower() in SPREADSHEETS:
        raise DataError(path, "is a spreadsheet, not a CSV or Parquet file", "export it as CSV (UTF-8) or Parquet")
    parquet = path.is_dir() or bool(suffixes & {".parquet", ".pq"})
    if not parquet and not suffixes & {".gz", ".zip", ".bz2", ".xz", ".zst"}:
        _sniff_csv(path)
    try:
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
            header = [str(name) for name in schema.names]
            repeated = duplicated_names(header)
            if repeated:
                raise DataError(path, f"column name(s) {listed(repeated, quote=True)} appear more than once in the schema",
                                "rename them: a column is found by its name")
            dictionary = None
            if strings_as_categories:  # decode text straight into dictionaries, never as one string per row
                dictionary = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            frame = pq.read_table(path, columns=columns, read_dictionary=dictionary).to_pandas(
                strings_to_categorical=strings_as_categories, self_destruct=True, split_blocks=True)
        else:
            header = _csv_header(path)
            frame = pd.read_csv(path, usecols=columns, low_memory=False)
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(path, "file has no columns", "point params.yaml at a file with a header and rows") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", "save it as UTF-8") from None
    except ValueError as exc:
        if "Usecols" in str(exc) or "not in" in str(exc) or "No match" in str(exc):
            raise DataError(path, f"missing column(s): {exc}", "fix the file or the column lists in params.yaml") from exc
        raise DataError(path, f"cannot be read as a table ({exc})", _TABLE_HINT) from exc
    except (OSError, pd.errors.ParserError, KeyError) as exc:
        raise DataError(path, f"cannot be read as a table ({exc})", _TABLE_HINT) from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise DataError(path, f"cannot be read as a table ({type(exc).__name__}: {exc})", _TABLE_HINT) from exc
    repeated = duplicated_names(header)
    if repeated:
        raise DataError(path, f"column name(s) {listed(repeated, quote=True)} appear more than once in the header",
                        "rename them: a column is found by its name")
    if len(frame.columns) == 1 and not parquet:
        name = str(frame.columns[0])
        for delimiter, word in _OTHER_DELIMITERS.items():
            if delimiter in name:
                raise DataError(path, f"has one column {name[:60]!r}: it looks separated by {word}, not commas",
                                "save it as comma-separated CSV, or as Parquet")
    if frame.empty:
        raise DataError(path, "file has a header but no rows", "point params.yaml at a file with data rows")
    return frame


def _shown(value) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


_HINTS = {
    "repeated": "rename them: a column is found by its name",
    "empty": "fill it, or drop it from the file (or list it in data.features.exclude)",
    "text": "fix the values (numbers or empty cells), or list the column under data.features.categorical",
    "bool": "write 0/1, or list the column under data.features.categorical",
    "infinite": "replace +-inf with a number or leave the cell empty",
}


def table_problems(frame: pd.DataFrame, numeric_columns=(), columns=None) -> list[tuple[str, str]]:
    """What makes a table unusable as data, one (problem, kind) per column (see check_table)."""
    problems: list[tuple[str, str]] = []
    repeated = duplicated_names(frame.columns)
    if repeated:
        return [(f"column name(s) {listed(repeated, quote=True)} appear more than once", "repeated")]
    names = [str(c) for c in frame.columns]
    wanted = names if columns is None else [c for c in dict.fromkeys(columns) if c in names]
    if len(frame):
        problems += [(f"column '{c}' is entirely empty", "empty") for c in wanted if frame[c].isna().all()]
    for column in dict.fromkeys(numeric_columns):
        if column not in names or frame[column].isna().all():
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            problems.append((f"column '{column}' is numeric but holds true/false", "bool"))
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if not pd.api.types.is_numeric_dtype(values):
            present = values.dropna()
            is_bool = present.map(lambda v: isinstance(v, (bool, np.bool_)))
            numbers = pd.to_numeric(present.where(~is_bool), errors="coerce")
            text = present[numbers.isna()]
            if len(text):
                examples = listed(dict.fromkeys(_shown(v) for v in text.tolist()), limit=3)
                problems.append((f"column '{column}' is numeric but holds text in {len(text):,} row(s), e.g. {examples}", "text"))
                continue
            values = numbers
        infinite = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
        if infinite.any():
            problems.append((f"column '{column}' holds {int(infinite.sum()):,} infinite value(s)", "infinite"))
    return problems


def check_table(frame: pd.DataFrame, source: Path | str, numeric_columns=(), columns=None) -> pd.DataFrame:
    """The checks every path that reads data applies, as one DataError naming the file and the
    columns: repeated column names, a column with no value at all (of `columns`, default all),
    text or true/false in a numeric column, and +-inf in a numeric column. Nothing is coerced."""
    problems = table_problems(frame, numeric_columns, columns)
    if problems:
        hints = [_HINTS[kind] for kind in dict.fromkeys(kind for _, kind in problems)]
        raise DataError(source, listed([p for p, _ in problems], limit=6, sep="; "), "; ".join(hints))
    return frame


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
