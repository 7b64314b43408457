"""``airflow.utils.db``: Airflow 1.10's home of ``provide_session`` and ``create_session``."""

from __future__ import annotations

from .session import create_session, provide_session

__all__ = ["create_session", "provide_session"]
