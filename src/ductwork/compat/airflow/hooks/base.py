"""``airflow.hooks.base.BaseHook``: what a hook written for Airflow builds on, chiefly
``get_connection`` (Ductwork's connections: ``DUCTWORK_CONN_*``, then the metadata database)."""

from __future__ import annotations

import logging
from typing import Any

from ..models.connection import Connection
from ..utils.log.logging_mixin import task_logger


class BaseHook:
    conn_name_attr = "conn_id"
    default_conn_name = "default_conn_id"
    conn_type = ""
    hook_name = ""

    def __init__(self, logger_name: str | None = None) -> None:
        self._log_name = logger_name

    @property
    def log(self) -> logging.Logger:
        cls = type(self)
        return task_logger(self._log_name or f"airflow.task.hooks.{cls.__module__}.{cls.__name__}")

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get_connection_from_secrets(conn_id)

    def get_conn(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define get_conn()")


__all__ = ["BaseHook"]
