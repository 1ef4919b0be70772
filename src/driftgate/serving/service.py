"""What the REST routes and the Gradio UI share: the model, the prediction log, the monitoring
history beside it, and the metrics."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from driftgate.config import Params, Paths
from driftgate.serving.batcher import Batcher
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.schema import records_frame
from driftgate.store.monitoring import MonitoringStore
from driftgate.store.predictions import PredictionLog


@dataclass
class Service:
    """What the routes and the UI share: the model, the log and the metrics; the monitoring
    history in the log's database (`store`, opened on it when not given); params.yaml (`params`:
    POST /labels reads the target's class names and monitoring.label_key from it); and the
    model's test metrics (`baseline`: reports/metrics.json, GET /metrics/baseline)."""

    model: ServedModel
    log: PredictionLog
    metrics: Metrics
    batcher: Batcher | None = None
    params: Params | None = None
    baseline: Path = field(default_factory=lambda: Paths().metrics)
    store: MonitoringStore | None = None

    def __post_init__(self) -> None:
        if self.batcher is None and self.model.fast is None:  # the fast scorer's per-call cost is too small to share
            self.batcher = Batcher(self.model)
        if self.store is None:
            self.store = MonitoringStore(self.log.url)
        self.metrics.watch(self.store)

    def predict_records(self, records: list[dict], source: str, keys: list[str | None] | None = None) -> tuple[list[dict], str]:
        """Score and log validated records (`parse_records`); `keys` are their label keys (monitoring.label_key)."""
        if self.batcher is not None:
            scores = self.batcher.score(records_frame(records, self.model.schema))
        else:
            scores = self.model.score_records(records)
        return self._logged(records, scores, source, keys)

    def predict_frame(self, frame: pd.DataFrame, source: str) -> tuple[list[dict], str]:
        """Score and log a checked batch (the demo's uploads)."""
        scores = self.batcher.score(frame) if self.batcher is not None else self.model.score(frame)
        return self._logged(json.loads(frame[self.model.schema.columns].to_json(orient="records")), scores, source)

    def _logged(self, inputs: list[dict], scores: np.ndarray, source: str, keys: list[str | None] | None = None) -> tuple[list[dict], str]:
        request_id = str(uuid.uuid4())
        predictions = self.model.predictions(scores)
        self.log.append(inputs, predictions, request_id, source, self.model.version, keys)
        for p in predictions:
            self.metrics.predictions.labels(p["decision"]).inc()
        return predictions, request_id


class PassLines:
    """What the server's monitor says (`driftgate serve --monitor-every`), one line per pass on
    stderr: a pass's progress is held back and its window said with its result; anything else
    (a skipped pass, a notification, a failure) is one line as it comes."""

    PROGRESS = ("testing drift", "estimating F1")

    def __init__(self, stream=None) -> None:
        self.stream, self.window = stream, ""

    def __call__(self, message: str) -> None:
        text = "; ".join(line.strip() for line in message.splitlines() if line.strip())
        if text.startswith("window: "):
            self.window = text.removeprefix("window: ")
            return
        if text.startswith(self.PROGRESS):
            return
        if text.startswith("pass ") and self.window:
            head, _, alerts = text.partition("; ")
            text = f"{head} ({self.window})" + (f"; {alerts}" if alerts else "")
            self.window = ""
        print(f"driftgate monitor: {text}", file=self.stream or sys.stderr, flush=True)
