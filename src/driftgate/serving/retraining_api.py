"""The retraining routes of the serving app: retrain on demand, and the model registry read back.

    POST /retrain               train a challenger and decide (trigger "api"), in a worker thread: 202;
                                409 while a retraining runs
    GET  /retraining/status     running or idle, and the last decision
    GET  /retraining/history    the decisions, newest first
    GET  /models                the registered versions, the champion's alias history, the champion
    GET  /models/comparison     the last comparison: champion vs challenger on the same rows

The registry is the one in the prediction log's database (serving.log). A promotion moves the
`champion` alias; the server then serves the new champion (`driftgate.serving.swap`), at once for
a retraining it ran itself. An empty registry is an answer (200, empty lists or null), never an error.
"""

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftgate.config import Paths
from driftgate.errors import DriftgateError
from driftgate.serving.service import Service

Outcome = Literal["promoted", "rejected", "rolled_back", "failed"]
COMPARED = ("promoted", "rejected")  # the decisions that scored a champion against a challenger
NO_DECISIONS = "no retraining has been decided yet: POST /retrain, or run `driftgate retrain`"


# --------------------------------------------------------------------------- response models


class Decision(BaseModel):
    """One decision of the log (append-only): a promotion, a rejection, a rollback or a failed retraining."""

    id: int
    at: datetime
    trigger: Literal["manual", "alert", "schedule", "api"]
    champion_sha256: Optional[str] = None
    challenger_sha256: Optional[str] = None
    training_window: Optional[str] = None
    evaluation_window: Optional[str] = None
    rows: Optional[int] = Field(None, description="the evaluation rows both models were scored on")
    champion_f1: Optional[float] = None
    challenger_f1: Optional[float] = None
    difference: Optional[float] = Field(None, description="challenger F1 minus champion F1 on the same rows")
    lower: Optional[float] = Field(None, description="the one-sided bootstrap lower bound of the difference")
    confidence: Optional[float] = None
    margin: Optional[float] = None
    margin_kind: Optional[Literal["absolute", "relative"]] = None
    outcome: Outcome
    reason: str


class Job(BaseModel):
    """A retraining started by POST /retrain."""

    trigger: str
    started_at: datetime
    finished_at: Optional[datetime] = None
    outcome: Optional[Outcome] = None
    decision_id: Optional[int] = None
    error: Optional[str] = Field(None, description="why it failed, when it did")


class Status(BaseModel):
    state: Literal["running", "idle"]
    serving: str = Field(description="the model version serving now")
    champion: Optional[str] = Field(None, description="the registry's champion (sha256), null before the first")
    job: Optional[Job] = Field(None, description="the running retraining, or the last one this server ran")
    last_decision: Optional[Decision] = None
    message: Optional[str] = None


class RetrainHistory(BaseModel):
    decisions: list[Decision] = Field(description="newest first")
    message: Optional[str] = None


class Version(BaseModel):
    sha256: str
    version: str = Field(description="the first 12 hex digits: the model_version of predictions and /health")
    registered_at: datetime
    train_window: Optional[str] = None
    fit_rows: Optional[int] = None
    estimator: Optional[str] = None
    f1: Optional[float] = None
    champion: bool = Field(description="it holds the champion alias now")


class AliasRow(BaseModel):
    sha256: str
    since: datetime
    until: Optional[datetime] = Field(None, description="null: it still holds the alias")
    reason: str


class Models(BaseModel):
    champion: Optional[str] = Field(None, description="the champion's sha256, null with an empty registry")
    serving: str = Field(description="the model version serving now (the champion once it has loaded)")
    versions: list[Version] = Field(description="every registered version, oldest first")
    aliases: list[AliasRow] = Field(description="the champion alias's history, oldest first")
    message: Optional[str] = None


class Side(BaseModel):
    sha256: Optional[str] = None
    f1: Optional[float] = None


class Comparison(BaseModel):
    """The last decision that scored the champion against a challenger on the same rows."""

    decision_id: Optional[int] = None
    at: Optional[datetime] = None
    champion: Optional[Side] = None
    challenger: Optional[Side] = None
    difference: Optional[float] = None
    lower: Optional[float] = None
    confidence: Optional[float] = None
    margin: Optional[float] = None
    margin_kind: Optional[Literal["absolute", "relative"]] = None
    rows: Optional[int] = None
    training_window: Optional[str] = None
    evaluation_window: Optional[str] = None
    outcome: Optional[Outcome] = None
    reason: Optional[str] = None
    message: Optional[str] = None


# --------------------------------------------------------------------------- the worker


class Retraining:
    """At most one retraining at a time in this server, run in a worker thread."""

    def __init__(self, service: Service) -> None:
        self.service, self.lock, self.job = service, threading.Lock(), None
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, trigger: str = "api") -> Job | None:
        """The job started, or None when one is running already."""
        with self.lock:
            if self.running:
                return None
            self.job = Job(trigger=trigger, started_at=datetime.now(UTC))
            self.thread = threading.Thread(target=self._run, args=(self.job,), name="driftgate-retrain", daemon=True)
            self.thread.start()
            return self.job

    def every(self, seconds: float, say=None) -> threading.Event:
        """Start a retraining (trigger "schedule") every `seconds`, the first one `seconds` from now,
        in a daemon thread, until the returned event is set. One already running is not doubled:
        that tick is skipped and said. `driftgate serve --retrain-every 1d`."""
        say = say or (lambda message: print(f"driftgate retrain: {message}", file=sys.stderr, flush=True))
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(seconds):
                job = self.start("schedule")
                say("scheduled retraining started" if job else "a retraining is running already: this scheduled one is skipped")

        threading.Thread(target=run, name="driftgate-retrain-schedule", daemon=True).start()
        return stop

    def _run(self, job: Job) -> None:
        from driftgate.retraining.controller import retrain
        from driftgate.serving import swap

        service = self.service
        paths = service.paths or Paths()
        try:
            outcome = retrain(service.params, paths, service.registry(), job.trigger, Path(service.model_path or paths.model),
                              say=lambda message: print(f"driftgate retrain: {message}", file=sys.stderr, flush=True))
            job.outcome, job.decision_id = outcome.outcome, outcome.decision_id
            if outcome.outcome == "promoted":
                swap.check(service)  # serve it now, not at the watcher's next look
        except DriftgateError as exc:
            job.outcome, job.error = "failed", " ".join(f"{exc.where}: {exc.problem}".split()) + (f" -> {exc.hint}" if exc.hint else "")
            self._record_failure(job)
        except Exception as exc:  # the worker must not die silently: its status says why
            job.outcome, job.error = "failed", f"{type(exc).__name__}: {exc}"
            self._record_failure(job)
        finally:
            job.finished_at = datetime.now(UTC)

    def _record_failure(self, job: Job) -> None:
        try:
            registry = self.service.registry()
            job.decision_id = registry.record_decision({"trigger": job.trigger, "champion_sha256": registry.champion(),
                                                        "outcome": "failed", "reason": f"retraining failed: {job.error}"})
        except Exception:  # the registry itself is away: the job's status still says why
            pass


# --------------------------------------------------------------------------- the routes


def _version(row: dict, champion: str | None) -> Version:
    return Version(version=row["sha256"][:12], champion=row["sha256"] == champion, **row)


def comparison(rows: list[dict]) -> Comparison:
    row = next((r for r in rows if r["outcome"] in COMPARED), None)
    if row is None:
        return Comparison(message=NO_DECISIONS)
    return Comparison(decision_id=row["id"], at=row["at"], champion=Side(sha256=row["champion_sha256"], f1=row["champion_f1"]),
                      challenger=Side(sha256=row["challenger_sha256"], f1=row["challenger_f1"]),
                      **{k: row[k] for k in ("difference", "lower", "confidence", "margin", "margin_kind", "rows",
                                             "training_window", "evaluation_window", "outcome", "reason")})


def add_retraining_routes(api: FastAPI, service: Service, history_limit: int = 1000) -> Retraining:
    """POST /retrain and the registry's routes on `api`; returns the worker (app.state.retraining)."""
    router = APIRouter(tags=["retraining"])
    worker = Retraining(service)
    api.state.retraining = worker

    def decisions(limit: int) -> list[Decision]:
        return [Decision.model_validate(row) for row in service.registry().decisions(limit)]

    @router.post("/retrain", response_model=Status, status_code=202,
                 summary="Train a challenger on retraining.window and decide on retraining.evaluation (in the background)",
                 responses={409: {"model": Status, "description": "a retraining is running already"}})
    def post_retrain() -> Status | JSONResponse:
        if service.params is None:
            return JSONResponse({"detail": [{"field": "params", "type": "not_configured",
                                             "message": "this server was started without params.yaml: retraining needs it"}]},
                                status_code=409)
        job = worker.start("api")
        if job is None:
            return JSONResponse(status(message="a retraining is running already: GET /retraining/status says when it is "
                                               "done").model_dump(mode="json"), status_code=409)
        return status(message="retraining started: GET /retraining/status says when it is done")

    @router.get("/retraining/status", response_model=Status, summary="Running or idle, and the last decision")
    def retraining_status() -> Status:
        return status()

    def status(message: str | None = None) -> Status:
        registry = service.registry()
        last = registry.decisions(1)
        return Status(state="running" if worker.running else "idle", serving=service.model.version, champion=registry.champion(),
                      job=worker.job, last_decision=Decision.model_validate(last[0]) if last else None,
                      message=message or (None if last else NO_DECISIONS))

    @router.get("/retraining/history", response_model=RetrainHistory, summary="The retraining decisions, newest first")
    def retraining_history(limit: Annotated[int, Query(ge=1, le=history_limit, description="the newest N decisions")] = 100
                           ) -> RetrainHistory:
        rows = decisions(limit)
        return RetrainHistory(decisions=rows, message=None if rows else NO_DECISIONS)

    @router.get("/models", response_model=Models, summary="The registered model versions, the champion and its history")
    def models() -> Models:
        registry = service.registry()
        champion = registry.champion()
        versions = [_version(row, champion) for row in registry.versions()]
        return Models(champion=champion, serving=service.model.version, versions=versions,
                      aliases=[AliasRow(**row) for row in registry.alias_history()],
                      message=None if versions else "the registry is empty: the model the server started with serves")

    @router.get("/models/comparison", response_model=Comparison,
                summary="The last decision's champion vs challenger: F1s, difference, lower bound, margin, outcome")
    def models_comparison() -> Comparison:
        return comparison(service.registry().decisions(history_limit))

    api.include_router(router)
    return worker


__all__ = ["Comparison", "Decision", "Models", "Retraining", "RetrainHistory", "Status", "add_retraining_routes"]
