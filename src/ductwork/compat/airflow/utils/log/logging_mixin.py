"""``airflow.utils.log.logging_mixin``: ``LoggingMixin`` and its ``log``, as Airflow's.

Airflow configures its loggers to INFO, so ``self.log.info(...)`` in an operator or hook reaches
the task's log. Under Ductwork the root logger keeps Python's default (WARNING): a logger handed
out here is set to INFO when nothing set its level, so those lines reach the try's log too.
"""

from __future__ import annotations

import logging
from typing import Any


def task_logger(name: str) -> logging.Logger:
    """The logger ``name``, at INFO unless its level (or a parent's) was set to something else."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET and logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return logger


class LoggingMixin:
    """``self.log``: a logger named after the class (or ``_logger_name``), under
    ``_log_config_logger_name`` when a subclass sets one (Airflow's ``airflow.task.operators``)."""

    _log_config_logger_name: str | None = None
    _logger_name: str | None = None

    def __init__(self, context: Any = None) -> None:
        pass

    @property
    def log(self) -> logging.Logger:
        cls = type(self)
        name = self._logger_name if self._logger_name is not None else f"{cls.__module__}.{cls.__name__}"
        if self._log_config_logger_name:
            name = f"{self._log_config_logger_name}.{name}" if name else self._log_config_logger_name
        return task_logger(name)

    @property
    def logger(self) -> logging.Logger:
        return self.log


__all__ = ["LoggingMixin", "task_logger"]
