"""`detect()`: the one drift entry, for every engine and mode.

    detect(reference, current, settings, engine) -> DriftResult

- engines: ``pandas`` (two frames in memory, exact), ``chunked`` (two files read in batches into
  mergeable sketches; bounded memory), ``dask`` (the same sketches built on a Dask cluster);
- modes (``settings.mode``): ``parity`` (Evidently's tests and thresholds) and ``calibrated``
  (resampled p-values with a multiple-testing correction);
- every engine and mode applies the same per-column overrides (``drift.tests``), the same
  ignored columns (``drift.ignore``) and the same share threshold, so one batch gets one verdict
  table whoever asks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pandas as pd

from driftgate.config import DriftConfig, DriftEngine
from driftgate.errors import DriftgateError
from driftgate.results import ColumnKind, DriftResult

Engine = DriftEngine
ENGINES: tuple[Engine, ...] = get_args(DriftEngine)
Frame = pd.DataFrame | Path | str
Progress = Callable[[str, int | None], Callable[[int], None]]


def detect(
    reference: Frame,
    current: Frame,
    settings: DriftConfig,
    engine: Engine = "pandas",
    *,
    kinds: dict[str, ColumnKind] | None = None,
    labels: tuple[str, str] | None = None,
    client=None,
    summary_out: Path | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> DriftResult:
    """Drift of `current` against `reference`, column by column, and the dataset verdict.

    `reference` and `current` are frames (pandas engine) or CSV/Parquet paths (any engine; a
    stored reference summary, ``*.summary.npz``, stands for the reference with the chunked and
    Dask engines). `kinds` names the columns to test and their type (numeric or categorical);
    by default every column both share, typed from the data. `labels` name the two frames in
    the result (default: the file names, or "reference" and "current").
    """
    if engine not in ENGINES:
        raise DriftgateError("--engine", f"unknown engine {engine!r}", f"use one of: {', '.join(ENGINES)}")
    labels = labels or (_label(reference, "reference"), _label(current, "current"))
    if engine == "pandas":
        raw, summaries, kinds, rows = _in_memory(reference, current, kinds, settings)
    else:
        raw, summaries, kinds, rows = _sketched(reference, current, kinds, settings, client, summary_out, progress)
    results = raw
    about: dict = {"engine": engine, "mode": settings.mode}
    if settings.mode == "calibrated":
        from driftgate.drift.calibrated import calibrate

        results = calibrate(raw, summaries(), settings.small_sample, settings.alpha, settings.correction, settings.draws,
                            settings.pool_below, settings.overrides(kinds), seed)
        about.update(alpha=settings.alpha, correction=settings.correction, draws=settings.draws,
                     pool_below=settings.pool_below)
    from driftgate.drift.stattests import verdict

    return verdict(results, settings.share_threshold, settings.ignored(kinds),
                   reference_window=labels[0], current_window=labels[1], reference_rows=rows[0], current_rows=rows[1],
                   warnings=_warnings(settings, rows), **about)


def _label(frame: Frame, default: str) -> str:
    return default if isinstance(frame, pd.DataFrame) else Path(frame).name


def _warnings(settings: DriftConfig, rows: tuple[int, int]) -> list[str]:
    """Parity mode's fixed thresholds on a window smaller than drift.small_sample give noisy
    verdicts: say so, and point to the mode that holds its false-alarm rate."""
    smallest = min(rows)
    if settings.mode == "parity" and smallest < settings.small_sample:
        which = "current" if rows[1] <= rows[0] else "reference"
        return [f"the {which} window has {smallest:,} rows, fewer than drift.small_sample ({settings.small_sample:,}): "
                "parity mode's fixed thresholds make its verdicts noisy at this size; calibrated mode "
                "(drift.mode: calibrated) holds a known false-alarm rate"]
    return []


def _read(frame: Frame) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    from driftgate.io import read_table

    return read_table(frame, strings_as_categories=True)


def _in_memory(reference: Frame, current: Frame, kinds: dict[str, ColumnKind] | None, settings: DriftConfig):
    from driftgate.drift.stattests import compare_frames, infer_kinds

    ref, cur = _read(reference), _read(current)
    if kinds is None:
        kinds = infer_kinds(ref, cur, _label(reference, "reference"), _label(current, "current"))
    raw, summaries = compare_frames(ref, cur, kinds, settings.small_sample, settings.overrides(kinds))
    return raw, (lambda: summaries), kinds, (len(ref), len(cur))


def _sketched(reference: Frame, current: Frame, kinds: dict[str, ColumnKind] | None, settings: DriftConfig,
              client, summary_out: Path | None, progress: Progress | None):
    from driftgate.drift.scan import rows_of, sketch_pair
    from driftgate.drift.sketch import as_summaries, compare_sketches

    if isinstance(reference, pd.DataFrame) or isinstance(current, pd.DataFrame):
        raise DriftgateError("--engine chunked/dask", "reads files, not frames in memory",
                             "pass CSV/Parquet paths (or a stored reference summary), or use --engine pandas")
    kinds, ref_sketches, cur_sketches = sketch_pair(Path(reference), Path(current), kinds, summary_out, progress, client)
    overrides = settings.overrides(kinds)
    raw = [compare_sketches(name, ref_sketches[name], cur_sketches[name], kind, settings.small_sample,
                            *overrides.get(name, (None, None)))
           for name, kind in kinds.items()]

    def summaries():
        return {name: (kind, *as_summaries(ref_sketches[name], cur_sketches[name])) for name, kind in kinds.items()}

    return raw, summaries, kinds, (rows_of(ref_sketches), rows_of(cur_sketches))
