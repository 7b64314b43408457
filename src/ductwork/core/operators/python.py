"""Operators that call Python: plain, branching and short-circuiting."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.dependencies import set_dependency
from ductwork.core.operators.base import BaseOperator
from ductwork.core.xcom_arg import XComArg, find_refs, resolve_refs
from ductwork.errors import DefinitionError, TaskExecutionError

_SIGNATURES: weakref.WeakKeyDictionary[Any, list[inspect.Parameter] | None] = weakref.WeakKeyDictionary()


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The parameters of ``func`` (None when it has no signature), remembered per function: a
    warm worker calls the same callables again and again."""
    try:
        return _SIGNATURES[func]
    except (KeyError, TypeError):
        pass
    try:
        params: list[inspect.Parameter] | None = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        params = None
    try:
        _SIGNATURES[func] = params
    except TypeError:  # not weak-referenceable (a builtin): not remembered
        pass
    return params


def call_with_context(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], context: TaskContext
) -> Any:
    """Call ``func``, also passing the context variables its signature asks for by name.

    A function declaring ``ds`` or ``ti`` receives them; one declaring ``**kwargs`` receives the
    whole context (Airflow's convention).
    """
    params = _parameters(func)
    if params is None:
        return func(*args, **kwargs)
    call_kwargs = dict(kwargs)
    positional = {p.name for p in params[: len(args)] if p.kind != p.VAR_POSITIONAL}
    takes_var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    for p in params:
        if p.name in positional or p.name in call_kwargs:
            continue
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in context:
            call_kwargs[p.name] = context[p.name]
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name == "context":
            call_kwargs["context"] = context
    if takes_var_kw:
        for key, value in context.items():
            if key not in call_kwargs and key not in positional:
                call_kwargs[key] = value
    return func(*args, **call_kwargs)


def _check_arguments(name: str, op_args: Any, op_kwargs: Any) -> None:
    """A text given as ``op_args`` became one argument per character, and a list given as
    ``op_kwargs`` a bare ``TypeError`` about dictionary update sequences: say what each takes."""
    # Another task's result (``op_args=extract.output``, as in Airflow) is checked when the task runs.
    if isinstance(op_args, XComArg):
        pass
    elif isinstance(op_args, str | bytes | Mapping) or (op_args is not None and not isinstance(op_args, Iterable)):
        raise DefinitionError(
            f"{name}: op_args takes a list of positional arguments, got {type(op_args).__name__} {op_args!r}"
            + (f" (one argument: op_args=[{op_args!r}])" if isinstance(op_args, str) else "")
            + (" (arguments by name go in op_kwargs)" if isinstance(op_args, Mapping) else "")
        )
    if op_kwargs is not None and not isinstance(op_kwargs, Mapping | XComArg):
        raise DefinitionError(
            f"{name}: op_kwargs takes a mapping of argument names to values, "
            f"got {type(op_kwargs).__name__} {op_kwargs!r}"
        )


class CallsPython:
    """A ``python_callable`` with ``op_args``, ``op_kwargs`` and ``templates_dict``, as
    ``PythonOperator`` and the Airflow shim's ``PythonSensor`` take them: one set of checks when
    the task is defined (a sensor accepted a text as ``op_args`` and a non-callable, to fail in
    each poke) and one way of calling it with the context when it runs."""

    task_id: str
    python_callable: Callable[..., Any]
    op_args: Any
    op_kwargs: Any
    templates_dict: dict[str, Any] | None

    def _check_callable(self, task_id: Any, python_callable: Any, op_args: Any, op_kwargs: Any) -> None:
        """Before the operator joins its flow (``task_id`` as given: it is not checked yet)."""
        owner = f"{type(self).__name__}(task_id={task_id!r})"
        if not callable(python_callable):
            raise DefinitionError(f"{owner}: python_callable must be callable, got {python_callable!r}")
        _check_arguments(owner, op_args, op_kwargs)

    def _keep_callable(
        self,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | XComArg | None,
        op_kwargs: Mapping[str, Any] | XComArg | None,
        templates_dict: Mapping[str, Any] | None,
    ) -> None:
        self.python_callable = python_callable
        # Another task's whole result is kept as its reference (``or`` would test its truth).
        self.op_args = op_args if isinstance(op_args, XComArg) else list(op_args or [])
        self.op_kwargs = op_kwargs if isinstance(op_kwargs, XComArg) else dict(op_kwargs or {})
        self.templates_dict = dict(templates_dict) if templates_dict is not None else None

    def _call_python(self, context: TaskContext) -> Any:
        args = resolve_refs(self.op_args, context)
        kwargs = resolve_refs(self.op_kwargs, context)
        _check_arguments(f"{type(self).__name__}(task_id={self.task_id!r})", args, kwargs)
        if self.templates_dict is not None:
            context = context.with_values(templates_dict=self.templates_dict)
        return call_with_context(self.python_callable, args, kwargs, context)


class PythonOperator(CallsPython, BaseOperator):
    """Calls ``python_callable(*op_args, **op_kwargs)``; its return value is the task's result.

    Arguments may hold outputs of other tasks (``other.output``); they become upstream
    dependencies and are replaced by their values when the task runs.
    """

    template_fields = ("op_args", "op_kwargs", "templates_dict")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_callable(kwargs.get("task_id"), python_callable, op_args, op_kwargs)
        super().__init__(**kwargs)
        self._keep_callable(python_callable, op_args, op_kwargs, templates_dict)
        linked = type(self).template_fields  # the operator links what these hold itself, after __init__
        unlinked = [v for k, v in (("op_args", self.op_args), ("op_kwargs", self.op_kwargs)) if k not in linked]
        for ref in find_refs(unlinked):
            set_dependency(ref, self)

    def execute(self, context: TaskContext) -> Any:
        return self._call_python(context)

    def extra_spec(self) -> dict[str, Any]:
        func = self.python_callable
        return {"callable": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"}


class BranchPythonOperator(PythonOperator):
    """Calls a function that returns the task id (or ids) to follow; other direct downstream
    tasks are skipped, and the skip spreads through their trigger rules."""

    ui_color = "#ffefd5"

    def execute(self, context: TaskContext) -> Any:
        chosen = super().execute(context)
        branches = self._group_roots(_as_task_ids(chosen, self.task_id))
        unknown = [b for b in branches if b not in self.downstream_task_ids]
        if unknown:
            raise TaskExecutionError(
                f"branch task {self.task_id!r} chose {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not directly downstream of it; downstream: "
                f"{', '.join(self.downstream_task_ids) or '(none)'}"
            )
        context["ti"].follow_branches(branches)
        return chosen

    def _group_roots(self, branches: list[str]) -> list[str]:
        """A chosen task group id stands for its first tasks, as in Airflow."""
        groups = getattr(self.flow, "groups", None) or {}
        out: list[str] = []
        for branch in branches:
            group = groups.get(branch) if branch not in self.downstream_task_ids else None
            roots = [t.task_id for t in group.dependency_roots()] if group is not None else []
            out.extend(roots or [branch])
        return out


def _as_task_ids(value: Any, task_id: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    raise TaskExecutionError(f"branch task {task_id!r} must return a task id or a list of them, got {value!r}")


class ShortCircuitOperator(PythonOperator):
    """Calls a function; when it returns a false value, everything downstream is skipped.

    With ``ignore_downstream_trigger_rules=True`` (the default) every task below is skipped
    whatever its trigger rule; with False only the direct downstream tasks are, and the rest
    follow their trigger rules.
    """

    ui_color = "#f0f0ff"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: TaskContext) -> Any:
        value = super().execute(context)
        if not value:
            context["log"].info("condition is false: skipping downstream tasks")
            context["ti"].skip_downstream(recursive=self.ignore_downstream_trigger_rules)
        return value
