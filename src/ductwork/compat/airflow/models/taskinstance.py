"""``airflow.models.taskinstance``: ``TaskInstance``, as DAG files import it for type hints
(``ti: TaskInstance = kwargs["ti"]``); the object a task gets is the try's view."""

from __future__ import annotations

from .._context import TaskInstanceView as TaskInstance

__all__ = ["TaskInstance"]
