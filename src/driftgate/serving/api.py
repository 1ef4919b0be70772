"""The REST routes: POST /predict, GET /health, GET /metrics, with the OpenAPI docs; the
monitoring routes and POST /labels are `monitoring_api`'s.

The parts live beside it: the request schema (`schema`), the served model (`model`), request
batching (`batcher`), request metrics (`metrics`), what the routes and the UI share (`service`);
the prediction log is `driftgate.store.predictions`. `app.py` mounts the Gradio demo on the same
FastAPI app, so the browser UI and the API share one process, one model and one log.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from driftgate.serving.docs import add_offline_docs
from driftgate.serving.metrics import _Measure
from driftgate.serving.monitoring_api import LABEL_MESSAGES, add_monitoring_routes
from driftgate.serving.retraining_api import add_retraining_routes
from driftgate.serving.schema import readable_error
from driftgate.serving.service import Service

LIMITED = ("/predict", "/labels")  # the routes that take a body
# A /predict request of at most this many records is checked on the event loop and joins the
# requests scored and logged together (Service.predict_soon); a longer one has a worker thread.
SMALL = 64


class _BodyLimit:
    """Refuses a /predict or /labels body over `max_mb` with a 413 before it is read into memory: at once
    when Content-Length says so, else as soon as the streamed bytes pass the limit (the app is
    then told the client left, and whatever it answers is replaced by the 413)."""

    def __init__(self, app, max_mb: float) -> None:
        self.app, self.max_mb, self.max_bytes = app, max_mb, int(max_mb * 1024 * 1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in LIMITED:
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


def _not_json(content_type: str | None):
    from fastapi.responses import JSONResponse

    got = f"content-type {content_type}" if content_type else "no content-type"
    return JSONResponse({"detail": [{"field": "body", "type": "unsupported_media_type", "message":
                                     f"the body must be JSON with content-type: application/json (got {got})"}]},
                        status_code=415)


def create_api(service: Service, max_body_mb: float = 20.0, max_records: int = 200_000):
    """The FastAPI app: POST /predict, GET /health, GET /metrics (OpenAPI docs at /docs and /redoc),
    and the monitoring routes and POST /labels (`monitoring_api`). A body over `max_body_mb` is
    refused with a 413 before it is read; a list of more than `max_records` records (or labels)
    with a 422 (serving.max_upload_mb, serving.max_batch_rows). With monitoring.label_key set, a
    record may carry that field: it is taken out before the record is checked and stored as its
    prediction's key, which POST /labels can name it by."""
    import orjson
    from fastapi import Body, FastAPI
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from threadpoolctl import threadpool_limits

    # Requests already run in parallel (FastAPI's thread pool). OpenMP threads inside each
    # predict_proba on top of that oversubscribe the cores: single-row latency went from about
    # 20 ms to seconds under load. One OpenMP/BLAS thread per request, for the whole process.
    threadpool_limits(1)
    model = service.model
    project = model.project
    api = FastAPI(title=project.title, version=model.version, docs_url=None, redoc_url=None,
                  description=" ".join(filter(None, [project.question, f"Each prediction is the probability of {model.positive!r} "
                                                    "(label 1) and the decision against the model's threshold; every "
                                                    "prediction is logged."])))
    add_offline_docs(api)

    api.add_middleware(_BodyLimit, max_mb=max_body_mb)
    api.add_middleware(_Measure, metrics=service.metrics)  # added last, so it runs first and counts the 413s too

    @api.post("/predict", summary=f"Probability of {model.positive!r} for one {project.row} or a list of {project.rows}",
              openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                  "anyOf": [{"$ref": "#/components/schemas/Record"}, {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}]}}}}})
    async def predict(request: Request, payload: Any = Body(...)):
        if isinstance(payload, bytes):  # FastAPI reads a body that is not declared JSON as bytes
            return _not_json(request.headers.get("content-type"))
        if isinstance(payload, list) and len(payload) > SMALL:  # checked, scored and logged in a worker thread
            return await run_in_threadpool(predicted_alone, payload)
        serving, records, keys, warnings = checked(payload)
        predictions, request_id = await service.predict_soon(records, "rest", keys, model=serving)
        return answer(serving, predictions, request_id, warnings)

    def checked(payload) -> tuple:
        """The serving model (read once: this request keeps it if the champion is swapped
        meanwhile), the payload's validated records, their label keys and the warnings."""
        if isinstance(payload, list) and len(payload) > max_records:
            raise RequestValidationError([{"loc": ("body",), "type": "too_long", "input": None,
                                           "msg": f"{len(payload):,} records; at most {max_records:,} per request "
                                                  "(serving.max_batch_rows in params.yaml)"}])
        serving = service.model
        payload, keys, key_errors = serving.take_keys(payload)
        try:
            records, warnings = serving.parse(payload)
        except ValidationError as exc:
            raise RequestValidationError(key_errors + exc.errors(include_url=False)) from None
        if key_errors:
            raise RequestValidationError(key_errors)
        return serving, records, keys, warnings

    def predicted_alone(payload) -> Response:
        serving, records, keys, warnings = checked(payload)
        predictions, request_id = service.predict_records(records, "rest", keys, model=serving)
        return answer(serving, predictions, request_id, warnings)

    def answer(serving, predictions: list[dict], request_id: str, warnings: list) -> Response:
        # orjson: FastAPI's jsonable_encoder walking the answer was a sixth of what driftgate
        # added per request under load.
        return Response(orjson.dumps({"request_id": request_id, "model_version": serving.version, "predictions": predictions,
                                      "warnings": warnings}), media_type="application/json")

    # The Record schema in the OpenAPI document (the route takes a free-form body to accept both shapes).
    original_openapi = api.openapi

    def openapi():
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Record"] = service.model.record_schema()
        return schema

    api.openapi = openapi

    @api.get("/health", summary="Liveness: the model is loaded")
    def health():
        serving = service.model
        return {"status": "ok", "model_loaded": True, "model_version": serving.version,
                "driftgate_version": serving.card.get("driftgate_version"), "predictions_logged": service.log.count(),
                "scorer": "scikit-learn" if serving.fast is None else "treelite"}

    @api.get("/metrics", summary="Prometheus metrics")
    def metrics():
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    add_monitoring_routes(api, service, max_records)
    add_retraining_routes(api, service)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path in LIMITED and exc.status_code == 400:  # FastAPI could not decode the body at all
            return JSONResponse({"detail": [{"field": "body", "type": "unreadable_body", "message":
                                             "the body cannot be read as JSON: send UTF-8 JSON text"}]}, status_code=400)
        return await http_exception_handler(request, exc)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        wording = LABEL_MESSAGES if request.url.path == "/labels" else None
        return JSONResponse({"detail": [readable_error(e, wording) for e in exc.errors()]}, status_code=422)

    return api
