"""Dynamic task mapping: one task definition, as many task instances as a list has items.

``add_one.expand(x=[1, 2, 3])`` (a ``@task``), ``BashOperator.partial(task_id="b").expand(
bash_command=other.output)`` (an operator) and ``.expand_kwargs(list_of_dicts)`` define a
``MappedOperator``. The list may be known when the flow is defined or be another task's output,
so the instances are made when the mapped task becomes ready, with the engine's ordinary way of
growing a run's graph (the one class tasks use for dynamic dependencies):

1. The mapped task ``t`` runs once to *expand*: it reads the lists, and adds nodes ``t[0]`` ...
   ``t[n-1]`` (same upstream, trigger rule and policy as ``t``) and makes ``t`` wait for them.
   An empty list skips ``t`` (and what follows, by trigger rule), as in Airflow.
2. Each instance ``t[i]`` builds the real operator with the ``partial`` arguments and the
   ``i``-th values, renders its templated fields and runs it; its result is its own.
3. ``t`` runs again to *collect*: its result is the list of the instances' results, which is
   what a downstream task pulling ``t`` receives. If the lists grew (the upstream was cleared
   and ran again), it first adds the missing instances; instances past a shorter list end
   without doing anything ("removed").

A mapped task group (``MappedGroupExpander``) is the same three steps for a whole group: its
first task ``<group>.expand`` adds ``m[i]`` for every task ``m`` of the group, ``m[i]`` depending
on ``u[i]`` for each upstream ``u`` of ``m`` inside the group (so one map index never waits for
another), and each ``m`` becomes a collector of its instances' results. Inside ``m[i]``, another
task of the group's output reads its instance ``i``, and the group function's arguments
(``MappedGroupArgument``) are the ``i``-th values.

The engine never learns that a node is a mapped instance: it only sees nodes being added.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ductwork.core.context import TaskContext, reset_current_context, set_current_context
from ductwork.core.dependencies import edges_already_drawn, set_dependency
from ductwork.core.graph import MAPPED_TASK, NodeSpec
from ductwork.core.operators.base import _MAPPING, BaseOperator, accepted_arguments
from ductwork.core.results import MISSING, RETURN_VALUE
from ductwork.core.signals import ExpandNodes, InstancesFailed, SkipTask
from ductwork.core.templating import render_value
from ductwork.core.trigger_rules import TriggerRule
from ductwork.core.xcom_arg import XComArg, find_refs, resolve_refs
from ductwork.errors import DefinitionError, TaskExecutionError, UnknownArgumentError, did_you_mean

MAP_INDEX = "map_index"
MAPPED_COUNT = "mapped_count"
_NOT_FOR_INSTANCES = ("flow", "dag", "task_group")


_CALLBACKS = ("on_execute_callback", "on_success_callback", "on_failure_callback", "on_retry_callback")


def instance_id(task_id: str, index: int) -> str:
    return f"{task_id}[{index}]"


def _state_id(task_id: str) -> str:
    return f"__mapped__.{task_id}"


class MappedOperator(BaseOperator):
    """A task that becomes one instance per item of its mapped arguments (see the module)."""

    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        task_id: str,
        operator_class: type[BaseOperator],
        partial_kwargs: Mapping[str, Any],
        expand_input: Mapping[str, Any] | None = None,
        expand_kwargs_input: Any = None,
        op_kwargs_target: bool = False,
        **policy: Any,
    ) -> None:
        super().__init__(task_id=task_id, **policy)
        self.operator_class = operator_class
        defaults = dict(self.flow.default_args) if self.flow is not None else {}
        accepted = accepted_arguments(operator_class)
        self.partial_kwargs = {
            **{k: v for k, v in defaults.items() if k in accepted},
            **{k: v for k, v in partial_kwargs.items() if k not in _NOT_FOR_INSTANCES},
        }
        self.expand_input = dict(expand_input or {})
        self.expand_kwargs_input = expand_kwargs_input
        self.op_kwargs_target = op_kwargs_target
        """The mapped values are keyword arguments of a ``@task`` function (its ``op_kwargs``)."""
        for name, value in self.expand_input.items():
            if not isinstance(value, XComArg | list | tuple | dict):
                raise DefinitionError(
                    f"task {task_id!r}: expand({name}=...) wants a list, a dict or a task's output, got {value!r}"
                )
        for ref in find_refs([self.expand_input, self.expand_kwargs_input, list(self.partial_kwargs.values())]):
            set_dependency(ref, self)

    # --- the engine's view ------------------------------------------------------------------
    def extra_spec(self) -> dict[str, Any]:
        return {"mapped": True, "operator_class": self.operator_class.__name__}

    def to_node(self) -> NodeSpec:
        node = super().to_node()
        return replace(node, operator=self.operator_class.__name__)

    # --- expansion --------------------------------------------------------------------------
    def mapped_values(self, context: TaskContext) -> Sequence[dict[str, Any]]:
        """The keyword arguments of each instance, in map-index order."""
        return _mapped_values(self.task_id, self.expand_input, self.expand_kwargs_input, context)

    def execute(self, context: TaskContext) -> Any:
        values = self.mapped_values(context)
        node = self.to_node()

        def instances(start: int, end: int) -> tuple[NodeSpec, ...]:
            return tuple(
                replace(
                    node,
                    task_id=instance_id(self.task_id, i),
                    extra={**node.extra, MAP_INDEX: i, MAPPED_TASK: self.task_id},
                )
                for i in range(start, end)
            )

        ids = tuple(instance_id(self.task_id, i) for i in range(len(values)))
        _expand_once(self, context, len(values), instances, ids, what="", rule=TriggerRule.ALL_DONE)
        _wait_for_current(self, context, ids)
        return _collect(context, self.task_id, ids)

    # --- instances --------------------------------------------------------------------------
    def instance(self, map_index: int) -> MappedInstance:
        return MappedInstance(self, map_index)


class MappedInstance:
    """The executable of ``t[i]``: builds the real operator when the try starts."""

    template_fields: Sequence[str] = ()
    map_index_template: str | None = None
    """The built operator's (Airflow's ``map_index_template``): the instance's label."""

    def __init__(self, mapped: MappedOperator, map_index: int) -> None:
        self.mapped = mapped
        self.map_index = map_index
        self.task_id = instance_id(mapped.task_id, map_index)
        self.flow = mapped.flow
        self.do_xcom_push = mapped.do_xcom_push
        self.on_execute_callback = mapped.on_execute_callback
        self.on_success_callback = mapped.on_success_callback
        self.on_failure_callback = mapped.on_failure_callback
        self.on_retry_callback = mapped.on_retry_callback
        self._operator: BaseOperator | None = None
        self._error: Exception | None = None

    def _build(self, context: TaskContext) -> BaseOperator | None:
        values = self.mapped.mapped_values(context)
        if self.map_index >= len(values):
            return None
        mine = values[self.map_index]
        kwargs = dict(self.mapped.partial_kwargs)
        if self.mapped.op_kwargs_target:
            kwargs["op_kwargs"] = {**dict(kwargs.get("op_kwargs") or {}), **mine}
        else:
            kwargs.update(mine)
        with edges_already_drawn():
            operator = self.mapped.operator_class(task_id=self.mapped.task_id, **kwargs)
        operator.task_id = self.task_id
        operator.flow = self.mapped.flow
        operator.__dict__["map_index"] = self.map_index
        operator.__dict__["expanded_ti_count"] = len(values)
        self.map_index_template = getattr(operator, "map_index_template", None)
        for name in _CALLBACKS:  # the built operator's: its class may wrap them (the Airflow shim's set ti.state)
            setattr(self, name, getattr(operator, name, getattr(self, name)))
        return operator

    def adapt_context(self, context: TaskContext) -> TaskContext:
        """Build this instance's operator (its values may come from other tasks' results) and
        let it add to the context as it would unmapped. Building it runs the functions of a
        ``.map()``: what one raises (``SkipTask`` too) is raised again by ``execute``, where it
        decides the try as any error of the task does."""
        try:
            with _current(context):
                self._operator = self._build(context)
        except Exception as exc:
            self._error = exc
            return context
        context = context.with_values(ti=_InstanceTaskInstance(context["ti"]))
        adapt = getattr(self._operator, "adapt_context", None)
        return adapt(context) if adapt is not None else context

    def execute(self, context: TaskContext) -> Any:
        error, self._error = self._error, None
        try:
            if error is not None:  # a ``.map()`` function's: its skip skips the instance too
                raise error
            operator = self._operator if self._operator is not None else self._build(context)
        except SkipTask:
            _mark(context, self.task_id, SKIPPED)
            raise
        self._operator = None
        if operator is None:  # skipped, not a success that never happened (Airflow shows "removed")
            _mark(context, self.task_id, REMOVED)
            raise SkipTask(f"{self.task_id}: removed (the mapped list is shorter now); nothing to do")
        for name in getattr(operator, "template_fields", ()) or ():
            value = getattr(operator, name, None)
            setattr(operator, name, render_value(value, context, task_id=self.task_id, field=name))
        context = context.with_values(task=operator)
        try:
            result = operator.execute(context)
        except SkipTask:
            _mark(context, self.task_id, SKIPPED)
            raise
        _mark(context, self.task_id, SUCCEEDED)
        return result

    def on_kill(self) -> None:
        if self._operator is not None:
            self._operator.on_kill()

    def on_reused(self, context: TaskContext) -> None:
        """Its results were reused from an earlier run (``cache="content"``): it succeeded as far
        as its collector is concerned."""
        self._operator = None
        _mark(context, self.task_id, SUCCEEDED)

    @property
    def built_operator(self) -> BaseOperator | None:
        """The operator this instance runs, built with its own item (by ``adapt_context``):
        what its fingerprint is made of, since the instance itself is only a wrapper."""
        return self._operator

    @property
    def mapped_sources(self) -> set[str]:
        """The tasks whose whole lists this instance reads only its item of (its item is part
        of its arguments): one changed item re-runs one instance, not all of them."""
        return {ref.operator.task_id for ref in find_refs([self.mapped.expand_input, self.mapped.expand_kwargs_input])}

    def __repr__(self) -> str:
        return f"<mapped instance {self.task_id}>"


class OperatorPartial:
    """``SomeOperator.partial(task_id=..., **common)``: waiting for ``expand``/``expand_kwargs``."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: Mapping[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise DefinitionError(f"{operator_class.__name__}.partial() needs a task_id")
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)

    def _policy(self) -> dict[str, Any]:
        accepted = accepted_arguments(BaseOperator)
        policy = {k: v for k, v in self.kwargs.items() if k in accepted and k != "task_id"}
        if self.kwargs.get("dag") is not None:
            policy.setdefault("flow", self.kwargs["dag"])
        return policy

    def _check_names(self, names: Iterable[str], what: str) -> None:
        """A misspelt argument is an error when the flow is defined, as for an operator built
        directly (not one failed try per mapped instance at run time)."""
        accepted = accepted_arguments(self.operator_class) | {"dag"}
        for name in names:
            if name not in accepted:
                raise UnknownArgumentError(
                    f"{self.operator_class.__name__}(task_id={self.kwargs['task_id']!r}): {what}() got an unknown "
                    f"argument {name!r}.{did_you_mean(name, accepted)}"
                )

    def expand(self, **mapped: Any) -> MappedOperator:
        if not mapped:
            raise DefinitionError(f"task {self.kwargs['task_id']!r}: expand() needs at least one argument")
        clash = sorted(set(mapped) & set(self.kwargs))
        if clash:
            raise DefinitionError(
                f"task {self.kwargs['task_id']!r}: {clash[0]!r} is given to both partial() and expand()"
            )
        self._check_names(self.kwargs, "partial")
        self._check_names(mapped, "expand")
        op = MappedOperator(
            task_id=self.kwargs["task_id"],
            operator_class=self.operator_class,
            partial_kwargs={k: v for k, v in self.kwargs.items() if k != "task_id"},
            expand_input=mapped,
            **self._policy(),
        )
        return op

    def expand_kwargs(self, source: Any) -> MappedOperator:
        self._check_names(self.kwargs, "partial")
        if isinstance(source, list | tuple):
            for item in source:
                if isinstance(item, Mapping):
                    self._check_names(item, "expand_kwargs")
        op = MappedOperator(
            task_id=self.kwargs["task_id"],
            operator_class=self.operator_class,
            partial_kwargs={k: v for k, v in self.kwargs.items() if k != "task_id"},
            expand_kwargs_input=source,
            **self._policy(),
        )
        return op


_MAPPING["partial"] = OperatorPartial


# --- mapped task groups ------------------------------------------------------------------------
GROUP_MEMBER = "mapped_group_member"
_GROUP_VALUES = "__mapped_group_values__"


class MappedGroupArgument(XComArg):
    """An argument of a mapped task group's function: inside instance ``i`` of the group it is
    the ``i``-th value (``grp.expand(x=[1, 2])``: ``x`` is 1 in instance 0, 2 in instance 1).
    Passing it to a task draws the edge from the group's expander, like any task output."""

    def __init__(self, expander: MappedGroupExpander, name: str) -> None:
        super().__init__(expander, name)
        self.name = name

    def resolve(self, context: TaskContext) -> Any:
        values = context.get(_GROUP_VALUES)
        if values is None:
            raise TaskExecutionError(
                f"the mapped argument {self.name!r} of task group {self.operator.task_id!r} is only known "
                "inside the group's tasks"
            )
        return values[self.name]


class MappedGroupExpander(BaseOperator):
    """The first task of a mapped task group (``<group>.expand``): when its lists are known it adds
    instances ``m[0]`` ... ``m[n-1]`` of every task ``m`` of the group, instance ``i`` of a task
    depending on instance ``i`` of its upstream tasks in the group (Airflow's semantics: one map
    index does not wait for another), then waits for all of them. Each task ``m`` of the group
    is replaced by a ``MappedGroupMember`` that collects its instances' results, as a mapped
    task does, for what comes after the group."""

    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        task_id: str,
        expand_input: Mapping[str, Any] | None = None,
        expand_kwargs_input: Any = None,
        **policy: Any,
    ) -> None:
        super().__init__(task_id=task_id, **policy)
        self.expand_input = dict(expand_input or {})
        self.expand_kwargs_input = expand_kwargs_input
        self.templates: dict[str, BaseOperator] = {}
        for name, value in self.expand_input.items():
            if not isinstance(value, XComArg | list | tuple | dict):
                raise DefinitionError(
                    f"task group {task_id!r}: expand({name}=...) wants a list, a dict or a task's output, got {value!r}"
                )
        for ref in find_refs([self.expand_input, self.expand_kwargs_input]):
            set_dependency(ref, self)

    def extra_spec(self) -> dict[str, Any]:
        return {"mapped_group": True}

    def mapped_values(self, context: TaskContext) -> Sequence[dict[str, Any]]:
        return _mapped_values(self.task_id, self.expand_input, self.expand_kwargs_input, context)

    def adopt(self, members: Sequence[BaseOperator]) -> dict[str, MappedGroupMember]:
        """Take the group's tasks (defined by its function) as templates of their instances, and
        put a collector in each one's place; tasks of the group with no upstream task in it, and
        the upstream tasks outside the group of any of them, come before the expander."""
        flow = self.flow
        assert flow is not None
        ids = {m.task_id for m in members}
        collectors: dict[str, MappedGroupMember] = {}
        for member in members:
            if isinstance(member, MappedOperator | MappedGroupExpander):
                raise DefinitionError(
                    f"task {member.task_id!r}: mapping inside a mapped task group is not supported; "
                    "map the group or the task, not both"
                )
            for up in list(member.upstream_task_ids):
                if up not in ids and up != self.task_id:
                    set_dependency(flow.tasks[up], self)
            set_dependency(self, member)
            self.templates[member.task_id] = member
        tasks: Any = flow.tasks  # a dict: the flow's own table, edited while it is being defined
        for member in members:
            del tasks[member.task_id]
            group: Any = member.task_group
            while group is not None:
                group.members.remove(member)
                group = group.parent
            collectors[member.task_id] = MappedGroupMember(self, member)
        return collectors

    def execute(self, context: TaskContext) -> Any:
        values = self.mapped_values(context)

        def instances(start: int, end: int) -> tuple[NodeSpec, ...]:
            made = []
            for member_id, template in self.templates.items():
                node = template.to_node()
                inside = [u for u in template.upstream_task_ids if u in self.templates]
                for i in range(start, end):
                    made.append(
                        replace(
                            node,
                            task_id=instance_id(member_id, i),
                            upstream=tuple(instance_id(u, i) for u in inside),
                            extra={**node.extra, MAP_INDEX: i, MAPPED_TASK: member_id, GROUP_MEMBER: self.task_id},
                        )
                    )
            return tuple(made)

        waiting = tuple(instance_id(m, i) for m in self.templates for i in range(len(values)))
        # none_failed: an instance skipped (a branch not taken at its map index, a short-circuit)
        # is an outcome of the group; one failed still leaves the collectors upstream_failed
        _expand_once(self, context, len(values), instances, waiting, what="the group ", rule=TriggerRule.NONE_FAILED)
        return len(values)

    def count(self, context: TaskContext) -> int:
        return _expanded(context, self.task_id)


class MappedGroupMember(BaseOperator):
    """A task of a mapped task group, in the run's graph: it runs after every instance of the
    group and collects its own instances' results (the list a downstream task receives)."""

    ui_color = "#f4a460"

    def __init__(self, expander: MappedGroupExpander, template: BaseOperator) -> None:
        group: Any = template.task_group
        label = template.task_id
        if group is not None and group.prefix_group_id:
            label = label[len(group.group_id) + 1 :]
        # none_failed: a collector of the group whose instances were all skipped at some map
        # index (a branch not taken) does not stop the collectors below it
        super().__init__(task_id=label, flow=expander.flow, task_group=group, trigger_rule=TriggerRule.NONE_FAILED)
        self.expander = expander
        self.template = template
        # the same dicts as the template: edges drawn later to or from its output land here too
        self.upstream_task_ids = template.upstream_task_ids
        self.downstream_task_ids = template.downstream_task_ids
        self.edge_sites = template.edge_sites
        self.doc = template.doc

    def extra_spec(self) -> dict[str, Any]:
        return {"mapped": True, "operator_class": type(self.template).__name__}

    def to_node(self) -> NodeSpec:
        node = super().to_node()
        return replace(node, operator=type(self.template).__name__)

    def execute(self, context: TaskContext) -> Any:
        n = self.expander.count(context)
        if n == 0:
            raise SkipTask(f"{self.task_id}: the group mapped over nothing")
        ti = context["ti"]
        ids = [instance_id(self.task_id, i) for i in range(n)]
        # every instance has ended without failing (the expander waited for them): one that did
        # not succeed was skipped, and the collector ends as a mapped task's does (``_collect``)
        done = [i for i in ids if ti.results.pull(ti.run.key, i, OUTCOME) == SUCCEEDED]
        values = ti.xcom_pull(task_ids=done)
        if len(done) < len(ids):
            ti.xcom_push(RETURN_VALUE, values)
            skipped = [i for i in ids if i not in done]
            raise SkipTask(f"{self.task_id}: {len(skipped)} of its {n} mapped instances were skipped: {_few(skipped)}")
        return values

    def instance(self, map_index: int) -> MappedGroupInstance:
        return MappedGroupInstance(self.expander, self.template, map_index)


class _InstanceTaskInstance:
    """The try's ``ti`` in instance ``i`` of a mapped task. A branch or short-circuit there
    decides, as in Airflow, only about the instances at map index ``i`` of the tasks below it,
    and a mapped task has none: the task collecting its instances' results, and what follows
    it, wait for every instance and go by their trigger rules. Passed on, one instance's
    decision skipped the collector, and so everything below, whatever the other instances
    chose (a mapped ``@task.branch`` skipped the branch it chose too)."""

    def __init__(self, ti: Any) -> None:
        self.__dict__["_ti"] = ti

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_ti"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["_ti"], name, value)

    def follow_branches(self, task_ids: Iterable[str]) -> None:
        """Nothing downstream is at this map index: nothing to skip."""

    def skip_downstream(self, *, recursive: bool) -> None:
        """Nothing downstream is at this map index: nothing to skip."""


class _IndexedTaskInstance:
    """The try's ``ti`` inside instance ``i`` of a mapped group: pulling another task of the
    group reads that task's instance ``i`` (Airflow resolves in-group outputs per map index)."""

    def __init__(self, ti: Any, members: Mapping[str, Any], map_index: int) -> None:
        self.__dict__["_ti"] = ti
        self.__dict__["_members"] = members
        self.__dict__["_index"] = map_index

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_ti"], name)

    def _id(self, task_id: str) -> str:
        return instance_id(task_id, self.__dict__["_index"]) if task_id in self.__dict__["_members"] else task_id

    def _own(self, task_ids: Iterable[str]) -> set[str]:
        """Of ``task_ids``, the instances at this map index of the group's tasks: what a branch
        of this instance decides about (the group's expander, which waits for every instance,
        is downstream of it too, and is no branch)."""
        own = {self._id(member) for member in self.__dict__["_members"]}
        return {t for t in task_ids if t in own}

    def follow_branches(self, task_ids: Iterable[str]) -> None:
        """A branch returns the group's task ids (``"group.task"``, as in Airflow): it follows
        their instances at this map index and skips only the others at this index."""
        ti = self.__dict__["_ti"]
        downstream = set(ti.downstream_ids)
        ti.follow_branches({self._id(t) for t in task_ids} | (downstream - self._own(downstream)))

    def skip_downstream(self, *, recursive: bool) -> None:
        """A short-circuit skips the group's tasks at this map index, not the other indexes' (as
        Airflow skips only the same map index): the direct ones, or with ``recursive`` every
        task of the group below this one. The engine's recursive skip would go on through the
        expander, which waits for every instance, to the whole group and what follows it."""
        ti = self.__dict__["_ti"]
        targets = self._own(ti.downstream_ids)
        if recursive:
            members = self.__dict__["_members"]
            below: set[str] = set()
            stack = [ti.task_id.rpartition("[")[0]]
            while stack:
                template = members.get(stack.pop())
                for down in getattr(template, "downstream_task_ids", ()):
                    if down in members and down not in below:
                        below.add(down)
                        stack.append(down)
            targets |= {self._id(t) for t in below}
        ti.decision.skip |= targets

    def xcom_pull(self, task_ids: Any = None, key: str = RETURN_VALUE, default: Any = None) -> Any:
        ti = self.__dict__["_ti"]
        if task_ids is None:
            return ti.xcom_pull(key=key, default=default)
        if isinstance(task_ids, str):
            return ti.xcom_pull(task_ids=self._id(task_ids), key=key, default=default)
        return ti.xcom_pull(task_ids=[self._id(t) for t in task_ids], key=key, default=default)


class MappedGroupInstance:
    """The executable of ``m[i]`` for a task ``m`` of a mapped group: a copy of the task as the
    group's function defined it, run with the group's ``i``-th values."""

    template_fields: Sequence[str] = ()

    @property
    def map_index_template(self) -> str | None:
        return getattr(self.template, "map_index_template", None)

    def __init__(self, expander: MappedGroupExpander, template: BaseOperator, map_index: int) -> None:
        self.expander = expander
        self.template = template
        self.map_index = map_index
        self.task_id = instance_id(template.task_id, map_index)
        self.flow = template.flow
        self.do_xcom_push = template.do_xcom_push
        self.on_execute_callback = template.on_execute_callback
        self.on_success_callback = template.on_success_callback
        self.on_failure_callback = template.on_failure_callback
        self.on_retry_callback = template.on_retry_callback
        self._operator: BaseOperator | None = None
        self._error: Exception | None = None

    def adapt_context(self, context: TaskContext) -> TaskContext:
        """As ``MappedInstance.adapt_context``: an error reading this instance's values is
        raised again by ``execute``."""
        try:
            with _current(context):
                values = self.expander.mapped_values(context)
                mine = values[self.map_index] if self.map_index < len(values) else None
        except Exception as exc:
            self._error = exc
            return context
        if mine is None:
            self._operator = None
            return context
        operator = copy.copy(self.template)
        operator.task_id = self.task_id
        operator.__dict__["map_index"] = self.map_index
        operator.__dict__["expanded_ti_count"] = len(values)
        self._operator = operator
        ti = _IndexedTaskInstance(context["ti"], self.expander.templates, self.map_index)
        context = context.with_values(ti=ti, **{_GROUP_VALUES: mine})
        adapt = getattr(operator, "adapt_context", None)
        return adapt(context) if adapt is not None else context

    def execute(self, context: TaskContext) -> Any:
        error, self._error = self._error, None
        if error is not None:
            raise error
        operator = self._operator
        self._operator = None
        if operator is None:
            context["log"].info("%s: removed (the mapped list is shorter now); nothing to do", self.task_id)
            _mark(context, self.task_id, SUCCEEDED)
            return None
        for name in getattr(operator, "template_fields", ()) or ():
            value = getattr(operator, name, None)
            setattr(operator, name, render_value(value, context, task_id=self.task_id, field=name))
        result = operator.execute(context.with_values(task=operator))
        _mark(context, self.task_id, SUCCEEDED)  # what its collector reads: it succeeded
        return result

    def on_kill(self) -> None:
        if self._operator is not None:
            self._operator.on_kill()

    @property
    def built_operator(self) -> BaseOperator | None:
        """As ``MappedInstance.built_operator``: this instance's copy of the group's task."""
        return self._operator

    @property
    def mapped_sources(self) -> set[str]:
        """The group's expander: its arguments are read item by item (``MappedGroupArgument``)."""
        return {self.expander.task_id}

    def __repr__(self) -> str:
        return f"<mapped group instance {self.task_id}>"


def lone_instance(task: Any, map_index: int) -> tuple[NodeSpec, tuple[str, ...]] | None:
    """Instance ``map_index`` of a mapped task (or of a task of a mapped group) as its expander
    would add it to a run, and the tasks whose results it reads; ``None`` for a task that is not
    mapped. For ``ductwork tasks test --map-index`` (Airflow's), which runs that instance alone:
    its expander never runs there, so nothing else would add it."""
    if isinstance(task, MappedOperator):
        node = task.to_node()
        extra = {**node.extra, MAP_INDEX: map_index, MAPPED_TASK: task.task_id}
        return replace(node, task_id=instance_id(task.task_id, map_index), extra=extra), node.upstream
    if isinstance(task, MappedGroupMember):
        expander, template = task.expander, task.template
        node = template.to_node()
        inside = tuple(instance_id(u, map_index) for u in template.upstream_task_ids if u in expander.templates)
        extra = {**node.extra, MAP_INDEX: map_index, MAPPED_TASK: template.task_id, GROUP_MEMBER: expander.task_id}
        instance = replace(node, task_id=instance_id(template.task_id, map_index), upstream=inside, extra=extra)
        return instance, (*expander.to_node().upstream, *inside)
    return None


@contextlib.contextmanager
def _current(context: TaskContext) -> Iterator[None]:
    """``get_current_context()`` works in a ``.map()`` function, called before the try runs."""
    token = set_current_context(context)
    try:
        yield
    finally:
        reset_current_context(token)


def _expanded(context: TaskContext, task_id: str) -> int:
    """How many instances ``task_id`` has expanded into so far (0 before its first try)."""
    return _count(context["ti"], task_id)


def _count(ti: Any, task_id: str) -> int:
    count = ti.results.pull(ti.run.key, _state_id(task_id), MAPPED_COUNT)
    return 0 if count is MISSING else int(count)


def instance_ids(ti: Any, task: Any) -> list[str] | None:
    """The ids of the instances a mapped task (or a task of a mapped group) has in ``ti``'s run so
    far, in map-index order; ``None`` for a task that is not mapped."""
    if isinstance(task, MappedOperator):
        expander_id = task.task_id
    elif isinstance(task, MappedGroupMember):
        expander_id = task.expander.task_id
    else:
        return None
    return [instance_id(task.task_id, i) for i in range(_count(ti, expander_id))]


def _expand_once(
    op: BaseOperator,
    context: TaskContext,
    length: int,
    instances: Callable[[int, int], tuple[NodeSpec, ...]],
    waiting: tuple[str, ...],
    *,
    what: str,
    rule: TriggerRule = TriggerRule.ALL_SUCCESS,
) -> None:
    """The expander's protocol, shared by a mapped task and a mapped group: on the first try that
    sees more items than instances, record the count and grow the graph (``ExpandNodes``: the new
    instances, and this task again, waiting on all of them); an empty list skips; once expanded,
    return to the caller, which gathers the instances' outcome."""
    expanded = _expanded(context, op.task_id)
    if length > expanded:
        ti = context["ti"]
        ti.results.push(ti.run.key, _state_id(op.task_id), MAPPED_COUNT, length)
        ti.results.push(ti.run.key, _state_id(op.task_id), WAITED_FOR, length)
        context["log"].info("%s: mapped %sover %d item(s)", op.task_id, what, length)
        own = op.to_node()
        waiting_node = replace(own, upstream=waiting, trigger_rule=rule, extra={**own.extra, MAPPED_COUNT: length})
        raise ExpandNodes(instances(expanded, length), waiting_node)
    if length == 0:
        raise SkipTask(f"{op.task_id}: nothing to map over (an empty list)")


WAITED_FOR = "mapped_waited_for"


def _wait_for_current(op: BaseOperator, context: TaskContext, ids: tuple[str, ...]) -> None:
    """After the list shrank (its upstream ran again with fewer items), the mapped task waits
    for the instances it still has, not for those past the list's end: downstream trigger rules
    count the instances it waits for (``RunTracker.spread``), and a removed one (skipped, as
    Airflow shows "removed") skipped an ``all_success`` task below. Same when the list grows
    back within the instances made before. One more try of the mapped task, only then."""
    ti = context["ti"]
    waited = ti.results.pull(ti.run.key, _state_id(op.task_id), WAITED_FOR)
    if waited is MISSING:
        waited = _count(ti, op.task_id)
    if int(waited) == len(ids):
        return
    ti.results.push(ti.run.key, _state_id(op.task_id), WAITED_FOR, len(ids))
    own = op.to_node()
    raise ExpandNodes(
        (), replace(own, upstream=ids, trigger_rule=TriggerRule.ALL_DONE, extra={**own.extra, MAPPED_COUNT: len(ids)})
    )


OUTCOME = "mapped_outcome"
"""The result key under which an instance says how its try ended (its collector reads it)."""
SUCCEEDED, SKIPPED, REMOVED = "success", "skipped", "removed"


def _mark(context: TaskContext, task_id: str, outcome: str) -> None:
    ti = context["ti"]
    ti.results.push(ti.run.key, task_id, OUTCOME, outcome)


def _collect(context: TaskContext, task_id: str, ids: Sequence[str]) -> list[Any]:
    """The mapped task's result, gathered once every instance has ended (its trigger rule is
    ``all_done``): the values of the instances that succeeded, in map-index order, as Airflow
    hands a downstream task. The task then ends as its instances did, for the downstream trigger
    rules: failed if one failed (``all_done`` downstream still gets the values), skipped if one
    was skipped (``none_failed`` downstream runs with the others' values); it ran with a single
    ``all_success`` rule, so one skipped instance gave a ``none_failed`` downstream ``None``."""
    ti = context["ti"]
    values: list[Any] = []
    skipped: list[str] = []
    failed: list[str] = []
    for instance in ids:
        outcome = ti.results.pull(ti.run.key, instance, OUTCOME)
        if outcome == SUCCEEDED:
            values.append(ti.xcom_pull(task_ids=instance))
        elif outcome == SKIPPED:
            skipped.append(instance)
        elif outcome != REMOVED:
            failed.append(instance)
    if failed or skipped:
        ti.xcom_push(RETURN_VALUE, values)  # what a downstream task that runs anyway receives
    if failed:
        raise InstancesFailed(f"{task_id}: {len(failed)} of its {len(ids)} mapped instances failed: {_few(failed)}")
    if skipped:
        raise SkipTask(f"{task_id}: {len(skipped)} of its {len(ids)} mapped instances were skipped: {_few(skipped)}")
    return values


def _few(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _mapped_values(
    task_id: str, expand_input: Mapping[str, Any], expand_kwargs_input: Any, context: TaskContext
) -> Sequence[dict[str, Any]]:
    """The keyword arguments of each instance, in map-index order (lists are crossed). Made when
    an instance is read, so that a ``.map()`` function runs only for the instance that uses it."""
    if expand_kwargs_input is not None:
        source = resolve_refs(expand_kwargs_input, context)
        if (
            not isinstance(source, Sequence)
            or isinstance(source, str | bytes)
            or (isinstance(source, list | tuple) and not all(isinstance(i, Mapping) for i in source))
        ):
            raise TaskExecutionError(f"task {task_id!r}: expand_kwargs wants a list of dicts, got {source!r}")
        return _Kwargs(task_id, source)
    names = list(expand_input)
    columns: list[Sequence[Any]] = []
    for name in names:
        value = resolve_refs(expand_input[name], context)
        if isinstance(value, Mapping):
            value = list(value.items())
        if value is None or isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TaskExecutionError(f"task {task_id!r}: expand({name}=...) got {value!r}, not a list")
        columns.append(value)
    return _Grid(names, columns)


class _Grid(Sequence[dict[str, Any]]):
    """Every combination of one item of each column, in ``itertools.product``'s order."""

    def __init__(self, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
        self.names = names
        self.columns = columns

    def __len__(self) -> int:
        return math.prod(len(c) for c in self.columns)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        picked: dict[str, Any] = {}
        for name, column in reversed(list(zip(self.names, self.columns, strict=True))):
            index, position = divmod(index, len(column))
            picked[name] = column[position]
        return {name: picked[name] for name in self.names}


class _Kwargs(Sequence[dict[str, Any]]):
    """``expand_kwargs``' dicts, each checked when it is read."""

    def __init__(self, task_id: str, source: Sequence[Any]) -> None:
        self.task_id = task_id
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        item = self.source[index]
        if not isinstance(item, Mapping):
            raise TaskExecutionError(f"task {self.task_id!r}: expand_kwargs wants a list of dicts, got {item!r}")
        return dict(item)
