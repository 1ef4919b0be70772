"""The frozen reference a model's passes are judged against, stored once in the store.

From the model's training window (windows.reference, else windows.train; for a champion the
retraining controller promoted, the window its card names): its features, the
model's scores and decisions on them (the drift frame), and the labelled holdout (scores,
labels, times) the label-free estimate is calibrated on. Stored with its sha256 the first time
a pass runs for that model and checked before every pass: the history of a model is always
judged against the same rows, however params.yaml or the data files change afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from driftgate.config import Params, Paths, Window, parse_window
from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION, TIME, FeatureSchema, features_frame, labels, select_window, time_split
from driftgate.errors import DataError
from driftgate.io import read_json
from driftgate.store.monitoring import MonitoringStore, StoredReference


@dataclass(frozen=True)
class ModelInfo:
    """What a pass needs to know of the served model: from its card, not from params.yaml."""

    version: str
    schema: FeatureSchema
    threshold: float
    train_window: str | None = None  # as the card says
    pipeline: Callable[[], object] | None = field(default=None, compare=False, repr=False)  # None: load the model file

    @classmethod
    def from_card(cls, model_path: Path) -> ModelInfo:
        card_path = Path(model_path).with_suffix(".json")
        if not card_path.is_file():
            raise DataError(card_path, "model card not found", "train the model first (`make run` or `dvc repro train`), "
                            "or point --model at the served model")
        return cls.of(read_json(card_path, "model card"), card_path)

    @classmethod
    def of(cls, card: dict, where: object, pipeline: Callable[[], object] | None = None) -> ModelInfo:
        try:
            return cls(str(card["model_sha256"])[:12], FeatureSchema.from_dict(card["features"]), float(card["threshold"]),
                       card.get("train_window"), pipeline)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(where, f"is not a complete model card ({exc!r})", "retrain with `dvc repro train`") from None


def _windows(params: Params, model: ModelInfo) -> tuple[Window, Window]:
    """(reference window, training window): params.yaml's, unless the model's card names another
    training window (a champion promoted by the retraining controller): then that one for both."""
    if model.train_window and model.train_window != params.windows.train.label:
        trained = parse_window(model.train_window, "the model card's train_window")
        return trained, trained
    return params.windows.reference_window, params.windows.train


@dataclass(frozen=True)
class FrozenReference:
    stored: StoredReference
    frame: pd.DataFrame  # features + PREDICTION + PREDICTED_LABEL
    holdout: pd.DataFrame  # score, label, time
    kinds: dict[str, str]  # every tested column (features and the two prediction columns)
    threshold: float

    @property
    def feature_kinds(self) -> dict[str, str]:
        return {c: k for c, k in self.kinds.items() if c not in (PREDICTION, PREDICTED_LABEL)}


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def build(params: Params, model: ModelInfo, model_path: Path, dataset_path: Path) -> tuple[bytes, bytes, dict, int]:
    """The reference's stored parts, from the dataset and the model (scored once, here)."""
    from driftgate.model import train

    if not Path(dataset_path).is_file():
        raise DataError(dataset_path, "the validated dataset is not there, and the model's reference is not frozen yet",
                        "run `make run` (or `dvc repro validate`) once, so the first pass can freeze the reference")
    pipeline = model.pipeline() if model.pipeline else train.load(model_path, Path(model_path).with_suffix(".json"))[0]
    dataset = pd.read_parquet(dataset_path)
    reference_window, train_window = _windows(params, model)
    reference = select_window(dataset, reference_window, "reference")
    frame = features_frame(reference, model.schema)
    frame[PREDICTION] = pipeline.predict_proba(frame[model.schema.columns])[:, 1]
    frame[PREDICTED_LABEL] = (frame[PREDICTION] >= model.threshold).astype(int).astype(str)
    _, holdout_rows = time_split(select_window(dataset, train_window, "train"), params.windows.holdout_fraction)
    holdout = pd.DataFrame({"score": pipeline.predict_proba(features_frame(holdout_rows, model.schema))[:, 1],
                            "label": labels(holdout_rows), "time": pd.to_datetime(holdout_rows[TIME]).to_numpy()})
    kinds = {**model.schema.kinds(), PREDICTION: "numeric", PREDICTED_LABEL: "categorical"}
    return _parquet(frame), _parquet(holdout), {"kinds": kinds, "threshold": model.threshold}, len(frame)


def frozen(store: MonitoringStore, params: Params, model: ModelInfo, paths: Paths, model_path: Path) -> FrozenReference:
    """The model's frozen reference: read and checked, or built and stored the first time."""
    stored = store.reference(model.version)
    if stored is None:
        drift_frame, holdout, meta, rows = build(params, model, model_path, paths.dataset)
        stored = store.freeze_reference(model.version, drift_frame, holdout, meta, rows)
    frame = pd.read_parquet(io.BytesIO(stored.drift_frame))
    holdout = pd.read_parquet(io.BytesIO(stored.holdout))
    return FrozenReference(stored, frame, holdout, dict(stored.kinds["kinds"]), float(stored.kinds["threshold"]))
