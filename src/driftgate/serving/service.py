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
from driftgate.serving.batcher import Batcher, RequestQueue
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
    _requests: RequestQueue | None = field(default=None, repr=False)  # predict_soon's, started at its first request

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
        return self._logged(model, records, self._score(model, records), source, keys)

    async def predict_soon(self, records: list[dict], source: str, keys: list[str | None] | None = None,
                           model: ServedModel | None = None) -> tuple[list[dict], str]:
        """`predict_records` for a coroutine on the event loop: the requests that arrive together
        are scored in one model call and logged in one transaction (`RequestQueue`); it returns
        once this request's rows are committed. For small requests: a batch is scored whole."""
        if self._requests is None:
            with self._opening:
                if self._requests is None:
                    self._requests = RequestQueue(self._handle)
        return await self._requests.submit((records, source, keys, model or self.model))

    def _handle(self, items: list[tuple]) -> list:
        """A batch of `predict_soon` requests: scored per model in one call each (a request that
        fails to score, as it would alone, gets its own error), then the scored ones logged in one
        transaction, whose failure is every one of theirs."""
        outcomes: list = [None] * len(items)
        by_model: dict[int, list[int]] = {}
        for index, (_, _, _, model) in enumerate(items):
            by_model.setdefault(id(model), []).append(index)
        for indices in by_model.values():
            model = items[indices[0]][3]
            try:
                scores = self._score(model, [record for i in indices for record in items[i][0]])
            except Exception:  # noqa: BLE001 - each request alone, so only the one that fails gets its error
                for i in indices:
                    try:
                        outcomes[i] = self._score(model, items[i][0])
                    except Exception as exc:  # noqa: BLE001
                        outcomes[i] = exc
                continue
            start = 0
            for i in indices:
                outcomes[i] = scores[start:start + len(items[i][0])]
                start += len(items[i][0])
        logged = []
        for i, (records, source, keys, model) in enumerate(items):
            if isinstance(outcomes[i], BaseException):
                continue
            predictions = model.predictions(outcomes[i])
            outcomes[i] = (predictions, str(uuid.uuid4()))
            logged.append((i, (records, predictions, outcomes[i][1], source, model.version, keys)))
        if logged:
            self.log.append_many([request for _, request in logged])  # raises: every request of the batch fails
        for i, _ in logged:
            for p in outcomes[i][0]:
                self.metrics.predictions.labels(p["decision"]).inc()
        return outcomes

    def _score(self, model: ServedModel, records: list[dict]) -> np.ndarray:
        batcher = self._batcher(model)
        return batcher.score(records_frame(records, model.schema)) if batcher is not None else model.score_records(records)

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
