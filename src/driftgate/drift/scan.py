"""Out-of-core scanning: read CSV/Parquet (a file or a partitioned folder) in batches into
mergeable sketches, and store a frame's sketches so a reference is summarised only once.

Peak memory is one batch plus the sketches, whatever the file size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from driftgate.drift.sketch import CategoricalSketch, NumericSketch, Sketch, new_sketch
from driftgate.errors import DataError
from driftgate.io import atomic_path

BATCH_ROWS = 1 << 20
SUMMARY_SUFFIX = ".summary.npz"


def open_dataset(path: Path | str) -> ds.Dataset:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", "check the path")
    suffixes = {s.lower() for s in path.suffixes}
    fmt = "csv" if ".csv" in suffixes else "parquet"
    try:
        return ds.dataset(str(path), format=fmt)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, f"cannot be read as {fmt} ({exc})", "use CSV with a header row or Parquet") from exc


def column_kinds(dataset: ds.Dataset) -> dict[str, str]:
    kinds = {}
    for field in dataset.schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        numeric = (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)) and not pa.types.is_boolean(kind)
        kinds[field.name] = "numeric" if numeric else "categorical"
    return kinds


def count_rows(dataset: ds.Dataset) -> int | None:
    try:
        return dataset.count_rows()
    except (pa.ArrowInvalid, OSError):
        return None


def batches(dataset: ds.Dataset, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Batches of `columns`, one file and one row group at a time, so peak memory stays near
    one row group whatever the file size (a plain dataset scan reads a whole file ahead)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    for path in dataset.files:
        try:
            if isinstance(dataset.format, ds.CsvFileFormat):
                options = pacsv.ConvertOptions(include_columns=columns, column_types=dataset.schema)
                reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=64 << 20), convert_options=options)
                yield from reader
            else:
                # one row group at a time: ParquetFile.iter_batches reads ahead without bound
                parquet = pq.ParquetFile(path)
                for group in range(parquet.metadata.num_row_groups):
                    table = parquet.read_row_group(group, columns=columns)
                    yield from table.to_batches(batch_rows)
                    del table
        except pa.ArrowInvalid as exc:
            raise DataError(path, f"cannot be read ({exc})", "fix the file; every batch must match the columns' types") from exc


def parts(dataset: ds.Dataset) -> list[tuple[str, int | None]]:
    """Independent units of work: (Parquet file, row group), or (CSV file, None)."""
    import pyarrow.parquet as pq

    units: list[tuple[str, int | None]] = []
    for path in dataset.files:
        if isinstance(dataset.format, ds.CsvFileFormat):
            units.append((path, None))
        else:
            units.extend((path, group) for group in range(pq.ParquetFile(path).metadata.num_row_groups))
    return units


def sketch_part(path: str, group: int | None, kinds: dict[str, str], widths: dict[str, float], batch_rows: int = BATCH_ROWS) -> dict[str, Sketch]:
    """Sketch one unit of work (runs on a Dask worker, or locally). `widths` fixes each numeric
    column's grid so that the parts merge exactly."""
    import pyarrow.parquet as pq

    sketches = {name: new_sketch(kind) for name, kind in kinds.items()}
    for name, width in widths.items():
        sketches[name].width = width
    if group is None:
        for batch in batches(open_dataset(path), list(kinds), batch_rows):
            update(sketches, batch)
    else:
        for batch in pq.ParquetFile(path).read_row_group(group, columns=list(kinds)).to_batches(batch_rows):
            update(sketches, batch)
    return sketches


def update(sketches: dict[str, Sketch], batch: pa.RecordBatch) -> None:
    for name, sketch in sketches.items():
        array = batch.column(name)
        if isinstance(sketch, NumericSketch):
            sketch.update(array.to_numpy(zero_copy_only=False).astype(float, copy=False))
        else:
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            counts = pc.value_counts(array)
            values = counts.field("values").to_pylist()
            sketch.update_counts(values, counts.field("counts").to_pylist())


def _rows(sketches: dict[str, Sketch]) -> int:
    first = next(iter(sketches.values()))
    return first.n + first.missing


def sketch_file(path: Path | str, kinds: dict[str, str], progress: Callable[[int], None] | None = None,
                like: dict[str, Sketch] | None = None, client=None) -> dict[str, Sketch]:
    """One sketch per column in `kinds`, built part by part (row group or CSV file) and merged.

    The grid widths come from `like` (the other frame's sketches) or from the first part, so
    every part bins on the same grid and the merge does not depend on how the file was split.
    With a Dask `client`, the remaining parts are sketched on its workers.
    """
    dataset = open_dataset(path)
    missing = [c for c in kinds if c not in dataset.schema.names]
    if missing:
        raise DataError(path, f"column(s) {', '.join(map(repr, missing))} missing", "both frames need the same columns")
    units = parts(dataset)
    if not units:
        raise DataError(path, "has no rows", "point at a file with data rows")
    widths = {n: s.width for n, s in (like or {}).items() if isinstance(s, NumericSketch) and s.width}
    merged = None
    if len(widths) < sum(kind == "numeric" for kind in kinds.values()):
        merged = sketch_part(*units[0], kinds, widths)
        widths = {n: s.width for n, s in merged.items() if isinstance(s, NumericSketch) and s.width}
        units = units[1:]
        if progress:
            progress(_rows(merged))
    if client is None:
        sketched = (sketch_part(path, group, kinds, widths) for path, group in units)
    else:
        from distributed import as_completed

        futures = client.map(sketch_part, [u[0] for u in units], [u[1] for u in units], kinds=kinds, widths=widths, pure=False)
        sketched = (future.result() for future in as_completed(futures))
    for part in sketched:
        merged = part if merged is None else {n: merged[n].merge(part[n]) for n in merged}
        if progress:
            progress(_rows(part))
    if all(s.n + s.missing == 0 for s in merged.values()):
        raise DataError(path, "has no rows", "point at a file with data rows")
    return merged


# --------------------------------------------------------------------------- storing


def save(sketches: dict[str, Sketch], target: Path, source: str) -> Path:
    """Store sketches as .npz: a JSON header plus one array per histogram."""
    header, arrays = {"source": source, "columns": {}}, {}
    for i, (name, sketch) in enumerate(sketches.items()):
        data = sketch.to_dict()
        for key in ("counts", "exact"):
            if isinstance(data.get(key), np.ndarray):
                arrays[f"{key}_{i}"] = data[key]
                data[key] = f"{key}_{i}"
        header["columns"][name] = data
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, header=np.array(json.dumps(header)), **arrays)
    return target


def load(path: Path) -> tuple[dict[str, Sketch], str]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            header = json.loads(str(stored["header"]))
            sketches: dict[str, Sketch] = {}
            for name, data in header["columns"].items():
                for key in ("counts", "exact"):
                    if isinstance(data.get(key), str):
                        data[key] = stored[data[key]]
                sketches[name] = NumericSketch.from_dict(data) if data["kind"] == "numeric" else CategoricalSketch.from_dict(data)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(path, f"is not a driftgate summary ({exc})", f"summaries end in {SUMMARY_SUFFIX}; rebuild it from the data") from exc
    return sketches, header.get("source", str(path))


# --------------------------------------------------------------------------- the chunked engine


def sketch_pair(reference: Path, current: Path, kinds: dict[str, str] | None = None, summary_out: Path | None = None,
                progress: Callable[[str, int | None], Callable[[int], None]] | None = None,
                client=None) -> tuple[dict[str, str], dict[str, Sketch], dict[str, Sketch]]:
    """The columns both files share (or `kinds`), and each file's sketches. `reference` may be a
    stored summary; otherwise its summary is stored at `summary_out` for the next run. With a
    Dask `client`, the files are sketched part by part on its workers."""
    from driftgate.drift.stattests import common_kinds

    current_kinds = column_kinds(open_dataset(current))
    if str(reference).endswith(SUMMARY_SUFFIX):
        ref_sketches, _ = load(reference)
        ref_kinds = {name: "numeric" if isinstance(s, NumericSketch) else "categorical" for name, s in ref_sketches.items()}
    else:
        ref_dataset = open_dataset(reference)
        ref_kinds = column_kinds(ref_dataset)
    found = common_kinds(ref_kinds, current_kinds, str(reference), str(current))
    if kinds is not None:
        missing = [c for c in kinds if c not in found]
        if missing:
            raise DataError(current, f"column(s) {', '.join(map(repr, missing))} not in both files", "both files need the columns tested")
        found = dict(kinds)
    if not str(reference).endswith(SUMMARY_SUFFIX):
        tick = progress("reference", count_rows(ref_dataset)) if progress else None
        ref_sketches = sketch_file(reference, found, tick, client=client)
        if summary_out is not None:
            save(ref_sketches, summary_out, str(reference))
    tick = progress("current", count_rows(open_dataset(current))) if progress else None
    cur_sketches = sketch_file(current, found, tick, like=ref_sketches, client=client)
    return found, ref_sketches, cur_sketches


def rows_of(sketches: dict[str, Sketch]) -> int:
    """The frame's row count: every column's tested plus missing values (the widest column)."""
    return max(s.n + s.missing for s in sketches.values())
