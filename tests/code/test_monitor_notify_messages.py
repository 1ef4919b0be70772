"""What the monitor's notifications say: the email's subject and bodies, the webhook's JSON, which
channels are told, and the lines a channel that is not configured gives (no server needed)."""

from __future__ import annotations

import html
import json

import pytest

from driftgate.config import ProjectConfig
from driftgate.monitoring.monitor import PassOutcome
from driftgate.monitoring.notify import (
    WEBHOOK_VARIABLE,
    build_email,
    html_body,
    ordered,
    send_alerts,
    subject,
    text_body,
    webhook_payload,
    webhook_url,
)

DRIFT = {"rule": "drift_share", "level": "critical", "event": "fired", "value": 0.647, "threshold": 0.5,
         "message": "drift share 0.647 >= 0.5 (critical)", "incident": None}
MISSING = {"rule": "missing_share", "level": "warning", "event": "renotified", "value": 0.18, "threshold": 0.1,
           "message": "missing share rise (tenure) 0.184 >= 0.1 (warning)", "incident": 2}
RESOLVED = {"rule": "estimated_f1", "level": "ok", "event": "resolved", "value": 0.45, "threshold": 0.4,
            "message": "estimated F1 0.450 >= 0.4", "incident": 3}
EASED = {"rule": "realized_f1", "level": "warning", "event": "deescalated", "value": 0.38, "threshold": 0.4,
         "message": "realized F1 0.380 < 0.4 (warning)", "incident": 4}


@pytest.fixture
def churn(params):
    """The project's params, speaking of another dataset: nothing in a message may be about flights."""
    return params.model_copy(update={"project": ProjectConfig(title="customer churn", row="customer", rows="customers")})


def outcome(*alerts: dict, level: str = "critical") -> PassOutcome:
    return PassOutcome(pass_id=41, status="done", reason="612 customers: predictions after #1,000", level=level, rows=612,
                       alerts=[dict(a) for a in alerts])


def test_subject_names_the_project_and_the_worst_event_first(churn):
    assert subject(outcome(MISSING, RESOLVED, DRIFT), churn) == \
        "[driftgate] CRITICAL: customer churn: drift share 0.647 >= 0.5 (and 2 more)"
    assert subject(outcome(MISSING), churn) == "[driftgate] WARNING: customer churn: missing share rise (tenure) 0.184 >= 0.1"


def test_a_pass_that_only_resolves_says_resolved(churn):
    assert subject(outcome(RESOLVED, level="ok"), churn) == "[driftgate] RESOLVED: customer churn: estimated F1 0.450 >= 0.4"


def test_events_are_ordered_critical_warning_then_resolved():
    assert [a["rule"] for a in ordered([RESOLVED, MISSING, DRIFT])] == ["drift_share", "missing_share", "estimated_f1"]


def test_text_body_lists_every_notified_event_and_the_pass(churn):
    text = text_body(outcome(MISSING, EASED, DRIFT, RESOLVED), churn, "v-7f3a")
    lines = text.splitlines()
    assert lines[0] == "customer churn: monitoring pass 41 is critical; 3 alert events."
    for alert in (DRIFT, MISSING, RESOLVED):
        [row] = [line for line in lines if alert["message"] in line]
        assert row.split()[:3] == [alert["event"], alert["rule"], alert["level"]]
    assert EASED["message"] not in text  # easing is recorded, not notified
    assert "pass: 41" in lines and "customers: 612" in lines and "model version: v-7f3a" in lines
    assert "window: 612 customers: predictions after #1,000" in lines
    assert "flight" not in text.lower()


def test_html_body_escapes_and_colours_the_levels(churn):
    body = html_body(outcome(DRIFT, RESOLVED), churn, "v-7f3a")
    assert "drift share 0.647 &gt;= 0.5 (critical)" in body and ">= 0.5" not in body
    assert '<td style="color:#cf222e;font-weight:bold">critical</td>' in body
    assert '<td style="color:#1a7f37;font-weight:bold">ok</td>' in body
    assert "<li>model version: v-7f3a</li>" in body and "<li>customers: 612</li>" in body


def test_email_is_text_and_html_from_and_to_the_settings(churn):
    message = build_email(outcome(DRIFT), churn, "v-7f3a", "monitor@example.org", ["a@example.org", "b@example.org"])
    assert message["Subject"] == "[driftgate] CRITICAL: customer churn: drift share 0.647 >= 0.5"
    assert message["From"] == "monitor@example.org" and message["To"] == "a@example.org, b@example.org"
    assert message.get_content_type() == "multipart/alternative"
    assert DRIFT["message"] in message.get_body(("plain",)).get_content()
    assert "&gt;= 0.5" in message.get_body(("html",)).get_content()


def test_webhook_json_is_one_text_with_a_line_per_event(churn):
    payload = webhook_payload(outcome(RESOLVED, DRIFT, MISSING), churn, "v-7f3a")
    assert list(json.loads(json.dumps(payload))) == ["text"]  # what Slack and Teams incoming webhooks read
    lines = payload["text"].split("\n\n")
    assert html.unescape(lines[0]) == "[driftgate] CRITICAL: customer churn: drift share 0.647 >= 0.5 (and 2 more)"
    assert [html.unescape(line) for line in lines[1:4]] == [
        "CRITICAL fired (drift_share): drift share 0.647 >= 0.5 (critical)",
        "WARNING renotified (missing_share): missing share rise (tenure) 0.184 >= 0.1 (warning)",
        "RESOLVED (estimated_f1): estimated F1 0.450 >= 0.4"]
    assert lines[4] == "pass 41 is critical; window: 612 customers: predictions after #1,000; model version v-7f3a"
    assert "<" not in payload["text"] and ">" not in payload["text"]  # a bare < would open a Slack link


def test_webhook_text_escapes_a_title_with_markup(params):
    odd = params.model_copy(update={"project": ProjectConfig(title="A&B <risk>")})
    text = webhook_payload(outcome(DRIFT), odd, "v1")["text"]
    assert text.startswith("[driftgate] CRITICAL: A&amp;B &lt;risk&gt;: drift share 0.647 &gt;= 0.5")


def test_nothing_notifiable_sends_nothing(churn):
    env = {WEBHOOK_VARIABLE: "http://127.0.0.1:9/hook", "DRIFTGATE_SMTP_HOST": "127.0.0.1"}
    assert send_alerts(outcome(EASED, level="warning"), churn, "v1", env) == []
    assert send_alerts(outcome(level="ok"), churn, "v1", env) == []


def test_unconfigured_channels_give_a_line_each_not_an_error(churn):
    assert send_alerts(outcome(DRIFT), churn, "v1", {}) == [
        "email: not configured (DRIFTGATE_SMTP_HOST, DRIFTGATE_ALERT_FROM, DRIFTGATE_ALERT_TO unset)",
        "webhook: not configured (DRIFTGATE_WEBHOOK_URL unset)"]


def test_only_the_channels_in_params_are_told(churn):
    only_webhook = churn.model_copy(update={"monitoring": churn.monitoring.model_copy(update={"notify": ["webhook"]})})
    assert send_alerts(outcome(DRIFT), only_webhook, "v1", {}) == ["webhook: not configured (DRIFTGATE_WEBHOOK_URL unset)"]
    silent = churn.model_copy(update={"monitoring": churn.monitoring.model_copy(update={"notify": []})})
    assert send_alerts(outcome(DRIFT), silent, "v1", {}) == []


def test_half_set_smtp_settings_are_a_line_naming_what_is_missing(churn):
    [line, _] = send_alerts(outcome(DRIFT), churn, "v1", {"DRIFTGATE_SMTP_HOST": "smtp.example.org"})
    assert line.startswith("email: not sent: DRIFTGATE_ALERT_FROM, DRIFTGATE_ALERT_TO: not set")


@pytest.mark.parametrize(("value", "problem"), [
    ("ftp://hooks.example.org/T000/B000/XyZsecret", "its scheme is 'ftp', not http or https"),
    ("hooks.example.org/T000/B000/XyZsecret", "its scheme is none, not http or https"),
    ("https:///T000/B000/XyZsecret", "it names no host"),
    ("https://hooks.example.org/T000 B000/XyZsecret", "it holds spaces or control characters"),
    ("https://hooks.example.org:99999/T000/B000/XyZsecret", "not a URL"),
])
def test_an_invalid_webhook_url_is_named_without_its_secret(churn, value, problem):
    url, why = webhook_url({WEBHOOK_VARIABLE: value})
    assert url is None and why.startswith(f"{WEBHOOK_VARIABLE} is invalid: {problem}")
    [line] = send_alerts(outcome(DRIFT), churn.model_copy(update={"monitoring": churn.monitoring.model_copy(
        update={"notify": ["webhook"]})}), "v1", {WEBHOOK_VARIABLE: value})
    assert line == f"webhook: {why}" and "XyZsecret" not in line and "T000" not in line


def test_a_valid_webhook_url_is_shown_by_its_host_only():
    assert webhook_url({WEBHOOK_VARIABLE: " https://hooks.example.org/services/T0/B0/secret "}) == \
        ("https://hooks.example.org/services/T0/B0/secret", "hooks.example.org")
    assert webhook_url({WEBHOOK_VARIABLE: "http://127.0.0.1:8080/hook?token=s"})[1] == "127.0.0.1:8080"
