"""The operator that does nothing: a join point, a marker, a placeholder for a real step.

As in Airflow, one with nothing attached (no ``on_execute_callback`` or ``on_success_callback``,
no ``outlets`` or ``inlets``) is never handed to a worker: when it is ready, the scheduler (or
``ductwork run``) records a try that succeeded, with no log, and goes on to its downstream tasks
at once. A subclass that overrides ``execute`` runs like any other operator."""

from __future__ import annotations

from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.graph import RUNS_NOTHING
from ductwork.core.operators.base import BaseOperator


class EmptyOperator(BaseOperator):
    ui_color = "#e8f7e4"

    def execute(self, context: TaskContext) -> Any:
        return None

    def _node_extra(self) -> dict[str, Any]:
        extra = super()._node_extra()
        if self.runs_nothing:
            extra[RUNS_NOTHING] = True
        return extra

    @property
    def runs_nothing(self) -> bool:
        """Whether a try of this task would do nothing at all (so none is run)."""
        return (
            type(self).execute is EmptyOperator.execute
            and not self.on_execute_callback
            and not self.on_success_callback
            and not self.outlets
            and not self.inlets
            and not self.effective_cache
        )
