"""Serving: the trained model behind a REST API, with a prediction log and Prometheus metrics.

The core is plain functions and small classes (request validation from the model's feature
schema, scoring, the log); `create_api` wraps them in FastAPI routes. `app.py` mounts the Gradio
demo on the same FastAPI app, so the browser UI and the API share one process, one model and
one log.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from driftgate.model import scorer as inference
from driftgate.config import Paths
from driftgate.data.dataset import FeatureSchema
from driftgate.model.scorer import FastScorer

DEFAULT_LOG = "logs/predictions.sqlite"


# --------------------------------------------------------------------------- the model


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


def record_model(schema: FeatureSchema, profile: dict) -> type[BaseModel]:
    """A pydantic model of one input record: every feature required (null allowed for numbers,
    which the model treats as missing), no extra fields, no NaN or infinity, and categories
    limited to those the model was trained on."""
    numeric = profile.get("numeric", {})
    categorical = profile.get("categorical", {})
    fields: dict[str, Any] = {}
    for name in schema.numeric:
        info = numeric.get(name, {})
        description = f"seen in training: {info.get('min')} to {info.get('max')}" if info else None
        fields[name] = (Optional[Annotated[float, Field(allow_inf_nan=False)]], Field(..., description=description,
                                                                                        examples=[info.get("median")]))
    for name in schema.categorical:
        categories = tuple(categorical.get(name, {}).get("categories", ()))
        kind = Literal[categories] if categories else str  # type: ignore[valid-type]
        fields[name] = (kind, Field(..., examples=[categorical.get(name, {}).get("most_frequent")]))
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


@lru_cache(maxsize=8)
def _list_of(model: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model])  # building one costs milliseconds; validating with it, microseconds


def parse_records(model: type[BaseModel], payload: Any) -> list[dict]:
    """One record or a list of them, validated, as dicts (numbers missing as None). Raises
    pydantic's ValidationError, whose errors name the field."""
    if isinstance(payload, list):
        if not payload:
            raise ValidationError.from_exception_data("Records", [{"type": "too_short", "loc": ("body",), "input": payload,
                                                                    "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}}])
        return [r.model_dump() for r in _list_of(model).validate_python(payload)]
    return [model.model_validate(payload).model_dump()]


def readable_error(error: dict) -> dict:
    """A validation error as {field, message, type}: the field's path (with the record's index
    in a list) and, for an unknown category, a short message instead of every known value."""
    path = [str(p) for p in error.get("loc", ()) if p != "body"]
    field = ".".join(path) or "body"
    message = error.get("msg", "invalid")
    if error.get("type") == "literal_error":
        known = str(error.get("ctx", {}).get("expected", "")).count("'") // 2
        message = (f"unknown category {error.get('input')!r}: the model knows {known} values for {path[-1]} "
                   f"(listed in /openapi.json, schema Record)")
    return {"field": field, "message": message, "type": error.get("type", "invalid")}


def records_frame(records: list[dict], schema: FeatureSchema) -> pd.DataFrame:
    """Validated records as the model's input frame: numbers as float64 (None as NaN)."""
    columns = {name: [r[name] for r in records] for name in schema.columns}
    for name in schema.numeric:
        columns[name] = np.array([np.nan if v is None else v for v in columns[name]], dtype=float)
    return pd.DataFrame(columns, columns=schema.columns)


class Batcher:
    """For models served by scikit-learn (no fast scorer): scores the requests that arrive
    together in one call. A batch of 200 rows costs about what one row costs (the per-call
    overhead dominates), so under load the server keeps up instead of queueing. A request
    waits at most for the call in progress."""

    def __init__(self, model: ServedModel, max_rows: int = 1024) -> None:
        import queue
        import threading

        self.model, self.max_rows = model, max_rows
        self.pending: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="driftgate-batcher", daemon=True).start()

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        from concurrent.futures import Future

        future: Future = Future()
        self.pending.put((frame, future))
        return future.result()

    def _run(self) -> None:
        import queue

        while True:
            batch = [self.pending.get()]
            rows = len(batch[0][0])
            while rows < self.max_rows:
                try:
                    item = self.pending.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                rows += len(item[0])
            try:
                frames = [frame for frame, _ in batch]
                scores = self.model.score(frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))
            except Exception as exc:  # each waiting request gets the error, the batcher keeps running
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for frame, future in batch:
                future.set_result(scores[start:start + len(frame)])
                start += len(frame)


# --------------------------------------------------------------------------- the prediction log


class PredictionLog:
    """Every prediction, appended in one transaction per request: SQLite in WAL mode by default
    (concurrent readers while the server writes), or any SQLAlchemy URL (e.g. PostgreSQL)."""

    def __init__(self, url_or_path: str | Path = DEFAULT_LOG) -> None:
        from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, event

        url = str(url_or_path)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{Path(url).resolve()}"
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {})
        if sqlite:
            @event.listens_for(self.engine, "connect")
            def _wal(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        metadata = MetaData()
        self.table = Table(
            "predictions", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
            Column("request_id", String(36), nullable=False, index=True),
            Column("source", String(16), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("probability", Float, nullable=False),
            Column("decision", String(64), nullable=False),
            Column("inputs", JSON, nullable=False),
        )
        metadata.create_all(self.engine)

    def append(self, inputs: list[dict], predictions: list[dict], request_id: str, source: str, model_version: str) -> None:
        """One request's predictions; `inputs` are JSON-ready records (missing values as None)."""
        now = datetime.now(timezone.utc)
        rows = [{"timestamp": now, "request_id": request_id, "source": source, "model_version": model_version,
                 "probability": p["probability"], "decision": p["decision"], "inputs": record}
                for p, record in zip(predictions, inputs)]
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), rows)

    def count(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.table)).scalar_one())

    def frame(self, limit: int | None = None) -> pd.DataFrame:
        """The log as a table, one column per input feature (the drift stage can read it as a batch)."""
        from sqlalchemy import select

        query = select(self.table).order_by(self.table.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            return pd.DataFrame()
        base = pd.DataFrame([{k: v for k, v in row.items() if k != "inputs"} for row in rows])
        inputs = pd.DataFrame([row["inputs"] if isinstance(row["inputs"], dict) else json.loads(row["inputs"]) for row in rows])
        return pd.concat([base, inputs], axis=1).iloc[::-1].reset_index(drop=True)


# --------------------------------------------------------------------------- metrics


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self, gate_path: Path = Paths().gate) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        self.requests = Counter("driftgate_requests_total", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("driftgate_request_seconds", "request latency by endpoint", ["endpoint"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.predictions = Counter("driftgate_predictions_total", "predictions by decision", ["decision"], registry=self.registry)

        class GateValues:
            """The latest gate values (reports/gate.json) as gauges, read at each scrape."""

            def collect(self):
                family = GaugeMetricFamily("driftgate_gate_value", "latest value of each quality gate", labels=["gate"])
                passed = GaugeMetricFamily("driftgate_gate_passed", "1 if the gate passed, else 0", labels=["gate"])
                try:
                    gates = json.loads(Path(gate_path).read_text()).get("gates", [])
                except (OSError, ValueError):
                    gates = []
                for gate in gates:
                    value = gate.get("value")
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        family.add_metric([gate.get("gate", "?")], float(value))
                    passed.add_metric([gate.get("gate", "?")], 1.0 if gate.get("passed") else 0.0)
                yield family
                yield passed

        self.registry.register(GateValues())

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# --------------------------------------------------------------------------- the API


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


class _Measure:
    """Request counts and latencies per endpoint, as a plain ASGI middleware (Starlette's
    BaseHTTPMiddleware costs several milliseconds a request)."""

    ENDPOINTS = ("/predict", "/health", "/metrics")

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            endpoint = scope["path"] if scope["path"] in self.ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


class _BodyLimit:
    """Refuses a /predict body over `max_mb` with a 413 before it is read into memory: at once
    when Content-Length says so, else as soon as the streamed bytes pass the limit (the app is
    then told the client left, and whatever it answers is replaced by the 413)."""

    def __init__(self, app, max_mb: float) -> None:
        self.app, self.max_mb, self.max_bytes = app, max_mb, int(max_mb * 1024 * 1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, over = 0, False

        async def counting():
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                over = True
                return {"type": "http.disconnect"}
            return message

        async def sending(message):
            if not over:
                await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not over:
                raise
        if over:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": [{"field": "body", "type": "too_large", "message":
                                       f"the request body is over {self.max_mb:g} MB (serving.max_upload_mb in "
                                       "params.yaml): send fewer records per request"}]}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_api(service: Service, max_body_mb: float = 20.0, max_records: int = 200_000):
    """The FastAPI app: POST /predict, GET /health, GET /metrics (OpenAPI docs at /docs).
    A /predict body over `max_body_mb` is refused with a 413 before it is read; a list of
    more than `max_records` records with a 422 (serving.max_upload_mb, serving.max_batch_rows)."""
    from fastapi import Body, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    from threadpoolctl import threadpool_limits

    # Requests already run in parallel (FastAPI's thread pool). OpenMP threads inside each
    # predict_proba on top of that oversubscribe the cores: single-row latency went from about
    # 20 ms to seconds under load. One OpenMP/BLAS thread per request, for the whole process.
    threadpool_limits(1)
    api = FastAPI(title="driftgate", version=service.model.version,
                  description="Flight delay risk: the pipeline's model, with every prediction logged.")
    record = service.model.record_model

    api.add_middleware(_BodyLimit, max_mb=max_body_mb)
    api.add_middleware(_Measure, metrics=service.metrics)  # added last, so it runs first and counts the 413s too

    @api.post("/predict", summary="Delay risk for one flight or a list of flights",
              openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                  "anyOf": [{"$ref": "#/components/schemas/Record"}, {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}]}}}}})
    def predict(payload: Any = Body(...)):
        if isinstance(payload, list) and len(payload) > max_records:
            raise RequestValidationError([{"loc": ("body",), "type": "too_long", "input": None,
                                           "msg": f"{len(payload):,} records; at most {max_records:,} per request "
                                                  "(serving.max_batch_rows in params.yaml)"}])
        try:
            records = parse_records(record, payload)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        predictions, request_id = service.predict_records(records, "rest")
        return {"request_id": request_id, "model_version": service.model.version, "predictions": predictions}

    # The Record schema in the OpenAPI document (the route takes a free-form body to accept both shapes).
    original_openapi = api.openapi

    def openapi():
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Record"] = record.model_json_schema()
        return schema

    api.openapi = openapi

    @api.get("/health", summary="Liveness: the model is loaded")
    def health():
        return {"status": "ok", "model_loaded": True, "model_version": service.model.version,
                "driftgate_version": service.model.card.get("driftgate_version"), "predictions_logged": service.log.count(),
                "scorer": "scikit-learn" if service.model.fast is None else "treelite"}

    @api.get("/metrics", summary="Prometheus metrics")
    def metrics():
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": [readable_error(e) for e in exc.errors()]}, status_code=422)

    return api
