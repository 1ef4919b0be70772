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
import ipaddress
import mimetypes
import os
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from driftgate.errors import ConfigError, DriftgateError, listed
from driftgate.reporting.render import GATE_HEADERS, gate_headline, gate_rows
from driftgate.reporting.report import CiContext
from driftgate.results import GateVerdicts

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
REQUIRED = ("DRIFTGATE_SMTP_HOST", "DRIFTGATE_ALERT_FROM", "DRIFTGATE_ALERT_TO")
VARIABLES = ("DRIFTGATE_SMTP_HOST", "DRIFTGATE_SMTP_PORT", "DRIFTGATE_SMTP_SECURITY", "DRIFTGATE_SMTP_USER",
             "DRIFTGATE_SMTP_PASSWORD", "DRIFTGATE_SMTP_CAFILE", "DRIFTGATE_ALERT_FROM", "DRIFTGATE_ALERT_TO")
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_ADDRESS = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


class SmtpNotConfigured(ConfigError):
    """No SMTP variable is set at all: alerts are off (a warning unless alerts.required).
    Any other ConfigError from SmtpSettings.from_env is a mistake in settings someone did set."""


def _host(value: str) -> str:
    name = "DRIFTGATE_SMTP_HOST"
    if "://" in value:
        raise ConfigError(name, f"is a URL ({value!r})", "give the server's host name only, e.g. smtp.example.org "
                          "(the port goes in DRIFTGATE_SMTP_PORT, TLS in DRIFTGATE_SMTP_SECURITY)")
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ConfigError(name, f"holds spaces or control characters ({value!r})", "give one host name, e.g. smtp.example.org")
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    if ":" in value:
        raise ConfigError(name, f"is {value!r}: a host with a port", "put the port in DRIFTGATE_SMTP_PORT and the host name alone here")
    if not _HOST.match(value) or ".." in value:
        raise ConfigError(name, f"is {value!r}: not a host name", "use a name such as smtp.example.org or an IP address")
    return value


def _address(value: str, name: str) -> str:
    """One email address (optionally with a display name: `Team <team@example.org>`)."""
    if "\n" in value or "\r" in value:
        raise ConfigError(name, "holds a line break", "give the address on one line")
    parsed = getaddresses([value])
    if len(parsed) != 1 or not _ADDRESS.match(parsed[0][1]):
        raise ConfigError(name, f"is {value.strip()!r}: not an email address", "use an address such as ml-team@example.org")
    return value.strip()


def _cafile(value: str) -> str:
    name = "DRIFTGATE_SMTP_CAFILE"
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(name, f"{value!r} is not a file", "give the path of a PEM CA bundle, or unset it to trust the system's CAs")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(name, f"{value!r} holds no usable certificate ({exc})", "give a PEM file with the CA's certificate") from None
    return str(path)


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
        """The settings from DRIFTGATE_SMTP_* and DRIFTGATE_ALERT_*. Every bad value is a ConfigError
        naming the variable; none set at all is SmtpNotConfigured. The password is never shown."""
        env = os.environ if env is None else env
        value = {name: (env.get(name) or "").strip() for name in VARIABLES}
        value["DRIFTGATE_SMTP_PASSWORD"] = env.get("DRIFTGATE_SMTP_PASSWORD") or ""
        missing = [name for name in REQUIRED if not value[name]]
        if missing:
            given = [name for name in VARIABLES if value[name]]
            if not given:
                raise SmtpNotConfigured("environment", f"email alerts need {', '.join(missing)}",
                                        "set them as CI variables (README: CI secrets), or leave alerts off")
            raise ConfigError(", ".join(missing), f"not set, but {listed(given)} {'is' if len(given) == 1 else 'are'}: "
                              f"email alerts need {', '.join(REQUIRED)}",
                              "set the missing ones as CI variables (README: CI secrets), or unset the others to leave alerts off")
        for name in VARIABLES:
            if name != "DRIFTGATE_SMTP_PASSWORD" and not value[name].isprintable():
                raise ConfigError(name, "holds control characters or a line break", "give it on one line")
        host = _host(value["DRIFTGATE_SMTP_HOST"])
        security = value["DRIFTGATE_SMTP_SECURITY"].lower() or "starttls"
        if security not in SECURITY:
            raise ConfigError("DRIFTGATE_SMTP_SECURITY", f"is {value['DRIFTGATE_SMTP_SECURITY']!r}",
                              f"use one of: {', '.join(SECURITY)} (ssl: implicit TLS, usually port 465)")
        port_text = value["DRIFTGATE_SMTP_PORT"] or str(DEFAULT_PORTS[security])
        if not port_text.isascii() or not port_text.isdigit():
            raise ConfigError("DRIFTGATE_SMTP_PORT", f"is {port_text!r}: not a port number", "use a whole number such as 587")
        if not 0 < int(port_text) < 65536:
            raise ConfigError("DRIFTGATE_SMTP_PORT", f"is {int(port_text)}: outside 1..65535", "use a port number such as 587")
        sender = _address(value["DRIFTGATE_ALERT_FROM"], "DRIFTGATE_ALERT_FROM")
        entries = [entry.strip() for entry in value["DRIFTGATE_ALERT_TO"].split(",") if entry.strip()]
        recipients = tuple(dict.fromkeys(getaddresses([_address(entry, "DRIFTGATE_ALERT_TO")])[0][1] for entry in entries))
        if not recipients:
            raise ConfigError("DRIFTGATE_ALERT_TO", "holds no email address", "use a comma-separated list such as a@x.org, b@x.org")
        user = value["DRIFTGATE_SMTP_USER"] or None
        password = value["DRIFTGATE_SMTP_PASSWORD"] or None
        if user and not password:
            raise ConfigError("DRIFTGATE_SMTP_PASSWORD", f"is empty but DRIFTGATE_SMTP_USER is set ({user})",
                              "set the password as a masked CI variable")
        if password and not user:
            raise ConfigError("DRIFTGATE_SMTP_USER", "is empty but DRIFTGATE_SMTP_PASSWORD is set",
                              "set the login user too, or unset the password to send without a login")
        if user and security == "none":
            raise ConfigError("DRIFTGATE_SMTP_SECURITY", "is none, which would send DRIFTGATE_SMTP_PASSWORD unencrypted",
                              "use starttls or ssl with a login, or unset DRIFTGATE_SMTP_USER for a relay without one")
        cafile = _cafile(value["DRIFTGATE_SMTP_CAFILE"]) if value["DRIFTGATE_SMTP_CAFILE"] and security != "none" else None
        return cls(host=host, port=int(port_text), sender=sender, recipients=recipients, security=security, user=user,
                   password=password, cafile=cafile)


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
    try:
        context = ssl.create_default_context(cafile=settings.cafile)
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
    except smtplib.SMTPRecipientsRefused as exc:
        refused = listed(sorted(exc.recipients), quote=True)
        raise DriftgateError(where, f"refused the recipient(s) {refused}", "check DRIFTGATE_ALERT_TO") from None
    except smtplib.SMTPSenderRefused as exc:
        raise DriftgateError(where, f"refused the sender {exc.sender} ({exc.smtp_code})", "check DRIFTGATE_ALERT_FROM") from None
    except smtplib.SMTPResponseException as exc:
        raise DriftgateError(where, f"refused the message ({exc.smtp_code} {exc.smtp_error.decode(errors='replace')})",
                             "check the sender, the recipients and the server's policy") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DriftgateError(where, f"cannot deliver ({type(exc).__name__}: {exc})",
                             "check DRIFTGATE_SMTP_HOST and DRIFTGATE_SMTP_PORT, and that the runner may reach it") from None
    except (UnicodeError, ValueError) as exc:  # e.g. a non-ASCII address to a server without SMTPUTF8
        raise DriftgateError(where, f"cannot send this message ({type(exc).__name__}: {exc})",
                             "use ASCII addresses in DRIFTGATE_ALERT_FROM and DRIFTGATE_ALERT_TO") from None
