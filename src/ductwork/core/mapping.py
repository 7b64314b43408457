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

The engine never learns that a node is a mapped instance: it only sees nodes being added.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.dependencies import set_dependency
from ductwork.core.graph import NodeSpec
from ductwork.core.operators.base import _MAPPING, BaseOperator, accepted_arguments
from ductwork.core.results import MISSING
from ductwork.core.signals import ExpandNodes, SkipTask
from ductwork.core.templating import render_value
from ductwork.core.trigger_rules import TriggerRule
from ductwork.core.xcom_arg import XComArg, find_refs, resolve_refs
from ductwork.errors import DefinitionError, TaskExecutionError

MAP_INDEX = "map_index"
MAPPED_TASK = "mapped_task"
MAPPED_COUNT = "mapped_count"
_NOT_FOR_INSTANCES = ("flow", "dag", "task_group")


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
    def mapped_values(self, context: TaskContext) -> list[dict[str, Any]]:
        """The keyword arguments of each instance, in map-index order."""
        if self.expand_kwargs_input is not None:
            source = resolve_refs(self.expand_kwargs_input, context)
            if not isinstance(source, Sequence) or not all(isinstance(i, Mapping) for i in source):
                raise TaskExecutionError(f"task {self.task_id!r}: expand_kwargs wants a list of dicts, got {source!r}")
            return [dict(item) for item in source]
        names = list(self.expand_input)
        columns = []
        for name in names:
            value = resolve_refs(self.expand_input[name], context)
            if isinstance(value, Mapping):
                value = list(value.items())
            if value is None or isinstance(value, str | bytes) or not isinstance(value, Sequence):
                raise TaskExecutionError(f"task {self.task_id!r}: expand({name}=...) got {value!r}, not a list")
            columns.append(list(value))
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*columns)]

    def execute(self, context: TaskContext) -> Any:
        ti = context["ti"]
        count = ti.results.pull(ti.run.key, _state_id(self.task_id), MAPPED_COUNT)
        values = self.mapped_values(context)
        expanded = 0 if count is MISSING else int(count)
        if len(values) > expanded:
            if not values:
                raise SkipTask(f"{self.task_id}: nothing to map over (an empty list)")
            ti.results.push(ti.run.key, _state_id(self.task_id), MAPPED_COUNT, len(values))
            context["log"].info("%s: mapped over %d item(s)", self.task_id, len(values))
            node = self.to_node()
            instances = tuple(
                replace(
                    node,
                    task_id=instance_id(self.task_id, i),
                    extra={**node.extra, MAP_INDEX: i, MAPPED_TASK: self.task_id},
                )
                for i in range(expanded, len(values))
            )
            waiting = replace(
                node,
                upstream=tuple(instance_id(self.task_id, i) for i in range(len(values))),
                trigger_rule=TriggerRule.ALL_SUCCESS,
                extra={**node.extra, MAPPED_COUNT: len(values)},
            )
            raise ExpandNodes(instances, waiting)
        if not values:
            raise SkipTask(f"{self.task_id}: nothing to map over (an empty list)")
        ids = [instance_id(self.task_id, i) for i in range(len(values))]
        return ti.xcom_pull(task_ids=ids)

    # --- instances --------------------------------------------------------------------------
    def instance(self, map_index: int) -> MappedInstance:
        return MappedInstance(self, map_index)


class MappedInstance:
    """The executable of ``t[i]``: builds the real operator when the try starts."""

    template_fields: Sequence[str] = ()

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
        operator = self.mapped.operator_class(task_id=self.mapped.task_id, **kwargs)
        operator.task_id = self.task_id
        operator.flow = self.mapped.flow
        operator.__dict__["map_index"] = self.map_index
        operator.__dict__["expanded_ti_count"] = len(values)
        return operator

    def adapt_context(self, context: TaskContext) -> TaskContext:
        """Build this instance's operator (its values may come from other tasks' results) and
        let it add to the context as it would unmapped."""
        self._operator = self._build(context)
        adapt = getattr(self._operator, "adapt_context", None)
        return adapt(context) if adapt is not None else context

    def execute(self, context: TaskContext) -> Any:
        operator = self._operator if self._operator is not None else self._build(context)
        self._operator = None
        if operator is None:
            context["log"].info("%s: removed (the mapped list is shorter now); nothing to do", self.task_id)
            return None
        for name in getattr(operator, "template_fields", ()) or ():
            value = getattr(operator, name, None)
            setattr(operator, name, render_value(value, context, task_id=self.task_id, field=name))
        context = context.with_values(task=operator)
        return operator.execute(context)

    def on_kill(self) -> None:
        if self._operator is not None:
            self._operator.on_kill()

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

    def expand(self, **mapped: Any) -> MappedOperator:
        if not mapped:
            raise DefinitionError(f"task {self.kwargs['task_id']!r}: expand() needs at least one argument")
        clash = sorted(set(mapped) & set(self.kwargs))
        if clash:
            raise DefinitionError(
                f"task {self.kwargs['task_id']!r}: {clash[0]!r} is given to both partial() and expand()"
            )
        op = MappedOperator(
            task_id=self.kwargs["task_id"],
            operator_class=self.operator_class,
            partial_kwargs={k: v for k, v in self.kwargs.items() if k != "task_id"},
            expand_input=mapped,
            **self._policy(),
        )
        return op

    def expand_kwargs(self, source: Any) -> MappedOperator:
        op = MappedOperator(
            task_id=self.kwargs["task_id"],
            operator_class=self.operator_class,
            partial_kwargs={k: v for k, v in self.kwargs.items() if k != "task_id"},
            expand_kwargs_input=source,
            **self._policy(),
        )
        return op


_MAPPING["partial"] = OperatorPartial
