"""`driftgate alert` against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS with a
self-signed certificate, implicit TLS, a refused login, and missing settings."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from typer.testing import CliRunner

from driftgate.cli.main import app

USER, PASSWORD = "alerts", "s3cret-Passw0rd"
FAILED_GATE = {
    "passed": False,
    "gates": [
        {"gate": "f1 (current 2013-09)", "value": 0.3123, "op": ">=", "threshold": 0.38, "passed": False, "status": "FAIL",
         "detail": "0.068 below the minimum; see reports/plots"},
        {"gate": "drift share", "value": 0.4706, "op": "<=", "threshold": 0.55, "passed": True, "status": "PASS", "detail": ""},
    ],
}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _server(inbox: Inbox, **kwargs) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def starttls_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = _server(inbox, tls_context=context, require_starttls=True, authenticator=_authenticator, auth_require_tls=True)
    yield inbox, controller.port, cert
    controller.stop()


@pytest.fixture
def project(tmp_path, root, monkeypatch):
    """A folder with params.yaml, a failed gate verdict and the drift plot to attach."""
    (tmp_path / "reports" / "drift").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text())
    (tmp_path / "reports" / "gate.json").write_text(json.dumps(FAILED_GATE))
    (tmp_path / "reports" / "drift" / "drift.png").write_bytes((root / "reports" / "drift" / "drift.png").read_bytes())
    monkeypatch.chdir(tmp_path)
    for name in ("CI_PIPELINE_SOURCE", "GITHUB_EVENT_NAME", "CI_PIPELINE_URL", "GITHUB_RUN_ID", "CI_JOB_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _settings(port: int, **extra: str) -> dict[str, str]:
    return {"DRIFTGATE_SMTP_HOST": "127.0.0.1", "DRIFTGATE_SMTP_PORT": str(port), "DRIFTGATE_ALERT_FROM": "driftgate@example.org",
            "DRIFTGATE_ALERT_TO": "ml-team@example.org, oncall@example.org", **extra}


def alert(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["alert", *args], env=env, catch_exceptions=False)


def test_failed_gate_is_mailed_over_starttls_with_login(project, starttls_server):
    inbox, port, cert = starttls_server
    env = _settings(port, DRIFTGATE_SMTP_USER=USER, DRIFTGATE_SMTP_PASSWORD=PASSWORD, DRIFTGATE_SMTP_CAFILE=str(cert),
                    CI_PIPELINE_SOURCE="schedule", CI_PIPELINE_URL="https://gitlab.example.org/ml/flights/-/pipelines/42",
                    CI_JOB_URL="https://gitlab.example.org/ml/flights/-/jobs/7", CI_PROJECT_PATH="ml/flights",
                    CI_COMMIT_REF_NAME="main")
    result = alert(env)
    assert result.exit_code == 0, result.output
    assert "sent to ml-team@example.org, oncall@example.org" in result.output
    assert ": [driftgate] ml/flights: FAILED" in result.output  # the subject, not eaten as markup
    assert PASSWORD not in result.output
    [message] = inbox.messages
    assert message["Subject"] == "[driftgate] ml/flights: FAILED f1 (current 2013-09) on main"
    assert inbox.envelopes[0].rcpt_tos == ["ml-team@example.org", "oncall@example.org"]
    text = message.get_body(("plain",)).get_content()
    assert "1 of 2 gates failed." in text and "0.3123" in text and "0.068 below the minimum" in text
    assert "pipeline: https://gitlab.example.org/ml/flights/-/pipelines/42" in text
    assert "https://gitlab.example.org/ml/flights/-/jobs/7/artifacts/browse/reports" in text
    html = message.get_body(("html",)).get_content()
    assert "<td>f1 (current 2013-09)</td>" in html and "FAIL</td>" in html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "drift.png" and attachment.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert PASSWORD.encode() not in inbox.envelopes[0].content


def test_wrong_password_is_a_clear_error_that_never_shows_the_password(project, starttls_server):
    inbox, port, cert = starttls_server
    wrong = "not-the-" + PASSWORD
    result = alert(_settings(port, DRIFTGATE_SMTP_USER=USER, DRIFTGATE_SMTP_PASSWORD=wrong, DRIFTGATE_SMTP_CAFILE=str(cert)))
    assert result.exit_code == 2
    assert f"SMTP 127.0.0.1:{port}: refused the login for {USER} (535)" in result.output
    assert "DRIFTGATE_SMTP_PASSWORD" in result.output and wrong not in result.output and not inbox.messages


def test_untrusted_certificate_and_plain_text_are_refused(project, starttls_server):
    inbox, port, _ = starttls_server
    untrusted = alert(_settings(port, DRIFTGATE_SMTP_USER=USER, DRIFTGATE_SMTP_PASSWORD=PASSWORD))
    assert untrusted.exit_code == 2 and "TLS failed" in untrusted.output and "DRIFTGATE_SMTP_CAFILE" in untrusted.output
    plain = alert(_settings(port, DRIFTGATE_SMTP_SECURITY="none"))
    assert plain.exit_code == 2 and "530" in plain.output  # the server insists on STARTTLS first
    assert not inbox.messages


def test_implicit_tls(project, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = _server(inbox, ssl_context=context)
    try:
        result = alert(_settings(controller.port, DRIFTGATE_SMTP_SECURITY="ssl", DRIFTGATE_SMTP_CAFILE=str(cert)))
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert len(inbox.messages) == 1


def test_passing_gate_sends_nothing_by_default_and_missing_settings_only_warn(project, starttls_server):
    inbox, port, cert = starttls_server
    (project / "reports" / "gate.json").write_text(json.dumps({**FAILED_GATE, "passed": True,
                                                               "gates": [{**g, "passed": True, "status": "PASS"} for g in FAILED_GATE["gates"]]}))
    quiet = alert(_settings(port, DRIFTGATE_SMTP_SECURITY="none"))
    assert quiet.exit_code == 0 and "all gates passed: no alert (alerts.send_on: failure)" in quiet.output
    (project / "reports" / "gate.json").write_text(json.dumps(FAILED_GATE))
    unset = alert({"DRIFTGATE_SMTP_HOST": ""})
    assert unset.exit_code == 0
    assert "email alerts need DRIFTGATE_SMTP_HOST, DRIFTGATE_ALERT_FROM, DRIFTGATE_ALERT_TO" in unset.output
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("required: false", "required: true"))
    required = alert({"DRIFTGATE_SMTP_HOST": ""})
    assert required.exit_code == 2 and not inbox.messages


def test_missing_gate_verdicts_alert_as_a_failure(project, starttls_server):
    """Fail closed: a gate job that died before writing gate.json still raises the alarm."""
    inbox, port, cert = starttls_server
    (project / "reports" / "gate.json").unlink()
    env = _settings(port, DRIFTGATE_SMTP_USER=USER, DRIFTGATE_SMTP_PASSWORD=PASSWORD, DRIFTGATE_SMTP_CAFILE=str(cert))
    result = alert(env)
    assert result.exit_code == 0, result.output
    [message] = inbox.messages
    assert "FAILED gate verdicts missing" in message["Subject"]
    assert "Treat this run as failed" in message.get_body(("plain",)).get_content()


def test_a_wrong_smtp_setting_is_an_error_even_when_alerts_are_optional(project, starttls_server):
    """Nothing set means alerts are off (a warning); a misspelt setting someone did set is a mistake (exit 2)."""
    inbox, port, cert = starttls_server
    (project / "reports" / "gate.json").write_text(json.dumps(FAILED_GATE))
    wrong = alert(_settings(port, DRIFTGATE_SMTP_PORT="25x"))
    assert wrong.exit_code == 2 and "DRIFTGATE_SMTP_PORT" in wrong.output and not inbox.messages
    assert "Traceback" not in wrong.output
