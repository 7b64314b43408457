"""E-mail over SMTP with the standard library: an operator, a function, and a failure alert."""

from __future__ import annotations

import mimetypes
import os
import smtplib
import ssl as _ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from ductwork.core.connections import Connection
from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.templating import render_value
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations.email.plain_text import plain_text

Addresses = str | Sequence[str]


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the mail server.

    ``ssl`` connects with TLS from the start (port 465); ``starttls`` upgrades a plain
    connection (port 587). ``ca_file`` trusts a private certificate authority;
    ``verify=False`` accepts any certificate (tests only). ``starttls_if_offered`` upgrades
    when the server offers STARTTLS and sends in the clear otherwise (Luigi's ``[smtp]``).
    """

    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0
    sender: str = "ductwork@localhost"
    ca_file: str | None = None
    verify: bool = True
    starttls_if_offered: bool = False
    local_hostname: str | None = None
    """The name this client gives in HELO/EHLO (Luigi's ``[smtp] local_hostname``); None:
    this host's fully qualified name, as ``smtplib`` finds it."""

    def tls_context(self) -> _ssl.SSLContext:
        context = _ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = _ssl.CERT_NONE
        return context

    @classmethod
    def from_connection(cls, conn: Connection) -> SmtpConfig:
        """From a connection ``smtp://login:password@host:587?starttls=true&sender=a@b`` (``smtps://``
        for TLS from the start); extras: ``starttls``, ``ssl``, ``sender``, ``timeout``, ``verify``,
        ``ca_file``."""
        extra = conn.extra
        ssl = conn.conn_type == "smtps" or _flag(extra.get("ssl"))
        return cls(
            host=conn.host or "localhost",
            port=conn.port or (465 if ssl else 25),
            user=conn.login or None,
            password=conn.password,
            starttls=_flag(extra.get("starttls")),
            ssl=ssl,
            timeout=float(extra.get("timeout", 30.0)),
            sender=str(extra.get("sender") or cls.sender),
            ca_file=extra.get("ca_file"),
            verify=_flag(extra.get("verify", True)),
        )

    def __repr__(self) -> str:  # never show the password
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, user={self.user!r}, ssl={self.ssl}, "
            f"starttls={self.starttls})"
        )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


SMTP_DEFAULT_CONN = "smtp_default"
"""The connection used when neither ``smtp`` nor ``conn_id`` is given (then localhost:25)."""


def resolve_smtp(context: Mapping[str, Any], conn_id: str | None, smtp: SmtpConfig | None) -> SmtpConfig:
    """``smtp`` if given, else the connection ``conn_id`` (an error when it is not defined), else
    the ``smtp_default`` connection if there is one, else localhost:25."""
    if smtp is not None:
        return smtp
    secrets = context.get("secrets")
    if conn_id is not None:
        if secrets is None:
            raise TaskExecutionError(f"connection {conn_id!r}: this try was given no connections")
        return SmtpConfig.from_connection(secrets.get_connection(conn_id))
    found = secrets.find_connection(SMTP_DEFAULT_CONN) if secrets is not None else None
    return SmtpConfig.from_connection(found) if found is not None else SmtpConfig()


def _addresses(value: Addresses | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    return [a.strip() for a in value if a and a.strip()]


def build_message(
    *,
    sender: str,
    to: Addresses,
    subject: str,
    html: str,
    text: str | None = None,
    cc: Addresses | None = None,
    files: Sequence[str | os.PathLike[str]] = (),
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart message: a plain-text part (the HTML's text unless ``text`` is given), the
    HTML alternative, and the files attached.
    Bcc recipients are not headers: they are given to ``send_message`` only."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(_addresses(to))
    if cc:
        message["Cc"] = ", ".join(_addresses(cc))
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(text if text is not None else plain_text(html) or "(this message has no text)")
    message.add_alternative(html, subtype="html")
    for file in files:
        path = Path(file)
        ctype, encoding = mimetypes.guess_type(path.name)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return message


def send_email(
    message: EmailMessage, *, smtp: SmtpConfig, bcc: Addresses | None = None, what: str = "send_email"
) -> list[str]:
    """Send ``message``; returns the recipients. SMTP problems raise ``TaskExecutionError``."""
    recipients = _addresses(message.get("To")) + _addresses(message.get("Cc")) + _addresses(bcc)
    if not recipients:
        raise TaskExecutionError(f"{what}: the message has no recipients")
    where = f"{smtp.host}:{smtp.port}"
    try:
        client: smtplib.SMTP
        if smtp.ssl:
            client = smtplib.SMTP_SSL(
                smtp.host,
                smtp.port,
                local_hostname=smtp.local_hostname,
                timeout=smtp.timeout,
                context=smtp.tls_context(),
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, local_hostname=smtp.local_hostname, timeout=smtp.timeout)
        with client:
            if smtp.starttls_if_offered and not smtp.starttls:
                client.ehlo_or_helo_if_needed()
            if smtp.starttls or (smtp.starttls_if_offered and client.has_extn("starttls")):
                client.starttls(context=smtp.tls_context())
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            refused = client.send_message(message, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise TaskExecutionError(f"{what}: the SMTP server {where} refused the login of {smtp.user!r}: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise TaskExecutionError(
            f"{what}: the SMTP server {where} refused every recipient: {', '.join(exc.recipients)}"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TaskExecutionError(f"{what}: could not send e-mail through {where}: {type(exc).__name__}: {exc}") from exc
    if refused:
        raise TaskExecutionError(f"{what}: the SMTP server {where} refused: {', '.join(refused)}")
    return recipients


class EmailOperator(BaseOperator):
    """Sends an HTML e-mail.

    Args:
        to, cc, bcc: addresses (a list, or one string separated by commas); templated.
        subject, html_content: Jinja templates rendered with the task's context.
        text_content: an optional plain-text alternative (templated).
        files: paths of files to attach (templated).
        smtp: an ``SmtpConfig`` (host, port, login, TLS); ``sender`` overrides its sender.
        conn_id: a connection to take the SMTP settings from instead (``smtp://...``); with
            neither, the ``smtp_default`` connection if defined, else localhost:25.
    """

    template_fields = ("to", "cc", "bcc", "subject", "html_content", "text_content", "files")
    ui_color = "#e6faf9"

    def __init__(
        self,
        *,
        to: Addresses,
        subject: str,
        html_content: str,
        text_content: str | None = None,
        cc: Addresses | None = None,
        bcc: Addresses | None = None,
        files: Sequence[str | os.PathLike[str]] = (),
        smtp: SmtpConfig | None = None,
        sender: str | None = None,
        headers: Mapping[str, str] | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"EmailOperator(task_id={kwargs.get('task_id')!r})"
        if not _addresses(to):
            raise DefinitionError(f"{owner}: to must name at least one address")
        if smtp is not None and not isinstance(smtp, SmtpConfig):
            raise DefinitionError(f"{owner}: smtp must be an SmtpConfig, got {type(smtp).__name__}")
        if smtp is not None and conn_id is not None:
            raise DefinitionError(f"{owner}: give smtp or conn_id, not both")
        super().__init__(**kwargs)
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.text_content = text_content
        self.cc = cc
        self.bcc = bcc
        self.files = [os.fspath(f) for f in files]
        self.smtp = smtp
        self.conn_id = conn_id
        self.sender = sender
        self.headers = dict(headers or {})

    def execute(self, context: TaskContext) -> list[str]:
        what = f"task {self.task_id!r}"
        missing = [f for f in self.files if not Path(f).is_file()]
        if missing:
            raise TaskExecutionError(f"{what}: attachment(s) not found: {', '.join(missing)}")
        smtp = resolve_smtp(context, self.conn_id, self.smtp)
        message = build_message(
            sender=self.sender or smtp.sender,
            to=self.to,
            subject=self.subject,
            html=self.html_content,
            text=self.text_content,
            cc=self.cc,
            files=self.files,
            headers=self.headers,
        )
        recipients = send_email(message, smtp=smtp, bcc=self.bcc, what=what)
        context["log"].info(
            "sent %r to %d recipient(s) through %s:%d", self.subject, len(recipients), smtp.host, smtp.port
        )
        return recipients

    def extra_spec(self) -> dict[str, Any]:
        where = f"{self.smtp.host}:{self.smtp.port}" if self.smtp else f"connection {self.conn_id or SMTP_DEFAULT_CONN}"
        return {"to": self.to, "subject": self.subject, "smtp": where}


DEFAULT_ALERT_SUBJECT = (
    "[ductwork] {{ flow_id }}.{{ task_id | default('(flow)') }} {{ 'up for retry' if retrying | default(false) "
    "else 'failed' }}"
)
DEFAULT_ALERT_HTML = """\
<h3>Task {{ task_id | default('(flow)') }} of flow {{ flow_id }} \
{{ 'failed and will be retried' if retrying | default(false) else 'failed' }}</h3>
<table>
  <tr><th align="left">Run</th><td>{{ run_id }}</td></tr>
  <tr><th align="left">Logical date</th><td>{{ logical_date }}</td></tr>
  {% if try_number is defined %}<tr><th align="left">Try</th><td>{{ try_number }}</td></tr>{% endif %}
  {% if exception is defined %}<tr><th align="left">Error</th><td><pre>{{ exception | e }}</pre></td></tr>{% endif %}
</table>
"""


class EmailAlert:
    """A failure callback that e-mails ``to``; see ``email_on_failure``."""

    def __init__(
        self,
        to: Addresses,
        *,
        smtp: SmtpConfig | None = None,
        subject: str = DEFAULT_ALERT_SUBJECT,
        html: str = DEFAULT_ALERT_HTML,
        cc: Addresses | None = None,
    ) -> None:
        if not _addresses(to):
            raise DefinitionError("email_on_failure: to must name at least one address")
        self.to = to
        self.smtp = smtp or SmtpConfig()
        self.subject = subject
        self.html = html
        self.cc = cc

    def __call__(self, context: Mapping[str, Any]) -> None:
        task_id = str(context.get("task_id") or "")
        subject = render_value(self.subject, context, task_id=task_id, field="alert subject")
        html = render_value(self.html, context, task_id=task_id, field="alert body")
        message = build_message(sender=self.smtp.sender, to=self.to, cc=self.cc, subject=subject, html=html)
        send_email(message, smtp=self.smtp, what=f"failure e-mail for {task_id or context.get('flow_id')!r}")


def email_on_failure(
    to: Addresses,
    *,
    smtp: SmtpConfig | None = None,
    subject: str = DEFAULT_ALERT_SUBJECT,
    html: str = DEFAULT_ALERT_HTML,
    cc: Addresses | None = None,
) -> EmailAlert:
    """A callable for ``on_failure_callback`` (of a task or a flow) that e-mails the failure:
    the task, the flow, the run, the try and the error. ``subject`` and ``html`` are templates."""
    return EmailAlert(to, smtp=smtp, subject=subject, html=html, cc=cc)
