"""Request metrics: Prometheus counters and latencies of one app, and the gate values at each scrape."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from driftgate.config import Paths


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
