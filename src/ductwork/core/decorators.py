"""Decorated functions: ``@task`` and ``@flow``.

Inside a flow, calling a ``@task`` function does not run it: it adds a task to the flow and
returns a reference to its result. Passing that reference to another task draws the edge and,
at run time, delivers the value. A ``@flow`` function's arguments become the flow's typed run
parameters (from their annotations and defaults).
"""

from __future__ import annotations

import functools
import inspect
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ductwork.core.context import CONTEXT_NAMES, TaskContext
from ductwork.core.definition_context import FlowScope, current_flow, current_group
from ductwork.core.flow import Flow
from ductwork.core.mapping import MappedOperator
from ductwork.core.operators.base import BaseOperator, accepted_arguments
from ductwork.core.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from ductwork.core.params import NO_DEFAULT, parameter_for
from ductwork.core.xcom_arg import ParamRef, XComArg
from ductwork.errors import DefinitionError, ParameterTypeError, TaskExecutionError, did_you_mean


class DecoratedOperator(PythonOperator):
    """The operator behind a ``@task`` function; ``multiple_outputs`` pushes each dict key."""

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple_outputs = multiple_outputs

    def execute(self, context: TaskContext) -> Any:
        value = super().execute(context)
        if self.multiple_outputs and value is not None:
            if not isinstance(value, Mapping):
                raise TaskExecutionError(
                    f"task {self.task_id!r} declares multiple_outputs but returned {type(value).__name__}, not a dict"
                )
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TaskExecutionError(f"task {self.task_id!r}: multiple_outputs keys must be strings")
                context["ti"].xcom_push(key, item)
        return value


class DecoratedBranchOperator(BranchPythonOperator):
    pass


class DecoratedShortCircuitOperator(ShortCircuitOperator):
    pass


_SIGNATURES: weakref.WeakKeyDictionary[Callable[..., Any], inspect.Signature | None] = weakref.WeakKeyDictionary()


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    """The function's signature, worked out once per function (a flow calls one ``@task``
    function for each of thousands of tasks; ``inspect.signature`` was a third of that call).
    None: it has none Python can tell."""
    try:
        return _SIGNATURES[function]
    except (KeyError, TypeError):  # TypeError: not weakly referable (a builtin)
        pass
    try:
        found: inspect.Signature | None = inspect.signature(function)
    except (TypeError, ValueError):
        found = None
    try:
        _SIGNATURES[function] = found
    except TypeError:
        pass
    return found


@dataclass(frozen=True, slots=True)
class _CallShape:
    """What a call of a function with only named parameters (no ``*args``, ``**kwargs`` or
    positional-only ones) must give. Checking a call against it costs a fraction of
    ``Signature.bind_partial``, which a flow of thousands of ``@task`` calls paid for each."""

    positional: tuple[str, ...]
    names: frozenset[str]
    required: tuple[str, ...]
    """Parameters without a default: the call must give those that are not context names."""

    def accepts(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[str] | None:
        """The required parameters the call leaves out; None when it gives a wrong argument
        (the caller asks ``bind_partial`` for Python's own message)."""
        if len(args) > len(self.positional):
            return None
        given = self.positional[: len(args)]
        for name in kwargs:
            if name not in self.names or name in given:
                return None
        return [name for name in self.required if name not in kwargs and name not in given]


_SHAPES: weakref.WeakKeyDictionary[Callable[..., Any], _CallShape | None] = weakref.WeakKeyDictionary()


def _call_shape(function: Callable[..., Any], signature: inspect.Signature) -> _CallShape | None:
    try:
        return _SHAPES[function]
    except (KeyError, TypeError):
        pass
    params = list(signature.parameters.values())
    shape = None
    if all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        shape = _CallShape(
            tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD),
            frozenset(p.name for p in params),
            tuple(p.name for p in params if p.default is inspect.Parameter.empty),
        )
    try:
        _SHAPES[function] = shape
    except TypeError:
        pass
    return shape


def _returns_dict(func: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        return False
    ret = hints.get("return")
    origin = typing.get_origin(ret) or ret
    return isinstance(origin, type) and issubclass(origin, dict)


class TaskFunction:
    """A function that becomes a task each time it is called inside a flow."""

    context_names: frozenset[str] = CONTEXT_NAMES
    """Context variables a call need not give (the function receives them by name when it runs);
    the Airflow shim's functions have Airflow's too (``task_instance_key_str``, ``dag_run``...)."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        operator_class: type[PythonOperator] = DecoratedOperator,
        task_id: str | None = None,
        multiple_outputs: bool | None = None,
        **operator_kwargs: Any,
    ) -> None:
        if not callable(function):
            raise DefinitionError(f"@task must decorate a function, got {function!r}")
        self.function = function
        self.operator_class = operator_class
        self.task_id = task_id or function.__name__
        self.multiple_outputs = _returns_dict(function) if multiple_outputs is None else multiple_outputs
        self.operator_kwargs = operator_kwargs
        self.role: str | None = None
        """``"setup"`` or ``"teardown"`` for ``@setup``/``@teardown`` functions."""
        self.fail_run = False
        functools.update_wrapper(self, function)

    def override(self, **kwargs: Any) -> TaskFunction:
        """The same function with other task arguments (``task_id``, ``retries``...)."""
        merged = {**self.operator_kwargs, **kwargs}
        task_id = merged.pop("task_id", self.task_id)
        multiple = merged.pop("multiple_outputs", self.multiple_outputs)
        made = object.__new__(TaskFunction)  # a copy: a flow overrides one function for each of thousands of tasks
        made.__dict__.update(self.__dict__)
        made.task_id, made.multiple_outputs, made.operator_kwargs = task_id, multiple, merged
        return made

    def _unique_id(self, flow: FlowScope) -> str:
        group = current_group()
        base = self.task_id
        candidate = group.child_id(base) if group else base
        if candidate not in flow.tasks:
            return base
        n = 1
        while (group.child_id(f"{base}__{n}") if group else f"{base}__{n}") in flow.tasks:
            n += 1
        return f"{base}__{n}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flow = current_flow()
        if flow is None:
            return self.function(*args, **kwargs)
        self._check_arguments(args, kwargs)
        extra: dict[str, Any] = {}
        if issubclass(self.operator_class, DecoratedOperator):
            extra["multiple_outputs"] = self.multiple_outputs
        op = self.operator_class(
            task_id=self._unique_id(flow),
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            doc=(self.function.__doc__ or "").strip().split("\n")[0],
            **extra,
            **self.operator_kwargs,
        )
        role = getattr(self, "role", None)
        if role == "setup":
            op.as_setup()
        elif role == "teardown":
            op.as_teardown(on_failure_fail_dagrun=getattr(self, "fail_run", False))
        return XComArg(op)

    # --- dynamic task mapping (core.mapping) -------------------------------------------------
    def partial(self, **kwargs: Any) -> PartialTask:
        """Fix some arguments for every instance: ``add.partial(y=1).expand(x=[1, 2])``."""
        return PartialTask(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        """One task instance per item: ``add_one.expand(x=[1, 2, 3])`` (a list, or another
        task's output); several arguments give every combination."""
        return PartialTask(self, {}).expand(**mapped)

    def expand_kwargs(self, source: Any) -> XComArg:
        """One task instance per dict of keyword arguments (a list, or another task's output)."""
        return PartialTask(self, {}).expand_kwargs(source)

    def _check_arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Bind now so a wrong call fails at definition time, naming the task."""
        signature = _signature(self.function)
        if signature is None:
            return
        shape = _call_shape(self.function, signature)
        left_out = shape.accepts(args, kwargs) if shape is not None else None
        if left_out is not None:
            left_out = [name for name in left_out if name not in self.context_names]
            if left_out:
                raise DefinitionError(f"task {self.task_id!r}: missing argument(s) {', '.join(map(repr, left_out))}")
            return
        context_names = {
            p.name
            for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.name in self.context_names
        }
        try:
            bound = signature.bind_partial(*args, **kwargs).arguments
        except TypeError as exc:
            raise DefinitionError(f"task {self.task_id!r}: {exc}") from None
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in bound
            and p.name not in context_names
        ]
        if missing:
            raise DefinitionError(f"task {self.task_id!r}: missing argument(s) {', '.join(map(repr, missing))}")

    def __repr__(self) -> str:
        return f"<task {self.task_id!r}>"


class PartialTask:
    """A ``@task`` function with some arguments fixed, waiting for ``expand``."""

    def __init__(self, function: TaskFunction, fixed: Mapping[str, Any]) -> None:
        self.function = function
        self.fixed = dict(fixed)

    def expand(self, **mapped: Any) -> XComArg:
        if not mapped:
            raise DefinitionError(f"task {self.function.task_id!r}: expand() needs at least one argument")
        clash = sorted(set(mapped) & set(self.fixed))
        if clash:
            raise DefinitionError(
                f"task {self.function.task_id!r}: {clash[0]!r} is given to both partial() and expand()"
            )
        self._check_names(self.fixed, mapped, "expand")
        return self._mapped(expand_input=mapped)

    def expand_kwargs(self, source: Any) -> XComArg:
        if isinstance(source, list | tuple):
            for item in source:
                if isinstance(item, Mapping):
                    self._check_names(self.fixed, item, "expand_kwargs")
        else:
            self._check_names(self.fixed, {}, "expand_kwargs", complete=False)
        return self._mapped(expand_kwargs_input=source)

    def _check_names(
        self, fixed: Mapping[str, Any], mapped: Mapping[str, Any], what: str, *, complete: bool = True
    ) -> None:
        """The arguments of every instance must fit the function, as for a plain call: a misspelt
        or missing name fails when the flow is defined, not in each mapped instance's try."""
        signature = _signature(self.function.function)
        if signature is None:
            return
        params = signature.parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        for source, names in (("partial", fixed), (what, mapped)):
            for name in names:
                if name not in named and not takes_any:
                    raise DefinitionError(
                        f"task {self.function.task_id!r}: {source}() got an unexpected keyword argument "
                        f"{name!r}.{did_you_mean(name, named)}"
                    )
        if complete:
            missing = [
                n
                for n in named
                if params[n].default is inspect.Parameter.empty
                and n not in fixed
                and n not in mapped
                and n not in self.function.context_names
            ]
            if missing:
                raise DefinitionError(
                    f"task {self.function.task_id!r}: {what}() leaves out argument(s) {', '.join(map(repr, missing))}"
                )

    def _mapped(self, **expansion: Any) -> XComArg:
        flow = current_flow()
        if flow is None:
            raise DefinitionError(f"task {self.function.task_id!r}: expand() must be called inside a flow")
        fn = self.function
        partial_kwargs: dict[str, Any] = {
            "python_callable": fn.function,
            "op_args": [],
            "op_kwargs": dict(self.fixed),
            "doc": (fn.function.__doc__ or "").strip().split("\n")[0],
            **fn.operator_kwargs,
        }
        if issubclass(fn.operator_class, DecoratedOperator):
            partial_kwargs["multiple_outputs"] = fn.multiple_outputs
        accepted = accepted_arguments(BaseOperator)
        policy = {k: v for k, v in fn.operator_kwargs.items() if k in accepted and k != "task_id"}
        op = MappedOperator(
            task_id=fn._unique_id(flow),
            operator_class=fn.operator_class,
            partial_kwargs=partial_kwargs,
            op_kwargs_target=True,
            **expansion,
            **policy,
        )
        return XComArg(op)


class _TaskDecorator:
    """``@task``, ``@task(retries=2)``, ``@task.branch``, ``@task.short_circuit``."""

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self._make(DecoratedOperator, python_callable, kwargs)

    def branch(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self._make(DecoratedBranchOperator, python_callable, kwargs)

    def short_circuit(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self._make(DecoratedShortCircuitOperator, python_callable, kwargs)

    @staticmethod
    def _make(operator_class: type[PythonOperator], func: Callable[..., Any] | None, kwargs: dict[str, Any]) -> Any:
        if func is not None:
            return TaskFunction(func, operator_class=operator_class, **kwargs)
        return lambda f: TaskFunction(f, operator_class=operator_class, **kwargs)


task = _TaskDecorator()


def setup(function: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@setup``: a ``@task`` that prepares something a teardown cleans up."""

    def make(f: Callable[..., Any]) -> TaskFunction:
        made = TaskFunction(f, **kwargs)
        made.role = "setup"
        return made

    return make(function) if function is not None else make


def teardown(function: Callable[..., Any] | None = None, *, on_failure_fail_dagrun: bool = False, **kwargs: Any) -> Any:
    """``@teardown``: a ``@task`` that cleans up after its setups' work, even when the work failed."""

    def make(f: Callable[..., Any]) -> TaskFunction:
        made = TaskFunction(f, **kwargs)
        made.role = "teardown"
        made.fail_run = on_failure_fail_dagrun
        return made

    return make(function) if function is not None else make


class FlowFunction:
    """A function whose body defines a flow; its arguments are the flow's parameters.

    The flow is built once, on first use (``build()`` or calling the function with no
    arguments); calling it with keyword arguments builds a flow with those parameter defaults.
    """

    flow_class: type[Flow] = Flow
    """What ``build`` makes (a subclass may build a subclass of ``Flow``)."""

    def __init__(self, function: Callable[..., Any], *, flow_id: str | None = None, **flow_kwargs: Any) -> None:
        self.function = function
        self.flow_id = flow_id or function.__name__
        self.flow_kwargs = flow_kwargs
        self._built: Flow | None = None
        functools.update_wrapper(self, function)

    def _params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        signature = inspect.signature(self.function)
        try:
            hints = typing.get_type_hints(self.function)
        except Exception:
            hints = {}
        params: dict[str, Any] = dict(self.flow_kwargs.get("params") or {})
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = overrides.get(p.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
            try:
                params[p.name] = parameter_for(hints.get(p.name), default)
            except (ValueError, TypeError) as exc:
                raise ParameterTypeError(
                    f"flow {self.flow_id!r}: parameter {p.name!r}: the default {default!r} is invalid: {exc}"
                ) from None
        return params

    def build(self, **overrides: Any) -> Flow:
        if not overrides and self._built is not None:
            return self._built
        kwargs = {k: v for k, v in self.flow_kwargs.items() if k != "params"}
        if "description" not in kwargs:
            kwargs["description"] = (self.function.__doc__ or "").strip().split("\n")[0]
        new = self.flow_class(self.flow_id, params=self._params(overrides), **kwargs)
        code = self.function.__code__
        new.defined_at = (code.co_filename, code.co_firstlineno)
        new.fileloc = code.co_filename
        names = [
            p.name
            for p in inspect.signature(self.function).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        with new:
            self.function(**{name: ParamRef(name) for name in names})
        if not overrides:
            self._built = new
        return new

    def __call__(self, **overrides: Any) -> Flow:
        outer = current_flow()
        if outer is not None:
            # It built a separate flow and added nothing to this one, silently.
            raise DefinitionError(
                f"flow {self.flow_id!r} is called inside flow {outer.flow_id!r}, which does not add its tasks "
                "there: call its @task functions (in a TaskGroup), or start it with TriggerFlowOperator"
            )
        return self.build(**overrides)

    def __repr__(self) -> str:
        return f"<flow {self.flow_id!r}>"


def flow(function: Callable[..., Any] | None = None, **flow_kwargs: Any) -> Any:
    """``@flow`` or ``@flow(schedule="@daily", ...)`` over a function that calls tasks."""
    if function is not None:
        return FlowFunction(function, **flow_kwargs)
    return lambda f: FlowFunction(f, **flow_kwargs)
