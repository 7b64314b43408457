"""Looking up a task's connection by id, with an error that names the task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductwork.core.connections import Connection
from ductwork.errors import DuctworkError, TaskExecutionError


def task_connection(context: Mapping[str, Any], conn_id: str, task_id: str) -> Connection:
    """The connection ``conn_id`` from the try's secrets backends (environment, database...)."""
    secrets = context.get("secrets")
    if secrets is None:
        raise TaskExecutionError(f"task {task_id!r}: connection {conn_id!r}: this try was given no connections")
    try:
        return secrets.get_connection(conn_id)
    except DuctworkError as exc:
        raise TaskExecutionError(f"task {task_id!r}: {exc}") from exc
