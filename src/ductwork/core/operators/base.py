"""The operator: one task of a flow, its policy, and how dependencies between tasks are written.

``a >> b``, ``a << b``, lists on either side, ``set_upstream``/``set_downstream`` and ``chain``
all end in ``set_dependency``, which also accepts task groups and the outputs of decorated
tasks, and refuses anything else with an error that names the task and what it was given.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ductwork.core.definition_context import caller_site, current_flow, current_group
from ductwork.core.graph import OPERATOR, NodeSpec
from ductwork.core.trigger_rules import TriggerRule
from ductwork.errors import (
    DefinitionError,
    InvalidDependencyError,
    UnknownArgumentError,
    did_you_mean,
)

if TYPE_CHECKING:
    from ductwork.core.context import TaskContext
    from ductwork.core.flow import Flow
    from ductwork.core.task_group import TaskGroup
    from ductwork.core.xcom_arg import XComArg

Callback = Callable[["TaskContext"], Any]


class DependencyMixin:
    """Anything that can stand on either side of ``>>``: operators, groups, task outputs."""

    def dependency_roots(self) -> list[BaseOperator]:
        """The operators that become downstream when this stands on the right of ``>>``."""
        raise NotImplementedError

    def dependency_leaves(self) -> list[BaseOperator]:
        """The operators that become upstream when this stands on the left of ``>>``."""
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        set_dependency(self, other)
        return other

    def __lshift__(self, other: Any) -> Any:
        set_dependency(other, self)
        return other

    def __rrshift__(self, other: Any) -> Any:
        set_dependency(other, self)
        return self

    def __rlshift__(self, other: Any) -> Any:
        set_dependency(self, other)
        return self

    def set_downstream(self, other: Any) -> None:
        set_dependency(self, other)

    def set_upstream(self, other: Any) -> None:
        set_dependency(other, self)


def _operators(obj: Any, *, leaves: bool, context: str) -> list[BaseOperator]:
    if isinstance(obj, DependencyMixin):
        return obj.dependency_leaves() if leaves else obj.dependency_roots()
    if isinstance(obj, list | tuple | set | frozenset):
        out: list[BaseOperator] = []
        for item in obj:
            out.extend(_operators(item, leaves=leaves, context=context))
        return out
    raise InvalidDependencyError(
        f"{context}: cannot depend on {obj!r} ({type(obj).__name__}): dependencies must be tasks, "
        f"task groups, task outputs, or lists of them"
    )


def set_dependency(upstream: Any, downstream: Any) -> None:
    """Make every leaf of ``upstream`` an upstream of every root of ``downstream``."""
    context = _describe(downstream if isinstance(downstream, DependencyMixin) else upstream)
    ups = _operators(upstream, leaves=True, context=context)
    downs = _operators(downstream, leaves=False, context=context)
    for down in downs:
        for up in ups:
            down.add_upstream(up)


def _describe(obj: Any) -> str:
    task_id = getattr(obj, "task_id", None) or getattr(obj, "group_id", None)
    return f"task {task_id!r}" if task_id else "dependency"


def chain(*items: Any) -> None:
    """``chain(a, b, [c, d], e)`` is ``a >> b >> [c, d] >> e``; two equal-length lists in a row
    are paired element by element, as in Airflow."""
    for left, right in itertools.pairwise(items):
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            if len(left) != len(right):
                raise InvalidDependencyError(
                    f"chain(): adjacent lists must have the same length, got {len(left)} and {len(right)}"
                )
            for up, down in zip(left, right, strict=True):
                set_dependency(up, down)
        else:
            set_dependency(left, right)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Sequence[Any]) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    set_dependency(list(from_tasks), list(to_tasks))


def _seconds(value: dt.timedelta | float | int | None, *, name: str, task_id: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise DefinitionError(f"task {task_id!r}: {name} wants a timedelta or seconds, got {value!r}")


def accepted_arguments(cls: type) -> frozenset[str]:
    """Keyword arguments accepted by ``cls.__init__`` across its bases (memoized on the class)."""
    cached = cls.__dict__.get("_ductwork_accepted_args")
    if cached is not None:
        return cached
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = getattr(init, "__wrapped__", init)
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self":
                names.add(param.name)
    result = frozenset(names)
    type.__setattr__(cls, "_ductwork_accepted_args", result)
    return result


def _with_flow_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an operator's ``__init__`` so the flow's ``default_args`` fill arguments not given."""

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_defaults_applied"):
            init(self, *args, **kwargs)
            return
        self.__dict__["_defaults_applied"] = True
        flow = kwargs.get("flow") or current_flow()
        group = kwargs.get("task_group") or current_group()
        defaults: dict[str, Any] = dict(flow.default_args) if flow is not None else {}
        if group is not None:
            defaults.update(group.default_args)
        accepted = accepted_arguments(type(self))
        name = f"{type(self).__name__}(task_id={kwargs.get('task_id')!r})"
        for key in kwargs:
            if key not in accepted:
                raise UnknownArgumentError(f"{name}: unknown argument {key!r}.{did_you_mean(key, accepted)}")
        for key, value in defaults.items():
            if key in accepted and key not in kwargs:
                kwargs[key] = value
        try:
            init(self, *args, **kwargs)
        except TypeError as exc:
            if "required" in str(exc) and "argument" in str(exc):
                raise DefinitionError(f"{name}: {exc}".replace(f"{type(self).__name__}.__init__() ", "")) from None
            raise

    return wrapper


class BaseOperator(DependencyMixin):
    """One task of a flow.

    Subclasses implement ``execute(context)``; what it returns is pushed as the task's result.
    Unknown keyword arguments are refused (with a suggestion), so a misspelt argument is an
    error at definition time rather than a silently ignored setting.
    """

    template_fields: ClassVar[Sequence[str]] = ()
    ui_color: ClassVar[str] = "#ffffff"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            setattr(cls, "__init__", _with_flow_defaults(cls.__dict__["__init__"]))  # noqa: B010

    def __init__(
        self,
        *,
        task_id: str,
        flow: Flow | None = None,
        task_group: TaskGroup | None = None,
        retries: int | None = None,
        retry_delay: dt.timedelta | float = 300.0,
        retry_exponential_backoff: bool = False,
        max_retry_delay: dt.timedelta | float | None = None,
        execution_timeout: dt.timedelta | float | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        priority_weight: int = 1,
        pool: str = "default_pool",
        pool_slots: int = 1,
        resources: Mapping[str, int] | None = None,
        queue: str = "default",
        depends_on_past: bool = False,
        owner: str = "",
        doc: str = "",
        do_xcom_push: bool = True,
        result_serializer: str | None = None,
        on_execute_callback: Callback | Sequence[Callback] | None = None,
        on_success_callback: Callback | Sequence[Callback] | None = None,
        on_failure_callback: Callback | Sequence[Callback] | None = None,
        on_retry_callback: Callback | Sequence[Callback] | None = None,
        **unknown: Any,
    ) -> None:
        self.defined_at = caller_site()
        name = type(self).__name__
        if unknown:
            bad = next(iter(unknown))
            raise UnknownArgumentError(
                f"{name}(task_id={task_id!r}): unknown argument {bad!r}."
                f"{did_you_mean(bad, accepted_arguments(type(self)))}"
            )
        if not isinstance(task_id, str) or not task_id.strip():
            raise DefinitionError(f"{name}: task_id must be a non-empty string, got {task_id!r}")
        self.flow: Flow | None = flow or current_flow()
        self.task_group: TaskGroup | None = task_group or current_group()
        self.task_id = self.task_group.child_id(task_id) if self.task_group else task_id
        where = self.task_id
        self.retries = int(retries or 0)
        self.retry_delay = _seconds(retry_delay, name="retry_delay", task_id=where) or 0.0
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = _seconds(max_retry_delay, name="max_retry_delay", task_id=where)
        self.execution_timeout = _seconds(execution_timeout, name="execution_timeout", task_id=where)
        self.trigger_rule = TriggerRule.parse(trigger_rule, where=f"task {where!r}")
        self.priority_weight = int(priority_weight)
        self.pool = pool
        self.pool_slots = int(pool_slots)
        self.resources = dict(resources or {})
        self.queue = queue
        self.depends_on_past = depends_on_past
        self.owner = owner
        self.doc = doc
        self.do_xcom_push = do_xcom_push
        self.result_serializer = result_serializer
        self.on_execute_callback = _callbacks(on_execute_callback)
        self.on_success_callback = _callbacks(on_success_callback)
        self.on_failure_callback = _callbacks(on_failure_callback)
        self.on_retry_callback = _callbacks(on_retry_callback)
        self.upstream_task_ids: dict[str, None] = {}
        self.downstream_task_ids: dict[str, None] = {}
        if self.task_group is not None:
            self.task_group.add(self)
        if self.flow is not None:
            self.flow.add_task(self)

    # --- what subclasses implement ----------------------------------------------------------
    def execute(self, context: TaskContext) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    def on_kill(self) -> None:
        """Stop work this task started outside Python (a process, a query) when the try is
        cancelled or times out."""

    def extra_spec(self) -> dict[str, Any]:
        """Operator-specific facts to show in the UI (the command, the callable's name)."""
        return {}

    # --- dependencies -----------------------------------------------------------------------
    def dependency_roots(self) -> list[BaseOperator]:
        return [self]

    def dependency_leaves(self) -> list[BaseOperator]:
        return [self]

    def add_upstream(self, other: BaseOperator) -> None:
        if other is self:
            raise InvalidDependencyError(f"task {self.task_id!r} cannot depend on itself")
        flow = self.flow or other.flow
        if self.flow is not None and other.flow is not None and self.flow is not other.flow:
            raise InvalidDependencyError(
                f"task {self.task_id!r} (flow {self.flow.flow_id!r}) cannot depend on task "
                f"{other.task_id!r} of another flow ({other.flow.flow_id!r})"
            )
        for op in (self, other):
            if op.flow is None and flow is not None:
                op.flow = flow
                flow.add_task(op)
        self.upstream_task_ids[other.task_id] = None
        other.downstream_task_ids[self.task_id] = None

    @property
    def upstream_list(self) -> list[BaseOperator]:
        assert self.flow is not None
        return [self.flow.tasks[t] for t in self.upstream_task_ids]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        assert self.flow is not None
        return [self.flow.tasks[t] for t in self.downstream_task_ids]

    @property
    def output(self) -> XComArg:
        """This task's return value, to pass to another task's arguments."""
        from ductwork.core.xcom_arg import XComArg

        return XComArg(self)

    # --- the engine's view ------------------------------------------------------------------
    def to_node(self) -> NodeSpec:
        return NodeSpec(
            task_id=self.task_id,
            upstream=tuple(self.upstream_task_ids),
            kind=OPERATOR,
            operator=type(self).__name__,
            trigger_rule=self.trigger_rule,
            retries=self.retries,
            retry_delay=self.retry_delay,
            retry_exponential_backoff=self.retry_exponential_backoff,
            max_retry_delay=self.max_retry_delay,
            execution_timeout=self.execution_timeout,
            priority_weight=self.priority_weight,
            pool=self.pool,
            pool_slots=self.pool_slots,
            resources=dict(self.resources),
            queue=self.queue,
            group=self.task_group.group_id if self.task_group else None,
            depends_on_past=self.depends_on_past,
            owner=self.owner,
            doc=self.doc,
            extra={k: v for k, v in self.extra_spec().items() if v is not None},
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id!r}>"


setattr(BaseOperator, "__init__", _with_flow_defaults(BaseOperator.__init__))  # noqa: B010


def _callbacks(value: Callback | Sequence[Callback] | None) -> list[Callback]:
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


def iter_operators(objs: Iterable[Any]) -> list[BaseOperator]:
    return [o for o in objs if isinstance(o, BaseOperator)]
