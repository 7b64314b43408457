"""E-mail over SMTP (standard library only): ``EmailOperator``, ``send_email`` and the
``email_on_failure`` callback."""

from ductwork.integrations.email.alerts import FlowFailureEmail
from ductwork.integrations.email.operators import (
    EmailAlert,
    EmailOperator,
    SmtpConfig,
    build_message,
    email_on_failure,
    send_email,
)

__all__ = [
    "EmailAlert",
    "EmailOperator",
    "FlowFailureEmail",
    "SmtpConfig",
    "build_message",
    "email_on_failure",
    "send_email",
]
