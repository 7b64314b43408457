"""``airflow.operators.python``: Python callables, branching, short circuits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ductwork.compat.features import refuse
from ductwork.core.context import TaskContext
from ductwork.core.context import get_current_context as _current
from ductwork.core.operators.python import BranchPythonOperator as _Branch
from ductwork.core.operators.python import PythonOperator as _Python
from ductwork.core.operators.python import ShortCircuitOperator as _Short
from ductwork.core.operators.python import call_with_context
from ductwork.errors import TaskExecutionError, did_you_mean

from ..models.baseoperator import AirflowOperatorMixin


class PythonOperator(AirflowOperatorMixin, _Python):
    """Calls ``python_callable``; context variables it names (``ti``, ``ds``, ``**context``) are
    passed in, its return value is the task's XCom. A string in ``templates_dict``, ``op_args``
    or ``op_kwargs`` ending in one of ``templates_exts`` (``[".sql"]``) is a template file."""

    def __init__(
        self,
        *,
        python_callable: Any,
        op_args: Any = None,
        op_kwargs: Any = None,
        templates_dict: Any = None,
        templates_exts: Any = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            templates_dict=templates_dict,
            **kwargs,
        )
        if templates_exts:
            self.template_ext = tuple(templates_exts)
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: TaskContext) -> Any:
        value = super().execute(context)
        if self.show_return_value_in_logs:
            context["log"].info("Done. Returned value was: %s", value)
        return value


def follow_branches(op: Any, chosen: Any, context: TaskContext) -> None:
    """Skip the direct downstream tasks not chosen, except those also below a chosen task. A
    chosen task group stands for its first tasks; an id that is not a task or group of the DAG
    fails the try (as in Airflow)."""
    if chosen is None:
        ids: list[str] = []
    elif isinstance(chosen, str):
        ids = [chosen]
    elif isinstance(chosen, Iterable):
        ids = [str(c) for c in chosen]
    else:
        raise TaskExecutionError(f"branch task {op.task_id!r} must return task ids, got {chosen!r}")
    flow = op.flow
    expanded: list[str] = []
    for task_id in ids:
        if flow is not None and task_id in flow.groups and task_id not in flow.tasks:
            group = flow.groups[task_id]
            expanded.extend(m.task_id for m in group.dependency_roots())
        elif flow is not None and task_id not in flow.tasks:
            raise TaskExecutionError(
                f"branch task {op.task_id!r} chose {task_id!r}, which is not a task of this DAG{_meant(op, task_id)}"
            )
        else:
            expanded.append(task_id)
    # Airflow spares a task below the branch that is also below a chosen task, even one the
    # branch does not lead to directly (`pick >> [right, after]; left >> after`, `pick`
    # choosing `left`): `after` waits for `left` instead of being skipped.
    below = _below(flow, expanded) if flow is not None else set()
    context["ti"].follow_branches([*expanded, *sorted(below - set(expanded))])


def _below(flow: Any, task_ids: Iterable[str]) -> set[str]:
    """Every task of ``flow`` downstream of ``task_ids``, however far."""
    found: set[str] = set()
    stack = list(task_ids)
    while stack:
        op = flow.tasks.get(stack.pop())
        for nxt in getattr(op, "downstream_task_ids", ()):
            if nxt not in found:
                found.add(nxt)
                stack.append(nxt)
    return found


def _meant(op: Any, task_id: str) -> str:
    """What a branch probably meant: a task below it whose id, without its group's prefix, is
    the one returned (ids in a task group carry the group's: ``load.full``), else a close id."""
    below = [d for d in op.downstream_task_ids if d.rsplit(".", 1)[-1] == task_id]
    if below:
        return f"; a task of a task group is named with the group's prefix: did you mean {below[0]!r}?"
    return did_you_mean(task_id, op.flow.tasks.keys())


class BranchPythonOperator(AirflowOperatorMixin, _Branch):
    """Calls a function that returns the task id(s) (or task group ids) to follow."""

    def execute(self, context: TaskContext) -> Any:
        chosen = _Python.execute(self, context)
        follow_branches(self, chosen, context)
        return chosen


class ShortCircuitOperator(AirflowOperatorMixin, _Short):
    """Skips everything downstream when its callable returns a false value."""


class BranchMixIn:
    """Airflow's mixin for operators that choose branches (``choose_branch(context)``)."""

    def do_branch(self, context: TaskContext, branches_to_execute: Any) -> Any:
        follow_branches(self, branches_to_execute, context)
        return branches_to_execute


class SkipMixin:
    def skip(self, dag_run: Any, execution_date: Any, tasks: Any, map_index: int = -1) -> None:
        ids = [getattr(t, "task_id", t) for t in tasks]
        context = _current()
        context["ti"].decision.skip |= set(ids)


def _refused(name: str, why: str) -> type:
    class Refused:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            refuse(name, why)

    Refused.__name__ = name
    return Refused


PythonVirtualenvOperator = _refused("PythonVirtualenvOperator", "virtualenv tasks; run in the worker's environment")
ExternalPythonOperator = _refused("ExternalPythonOperator", "external Python interpreters")
BranchPythonVirtualenvOperator = _refused("BranchPythonVirtualenvOperator", "virtualenv tasks")
BranchExternalPythonOperator = _refused("BranchExternalPythonOperator", "external Python interpreters")


def is_venv_installed() -> bool:
    """Ductwork runs no virtualenv tasks, so DAG files that check take their other path."""
    return False


def get_current_context() -> Any:
    return _current()


__all__ = [
    "BranchPythonOperator",
    "ExternalPythonOperator",
    "PythonOperator",
    "PythonVirtualenvOperator",
    "ShortCircuitOperator",
    "call_with_context",
    "get_current_context",
    "is_venv_installed",
]
