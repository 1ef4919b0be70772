"""The monitor as something that runs: one pass, or passes on a schedule, from the CLI or inside
the server (`driftgate serve --monitor-every 5m`). Whatever runs it, the store's lease lets only
one pass run at a time."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib

from driftgate.config import Params, Paths
from driftgate.errors import DriftgateError
from driftgate.monitoring.monitor import PassOutcome, run_pass
from driftgate.monitoring.reference import ModelInfo
from driftgate.store.monitoring import LeaseHeld, MonitoringStore
from driftgate.store.predictions import PredictionLog

Say = Callable[[str], None]


@dataclass
class Monitor:
    params: Params
    log: PredictionLog
    store: MonitoringStore
    model_path: Path
    paths: Paths = field(default_factory=Paths)
    say: Say = print
    notify: bool = True
    _registry: object = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, params: Params, log_setting: str | Path, model_path: Path, paths: Paths | None = None, say: Say = print,
             notify: bool = True) -> Monitor:
        return cls(params, PredictionLog(log_setting), MonitoringStore(log_setting), Path(model_path), paths or Paths(), say, notify)

    @property
    def registry(self):
        """The model registry beside the log (opened once)."""
        from driftgate.store.registry import ModelRegistry

        if self._registry is None:
            self._registry = ModelRegistry(self.log.url)
        return self._registry

    @property
    def model(self) -> ModelInfo:
        """The model serving now, read per pass: the registry's champion once there is one (a
        promotion or a rollback is followed at the next pass), else the model file's card."""
        champion = self.registry.champion()
        if champion is None:
            return ModelInfo.from_card(self.model_path)
        card, data = self.registry.model(champion)  # its bytes' sha256 checked
        return ModelInfo.of(card, f"model registry: {champion[:12]}", lambda: joblib.load(io.BytesIO(data)))

    def once(self) -> PassOutcome:
        """One pass. Raises LeaseHeld when another process is running one. With retraining.on_alert,
        a pass that opens (or escalates to) a critical incident then runs the retraining controller."""
        outcome = run_pass(self.params, self.log, self.store, self.model, self.paths, self.model_path, self.say,
                           self._notify if self.notify else None)
        if self.params.retraining.on_alert and any(a["level"] == "critical" and a["event"] in ("fired", "escalated")
                                                   for a in outcome.alerts):
            outcome.retraining = self.retrain_on_alert(outcome)
        return outcome

    def retrain_on_alert(self, outcome: PassOutcome):
        from driftgate.retraining.controller import retrain

        self.say(f"pass {outcome.pass_id} is critical: retraining (retraining.on_alert)")
        done = retrain(self.params, self.paths, self.registry, "alert", self.model_path, self.say)
        self.say(f"retraining decision {done.decision_id}: {done.outcome}")
        return done

    def _notify(self, outcome: PassOutcome) -> None:
        from driftgate.monitoring.notify import send_alerts

        for line in send_alerts(outcome, self.params, self.model.version):
            self.say(line)

    def every(self, seconds: float, stop: threading.Event, on_error: Callable[[Exception], bool] | None = None) -> None:
        """Passes every `seconds` until `stop` is set. A pass another process holds the lease for
        is left to it; an error goes to `on_error`, which says whether to go on (without one, a
        DriftgateError stops the loop; inside the server, every error is said and the next pass runs)."""
        while not stop.is_set():
            try:
                self.once()
            except LeaseHeld as held:
                self.say(f"{held}: left to it")
            except Exception as exc:  # noqa: BLE001 - on_error decides; without it, raised as it was
                if on_error is None or not on_error(exc):
                    raise
            stop.wait(seconds)


def background(monitor: Monitor, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Passes in a daemon thread (inside the server); errors are said, never raised into the server."""
    stop = threading.Event()

    def on_error(exc: Exception) -> bool:
        if isinstance(exc, DriftgateError):
            monitor.say(f"monitoring pass failed: {exc.message}")
        else:  # e.g. the database went away mid-pass: said in one line, the next pass tries again
            monitor.say(f"monitoring pass failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return True

    def run() -> None:
        try:
            monitor.every(seconds, stop, on_error)
        except Exception as exc:  # noqa: BLE001 - a monitor bug must not take the server down; it is said once
            monitor.say(f"the monitor stopped: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name="driftgate-monitor", daemon=True)
    thread.start()
    return thread, stop
