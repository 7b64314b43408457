"""The flow option ``Flow(..., on_failure_email=[...])``: an e-mail when a task fails for good.

The engine calls ``TaskServices.failure_alert(context, to)`` after a try fails without a retry
left; ``FlowFailureEmail`` is that callable. It sends the same message as ``email_on_failure``
(task, flow, run, try, error) through the ``smtp_default`` connection, or the ``smtp_url``
setting, or localhost:25.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ductwork.core.connections import Secrets
from ductwork.core.templating import render_value
from ductwork.integrations.email.operators import (
    DEFAULT_ALERT_HTML,
    DEFAULT_ALERT_SUBJECT,
    SMTP_DEFAULT_CONN,
    SmtpConfig,
    build_message,
    send_email,
)


class FlowFailureEmail:
    def __init__(self, secrets: Secrets | None, *, conn_id: str = SMTP_DEFAULT_CONN) -> None:
        self.secrets = secrets
        self.conn_id = conn_id

    def smtp(self) -> SmtpConfig:
        found = self.secrets.find_connection(self.conn_id) if self.secrets is not None else None
        return SmtpConfig.from_connection(found) if found is not None else SmtpConfig()

    def __call__(self, context: Mapping[str, Any], to: Sequence[str]) -> None:
        task_id = str(context.get("task_id") or "")
        subject = render_value(DEFAULT_ALERT_SUBJECT, context, task_id=task_id, field="alert subject")
        html = render_value(DEFAULT_ALERT_HTML, context, task_id=task_id, field="alert body")
        smtp = self.smtp()
        message = build_message(sender=smtp.sender, to=list(to), subject=subject, html=html)
        send_email(message, smtp=smtp, what=f"failure e-mail for task {task_id!r}")
