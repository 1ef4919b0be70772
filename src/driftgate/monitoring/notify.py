"""Alert notifications of the monitor: what a pass's alert rows (fired, renotified, escalated,
resolved) tell each channel in params.yaml `monitoring.notify`.

    lines = send_alerts(outcome, params, model_version)   # one line per channel, for the log

=============================  =============================================================
``email``                      the SMTP settings of the gate's alert email (``DRIFTGATE_SMTP_*``,
                               ``DRIFTGATE_ALERT_FROM``, ``DRIFTGATE_ALERT_TO``; see
                               reporting.alerts): a text and HTML message listing every event
``webhook``                    ``DRIFTGATE_WEBHOOK_URL``: a JSON POST ``{"text": ...}``, which
                               Slack's and Microsoft Teams' incoming webhooks both accept
=============================  =============================================================

The pass is already recorded when this runs, so a channel that is not configured or fails is
a returned line, never an exception. The webhook's URL is a secret (its path is the key): a
line names its host only; a line about email names the SMTP server, never the password.
"""

from __future__ import annotations

import email.policy
import html
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from driftgate.config import Params
from driftgate.errors import DriftgateError
from driftgate.monitoring.levels import RANK
from driftgate.monitoring.monitor import PassOutcome
from driftgate.reporting.alerts import REQUIRED, SmtpNotConfigured, SmtpSettings, send

WEBHOOK_VARIABLE = "DRIFTGATE_WEBHOOK_URL"
WEBHOOK_TIMEOUT = 10.0  # seconds for the whole POST; a webhook that hangs must not hold the monitor
HEADERS = ("event", "rule", "level", "message")
COLOURS = {"critical": "#cf222e", "warning": "#9a6700", "ok": "#1a7f37"}

Alert = dict[str, Any]


# --------------------------------------------------------------------------- what is said


def ordered(alerts: Sequence[Alert]) -> list[Alert]:
    """Worst level first (critical, warning, then resolved rows, which are ok); otherwise in the pass's order."""
    return sorted(alerts, key=lambda a: -RANK.get(a["level"], 0))


def _label(alert: Alert) -> str:
    return "RESOLVED" if alert["event"] == "resolved" else str(alert["level"]).upper()


def _short(alert: Alert) -> str:
    """The rule's message without its trailing "(critical)": the label says the level already."""
    message = str(alert["message"])
    suffix = f" ({alert['level']})"
    return message[: -len(suffix)] if message.endswith(suffix) else message


def headline(outcome: PassOutcome, params: Params) -> str:
    """`CRITICAL: <title>: drift share 0.647 >= 0.5 (and 1 more)`: the worst event first."""
    events = ordered(outcome.notifiable)
    first = events[0]
    more = f" (and {len(events) - 1} more)" if len(events) > 1 else ""
    return f"{_label(first)}: {params.project.title}: {_short(first)}{more}"


def subject(outcome: PassOutcome, params: Params) -> str:
    return f"[driftgate] {headline(outcome, params)}"


def _window(outcome: PassOutcome) -> str:
    """What the pass read: the log's id range (from the drift result) and the pass's own reason."""
    compared = outcome.drift.current_window if outcome.drift is not None else ""
    return f"{compared} ({outcome.reason})" if compared and compared not in outcome.reason else outcome.reason


def details(outcome: PassOutcome, params: Params, model_version: str) -> list[tuple[str, str]]:
    """The facts under the events: pass, level, rows, window, model version."""
    return [("pass", str(outcome.pass_id)), ("level of the pass", outcome.level),
            (params.project.rows, f"{outcome.rows:,}"), ("window", _window(outcome)), ("model version", model_version)]


def rows(outcome: PassOutcome) -> list[tuple[str, str, str, str]]:
    return [(str(a["event"]), str(a["rule"]), str(a["level"]), str(a["message"])) for a in ordered(outcome.notifiable)]


def text_body(outcome: PassOutcome, params: Params, model_version: str) -> str:
    from tabulate import tabulate

    events = outcome.notifiable
    lines = [f"{params.project.title}: monitoring pass {outcome.pass_id} is {outcome.level}; "
             f"{len(events)} alert event{'s' if len(events) != 1 else ''}.", "",
             tabulate(rows(outcome), headers=HEADERS, disable_numparse=True), ""]
    lines += [f"{name}: {value}" for name, value in details(outcome, params, model_version)]
    return "\n".join(lines) + "\n"


def html_body(outcome: PassOutcome, params: Params, model_version: str) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(event)}</td><td>{html.escape(rule)}</td>"
        f"<td style=\"color:{COLOURS.get(level, '#000')};font-weight:bold\">{html.escape(level)}</td>"
        f"<td>{html.escape(message)}</td></tr>"
        for event, rule, level, message in rows(outcome))
    headers = "".join(f"<th>{h}</th>" for h in HEADERS)
    facts = "".join(f"<li>{html.escape(name)}: {html.escape(value)}</li>" for name, value in details(outcome, params, model_version))
    return (f"<html><body><p><b>{html.escape(headline(outcome, params))}</b></p>"
            f"<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr>{headers}</tr>{cells}</table>"
            f"<ul>{facts}</ul></body></html>")


def build_email(outcome: PassOutcome, params: Params, model_version: str, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A multipart/alternative text + HTML message about the pass's notifiable events."""
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))  # a long subject stays on one line
    message["Subject"] = subject(outcome, params)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(text_body(outcome, params, model_version))
    message.add_alternative(html_body(outcome, params, model_version), subtype="html")
    return message


def _chat(text: str) -> str:
    """Slack's escaping (&, <, > as entities; a bare < would open a link); Teams' connector cards
    read the same entities, since their text is Markdown with some HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(outcome: PassOutcome, params: Params, model_version: str) -> dict[str, str]:
    """`{"text": ...}`: a headline, a line per event, then the pass. Lines are split by a blank
    line, which both Slack and Teams show as a line break (Teams joins single newlines)."""
    lines = [f"[driftgate] {headline(outcome, params)}"]
    lines += [f"{_label(a)}{'' if a['event'] == 'resolved' else ' ' + a['event']} ({a['rule']}): {a['message']}"
              for a in ordered(outcome.notifiable)]
    lines.append(f"pass {outcome.pass_id} is {outcome.level}; window: {_window(outcome)}; model version {model_version}")
    return {"text": "\n\n".join(_chat(line) for line in lines)}


# --------------------------------------------------------------------------- channels


def _email(outcome: PassOutcome, params: Params, model_version: str, env: Mapping[str, str]) -> str:
    try:
        settings = SmtpSettings.from_env(env)
    except SmtpNotConfigured:
        return f"email: not configured ({', '.join(REQUIRED)} unset)"
    except DriftgateError as exc:
        return f"email: not sent: {_one_line(exc)}"
    try:
        send(build_email(outcome, params, model_version, settings.sender, settings.recipients), settings)
    except DriftgateError as exc:
        return f"email: not sent: {_one_line(exc)}"
    return f"email: sent to {', '.join(settings.recipients)}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without its body: it is reported instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


def webhook_url(env: Mapping[str, str]) -> tuple[str | None, str]:
    """(the URL, its host for messages), or (None, why it cannot be used)."""
    value = (env.get(WEBHOOK_VARIABLE) or "").strip()
    if not value:
        return None, f"not configured ({WEBHOOK_VARIABLE} unset)"
    invalid = f"{WEBHOOK_VARIABLE} is invalid"
    if not value.isprintable() or any(c.isspace() for c in value):
        return None, f"{invalid}: it holds spaces or control characters (give the incoming webhook's URL on one line)"
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        return None, f"{invalid}: not a URL (give the incoming webhook's URL, https://...)"
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"'{parts.scheme}'" if parts.scheme and len(parts.scheme) <= 10 else "none"
        return None, f"{invalid}: its scheme is {shown}, not http or https (give the incoming webhook's URL, https://...)"
    if not parts.hostname:
        return None, f"{invalid}: it names no host (give the incoming webhook's URL, https://...)"
    return value, parts.hostname + (f":{port}" if port else "")


def _webhook(outcome: PassOutcome, params: Params, model_version: str, env: Mapping[str, str]) -> str:
    url, host = webhook_url(env)
    if url is None:
        return f"webhook: {host}"
    body = json.dumps(webhook_payload(outcome, params, model_version)).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "driftgate"})
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        answer = _answer(exc)
        exc.close()
        return f"webhook: not posted: {host} answered HTTP {exc.code}{answer}"
    except urllib.error.URLError as exc:
        return f"webhook: not posted: cannot reach {host} ({_scrub(exc.reason, url, host)})"
    except (TimeoutError, http.client.HTTPException, OSError, ValueError) as exc:
        return f"webhook: not posted: {host}: {type(exc).__name__}: {_scrub(exc, url, host)}"
    if not 200 <= status < 300:
        return f"webhook: not posted: {host} answered HTTP {status}"
    return f"webhook: posted to {host} (HTTP {status})"


def _answer(error: urllib.error.HTTPError) -> str:
    """The start of an error answer (Slack says why: invalid_payload, no_service ...)."""
    try:
        text = error.read(300).decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return ""
    text = " ".join(text.split())[:120]
    return f": {text}" if text else ""


def _scrub(reason: object, url: str, host: str) -> str:
    """An error's text with the URL (whose path and query hold the secret) replaced by its host."""
    text = str(reason).replace(url, host)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return text
    for secret in (parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "...")
    return text


def _one_line(exc: DriftgateError) -> str:
    return f"{exc.where}: {exc.problem}" + (f" ({exc.hint})" if exc.hint else "")


CHANNELS: dict[str, Callable[[PassOutcome, Params, str, Mapping[str, str]], str]] = {"email": _email, "webhook": _webhook}


def send_alerts(outcome: PassOutcome, params: Params, model_version: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Tell every channel in params.monitoring.notify about outcome.notifiable (fired, renotified,
    escalated and resolved alert rows). Returns one line per channel for the log, e.g.
    'email: sent to a@x, b@y', 'webhook: posted to hooks.example.org (HTTP 200)',
    'email: not configured (...)'; [] when there is nothing to send. Never raises for a channel
    that fails or is not configured: the pass is already recorded, so the failure is in its line."""
    if not outcome.notifiable:
        return []
    env = os.environ if env is None else env
    lines = []
    for channel in dict.fromkeys(params.monitoring.notify):
        try:
            lines.append(CHANNELS[channel](outcome, params, model_version, env))
        except Exception as exc:  # noqa: BLE001 - the pass is recorded; a channel's bug is its line, not the monitor's end
            url = (env.get(WEBHOOK_VARIABLE) or "").strip()
            text = _scrub(exc, url, "the webhook") if url else str(exc)
            lines.append(f"{channel}: failed ({type(exc).__name__}: {text})")
    return lines
