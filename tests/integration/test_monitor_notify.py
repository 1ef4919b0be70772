"""The monitor's notifications against real servers on 127.0.0.1: an SMTP server (aiosmtpd) and an
HTTP server standing in for a Slack or Teams incoming webhook; and one real monitoring pass over
July 2013 predictions of the bundled data whose critical drift alert reaches both."""

from __future__ import annotations

import email
import email.policy
import html
import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from driftgate.monitoring.monitor import PassOutcome
from driftgate.monitoring.notify import send_alerts

SECRET_PATH = "/services/T0001/B0002/XyZsecretKey"
DRIFT = {"rule": "drift_share", "level": "critical", "event": "fired", "value": 0.647, "threshold": 0.5,
         "message": "drift share 0.647 >= 0.5 (critical)", "incident": None}
MISSING = {"rule": "missing_share", "level": "warning", "event": "escalated", "value": 0.18, "threshold": 0.1,
           "message": "missing share rise (wind_gust) 0.184 >= 0.1 (warning)", "incident": 2}
RESOLVED = {"rule": "estimated_f1", "level": "ok", "event": "resolved", "value": 0.45, "threshold": 0.4,
            "message": "estimated F1 0.450 >= 0.4", "incident": 3}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


class Hook:
    """What the webhook server received, and how it answers (status, body, a Location)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status, self.answer, self.location = 200, b"ok", None


@pytest.fixture
def webhook(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a proxy set for the machine must not take these posts
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            hook.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                  "body": self.rfile.read(length)})
            self.send_response(hook.status)
            if hook.location:
                self.send_header("Location", hook.location)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(hook.answer)))
            self.end_headers()
            self.wfile.write(hook.answer)

        do_POST = do_GET = _record

        def log_message(self, *args) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield hook, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def smtp_env(port: int, **extra: str) -> dict[str, str]:
    return {"DRIFTGATE_SMTP_HOST": "127.0.0.1", "DRIFTGATE_SMTP_PORT": str(port), "DRIFTGATE_SMTP_SECURITY": "none",
            "DRIFTGATE_ALERT_FROM": "monitor@example.org", "DRIFTGATE_ALERT_TO": "ml-team@example.org, oncall@example.org",
            **extra}


def outcome(*alerts: dict) -> PassOutcome:
    return PassOutcome(pass_id=9, status="done", reason="500 flights: every prediction so far", level="critical", rows=500,
                       alerts=[dict(a) for a in alerts])


def test_email_and_webhook_both_receive_every_event(params, smtp, webhook):
    inbox, port = smtp
    hook, host = webhook
    env = smtp_env(port, DRIFTGATE_WEBHOOK_URL=f"http://{host}{SECRET_PATH}")
    lines = send_alerts(outcome(RESOLVED, MISSING, DRIFT), params, "m-1234", env)
    assert lines == ["email: sent to ml-team@example.org, oncall@example.org", f"webhook: posted to {host} (HTTP 200)"]

    [message] = inbox.messages
    assert inbox.envelopes[0].mail_from == "monitor@example.org"
    assert inbox.envelopes[0].rcpt_tos == ["ml-team@example.org", "oncall@example.org"]
    assert message["Subject"] == f"[driftgate] CRITICAL: {params.project.title}: drift share 0.647 >= 0.5 (and 2 more)"
    text = message.get_body(("plain",)).get_content()
    for alert in (DRIFT, MISSING, RESOLVED):
        assert alert["message"] in text and html.escape(alert["message"]) in message.get_body(("html",)).get_content()
    assert "pass: 9" in text and "model version: m-1234" in text and f"{params.project.rows}: 500" in text

    [request] = hook.requests
    assert request["method"] == "POST" and request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert list(body) == ["text"]
    for alert in (DRIFT, MISSING, RESOLVED):
        assert alert["message"] in html.unescape(body["text"])


def test_a_webhook_answering_500_is_a_line_naming_the_host_not_the_secret(params, webhook):
    hook, host = webhook
    hook.status, hook.answer = 500, b"invalid_payload\n"
    lines = send_alerts(outcome(DRIFT), params, "m-1", {"DRIFTGATE_WEBHOOK_URL": f"http://{host}{SECRET_PATH}"})
    assert lines[1] == f"webhook: not posted: {host} answered HTTP 500: invalid_payload"
    assert len(hook.requests) == 1
    assert not any("XyZsecretKey" in line or "T0001" in line for line in lines)


def test_a_redirect_is_reported_not_followed_as_a_get(params, webhook):
    hook, host = webhook
    hook.status, hook.answer, hook.location = 302, b"", f"http://{host}/elsewhere"
    lines = send_alerts(outcome(DRIFT), params, "m-1", {"DRIFTGATE_WEBHOOK_URL": f"http://{host}{SECRET_PATH}"})
    assert lines[1] == f"webhook: not posted: {host} answered HTTP 302"
    assert [r["method"] for r in hook.requests] == ["POST"]


def test_a_webhook_nobody_listens_on_is_a_line(params):
    port = _free_port()  # bound and released: nothing listens there
    lines = send_alerts(outcome(DRIFT), params, "m-1", {"DRIFTGATE_WEBHOOK_URL": f"http://127.0.0.1:{port}{SECRET_PATH}"})
    assert lines[1].startswith(f"webhook: not posted: cannot reach 127.0.0.1:{port} (")
    assert "Connection refused" in lines[1] and "XyZsecretKey" not in lines[1]


def test_smtp_not_configured_is_a_line_and_the_webhook_still_posts(params, webhook):
    hook, host = webhook
    lines = send_alerts(outcome(DRIFT), params, "m-1", {"DRIFTGATE_WEBHOOK_URL": f"http://{host}{SECRET_PATH}"})
    assert lines == ["email: not configured (DRIFTGATE_SMTP_HOST, DRIFTGATE_ALERT_FROM, DRIFTGATE_ALERT_TO unset)",
                     f"webhook: posted to {host} (HTTP 200)"]
    assert len(hook.requests) == 1


def test_refused_recipients_are_a_line_naming_the_server(params, webhook):
    inbox = Inbox(refuse=("ml-team@example.org", "oncall@example.org"))
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        hook, host = webhook
        env = smtp_env(controller.port, DRIFTGATE_WEBHOOK_URL=f"http://{host}{SECRET_PATH}")
        lines = send_alerts(outcome(DRIFT), params, "m-1", env)
    finally:
        controller.stop()
    assert lines[0].startswith(f"email: not sent: SMTP 127.0.0.1:{controller.port}: refused the recipient(s) 'ml-team@example.org', 'oncall@example.org'")
    assert not inbox.messages and lines[1] == f"webhook: posted to {host} (HTTP 200)"


@pytest.mark.slow  # a real pass: the frozen reference, drift of 17 columns and the estimator's fit take 15-70 s here
def test_a_real_pass_over_july_mails_and_posts_its_critical_drift_alert(flights_project, params, tmp_path, smtp, webhook, monkeypatch):
    """Predictions of the bundled model on 500 July 2013 rows, logged as the server logs them, then
    one pass of the monitor as `driftgate monitor --once` runs it."""
    import pandas as pd

    from driftgate.config import Paths, parse_window
    from driftgate.data.dataset import features_frame, select_window
    from driftgate.model import train
    from driftgate.monitoring.reference import ModelInfo
    from driftgate.monitoring.service import Monitor
    from driftgate.store.predictions import PredictionLog

    inbox, port = smtp
    hook, host = webhook
    for name, value in {**smtp_env(port), "DRIFTGATE_WEBHOOK_URL": f"http://{host}{SECRET_PATH}"}.items():
        monkeypatch.setenv(name, value)
    paths = Paths(flights_project)
    model = ModelInfo.from_card(paths.model)
    pipeline, _ = train.load(paths.model, paths.model_card)
    july = select_window(pd.read_parquet(paths.dataset), parse_window("2013-07"), "July").sample(500, random_state=1)
    features = features_frame(july, model.schema)
    scores = pipeline.predict_proba(features)[:, 1]
    records = json.loads(features.to_json(orient="records"))
    log_path = tmp_path / "log.sqlite"
    log = PredictionLog(log_path)
    for start in range(0, len(records), 100):
        log.append(records[start:start + 100], [{"probability": float(p), "decision": "1" if p >= 0.5 else "0"}
                                                 for p in scores[start:start + 100]], str(uuid.uuid4()), "rest", model.version)

    said: list[str] = []
    result = Monitor.open(params, log_path, paths.model, paths, say=said.append).once()

    assert result.status == "done" and result.level == "critical"
    drift_alert = next(a for a in result.notifiable if a["rule"] == "drift_share")
    assert drift_alert["event"] == "fired" and drift_alert["level"] == "critical"
    assert "email: sent to ml-team@example.org, oncall@example.org" in said
    assert f"webhook: posted to {host} (HTTP 200)" in said

    [message] = inbox.messages
    assert message["Subject"].startswith(f"[driftgate] CRITICAL: {params.project.title}: drift share ")
    text = message.get_body(("plain",)).get_content()
    assert drift_alert["message"] in text and f"pass: {result.pass_id}" in text and f"model version: {model.version}" in text
    [request] = hook.requests
    posted = html.unescape(json.loads(request["body"])["text"])
    assert f"CRITICAL fired (drift_share): {drift_alert['message']}" in posted
    for alert in result.notifiable:
        assert alert["message"] in posted and alert["message"] in text
