"""Request metrics: Prometheus counters and latencies of one app; the gate values and the latest
monitoring pass (read from the store) at each scrape.

Names follow Prometheus conventions (`promtool check metrics` is silent on /metrics): counters end
in `_total`, durations and times are in seconds and say so, shares and F1s are ratios in [0, 1].
deploy/ (the Prometheus rules and the Grafana dashboard) queries these names: rename in both."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from driftgate.config import Paths

if TYPE_CHECKING:
    from driftgate.store.monitoring import MonitoringStore

LEVELS = {"ok": 0, "warning": 1, "critical": 2}  # driftgate_monitor_alert_level


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self, gate_path: Path = Paths().gate) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        self.requests = Counter("driftgate_requests_total", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("driftgate_request_duration_seconds", "request latency by endpoint, in seconds", ["endpoint"],
                                 registry=self.registry,
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
        self._watched: MonitoringStore | None = None

    def watch(self, store: MonitoringStore) -> None:
        """Expose the latest judged monitoring pass of `store` at each scrape (once per app)."""
        if self._watched is None:
            self._watched = store
            self.registry.register(MonitorValues(store))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


class MonitorValues:
    """The latest judged monitoring pass as gauges, read from the store at each scrape. A family
    whose value the pass does not have is left out (the estimate's, when it abstained; realized
    F1 before labels); when the store cannot be read, the families that need it are left out and
    the rest of /metrics still answers."""

    def __init__(self, store: MonitoringStore) -> None:
        self.store = store

    def describe(self):
        return []  # the families depend on the store: nothing is read when the collector is registered

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, documentation: str, value: float):
            family = GaugeMetricFamily(name, documentation)
            family.add_metric([], value)
            return family

        try:
            latest = self.store.latest_pass(judged=True)
        except Exception:  # noqa: BLE001 - an unreachable store must not break the scrape; its families are left out
            latest = None
        if latest is not None:
            for name, key, documentation in (
                    ("driftgate_monitor_drift_share", "drift_share", "share of the tested columns that drifted in the latest pass"),
                    ("driftgate_monitor_estimated_f1", "estimated_f1", "label-free F1 estimate of the latest pass"),
                    ("driftgate_monitor_estimated_f1_lower", "estimated_lower", "lower bound of the F1 estimate's interval"),
                    ("driftgate_monitor_estimated_f1_upper", "estimated_upper", "upper bound of the F1 estimate's interval"),
                    ("driftgate_monitor_realized_f1", "realized_f1", "F1 of the labelled predictions of the latest pass")):
                value = _finite(latest.get(key))
                if value is not None and not (key.startswith("estimated") and latest.get("estimate_abstained")):
                    yield gauge(name, documentation, value)
            columns = GaugeMetricFamily("driftgate_monitor_column_drift_score",
                                        "drift score of each column in the latest pass (its test's statistic or p-value)",
                                        labels=["column"])
            for column, info in ((latest.get("drift") or {}).get("columns") or {}).items():
                score = _finite(info.get("score")) if isinstance(info, dict) else None
                if score is not None:
                    columns.add_metric([str(column)], score)
            yield columns
            yield gauge("driftgate_monitor_alert_level", "alert level of the latest pass: 0 ok, 1 warning, 2 critical",
                        float(LEVELS.get(latest.get("level"), 0)))
            finished = latest.get("finished_at")
            if finished is not None:
                yield gauge("driftgate_monitor_pass_timestamp_seconds", "when the latest pass finished (Unix time)",
                            finished.timestamp())
        try:
            open_alerts = len(self.store.open_incidents())
        except Exception:  # noqa: BLE001 - as above
            return
        yield gauge("driftgate_monitor_open_alerts", "alert incidents that have not resolved", float(open_alerts))


class _Measure:
    """Request counts and latencies per endpoint, as a plain ASGI middleware (Starlette's
    BaseHTTPMiddleware costs several milliseconds a request)."""

    ENDPOINTS = ("/predict", "/health", "/metrics", "/labels", "/alerts", "/metrics/baseline", "/metrics/latest",
                 "/metrics/history", "/drift/data", "/drift/concept", "/monitoring/runs")

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
