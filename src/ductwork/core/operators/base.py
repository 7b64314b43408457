"""The operator: one task of a flow and its policy.

How dependencies are written (``a >> b``, ``chain``) lives in ``core.dependencies``; the names
are re-exported here because operators are where users look for them.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ductwork.core.assets import Asset, as_assets
from ductwork.core.definition_context import FlowScope, GroupScope, caller_site, current_flow, current_group
from ductwork.core.dependencies import DependencyMixin, chain, cross_downstream, set_dependency
from ductwork.core.graph import OPERATOR, NodeSpec
from ductwork.core.keys import KEY_RULE, is_key, key_like
from ductwork.core.trigger_rules import TriggerRule
from ductwork.core.xcom_arg import XComArg, find_refs
from ductwork.errors import (
    DefinitionError,
    InvalidDependencyError,
    UnknownArgumentError,
    did_you_mean,
)

if TYPE_CHECKING:
    from ductwork.core.context import TaskContext

__all__ = [
    "BaseOperator",
    "Callback",
    "DependencyMixin",
    "accepted_arguments",
    "chain",
    "cross_downstream",
    "iter_operators",
    "set_dependency",
]

Callback = Callable[["TaskContext"], Any]

_MAPPING: dict[str, Callable[..., Any]] = {}
"""Filled by ``core.mapping`` when it is imported (it builds on this module, so this module
cannot import it): ``partial`` makes an ``OperatorPartial``."""


def _whole(value: Any, *, name: str, task_id: str, least: int | None = 0) -> int:
    """A whole-number argument, or an error naming the task and the argument."""
    try:
        number = int(value)
        if isinstance(value, bool) or (number != value and not isinstance(value, str)):
            raise ValueError
    except (TypeError, ValueError):
        raise DefinitionError(f"task {task_id!r}: {name} must be a whole number, got {value!r}") from None
    if least is not None and number < least:
        raise DefinitionError(f"task {task_id!r}: {name} must be at least {least}, got {value!r}")
    return number


def _flag(value: Any, *, name: str, task_id: str) -> bool:
    """A yes/no argument of a task: ``depends_on_past="False"`` (text from a config or a
    default_args built from the environment) meant True, and the task waited on its past runs.
    Only True, False (or 1, 0) are taken."""
    if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise DefinitionError(f"task {task_id!r}: {name} must be True or False, got {value!r}")


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
        flow = kwargs.get("flow") or kwargs.get("dag") or current_flow()
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
        self._link_templated_outputs()

    return wrapper


class TaskIds(dict[str, None]):
    """A task's upstream or downstream task ids, in the order the edges were drawn (a dict used
    as an ordered set). It equals a set of the same ids, as Airflow's ``upstream_task_ids`` (a
    set) does: a DAG test's ``assert t.upstream_task_ids == {"extract"}`` holds."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, set | frozenset):
            return set(self) == other
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None


class BaseOperator(DependencyMixin):
    """One task of a flow.

    Subclasses implement ``execute(context)``; what it returns is pushed as the task's result.
    Unknown keyword arguments are refused (with a suggestion), so a misspelt argument is an
    error at definition time rather than a silently ignored setting.
    """

    template_fields: ClassVar[Sequence[str]] = ()
    ui_color: ClassVar[str] = "#ffffff"
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = cls.__dict__.get("template_fields")
        if isinstance(fields, str):
            # Iterated letter by letter, it named no attribute: the field was silently not rendered.
            raise DefinitionError(
                f"{cls.__name__}.template_fields is the string {fields!r}: it must be a tuple of attribute names, "
                f"such as ({fields!r},)"
            )
        if "__init__" in cls.__dict__:
            setattr(cls, "__init__", _with_flow_defaults(cls.__dict__["__init__"]))  # noqa: B010

    def __init__(
        self,
        *,
        task_id: str,
        flow: FlowScope | None = None,
        task_group: GroupScope | None = None,
        retries: int | None = None,
        retry_delay: dt.timedelta | float = 300.0,
        retry_exponential_backoff: bool = False,
        max_retry_delay: dt.timedelta | float | None = None,
        execution_timeout: dt.timedelta | float | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        priority_weight: int = 1,
        pool: str | None = "default_pool",
        pool_slots: int = 1,
        resources: Mapping[str, int] | None = None,
        queue: str = "default",
        executor_config: Mapping[str, Any] | None = None,
        depends_on_past: bool = False,
        owner: str = "",
        doc: str = "",
        do_xcom_push: bool = True,
        result_serializer: str | None = None,
        on_execute_callback: Callback | Sequence[Callback] | None = None,
        on_success_callback: Callback | Sequence[Callback] | None = None,
        on_failure_callback: Callback | Sequence[Callback] | None = None,
        on_retry_callback: Callback | Sequence[Callback] | None = None,
        outlets: Asset | str | Sequence[Asset | str] | None = None,
        inlets: Asset | str | Sequence[Asset | str] | None = None,
        cache: str | None = None,
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
        if not is_key(task_id):  # 'my task', 'x/y', 't[1]' broke log paths, URLs and mapped ids
            raise DefinitionError(f"{name}: invalid task_id {task_id!r}: {KEY_RULE}; write {key_like(task_id)!r}")
        self.flow: FlowScope | None = flow or current_flow()
        self.task_group: GroupScope | None = task_group or current_group()
        self.task_id = self.task_group.child_id(task_id) if self.task_group else task_id
        where = self.task_id
        self.retries = _whole(retries or 0, name="retries", task_id=where)
        self.retry_delay = _seconds(retry_delay, name="retry_delay", task_id=where) or 0.0
        backoff = _flag(retry_exponential_backoff, name="retry_exponential_backoff", task_id=where)
        self.retry_exponential_backoff = backoff
        self.max_retry_delay = _seconds(max_retry_delay, name="max_retry_delay", task_id=where)
        self.execution_timeout = _seconds(execution_timeout, name="execution_timeout", task_id=where)
        self.trigger_rule = TriggerRule.parse(trigger_rule, where=f"task {where!r}")
        self.priority_weight = _whole(priority_weight, name="priority_weight", task_id=where, least=None)
        if pool is None:  # Airflow's default, written out: the default pool, as there
            pool = "default_pool"
        if not isinstance(pool, str) or not pool.strip():
            # pool=3 ran unlimited in a pool named '3'; pool=None was an IntegrityError traceback
            raise DefinitionError(f"{name}(task_id={task_id!r}): pool must be a pool's name (text), got {pool!r}")
        self.pool = pool
        self.pool_slots = _whole(pool_slots, name="pool_slots", task_id=where, least=1)
        self.resources = dict(resources or {})
        if not isinstance(queue, str) or not queue.strip():
            raise DefinitionError(f"{name}(task_id={task_id!r}): queue must be a non-empty string, got {queue!r}")
        self.queue = queue
        self.executor_config = dict(executor_config or {})
        self.depends_on_past = _flag(depends_on_past, name="depends_on_past", task_id=where)
        self.owner = owner
        self.doc = doc
        self.do_xcom_push = _flag(do_xcom_push, name="do_xcom_push", task_id=where)
        self.result_serializer = result_serializer
        self.on_execute_callback = _callbacks(on_execute_callback)
        self.on_success_callback = _callbacks(on_success_callback)
        self.on_failure_callback = _callbacks(on_failure_callback)
        self.on_retry_callback = _callbacks(on_retry_callback)
        self.outlets: list[Asset] = as_assets(outlets, where=f"task {where!r}", name="outlets")
        self.inlets: list[Asset] = as_assets(inlets, where=f"task {where!r}", name="inlets")
        from ductwork.core.versioning import check_cache_mode

        self.cache: str | None = check_cache_mode(cache, where=f"task {where!r}")
        self.upstream_task_ids: dict[str, None] = TaskIds()
        self.downstream_task_ids: dict[str, None] = TaskIds()
        self.edge_sites: dict[str, tuple[str, int]] = {}
        """Where each upstream edge was first written (file, line), by upstream task id: a
        dependency cycle is reported with the lines of its edges, the one to undo among them."""
        if self.task_group is not None:
            self.task_group.add(self)
        if self.flow is not None:
            self.flow.add_task(self)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """``BashOperator.partial(task_id="b", env=...).expand(bash_command=[...])``: one task
        per item (dynamic task mapping, ``core.mapping``)."""
        return _MAPPING["partial"](cls, kwargs)

    # --- setup and teardown -----------------------------------------------------------------
    def as_setup(self) -> BaseOperator:
        """Mark this task as the setup of some work (a teardown cleans up after it)."""
        self.__dict__["is_setup"] = True
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> BaseOperator:
        """Mark this task as a teardown: it runs once everything upstream is done, even after a
        failure, as long as one upstream task (its setup) succeeded; its own failure does not
        fail the run unless ``on_failure_fail_dagrun``. ``setups`` become its setups."""
        self.__dict__["is_teardown"] = True
        self.trigger_rule = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS
        self.__dict__["rule_follows_setups"] = True
        if on_failure_fail_dagrun is not None:
            self.__dict__["on_failure_fail_dagrun"] = on_failure_fail_dagrun
        if setups is not None:
            for item in setups if isinstance(setups, list | tuple) else [setups]:
                for op in item.dependency_leaves():
                    op.as_setup()
            set_dependency(setups, self)
        return self

    def __enter__(self) -> BaseOperator:
        """``with teardown:``: the tasks made in the block run after its setups and before it."""
        self.__dict__.setdefault("_block_starts", []).append(
            set(self.flow.tasks.keys()) if self.flow is not None else set()
        )
        return self

    def __exit__(self, *exc: object) -> None:
        before = self.__dict__["_block_starts"].pop()
        if exc[0] is not None or self.flow is None:
            return
        new = {tid: op for tid, op in self.flow.tasks.items() if tid not in before and op is not self}
        setups = [self.flow.tasks[u] for u in self.upstream_task_ids if getattr(self.flow.tasks[u], "is_setup", False)]
        for op in new.values():
            if setups and not any(u in new for u in op.upstream_task_ids):
                set_dependency(setups, op)
            if not any(d in new for d in op.downstream_task_ids):
                set_dependency(op, self)

    def _link_templated_outputs(self) -> None:
        """A task output held by a templated field (``values=other.output``) makes ``other``
        upstream; the field gets the value itself when the task runs (``core.templating``)."""
        for name in type(self).template_fields:
            if not hasattr(self, name):
                # A misspelt field was silently never rendered (Airflow fails on it).
                raise DefinitionError(
                    f"{type(self).__name__}(task_id={self.task_id!r}): template field {name!r} is not an attribute "
                    "it has"
                )
            for ref in find_refs(getattr(self, name, None)):
                if ref.operator is not self:
                    set_dependency(ref, self)

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
        return XComArg(self)

    # --- the engine's view ------------------------------------------------------------------
    def to_node(self) -> NodeSpec:
        return NodeSpec(
            task_id=self.task_id,
            upstream=tuple(self.upstream_task_ids),
            kind=OPERATOR,
            operator=type(self).__name__,
            trigger_rule=self.node_trigger_rule(),
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
            executor_config=self.executor_config,
            group=self.task_group.group_id if self.task_group else None,
            depends_on_past=self.depends_on_past,
            owner=self.owner,
            doc=self.doc,
            extra={**{k: v for k, v in self._node_extra().items() if v is not None}, **self._data_spec()},
        )

    def node_trigger_rule(self) -> TriggerRule:
        """The rule the engine applies: a teardown's (Airflow's ``all_done_setup_success``) waits
        for one of its setups to succeed, so that nothing is cleaned up that was never set up;
        with no setup task upstream there is nothing to wait for, and it runs once everything
        upstream is done, as Airflow's does."""
        rule = self.trigger_rule
        if rule is not TriggerRule.ALL_DONE_MIN_ONE_SUCCESS or not self.__dict__.get("rule_follows_setups"):
            return rule
        tasks = self.flow.tasks if self.flow is not None else {}
        setups = [u for u in self.upstream_task_ids if getattr(tasks.get(u), "is_setup", False)]
        return rule if setups else TriggerRule.ALL_DONE

    def _data_spec(self) -> dict[str, Any]:
        """Assets and caching, in the node's extra (only when set, so other graphs stay as they were)."""
        out: dict[str, Any] = {}
        if self.outlets:
            out["outlets"] = [a.uri for a in self.outlets]
        if self.inlets:
            out["inlets"] = [a.uri for a in self.inlets]
        cache = self.effective_cache
        if cache:
            out["cache"] = cache
        return out

    @property
    def effective_cache(self) -> str | None:
        """The task's own ``cache=``, else its flow's."""
        return self.cache or (getattr(self.flow, "cache", None) if self.flow is not None else None)

    def _node_extra(self) -> dict[str, Any]:
        extra = dict(self.extra_spec())
        if self.is_setup:
            extra["setup"] = True
        if self.is_teardown:
            extra["teardown"] = True
            extra["fail_run"] = self.on_failure_fail_dagrun or None
        return extra

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
