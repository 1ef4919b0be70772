"""The Batch tab's drift check: the pipeline's own path (data.batches -> drift.detect -> gates).

An uploaded batch gets the verdict table `driftgate drift --current FILE` writes for the same
rows, and the drift gates of `driftgate gate` (gates.drift_share_max, gates.drift_columns), so
the demo and CI cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftgate.config import Params, Paths
from driftgate.errors import DataError
from driftgate.results import DriftResult, GateVerdicts

_REFERENCE_CACHE: dict[str, pd.DataFrame] = {}


def reference_rows(paths: Paths, params: Params) -> pd.DataFrame | None:
    """The reference window's rows from the pipeline's dataset (cached), or None without it."""
    key = str(paths.dataset.resolve())
    if key not in _REFERENCE_CACHE:
        if not paths.dataset.is_file():
            return None
        from driftgate.data.dataset import load_dataset, select_window

        try:
            _REFERENCE_CACHE[key] = select_window(load_dataset(paths.dataset), params.windows.reference_window, "reference")
        except DataError:
            return None
    return _REFERENCE_CACHE[key]


def batch_drift(params: Params, model, reference: pd.DataFrame, batch: pd.DataFrame,
                name: str = "batch") -> tuple[DriftResult, GateVerdicts, pd.DataFrame, pd.DataFrame]:
    """Drift of an uploaded batch against the reference window, and the drift gates' verdicts.
    Returns the two frames as tested too (for the plot). Prediction drift scores with the
    model's own pipeline, as `driftgate drift` does, so the verdicts are the CLI's."""
    from driftgate.data.batches import drift_frames
    from driftgate.drift import detect
    from driftgate.gates import drift_gates

    ref, cur, kinds = drift_frames(params, model.schema, reference, batch, lambda frame: model.pipeline.predict_proba(frame)[:, 1])
    result = detect(ref, cur, params.drift, "pandas", kinds=kinds,
                    labels=(params.windows.reference_window.label, Path(name).name))
    return result, GateVerdicts.of(drift_gates(result, params.gates)), ref, cur
