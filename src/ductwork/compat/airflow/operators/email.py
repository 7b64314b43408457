"""``airflow.operators.email.EmailOperator`` (through the ``smtp_default`` connection)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ductwork.integrations.email import EmailOperator as _Email

from ..models.baseoperator import AirflowOperatorMixin


class EmailOperator(AirflowOperatorMixin, _Email):
    def __init__(
        self,
        *,
        to: str | Sequence[str],
        subject: str,
        html_content: str,
        files: Sequence[str] | None = None,
        cc: str | Sequence[str] | None = None,
        bcc: str | Sequence[str] | None = None,
        mime_subtype: str = "mixed",
        mime_charset: str = "utf-8",
        conn_id: str | None = None,
        custom_headers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            to=to,
            subject=subject,
            html_content=html_content,
            files=list(files or []),
            cc=cc,
            bcc=bcc,
            conn_id=conn_id,
            headers=custom_headers,
            **kwargs,
        )


__all__ = ["EmailOperator"]
