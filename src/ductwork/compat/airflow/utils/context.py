"""``airflow.utils.context``."""

from __future__ import annotations

from ductwork.core.context import TaskContext as Context
from ductwork.core.context import get_current_context

__all__ = ["Context", "get_current_context"]
