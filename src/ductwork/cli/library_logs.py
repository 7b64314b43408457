"""Keeping the libraries' own log lines that say nothing to a user out of the scheduler's and
the worker's logs."""

from __future__ import annotations

import logging


class _NoResultBackendNote(logging.Filter):
    """Celery warns on every revoke that it cannot mark the task in a result backend; Ductwork
    keeps results in its database and needs none, so the line says nothing to the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No result backend is configured" not in record.getMessage()


def quiet_library_logs(level: str) -> None:
    """Below DEBUG, the libraries' own notes that say nothing to a user: Alembic's plugin set-up
    lines at every start, Celery's result-backend note at every revoke."""
    if level.upper() == "DEBUG":
        return
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("celery.worker.control").addFilter(_NoResultBackendNote())
