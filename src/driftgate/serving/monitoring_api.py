"""The monitoring routes of the serving app: the history the monitor writes, read back, and the
labels that come after the predictions.

    GET  /alerts              alert rows, newest first (?open=true: the open incidents only)
    GET  /metrics/baseline    the model's holdout and test metrics (reports/metrics.json)
    GET  /metrics/latest      the latest judged pass: drift share, F1 estimate and interval, realized F1, level
    GET  /metrics/history     judged passes, oldest first
    GET  /drift/data          per-column drift of the latest judged pass
    GET  /drift/concept       prediction drift of the latest pass, and realized F1 per pass against the baseline
    GET  /monitoring/runs     every pass, skipped ones with their reason, newest first
    POST /labels              the true labels, once known, attached to logged predictions

Everything is read from the monitoring store in the prediction log's database (serving.log),
where `driftgate monitor` and `driftgate serve --monitor-every` write it. An empty history is an
answer (200, an empty list or null and a message), never an error.
"""

import math
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import SQLAlchemyError

from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION
from driftgate.errors import DriftgateError
from driftgate.results import DriftResult, Metrics, SplitMetrics
from driftgate.serving.schema import KEY_LENGTH, label_key_value
from driftgate.serving.service import Service
from driftgate.store.predictions import utc

Level = Literal["ok", "warning", "critical"]
NO_PASSES = ("no monitoring pass has judged a window yet: run `driftgate monitor --once`, or start the server with "
             "`driftgate serve --monitor-every 5m`")
HISTORY_LIMIT = 10_000  # the most passes one answer holds


# --------------------------------------------------------------------------- response models


class AlertRow(BaseModel):
    """One alert row: an incident fired, was notified again, changed level or resolved."""

    id: int
    pass_id: int
    incident: int = Field(description="the id of the incident's first row: every row of one incident carries it")
    rule: str = Field(description="the rule in params.yaml (monitoring.alerts), with the column for column rules")
    level: Level
    event: Literal["fired", "renotified", "escalated", "deescalated", "resolved"]
    value: Optional[float] = None
    threshold: Optional[float] = None
    message: str
    at: datetime


class Alerts(BaseModel):
    open_only: bool = Field(description="true: the newest row of every incident that has not resolved")
    alerts: list[AlertRow]
    message: Optional[str] = None


class Baseline(BaseModel):
    """The model's metrics from the pipeline: the holdout (test) split and the current batch it was checked on."""

    model_version: str
    source: str = Field(description="the file they are read from (reports/metrics.json)")
    holdout: Optional[SplitMetrics] = None
    current: Optional[SplitMetrics] = None
    message: Optional[str] = None


class PassRow(BaseModel):
    """One monitoring pass: its window, its metrics and its level. Metrics are null when the pass
    did not compute them (a skipped pass; realized metrics before labels; an estimate that abstained)."""

    id: int
    model_version: str
    status: Literal["done", "skipped"]
    reason: Optional[str] = Field(None, description="what the window was, or why the pass was skipped")
    level: Level
    started_at: datetime
    finished_at: datetime
    rows: int
    first_id: Optional[int] = Field(None, description="the window's first prediction id")
    last_id: Optional[int] = None
    first_at: Optional[datetime] = Field(None, description="when the window's first prediction was logged")
    last_at: Optional[datetime] = None
    drift_share: Optional[float] = None
    drifted_columns: Optional[int] = None
    tested_columns: Optional[int] = None
    prediction_drift: Optional[bool] = Field(None, description="the scores or the decisions drifted")
    missing_share_rise: Optional[float] = None
    estimated_f1: Optional[float] = Field(None, description="label-free F1 estimate (null when it abstained)")
    estimated_lower: Optional[float] = None
    estimated_upper: Optional[float] = None
    estimate_abstained: Optional[bool] = None
    estimate_reason: Optional[str] = None
    realized_f1: Optional[float] = Field(None, description="F1 of the window's labelled predictions")
    realized_precision: Optional[float] = None
    realized_recall: Optional[float] = None
    labelled_rows: Optional[int] = None
    estimate_error: Optional[float] = Field(None, description="realized minus estimated F1, once the window has enough labels")
    realized_at: Optional[datetime] = Field(None, description="when labels last updated the realized metrics")


class Latest(BaseModel):
    latest: Optional[PassRow] = Field(None, description="the latest judged pass, or null before the first")
    open_alerts: int = Field(description="alert incidents that have not resolved")
    message: Optional[str] = None


class History(BaseModel):
    passes: list[PassRow] = Field(description="judged passes, oldest first")
    message: Optional[str] = None


class ColumnRow(BaseModel):
    """One column's drift in a pass (score null when the column could not be tested)."""

    column: str
    type: Literal["numeric", "categorical"]
    test: str
    score: Optional[float] = None
    threshold: Optional[float] = None
    drift: bool
    p_value: Optional[float] = None
    reference_missing_share: Optional[float] = None
    current_missing_share: Optional[float] = None
    out_of_range_share: float = 0.0
    new_categories: list[str] = []
    new_category_count: int = 0
    ignored: bool = False


class DataDrift(BaseModel):
    """Drift of the model's input columns in the latest judged pass, most drifted first."""

    pass_id: Optional[int] = None
    model_version: Optional[str] = None
    finished_at: Optional[datetime] = None
    mode: Optional[str] = None
    reference_window: Optional[str] = None
    current_window: Optional[str] = None
    drift_share: Optional[float] = None
    threshold: Optional[float] = Field(None, description="the share of drifted columns above which the data drifted")
    dataset_drift: Optional[bool] = None
    drifted_columns: list[str] = []
    columns: list[ColumnRow] = []
    warnings: list[str] = []
    message: Optional[str] = None


class ConceptPoint(BaseModel):
    """One judged pass's realized F1 against the baseline's."""

    pass_id: int
    started_at: datetime
    first_at: Optional[datetime] = None
    last_at: Optional[datetime] = None
    rows: int
    labelled_rows: int
    realized_f1: Optional[float] = None
    realized_precision: Optional[float] = None
    realized_recall: Optional[float] = None
    estimated_f1: Optional[float] = None
    f1_change: Optional[float] = Field(None, description="realized F1 minus the baseline F1 (null before labels)")
    level: Level


class ConceptDrift(BaseModel):
    """Concept drift: the drift of the model's scores and decisions in the latest judged pass, and
    its realized F1 per pass against the F1 it had on the holdout."""

    pass_id: Optional[int] = None
    prediction_columns: list[ColumnRow] = Field([], description="the scores and the decisions (the prediction columns)")
    baseline_f1: Optional[float] = Field(None, description="the model's holdout F1 (reports/metrics.json)")
    baseline_window: Optional[str] = None
    performance: list[ConceptPoint] = Field([], description="judged passes, oldest first")
    message: Optional[str] = None


class RunRow(BaseModel):
    id: int
    model_version: str
    status: Literal["done", "skipped"]
    reason: Optional[str] = None
    level: Level
    started_at: datetime
    finished_at: datetime
    rows: int
    first_id: Optional[int] = None
    last_id: Optional[int] = None


class Runs(BaseModel):
    runs: list[RunRow] = Field(description="every pass, newest first; skipped ones say why")
    message: Optional[str] = None


class LabelsAnswer(BaseModel):
    attached: int = Field(description="labels stored (new, or replacing an earlier label of the same prediction)")
    replaced: int = Field(description="of those, predictions that had a label already")
    unmatched: list[str] = Field(description="request ids (with #row past row 0) or keys that name no logged prediction")
    passes_updated: int = Field(description="judged passes whose realized F1, precision and recall were recomputed")


# --------------------------------------------------------------------------- the POST /labels body


LABEL_MESSAGES = {  # readable_error's wording for the body of POST /labels
    "missing": "required",
    "extra_forbidden": "not a field of a label: each item has request_id (and row) or key, and label",
    "model_attributes_type": 'expected a JSON object {"labels": [...]}, sent with content-type: application/json; got {kind}',
    "model_type": 'expected a JSON object {"labels": [...]}, got {kind}',
    "too_short": "an empty list: send at least one label",
    "empty_body": 'the body is empty: send {"labels": [{"request_id": ..., "label": ...}, ...]}',
}


def labels_body(class_names: tuple[str, str], label_key: str | None, max_items: int) -> type[BaseModel]:
    """The body of POST /labels for this model: which prediction (request_id and row, or the
    monitoring.label_key value as `key`) and its label (0/1, true/false or a class name)."""
    names = {name.lower() for name in class_names} | {"0", "1", "true", "false"}
    shown = ", ".join([*map(repr, class_names), "0/1", "true/false"])

    def check_label(value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return value
        if isinstance(value, str) and value.strip().lower() in names:
            return value
        raise PydanticCustomError("not_a_label", "{value} is not a label: use {shown}", {"value": repr(value), "shown": shown})

    def check_key(value: Any) -> Any:
        stored, problem = label_key_value(value)
        if problem:
            raise PydanticCustomError("label_key", problem)
        return stored

    key_help = (f"the value of {label_key!r} (monitoring.label_key) the record was sent to /predict with" if label_key else
                "only when monitoring.label_key is set in params.yaml")
    label_schema = {"anyOf": [{"enum": [0, 1]}, {"type": "boolean"}, {"type": "string", "enum": [*class_names, "0", "1", "true", "false"]}]}
    key_schema = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": KEY_LENGTH}, {"type": "integer"}, {"type": "null"}]}

    class LabelItem(BaseModel):
        model_config = ConfigDict(extra="forbid")

        request_id: Optional[str] = Field(None, min_length=1, max_length=36, description="the request_id /predict answered")
        row: int = Field(0, ge=0, description="the record's position in its request (0 for a single record)")
        key: Annotated[Optional[str], BeforeValidator(check_key), WithJsonSchema(key_schema)] = Field(None, description=key_help)
        label: Annotated[Any, BeforeValidator(check_label), WithJsonSchema(label_schema)] = Field(description=f"the true outcome: {shown}")

        @model_validator(mode="after")
        def _named(self):
            if self.request_id is None and self.key is None:
                raise PydanticCustomError("no_prediction", "name the prediction: give request_id (and row)" +
                                          (f" or key (the value of {label_key}, monitoring.label_key)" if label_key else ""))
            if self.request_id is not None and self.key is not None:
                raise PydanticCustomError("two_names", "give request_id or key, not both")
            if self.key is not None and not label_key:
                raise PydanticCustomError("no_label_key", "key needs monitoring.label_key in params.yaml (the field "
                                          "/predict records carry it in); name the prediction by request_id instead")
            return self

    return create_model("Labels", __config__=ConfigDict(extra="forbid"),
                        labels=(list[LabelItem], Field(..., min_length=1, max_length=max_items,
                                                       description="one item per labelled prediction")))


# --------------------------------------------------------------------------- reading the store


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def pass_row(row: dict) -> PassRow:
    floats = ("drift_share", "missing_share_rise", "estimated_f1", "estimated_lower", "estimated_upper", "realized_f1",
              "realized_precision", "realized_recall", "estimate_error")
    prediction_drift = _number(row.get("prediction_drift"))
    return PassRow(**{k: row.get(k) for k in ("id", "model_version", "status", "reason", "level", "rows", "first_id", "last_id",
                                              "estimate_abstained", "estimate_reason")},
                   **{k: utc(row.get(k)) for k in ("started_at", "finished_at", "first_at", "last_at", "realized_at")},
                   **{k: _number(row.get(k)) for k in floats},
                   **{k: _whole(row.get(k)) for k in ("drifted_columns", "tested_columns", "labelled_rows")},
                   prediction_drift=None if prediction_drift is None else bool(prediction_drift))


def judged(service: Service, limit: int) -> list[dict]:
    """The newest `limit` judged passes, oldest first."""
    return service.store.passes_list(limit, status="done")[::-1]


def column_rows(drift: DriftResult, names) -> list[ColumnRow]:
    wanted = set(names)
    return [ColumnRow(column=col.column, type=col.type, test=col.test, score=_number(col.score), threshold=_number(col.threshold),
                      drift=col.drift, p_value=_number(col.p_value), reference_missing_share=_number(col.reference_missing_share),
                      current_missing_share=_number(col.current_missing_share), out_of_range_share=col.out_of_range_share,
                      new_categories=col.new_categories, new_category_count=col.new_category_count, ignored=col.ignored)
            for col in drift.ranked() if col.column in wanted]


def stored_drift(row: dict) -> DriftResult | None:
    try:
        return DriftResult.model_validate(row.get("drift") or {}) if row.get("drift") else None
    except ValueError:
        return None


def baseline(service: Service) -> Baseline:
    source = str(service.baseline)
    try:
        metrics = Metrics.read(service.baseline, "the model's metrics")
    except DriftgateError as exc:
        return Baseline(model_version=service.model.version, source=source,
                        message=f"{exc.where}: {exc.problem}: run the pipeline (`make run` or `dvc repro`) to write it")
    return Baseline(model_version=service.model.version, source=source, holdout=metrics.holdout, current=metrics.current)


# --------------------------------------------------------------------------- the routes


def add_monitoring_routes(api: FastAPI, service: Service, max_items: int = 200_000) -> None:
    """Add the monitoring routes and POST /labels to the serving app. A store that cannot be read
    or written (on any route) answers 503 with the reason, never a traceback."""
    router = APIRouter(tags=["monitoring"])
    model = service.model
    LabelsBody = labels_body(model.class_names, model.label_key, max_items)

    @router.get("/alerts", response_model=Alerts, summary="Alert rows, newest first; ?open=true: the open incidents only")
    def alerts(open_only: Annotated[bool, Query(alias="open", description="only incidents that have not resolved")] = False,
               limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT)] = 200) -> Alerts:
        rows = service.store.alerts_list(limit=limit, open_only=open_only)[:limit]
        found = [AlertRow(**{k: row.get(k) for k in AlertRow.model_fields}) for row in rows]
        message = None if found else ("no open alert" if open_only else "no alert yet")
        return Alerts(open_only=open_only, alerts=found, message=message)

    @router.get("/metrics/baseline", response_model=Baseline, summary="The model's holdout (test) metrics from the pipeline")
    def metrics_baseline() -> Baseline:
        return baseline(service)

    @router.get("/metrics/latest", response_model=Latest,
                summary="The latest judged pass: drift share, F1 estimate with its interval, realized F1, level")
    def metrics_latest() -> Latest:
        row = service.store.latest_pass(judged=True)
        open_alerts = len(service.store.open_incidents())
        if row is None:
            return Latest(latest=None, open_alerts=open_alerts, message=NO_PASSES)
        return Latest(latest=pass_row(row), open_alerts=open_alerts)

    @router.get("/metrics/history", response_model=History, summary="Judged passes, oldest first: drift share, F1, level")
    def metrics_history(limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT, description="the newest N passes")] = 500) -> History:
        rows = judged(service, limit)
        return History(passes=[pass_row(r) for r in rows], message=None if rows else NO_PASSES)

    @router.get("/drift/data", response_model=DataDrift, summary="Per-column drift of the latest judged pass")
    def drift_data() -> DataDrift:
        row = service.store.latest_pass(judged=True)
        drift = stored_drift(row) if row else None
        if drift is None:
            return DataDrift(message=NO_PASSES if row is None else f"pass {row['id']} recorded no drift result")
        features = [name for name in drift.columns if name not in (PREDICTION, PREDICTED_LABEL)]
        return DataDrift(pass_id=row["id"], model_version=row["model_version"], finished_at=utc(row["finished_at"]),
                         mode=drift.mode, reference_window=drift.reference_window, current_window=drift.current_window,
                         drift_share=_number(drift.drift_share), threshold=_number(drift.threshold),
                         dataset_drift=drift.dataset_drift, drifted_columns=[c for c in drift.drifted_columns if c in features],
                         columns=column_rows(drift, features), warnings=drift.warnings)

    @router.get("/drift/concept", response_model=ConceptDrift,
                summary="Concept drift: prediction drift of the latest pass, realized F1 per pass against the baseline F1")
    def drift_concept(limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT, description="the newest N passes")] = 500) -> ConceptDrift:
        base = baseline(service)
        baseline_f1 = base.holdout.f1 if base.holdout else None
        rows = judged(service, limit)
        points = []
        for row in rows:
            realized = _number(row.get("realized_f1"))
            points.append(ConceptPoint(
                pass_id=row["id"], started_at=utc(row["started_at"]), first_at=utc(row["first_at"]), last_at=utc(row["last_at"]),
                rows=row["rows"], labelled_rows=_whole(row.get("labelled_rows")) or 0, realized_f1=realized,
                realized_precision=_number(row.get("realized_precision")), realized_recall=_number(row.get("realized_recall")),
                estimated_f1=_number(row.get("estimated_f1")), level=row["level"],
                f1_change=None if realized is None or baseline_f1 is None else realized - baseline_f1))
        drift = stored_drift(rows[-1]) if rows else None
        messages = [NO_PASSES if not rows else None, base.message]
        return ConceptDrift(pass_id=rows[-1]["id"] if rows else None,
                            prediction_columns=column_rows(drift, (PREDICTION, PREDICTED_LABEL)) if drift else [],
                            baseline_f1=baseline_f1, baseline_window=base.holdout.window if base.holdout else None,
                            performance=points, message="; ".join(filter(None, messages)) or None)

    @router.get("/monitoring/runs", response_model=Runs, summary="Every monitoring pass, newest first, skipped ones with their reason")
    def monitoring_runs(limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT)] = 100) -> Runs:
        rows = service.store.passes_list(limit=limit)
        runs = [RunRow(**{k: utc(row.get(k)) if k.endswith("_at") else row.get(k) for k in RunRow.model_fields}) for row in rows]
        return Runs(runs=runs, message=None if runs else "no monitoring pass yet: " + NO_PASSES.split(": ", 1)[1])

    @router.post("/labels", response_model=LabelsAnswer, summary="Attach the true labels to logged predictions, once they are known",
                 description="Each item names a prediction by `request_id` (and `row`, its position in a request of several "
                             "records) or, when monitoring.label_key is set, by `key`; its `label` is 0/1, true/false or a "
                             "class name. A later label of the same prediction replaces the earlier one. The realized F1, "
                             "precision and recall of the judged passes the labels fall in are recomputed.")
    def post_labels(body: Annotated[LabelsBody, Body()]) -> LabelsAnswer | JSONResponse:
        return attach_labels(service, body.labels)

    api.include_router(router)

    @api.exception_handler(SQLAlchemyError)
    async def store_unavailable(request: Request, exc: SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).split("\n")[0]
        what = "the monitoring store cannot be read" if request.method == "GET" else "the prediction log cannot be written"
        return JSONResponse({"detail": [{"field": "store", "type": "store_unavailable",
                                         "message": f"{what} ({reason}): check serving.log in params.yaml (or --log)"}]},
                            status_code=503)


def attach_labels(service: Service, items: list) -> LabelsAnswer | JSONResponse:
    """Attach labels through `monitoring.labels` (parse_labels, then attach), one group for the
    items named by request_id and one for those named by key."""
    import pandas as pd

    from driftgate.monitoring.labels import attach, parse_labels

    params = service.params
    if params is None:
        return JSONResponse({"detail": [{"field": "body", "type": "no_params", "message":
                                         "this server was started without params.yaml, so it cannot read labels"}]}, status_code=503)
    by_id = [i for i in items if i.request_id is not None]
    by_key = [i for i in items if i.request_id is None]
    groups = []
    if by_id:
        groups.append(pd.DataFrame({"request_id": [i.request_id for i in by_id], "row": [i.row for i in by_id],
                                    "label": [i.label for i in by_id]}))
    if by_key:
        groups.append(pd.DataFrame({params.monitoring.label_key: [i.key for i in by_key], "label": [i.label for i in by_key]}))
    attached = replaced = changed = 0
    unmatched: list[str] = []
    for frame in groups:
        try:
            found = parse_labels(frame, params, "POST /labels")
        except DriftgateError as exc:
            return JSONResponse({"detail": [{"field": "labels", "type": "bad_labels",
                                             "message": exc.problem + (f": {exc.hint}" if exc.hint else "")}]}, status_code=422)
        done, updated = attach(found, service.log, service.store, service.model.threshold, params)
        attached, replaced, changed = attached + done.attached, replaced + done.replaced, changed + updated
        unmatched += done.unmatched
    return LabelsAnswer(attached=attached, replaced=replaced, unmatched=unmatched, passes_updated=changed)
