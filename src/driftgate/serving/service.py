"""What the REST routes and the Gradio UI share: the model, the prediction log, the monitoring
history beside it, and the metrics."""

from __future__ import annotations

import json
import sys
import threading
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
from driftgate.store.registry import ModelRegistry


@dataclass
class Service:
    """What the routes and the UI share: the model, the log and the metrics; the monitoring
    history in the log's database (`store`, opened on it when not given); params.yaml (`params`:
    POST /labels reads the target's class names and monitoring.label_key from it); and the
    model's test metrics (`baseline`: reports/metrics.json, GET /metrics/baseline).

    `model` is what serves now: `use()` replaces it in one assignment when the registry's champion
    moves (`driftgate.serving.swap`), so every route reads it at request time and a request keeps
    the model it started with. The registry is opened on the log's database when first asked for
    (`registry()`); `paths` and `model_path` are what POST /retrain trains from (model_path: the
    model that becomes the first champion of an empty registry)."""

    model: ServedModel
    log: PredictionLog
    metrics: Metrics
    batcher: Batcher | None = None
    params: Params | None = None
    baseline: Path = field(default_factory=lambda: Paths().metrics)
    store: MonitoringStore | None = None
    paths: Paths | None = None
    model_path: Path | None = None
    refused_champion: str | None = None  # a champion that failed to load: not tried again until the alias moves
    _registry: ModelRegistry | None = field(default=None, repr=False)
    _opening: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.batcher is None and self.model.fast is None:  # the fast scorer's per-call cost is too small to share
            self.batcher = Batcher(self.model)
        if self.store is None:
            self.store = MonitoringStore(self.log.url)
        self.metrics.watch(self.store)

    def registry(self) -> ModelRegistry:
        """The model registry in the prediction log's database, opened once."""
        with self._opening:
            if self._registry is None:
                self._registry = ModelRegistry(self.log.url)
            return self._registry

    def use(self, model: ServedModel) -> None:
        """Serve `model` from now on. Requests that already read `self.model` finish with the old one."""
        self.batcher = Batcher(model) if model.fast is None else None  # in-flight requests of the old model score it directly
        self.model = model  # the one assignment the routes see

    def _batcher(self, model: ServedModel) -> Batcher | None:
        batcher = self.batcher
        return batcher if batcher is not None and batcher.model is model else None  # a batcher scores one model only

    def predict_records(self, records: list[dict], source: str, keys: list[str | None] | None = None,
                        model: ServedModel | None = None) -> tuple[list[dict], str]:
        """Score and log validated records (`parse_records`); `keys` are their label keys (monitoring.label_key).
        `model`: the one the request parsed them with (default: the serving one)."""
        model = model or self.model
        batcher = self._batcher(model)
        if batcher is not None:
            scores = batcher.score(records_frame(records, model.schema))
        else:
            scores = model.score_records(records)
        return self._logged(model, records, scores, source, keys)

    def predict_frame(self, frame: pd.DataFrame, source: str, model: ServedModel | None = None) -> tuple[list[dict], str]:
        """Score and log a checked batch (the demo's uploads)."""
        model = model or self.model
        batcher = self._batcher(model)
        scores = batcher.score(frame) if batcher is not None else model.score(frame)
        return self._logged(model, json.loads(frame[model.schema.columns].to_json(orient="records")), scores, source)

    def _logged(self, model: ServedModel, inputs: list[dict], scores: np.ndarray, source: str,
                keys: list[str | None] | None = None) -> tuple[list[dict], str]:
        request_id = str(uuid.uuid4())
        predictions = model.predictions(scores)
        self.log.append(inputs, predictions, request_id, source, model.version, keys)
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
