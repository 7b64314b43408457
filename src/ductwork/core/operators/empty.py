"""The operator that does nothing: a join point, a marker, a placeholder for a real step."""

from __future__ import annotations

from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator


class EmptyOperator(BaseOperator):
    ui_color = "#e8f7e4"

    def execute(self, context: TaskContext) -> Any:
        return None
