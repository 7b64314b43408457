"""References to values that exist only at run time: a task's output, a run parameter.

Passing a reference as an argument of another task both draws the edge (for task outputs) and,
when the task runs, is replaced by the value. ``str(ref)`` is the equivalent Jinja template, so
a reference can also be embedded in a templated string field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ductwork.core.dependencies import DependencyMixin, Linkable
from ductwork.core.results import RETURN_VALUE

if TYPE_CHECKING:
    from ductwork.core.context import TaskContext


class XComArg(DependencyMixin):
    """The result of ``operator`` under ``key`` (its return value by default)."""

    def __init__(self, operator: Linkable, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        """One named output of a task declared with ``multiple_outputs``."""
        return XComArg(self.operator, key)

    def dependency_roots(self) -> list[Linkable]:
        return [self.operator]

    def dependency_leaves(self) -> list[Linkable]:
        return [self.operator]

    def resolve(self, context: TaskContext) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def resolve_template(self, context: Any) -> Any:
        """In a templated field, the value itself (``core.templating.render_value``)."""
        return self.resolve(context)

    # --- setup and teardown, on the task behind the output --------------------------------------
    def as_setup(self) -> XComArg:
        op: Any = self.operator
        op.as_setup()
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> XComArg:
        op: Any = self.operator
        op.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> XComArg:
        op: Any = self.operator
        op.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        op: Any = self.operator
        op.__exit__(*exc)

    def __str__(self) -> str:
        return f"{{{{ ti.xcom_pull(task_ids={self.operator.task_id!r}, key={self.key!r}) }}}}"

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __iter__(self) -> Any:
        raise TypeError(
            f"the output of task {self.operator.task_id!r} is only known when the flow runs; "
            f"pass it to another task instead of iterating over it"
        )


class ParamRef:
    """A run parameter inside a ``@flow`` function body."""

    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, context: TaskContext) -> Any:
        return context["params"][self.name]

    def resolve_template(self, context: Any) -> Any:
        return self.resolve(context)

    def __str__(self) -> str:
        return f"{{{{ params.{self.name} }}}}"

    def __repr__(self) -> str:
        return f"ParamRef({self.name!r})"


Resolvable = XComArg | ParamRef


_LEAVES = frozenset({str, int, float, bool, type(None), bytes})
"""Types that never hold a reference: asked first, since a flow of thousands of ``@task`` calls
looks through every argument of each (at definition, and at each try)."""


def find_refs(value: Any) -> list[XComArg]:
    """Task outputs referenced anywhere inside ``value`` (lists, tuples, dicts)."""
    found: list[XComArg] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item.values())
        elif isinstance(item, XComArg):
            found.append(item)
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    return found


def resolve_refs(value: Any, context: TaskContext) -> Any:
    """``value`` with every reference replaced by what it refers to in this run."""
    if isinstance(value, XComArg | ParamRef):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve_refs(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_refs(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve_refs(v, context) for k, v in value.items()}
    return value
