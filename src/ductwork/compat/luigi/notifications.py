"""``luigi.notifications``: failure e-mails through Ductwork's mail settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from . import parameter as p
from .task import Config

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


def send_email(subject: str, message: str, sender: str, recipients: Sequence[str], image_png: Any = None) -> None:
    """Send through the ``smtp_default`` connection (or the ``smtp_url`` setting); with
    ``DEBUG`` set, only log it, as Luigi's tests expect."""
    if DEBUG:
        logger.info("Not sending e-mail (DEBUG): %s to %s", subject, ", ".join(recipients))
        return
    from ductwork.engine.services_setup import build_secrets
    from ductwork.integrations.email.alerts import FlowFailureEmail
    from ductwork.integrations.email.operators import build_message
    from ductwork.integrations.email.operators import send_email as _send

    smtp = FlowFailureEmail(build_secrets()).smtp()
    _send(build_message(sender=sender, to=list(recipients), subject=subject, html=f"<pre>{message}</pre>"), smtp=smtp)
