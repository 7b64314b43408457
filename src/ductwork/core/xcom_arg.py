"""References to values that exist only at run time: a task's output, a run parameter.

Passing a reference as an argument of another task both draws the edge (for task outputs) and,
when the task runs, is replaced by the value. ``str(ref)`` is the equivalent Jinja template, so
a reference can also be embedded in a templated string field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ductwork.core.dependencies import DependencyMixin, Linkable
from ductwork.core.results import RETURN_VALUE
from ductwork.errors import DefinitionError

if TYPE_CHECKING:
    from ductwork.core.context import TaskContext


_NO_FILL: Any = object()
"""``zip`` without ``fillvalue``: stop at the shortest."""


def _refuse_operation(symbol: str) -> Callable[..., Any]:
    """A ``__gt__``, ``__add__``... that says why a value known only at run time cannot be
    compared or computed with where the flow is defined. Python's own error named the class
    (``'>' not supported between instances of 'ParamRef' and 'int'``), not the parameter, nor
    what to do instead."""

    def refuse(self: _KnownAtRunTime, other: Any) -> Any:
        raise DefinitionError(f"{self.unknown_here()}, so `{symbol}` cannot be applied to it there: {self.instead}")

    refuse.__name__ = f"refuse_{symbol}"
    return refuse


class _KnownAtRunTime:
    """What a task's result and a run parameter share: no value while the flow is defined."""

    instead = "pass it to a task and compute or decide there (@task.branch, @task.short_circuit)"

    def unknown_here(self) -> str:
        raise NotImplementedError

    __lt__ = _refuse_operation("<")
    __le__ = _refuse_operation("<=")
    __gt__ = _refuse_operation(">")
    __ge__ = _refuse_operation(">=")
    __add__ = __radd__ = _refuse_operation("+")
    __sub__ = __rsub__ = _refuse_operation("-")
    __mul__ = __rmul__ = _refuse_operation("*")
    __truediv__ = __rtruediv__ = _refuse_operation("/")
    __floordiv__ = __rfloordiv__ = _refuse_operation("//")
    __mod__ = __rmod__ = _refuse_operation("%")
    __pow__ = __rpow__ = _refuse_operation("**")


class XComArg(_KnownAtRunTime, DependencyMixin):
    """The result of ``operator`` under ``key`` (its return value by default)."""

    def unknown_here(self) -> str:
        return f"the result of task {self.operator.task_id!r} is not known while the flow is defined"

    def __init__(self, operator: Linkable, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        """One named output of a task declared with ``multiple_outputs``."""
        return XComArg(self.operator, key)

    def __bool__(self) -> bool:
        # ``if result:`` in a flow body was always true: the value exists only when the task runs.
        raise DefinitionError(
            f"the result of task {self.operator.task_id!r} is not known while the flow is defined, so it cannot "
            "be tested with if/and/or/not there: decide in a task (@task.branch, @task.short_circuit)"
        )

    def dependency_roots(self) -> list[Linkable]:
        return [self.operator]

    def dependency_leaves(self) -> list[Linkable]:
        return [self.operator]

    def references(self) -> list[XComArg]:
        """The task outputs this value is made of (itself; several for a ``zip``)."""
        return [self]

    # --- Airflow's derived values, for dynamic task mapping ------------------------------------
    def map(self, function: Callable[[Any], Any]) -> MapXComArg:
        """Each item passed through ``function`` (a dict's items are its ``(key, value)`` pairs,
        as ``expand`` maps them); called when an item is used, so in the mapped task's own try."""
        return MapXComArg(self, (function,))

    def zip(self, *others: XComArg, fillvalue: Any = _NO_FILL) -> ZipXComArg:
        """Tuples of the i-th items of this value and of ``others``, as far as the shortest goes
        (with ``fillvalue``: the longest, the others filled with it), like Python's ``zip``."""
        return ZipXComArg((self, *others), fillvalue=fillvalue)

    def resolve(self, context: TaskContext) -> Any:
        ti = context["ti"]
        value = ti.xcom_pull(task_ids=self.operator.task_id, key=self.key)
        if value is None and self.key != RETURN_VALUE and getattr(self.operator, "multiple_outputs", False):
            # A multiple_outputs task pushes each key of the dict it returns; a return value given
            # without those pushes (``run_task(upstream_results=...)``) still holds them.
            whole = ti.xcom_pull(task_ids=self.operator.task_id, key=RETURN_VALUE)
            if isinstance(whole, Mapping):
                return whole.get(self.key)
        return value

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


def _items(value: Any, what: str) -> Sequence[Any]:
    """A task's output as the sequence a derived value reads (a dict as its ``(key, value)``
    pairs)."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        from ductwork.errors import TaskExecutionError

        raise TaskExecutionError(f"{what} wants a list or a dict, got {value!r}")
    return value


def _plain(arg: XComArg) -> XComArg:
    if arg.key != RETURN_VALUE:
        from ductwork.errors import DefinitionError

        raise DefinitionError(f"{arg!r}: map() and zip() read a task's return value, not the key {arg.key!r}")
    return arg


class _DerivedXComArg(XComArg):
    """A value computed from task outputs when it is used, not stored by any task."""

    def __init__(self, sources: Sequence[XComArg]) -> None:
        super().__init__(sources[0].operator)
        self.sources = tuple(sources)

    def __getitem__(self, key: str) -> XComArg:
        raise TypeError(f"{self!r} is not the output of one task: it has no named outputs")

    def references(self) -> list[XComArg]:
        return [ref for source in self.sources for ref in source.references()]

    def dependency_roots(self) -> list[Linkable]:
        return [ref.operator for ref in self.references()]

    def dependency_leaves(self) -> list[Linkable]:
        return self.dependency_roots()

    def resolve_template(self, context: Any) -> Any:
        return list(self.resolve(context))

    def __str__(self) -> str:
        return repr(self)


class MapXComArg(_DerivedXComArg):
    """``output.map(f)``: see ``XComArg.map``."""

    def __init__(self, source: XComArg, functions: tuple[Callable[[Any], Any], ...]) -> None:
        super().__init__([source if isinstance(source, _DerivedXComArg) else _plain(source)])
        self.functions = functions

    def map(self, function: Callable[[Any], Any]) -> MapXComArg:
        return MapXComArg(self.sources[0], (*self.functions, function))

    def resolve(self, context: TaskContext) -> Sequence[Any]:
        return MapResult(_items(self.sources[0].resolve(context), f"{self!r}"), self.functions)

    def __repr__(self) -> str:
        names = "".join(f".map({getattr(f, '__name__', f)!s})" for f in self.functions)
        return f"{self.sources[0]!r}{names}"


class MapResult(Sequence[Any]):
    """The items of a mapped value, each computed when it is read (``len`` reads none)."""

    def __init__(self, items: Sequence[Any], functions: tuple[Callable[[Any], Any], ...]) -> None:
        self.items = items
        self.functions = functions

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = self.items[index]
        for function in self.functions:
            value = function(value)
        return value


class ZipXComArg(_DerivedXComArg):
    """``output.zip(other, ...)``: see ``XComArg.zip``."""

    def __init__(self, sources: Sequence[XComArg], *, fillvalue: Any = _NO_FILL) -> None:
        super().__init__([s if isinstance(s, _DerivedXComArg) else _plain(s) for s in sources])
        self.fillvalue = fillvalue

    def resolve(self, context: TaskContext) -> Sequence[Any]:
        columns = [_items(source.resolve(context), f"{self!r}") for source in self.sources]
        return ZipResult(columns, self.fillvalue)

    def __repr__(self) -> str:
        first, *others = self.sources
        return f"{first!r}.zip({', '.join(repr(o) for o in others)})"


class ZipResult(Sequence[tuple[Any, ...]]):
    """The tuples of zipped values, each made when it is read."""

    def __init__(self, columns: Sequence[Sequence[Any]], fillvalue: Any) -> None:
        self.columns = columns
        self.fillvalue = fillvalue

    def __len__(self) -> int:
        lengths = [len(c) for c in self.columns]
        return max(lengths, default=0) if self.fillvalue is not _NO_FILL else min(lengths, default=0)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return tuple(c[index] if index < len(c) else self.fillvalue for c in self.columns)


class ParamRef(_KnownAtRunTime):
    """A run parameter inside a ``@flow`` function body."""

    def unknown_here(self) -> str:
        return f"run parameter {self.name!r} has no value while the flow is defined (each run gives its own)"

    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, context: TaskContext) -> Any:
        return context["params"][self.name]

    def __bool__(self) -> bool:
        # ``if debug:`` in a @flow body was always true, whatever the run's parameter said.
        raise DefinitionError(
            f"run parameter {self.name!r} has no value while the flow is defined (each run gives its own), so "
            "it cannot be tested with if/and/or/not in the @flow function: pass it to a task and decide there "
            "(@task.branch, @task.short_circuit)"
        )

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
            found.extend(item.references())
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
