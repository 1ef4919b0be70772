"""Thin I/O helpers: atomic writes and table reading with clear errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from driftgate.errors import DataError

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


def read_table(path: Path | str, columns: list[str] | None = None, strings_as_categories: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file; raise DataError naming the file for anything unusable.

    `strings_as_categories` keeps Parquet text columns dictionary-encoded (pandas category
    dtype): far less memory and faster counting, for code that only counts values.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", "check `data.path` in params.yaml, or run `make data`")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(path, "file is empty", "point params.yaml at a file with a header and rows")
    suffixes = {s.lower() for s in path.suffixes}
    try:
        if path.is_dir() or suffixes & {".parquet", ".pq"}:
            import pyarrow as pa
            import pyarrow.parquet as pq

            dictionary = None
            if strings_as_categories:  # decode text straight into dictionaries, never as one string per row
                schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
                dictionary = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            frame = pq.read_table(path, columns=columns, read_dictionary=dictionary).to_pandas(
                strings_to_categorical=strings_as_categories, self_destruct=True, split_blocks=True)
        else:
            frame = pd.read_csv(path, usecols=columns, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise DataError(path, "file has no columns", "point params.yaml at a file with a header and rows") from exc
    except ValueError as exc:
        if "Usecols" in str(exc) or "not in" in str(exc) or "No match" in str(exc):
            raise DataError(path, f"missing column(s): {exc}", "fix the file or the column lists in params.yaml") from exc
        raise DataError(path, f"cannot be read as a table ({exc})", "use a CSV with a header row or a Parquet file") from exc
    except (OSError, pd.errors.ParserError, KeyError) as exc:
        raise DataError(path, f"cannot be read as a table ({exc})", "use a CSV with a header row or a Parquet file") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise DataError(path, f"cannot be read as a table ({type(exc).__name__}: {exc})", "use a CSV with a header row or a Parquet file") from exc
    if frame.empty:
        raise DataError(path, "file has a header but no rows", "point params.yaml at a file with data rows")
    return frame


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
