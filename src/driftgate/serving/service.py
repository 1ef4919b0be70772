"""What the REST routes and the Gradio UI share: the model, the prediction log and the metrics."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftgate.serving.batcher import Batcher
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.schema import records_frame
from driftgate.store.predictions import PredictionLog


@dataclass
class Service:
    """What the routes and the UI share: the model, the log and the metrics."""

    model: ServedModel
    log: PredictionLog
    metrics: Metrics
    batcher: Batcher | None = None

    def __post_init__(self) -> None:
        if self.batcher is None and self.model.fast is None:  # the fast scorer's per-call cost is too small to share
            self.batcher = Batcher(self.model)

    def predict_records(self, records: list[dict], source: str) -> tuple[list[dict], str]:
        """Score and log validated records (`parse_records`)."""
        if self.batcher is not None:
            scores = self.batcher.score(records_frame(records, self.model.schema))
        else:
            scores = self.model.score_records(records)
        return self._logged(records, scores, source)

    def predict_frame(self, frame: pd.DataFrame, source: str) -> tuple[list[dict], str]:
        """Score and log a checked batch (the demo's uploads)."""
        scores = self.batcher.score(frame) if self.batcher is not None else self.model.score(frame)
        return self._logged(json.loads(frame[self.model.schema.columns].to_json(orient="records")), scores, source)

    def _logged(self, inputs: list[dict], scores: np.ndarray, source: str) -> tuple[list[dict], str]:
        request_id = str(uuid.uuid4())
        predictions = self.model.predictions(scores)
        self.log.append(inputs, predictions, request_id, source, self.model.version)
        for p in predictions:
            self.metrics.predictions.labels(p["decision"]).inc()
        return predictions, request_id
