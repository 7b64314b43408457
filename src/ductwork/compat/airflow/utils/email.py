"""``airflow.utils.email.send_email``: what a DAG's callbacks call to alert someone, sent through
the ``smtp_default`` connection (or ``conn_id``), as the shim's ``EmailOperator`` sends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..models.variable import current_secrets


def send_email(
    to: str | Iterable[str],
    subject: str,
    html_content: str,
    files: list[str] | None = None,
    dryrun: bool = False,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    mime_subtype: str = "mixed",
    mime_charset: str = "utf-8",
    conn_id: str | None = None,
    custom_headers: Mapping[str, Any] | None = None,
    from_email: str | None = None,
    **kwargs: Any,
) -> None:
    """Send an HTML e-mail (Airflow's signature); ``dryrun`` builds it and sends nothing. SMTP
    problems raise, naming the server, as Airflow's do."""
    from ductwork.integrations.email.operators import build_message, resolve_smtp
    from ductwork.integrations.email.operators import send_email as _send

    smtp = resolve_smtp({"secrets": current_secrets()}, conn_id, None)
    message = build_message(
        sender=from_email or smtp.sender,
        to=_listed(to),
        subject=subject,
        html=html_content,
        cc=_listed(cc) if cc else None,
        files=list(files or []),
        headers={k: str(v) for k, v in (custom_headers or {}).items()},
    )
    if not dryrun:
        _send(message, smtp=smtp, bcc=_listed(bcc) if bcc else None, what="send_email")


def _listed(addresses: str | Iterable[str]) -> list[str]:
    """``"a@x, b@x"`` or ``"a@x; b@x"`` or a list, as Airflow's ``get_email_address_list``."""
    if isinstance(addresses, str):
        return [a.strip() for a in addresses.replace(";", ",").split(",") if a.strip()]
    return [a.strip() for a in addresses if a and a.strip()]


def get_email_address_list(addresses: str | Iterable[str]) -> list[str]:
    return _listed(addresses)


__all__ = ["get_email_address_list", "send_email"]
