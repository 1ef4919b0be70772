"""The served model: the checked pipeline, what serving needs from its card, and its scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from driftgate.config import Paths
from driftgate.data.dataset import FeatureSchema
from driftgate.model import scorer as inference
from driftgate.model.scorer import FastScorer
from driftgate.serving.schema import record_model, records_frame


@dataclass
class ServedModel:
    """The checked model with what serving needs from its card."""

    pipeline: Any
    card: dict
    schema: FeatureSchema
    threshold: float
    class_names: tuple[str, str] = ("negative", "positive")
    version: str = ""
    record_model: type[BaseModel] = field(init=False)
    fast: FastScorer | None = field(init=False)  # None: scikit-learn's own path (see driftgate.model.scorer)

    def __post_init__(self) -> None:
        self.version = self.version or str(self.card.get("model_sha256", "unknown"))[:12]
        profile = self.card.get("feature_profile", {})
        self.record_model = record_model(self.schema, profile)
        self.fast, _ = inference.build(self.pipeline, profile, list(self.schema.columns))

    @classmethod
    def load(cls, model_path: Path = Paths().model) -> ServedModel:
        """Load the model after checking its sha256 against its card (a mismatch is a DataError)."""
        from driftgate.model import train

        pipeline, card = train.load(model_path, Path(model_path).with_suffix(".json"))
        names = tuple(card.get("class_names") or ("negative", "positive"))
        return cls(pipeline, card, FeatureSchema.from_dict(card["features"]), float(card["threshold"]), names)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        features = frame[self.schema.columns]
        text = [c for c in self.schema.numeric if features[c].dtype != np.float64]
        if text:  # uploaded batches: numbers read as text become floats (bad ones NaN, flagged before)
            features = features.assign(**{c: pd.to_numeric(features[c], errors="coerce").astype(float) for c in text})
        if self.fast is not None and len(features) <= inference.FAST_ROWS:
            return self.fast.score_frame(features)
        return self.pipeline.predict_proba(features)[:, 1]

    def score_records(self, records: list[dict]) -> np.ndarray:
        """Scores of validated records (see `record_model`)."""
        if self.fast is not None and len(records) <= inference.FAST_ROWS:
            return self.fast.score_records(records)
        return self.score(records_frame(records, self.schema))

    def predictions(self, scores: np.ndarray) -> list[dict]:
        late = scores >= self.threshold
        return [{"probability": float(s), "late": bool(flag), "decision": self.class_names[int(flag)], "threshold": self.threshold}
                for s, flag in zip(scores, late)]
