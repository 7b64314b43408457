"""``luigi.notifications``: e-mails through Ductwork's mail settings, sent when Luigi sends them."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Sequence
from html import escape as html_escape
from typing import TYPE_CHECKING, Any

from . import parameter as p
from .task import Config

if TYPE_CHECKING:
    from ductwork.integrations.email.operators import SmtpConfig

logger = logging.getLogger("luigi-interface")
DEBUG = False


class email(Config):
    force_send = p.BoolParameter(default=False)
    format = p.Parameter(default="plain")
    method = p.Parameter(default="smtp")
    prefix = p.Parameter(default="")
    receiver = p.Parameter(default="")
    sender = p.Parameter(default="luigi-client@localhost")
    traceback_max_length = p.IntParameter(default=5000)


class smtp(Config):
    """Luigi's ``[smtp]`` section: when the configuration has one, the mail server is this one
    (as in Luigi) rather than Ductwork's ``smtp_default`` connection."""

    host = p.Parameter(default="localhost")
    local_hostname = p.OptionalParameter(default=None)
    no_tls = p.BoolParameter(default=False)
    password = p.OptionalParameter(default=None)
    port = p.IntParameter(default=0)
    ssl = p.BoolParameter(default=False)
    timeout = p.FloatParameter(default=10.0)
    username = p.OptionalParameter(default=None)


def send_email(subject: str, message: str, sender: str, recipients: Sequence[str], image_png: Any = None) -> None:
    """Send through the ``smtp_default`` connection (or the ``smtp_url`` setting), as Luigi
    decides: with ``[email] prefix`` before the subject, to each address of the comma-separated
    recipients, and not at all without recipients, from a terminal (unless ``force_send``) or
    with ``format = none``; with ``DEBUG`` set, only log it, as Luigi's tests expect."""
    subject = _prefix(subject)
    addresses = [a.strip() for r in recipients if r for a in r.split(",") if a.strip()]
    if not addresses:
        return
    disabled = _email_disabled_reason()
    if disabled:
        logger.info("Not sending email to %r because %s", addresses, disabled)
        return
    if DEBUG:
        logger.info("Not sending e-mail (DEBUG): %s to %s", subject, ", ".join(addresses))
        return
    from ductwork.integrations.email.operators import build_message
    from ductwork.integrations.email.operators import send_email as _send

    logger.info("Sending email to %r", addresses)
    html = message if email().format == "html" else f"<pre>{html_escape(message)}</pre>"
    text = None if email().format == "html" else message
    _send(build_message(sender=sender, to=addresses, subject=subject, html=html, text=text), smtp=_mail_server())


def _mail_server() -> SmtpConfig:
    """Luigi's ``[smtp]`` settings when the configuration has that section (STARTTLS when the
    server offers it unless ``no_tls``, the login only with both ``username`` and ``password``,
    port 0 meaning the protocol's, HELO/EHLO naming ``local_hostname`` when set), else the
    ``smtp_default`` connection, else localhost:25."""
    from ductwork.engine.services_setup import build_secrets
    from ductwork.integrations.email.alerts import FlowFailureEmail
    from ductwork.integrations.email.operators import SmtpConfig

    from .configuration.core import luigi_sources

    if "smtp" not in luigi_sources().file:
        return FlowFailureEmail(build_secrets()).smtp()
    settings = smtp()
    login = bool(settings.username and settings.password)
    return SmtpConfig(
        host=settings.host,
        port=settings.port or (465 if settings.ssl else 25),
        user=settings.username if login else None,
        password=settings.password if login else None,
        ssl=settings.ssl,
        starttls_if_offered=not settings.no_tls and not settings.ssl,
        timeout=settings.timeout,
        local_hostname=settings.local_hostname or None,
    )


def _email_disabled_reason() -> str | None:
    settings = email()
    if settings.format == "none":
        return "email format is 'none'"
    if settings.method != "smtp":
        return f"[email] method {settings.method!r} is not supported here (only 'smtp')"
    if not settings.force_send and sys.stdout.isatty():
        return "running from a tty"
    return None


def _prefix(subject: str) -> str:
    prefix = email().prefix
    return f"{prefix} {subject}" if prefix else subject


def _email_recipients(additional_recipients: str | Sequence[str] | None = None) -> list[str]:
    receiver = email().receiver
    recipients = [receiver] if receiver else []
    if isinstance(additional_recipients, str):
        recipients.append(additional_recipients)
    elif additional_recipients:
        recipients.extend(additional_recipients)
    return recipients


def send_error_email(subject: str, message: str, additional_recipients: str | Sequence[str] | None = None) -> None:
    """Luigi's ``send_error_email``: to ``[email] receiver`` and ``additional_recipients``,
    from ``[email] sender`` (what modules call from their failure handlers)."""
    send_email(
        subject=subject, message=message, sender=email().sender, recipients=_email_recipients(additional_recipients)
    )


def format_task_error(headline: str, task: Any, command: str, formatted_exception: str | None = None) -> str:
    """The body of a task's error e-mail, as Luigi writes it (plain text, or ``format = html``)."""
    settings = email()
    trace = formatted_exception or ""
    if len(trace) > settings.traceback_max_length:
        trace = trace[: settings.traceback_max_length] + "...Traceback exceeds max length and has been truncated."
    params = task.to_str_params()
    if settings.format == "html":
        rows = "\n".join(f"<tr><th>{html_escape(k)}</th><td>{html_escape(str(v))}</td></tr>" for k, v in params.items())
        return (
            f"<html>\n<body>\n<h2>{html_escape(headline)}</h2>\n<table><thead><tr><th>name</th><td>"
            f"{html_escape(task.task_family)}</td></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n"
            f"<h2>Command line</h2>\n<pre>\n{html_escape(command)}\n</pre>\n<h2>Traceback</h2>\n"
            f"<pre>{html_escape(trace)}</pre>\n</body>\n</html>\n"
        )
    width = max([0, *map(len, params)])
    lines = "\n".join(f"  {k:{width}}: {v}" for k, v in params.items())
    return f"{headline}\n\nName: {task.task_family}\n\nParameters:\n{lines}\n\nCommand line:\n  {command}\n\n{trace}\n"


def email_task_failure(task: Any, formatted_traceback: str | None) -> None:
    """What Luigi's worker does when a task's try fails: e-mail ``[email] receiver`` and the
    task's ``owner_email`` (unless ``[worker] send_failure_email = false``), with Luigi's
    subject and headline. A mail problem is logged: it must not change the task's outcome."""
    _email_error(
        task,
        formatted_traceback,
        subject=f"Luigi: {task} FAILED. Host: {socket.gethostname()}",
        headline="A task failed when running. Most likely run() raised an exception.",
    )


def email_scheduling_failure(task: Any, method: str, formatted_traceback: str) -> None:
    """What Luigi's worker does when ``complete()`` (``method`` "complete") or ``requires()``
    ("deps") raises while it schedules a build: the same e-mail as for a failed run, with
    Luigi's "failed scheduling" subject and headline. None was sent: such a task only showed
    in the summary, which nobody reads under cron."""
    _email_error(
        task,
        formatted_traceback,
        subject=f"Luigi: {task} failed scheduling. Host: {socket.gethostname()}",
        headline=f"Will not run {task} or any dependencies due to error in {method}() method",
    )


def _email_error(task: Any, formatted_traceback: str | None, *, subject: str, headline: str) -> None:
    from ._config import worker

    if not worker().send_failure_email:
        return
    message = format_task_error(headline, task, subprocess.list2cmdline(sys.argv), formatted_traceback)
    try:
        send_error_email(subject, message, task.owner_email)
    except Exception as exc:
        logger.error("Not able to send the failure e-mail of %s: %s", task, exc)
