"""``airflow.operators.branch.BaseBranchOperator``: a custom operator that chooses branches by
implementing ``choose_branch(context)``; the direct downstream tasks it does not return are
skipped (a task group's id stands for its first tasks), as with ``BranchPythonOperator``."""

from __future__ import annotations

from typing import Any

from ductwork.core.context import TaskContext

from ..models.baseoperator import BaseOperator
from .python import BranchMixIn, SkipMixin


class BaseBranchOperator(BaseOperator, SkipMixin, BranchMixIn):
    def choose_branch(self, context: TaskContext) -> Any:
        """The task id, task ids or task group id to follow (a subclass says which)."""
        raise NotImplementedError(f"{type(self).__name__} must implement choose_branch(context)")

    def execute(self, context: TaskContext) -> Any:
        return self.do_branch(context, self.choose_branch(context))


__all__ = ["BaseBranchOperator"]
