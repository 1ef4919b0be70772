"""The served model: the checked pipeline, what serving needs from its card, and its scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from driftgate.config import Params, Paths, ProjectConfig, ValidationConfig
from driftgate.data.dataset import FeatureSchema
from driftgate.errors import ConfigError, DataError
from driftgate.model import scorer as inference
from driftgate.model.scorer import FastScorer
from driftgate.serving.schema import KEY_LENGTH, label_key_value, parse_records, record_model, records_frame, unseen_values


@dataclass
class ServedModel:
    """The checked model with what serving needs from its card: its features, threshold, class
    names (label 0, label 1) and how to speak of the data (`project`); and the hard limits on
    its inputs (`limits`: validation.ranges and validation.allowed in params.yaml)."""

    pipeline: Any
    card: dict
    schema: FeatureSchema
    threshold: float
    class_names: tuple[str, str] = ("negative", "positive")
    version: str = ""
    project: ProjectConfig = ProjectConfig()
    limits: ValidationConfig = ValidationConfig()
    label_key: str | None = None  # monitoring.label_key: a field a record may carry, stored as its prediction's key
    record_model: type[BaseModel] = field(init=False)
    fast: FastScorer | None = field(init=False)  # None: scikit-learn's own path (see driftgate.model.scorer)

    def __post_init__(self) -> None:
        self.version = self.version or str(self.card.get("model_sha256", "unknown"))[:12]
        if self.label_key is not None and self.label_key in self.schema.columns:
            raise ConfigError("monitoring.label_key", f"{self.label_key!r} is a feature of the model, so it cannot also name "
                              "predictions for their labels", "set it to a field that identifies a record and is no feature "
                              "(e.g. an id column left out by data.features.exclude), or remove it")
        profile = self.card.get("feature_profile", {})
        self.record_model = record_model(self.schema, profile, self.limits)
        self.fast, _ = inference.build(self.pipeline, profile, list(self.schema.columns))

    @classmethod
    def load(cls, model_path: Path = Paths().model, params: Params | None = None) -> ServedModel:
        """Load the model after checking its sha256 against its card (a mismatch is a DataError).
        The class names and the project come from the card; `params` fills in what an older card lacks."""
        from driftgate.model import train

        card_path = Path(model_path).with_suffix(".json")
        pipeline, card = train.load(model_path, card_path)
        return cls._built(pipeline, card, card_path, params)

    @classmethod
    def from_bytes(cls, card: dict, model_bytes: bytes, params: Params | None = None, where: str = "model registry") -> ServedModel:
        """A model from its card and its joblib bytes (the model registry's): the bytes' sha256 is
        checked against the card's model_sha256 before they are unpickled (a mismatch is a DataError)."""
        import hashlib
        import io

        import joblib

        found, named = hashlib.sha256(model_bytes).hexdigest(), card.get("model_sha256")
        if named and found != named:
            raise DataError(where, f"the model's bytes have sha256 {found[:12]}..., not its card's {str(named)[:12]}...",
                            "register the model again with the card written beside it")
        try:
            pipeline = joblib.load(io.BytesIO(model_bytes))
        except Exception as exc:  # bytes that pass the hash but are no model (pickled by other library versions)
            raise DataError(where, f"model {found[:12]} cannot be loaded ({type(exc).__name__}: {exc})",
                            "register a model trained with this installation's libraries") from None
        return cls._built(pipeline, {**card, "model_sha256": found}, where, params)

    @classmethod
    def _built(cls, pipeline: Any, card: dict, card_path: Path | str, params: Params | None) -> ServedModel:
        fallback = params.data.target.class_names if params else cls.class_names
        names = tuple(card.get("class_names") or fallback)
        try:
            schema, threshold = FeatureSchema.from_dict(card["features"]), float(card["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(card_path, f"is not a complete model card (features or threshold: {exc!r})",
                            "retrain with `dvc repro train`") from None
        return cls(pipeline, card, schema, threshold, names, project=_project(card, card_path, params),
                   limits=params.validation if params else ValidationConfig(),
                   label_key=params.monitoring.label_key if params else None)

    def parse(self, payload: Any) -> tuple[list[dict], list[dict]]:
        """A request's records, validated (a pydantic ValidationError names the field), and the
        warnings about valid values the model never saw in training."""
        records = parse_records(self.record_model, payload)
        return records, unseen_values(records, self.schema, self.card.get("feature_profile", {}), isinstance(payload, list))

    def take_keys(self, payload: Any) -> tuple[Any, list[str | None] | None, list[dict]]:
        """The request without monitoring.label_key's field, the key of each record (None where a
        record has none; no list at all when label_key is not set) and the errors of keys that
        cannot be stored, in FastAPI's error format (loc, type, msg, input)."""
        if not self.label_key:
            return payload, None, []
        numbered = isinstance(payload, list)
        items = payload if numbered else [payload]
        stripped, keys, errors = [], [], []
        for index, item in enumerate(items):
            key = None
            if isinstance(item, dict) and self.label_key in item:
                item = dict(item)
                key, problem = label_key_value(item.pop(self.label_key))
                if problem:
                    errors.append({"loc": ("body", *((index,) if numbered else ()), self.label_key), "type": "label_key",
                                   "msg": f"{problem} (monitoring.label_key in params.yaml: the key POST /labels names "
                                          f"this {self.project.row} by)", "input": None})
            stripped.append(item)
            keys.append(key)
        return (stripped if numbered else stripped[0]), keys, errors

    def record_schema(self) -> dict:
        """The Record schema of the OpenAPI document: the features, and monitoring.label_key's field when set."""
        schema = self.record_model.model_json_schema()
        if self.label_key:
            schema.setdefault("properties", {})[self.label_key] = {
                "title": self.label_key, "anyOf": [{"type": "string", "minLength": 1, "maxLength": KEY_LENGTH}, {"type": "integer"},
                                                   {"type": "null"}],
                "description": (f"Optional, not a feature (monitoring.label_key): the {self.project.row}'s key, taken out "
                                "before the record is checked and stored with its prediction, so that POST /labels can "
                                "name the prediction by it ({\"key\": ..., \"label\": ...}). A whole number is stored as text."),
            }
        return schema

    @property
    def positive(self) -> str:
        """What label 1 is called (data.target.class_names in params.yaml)."""
        return self.class_names[1]

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
        """Each score as {probability (of label 1), label (0 or 1), decision (the label's class name), threshold}."""
        labels = (scores >= self.threshold).astype(int)
        return [{"probability": float(s), "label": int(label), "decision": self.class_names[label], "threshold": self.threshold}
                for s, label in zip(scores, labels)]


def _project(card: dict, card_path: Path, params: Params | None) -> ProjectConfig:
    """The card's project section, else params.yaml's (cards written before it had one)."""
    from pydantic import ValidationError

    if "project" not in card:
        return params.project if params else ProjectConfig()
    try:
        return ProjectConfig.model_validate(card["project"])
    except ValidationError as exc:
        raise DataError(card_path, f"project: {exc.errors()[0]['msg']}", "retrain with `dvc repro train`") from None
