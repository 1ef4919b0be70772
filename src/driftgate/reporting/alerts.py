"""Email alerts: a gate verdict as a multipart message, sent over SMTP.

The server and the addresses come from environment variables, which CI fills from its secrets;
nothing here is read from params.yaml or written to any file, so the password stays out of
artifacts and logs:

=============================  =============================================================
``DRIFTGATE_SMTP_HOST``        SMTP server (required)
``DRIFTGATE_SMTP_PORT``        port; default 587 for starttls, 465 for ssl, 25 for none
``DRIFTGATE_SMTP_SECURITY``    ``starttls`` (default), ``ssl`` (implicit TLS) or ``none``
``DRIFTGATE_SMTP_USER``        login user; no login when unset
``DRIFTGATE_SMTP_PASSWORD``    login password
``DRIFTGATE_SMTP_CAFILE``      CA bundle to trust (a self-signed server); default: the system's
``DRIFTGATE_ALERT_FROM``       sender address (required)
``DRIFTGATE_ALERT_TO``         recipients, comma-separated (required)
=============================  =============================================================
"""

from __future__ import annotations

import email.policy
import html
import mimetypes
import os
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from driftgate.errors import ConfigError, DriftgateError
from driftgate.reporting.render import GATE_HEADERS, gate_headline, gate_rows
from driftgate.reporting.report import CiContext
from driftgate.results import GateVerdicts

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
REQUIRED = ("DRIFTGATE_SMTP_HOST", "DRIFTGATE_ALERT_FROM", "DRIFTGATE_ALERT_TO")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log line or a file
    cafile: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if env is None else env
        missing = [name for name in REQUIRED if not env.get(name, "").strip()]
        if missing:
            raise ConfigError("environment", f"email alerts need {', '.join(missing)}",
                              "set them as CI variables (README: CI secrets), or leave alerts off")
        security = env.get("DRIFTGATE_SMTP_SECURITY", "starttls").strip().lower() or "starttls"
        if security not in SECURITY:
            raise ConfigError("DRIFTGATE_SMTP_SECURITY", f"is {security!r}", f"use one of: {', '.join(SECURITY)}")
        port_text = env.get("DRIFTGATE_SMTP_PORT", "").strip() or str(DEFAULT_PORTS[security])
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError("DRIFTGATE_SMTP_PORT", f"is {port_text!r}", "use a port number such as 587")
        recipients = tuple(address for _, address in getaddresses([env["DRIFTGATE_ALERT_TO"]]) if "@" in address)
        if not recipients:
            raise ConfigError("DRIFTGATE_ALERT_TO", "holds no email address", "use a comma-separated list such as a@x.org, b@x.org")
        user = env.get("DRIFTGATE_SMTP_USER", "").strip() or None
        password = env.get("DRIFTGATE_SMTP_PASSWORD") or None
        if user and not password:
            raise ConfigError("DRIFTGATE_SMTP_PASSWORD", f"is empty but DRIFTGATE_SMTP_USER is set ({user})",
                              "set the password as a masked CI variable")
        return cls(host=env["DRIFTGATE_SMTP_HOST"].strip(), port=int(port_text), sender=env["DRIFTGATE_ALERT_FROM"].strip(),
                   recipients=recipients, security=security, user=user, password=password,
                   cafile=env.get("DRIFTGATE_SMTP_CAFILE", "").strip() or None)


# --------------------------------------------------------------------------- deciding


def should_send(passed: bool, send_on: str, ci: CiContext) -> bool:
    """`failure`: any failed gate; `always`: every run; `schedule`: failures of scheduled runs."""
    if send_on == "always":
        return True
    if send_on == "schedule":
        return not passed and ci.scheduled
    return not passed


# --------------------------------------------------------------------------- the message


def subject(gate: GateVerdicts, ci: CiContext) -> str:
    where = f" on {ci.ref}" if ci.ref else ""
    if gate.passed:
        return f"[driftgate] {ci.project}: all {len(gate.gates)} gates passed{where}"
    names = ", ".join(g.gate for g in gate.failed) or ("gate verdicts missing" if not gate.gates else "no gate could be computed")
    return f"[driftgate] {ci.project}: FAILED {names}{where}"


def text_body(gate: GateVerdicts, ci: CiContext) -> str:
    from tabulate import tabulate

    lines = [gate_headline(gate, names=False), ""]
    if gate.gates:
        lines += [tabulate(gate_rows(gate), headers=GATE_HEADERS, disable_numparse=True), ""]
    lines += [f"{label}: {url}" for label, url in ci.links()]
    return "\n".join(lines).rstrip() + "\n"


def html_body(gate: GateVerdicts, ci: CiContext) -> str:
    colours = {"PASS": "#1a7f37", "SKIP": "#9a6700", "FAIL": "#cf222e"}
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row[:3])
        + f"<td style=\"color:{colours[row[3]]};font-weight:bold\">{row[3]}</td>"
        + f"<td>{html.escape(row[4])}</td></tr>"
        for row in gate_rows(gate))
    headers = "".join(f"<th>{h}</th>" for h in GATE_HEADERS)
    table = f"<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr>{headers}</tr>{cells}</table>" if cells else ""
    links = "".join(f"<li><a href=\"{html.escape(url)}\">{html.escape(label)}</a></li>" for label, url in ci.links())
    return (f"<html><body><p><b>{html.escape(gate_headline(gate, names=False))}</b></p>{table}"
            f"{f'<ul>{links}</ul>' if links else ''}</body></html>")


def build_message(gate: GateVerdicts, settings: SmtpSettings, ci: CiContext, attachments: list[Path] = ()) -> EmailMessage:
    """A multipart/alternative text + HTML message, with the key plots attached."""
    # Headers up to RFC 5322's 998 characters: Python's default folding at 78 would break a long
    # subject right after "Subject:", which some clients show with a leading space.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = subject(gate, ci)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(text_body(gate, ci))
    message.add_alternative(html_body(gate, ci), subtype="html")
    for path in attachments:
        path = Path(path)
        if not path.is_file():
            continue
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return message


# --------------------------------------------------------------------------- sending


def send(message: EmailMessage, settings: SmtpSettings) -> None:
    """Deliver over SMTP. Every failure becomes a DriftgateError naming the server, never the password."""
    where = f"SMTP {settings.host}:{settings.port}"
    context = ssl.create_default_context(cafile=settings.cafile)
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if settings.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if settings.user:
                client.login(settings.user, settings.password or "")
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DriftgateError(where, f"refused the login for {settings.user} ({exc.smtp_code})",
                             "check DRIFTGATE_SMTP_USER and DRIFTGATE_SMTP_PASSWORD") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DriftgateError(where, f"does not support what was asked ({exc})",
                             "check DRIFTGATE_SMTP_SECURITY (starttls, ssl or none) and the port") from None
    except ssl.SSLError as exc:
        raise DriftgateError(where, f"TLS failed ({exc.reason or exc})",
                             "check DRIFTGATE_SMTP_SECURITY and the port; for a private CA set DRIFTGATE_SMTP_CAFILE") from None
    except smtplib.SMTPResponseException as exc:
        raise DriftgateError(where, f"refused the message ({exc.smtp_code} {exc.smtp_error.decode(errors='replace')})",
                             "check the sender, the recipients and the server's policy") from None
    except (smtplib.SMTPException, socket.timeout, OSError) as exc:
        raise DriftgateError(where, f"cannot deliver ({type(exc).__name__}: {exc})",
                             "check DRIFTGATE_SMTP_HOST and DRIFTGATE_SMTP_PORT, and that the runner may reach it") from None
