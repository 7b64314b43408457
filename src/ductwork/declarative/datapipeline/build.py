"""Building the ``Flow`` of a validated definition (the graph the engine runs).

Tasks, named after object ids (characters other than letters, digits, ``_``, ``.`` and ``-``
become ``_``):

- ``X``: an activity or data node;
- ``X.P``: precondition ``P`` of ``X`` (a sensor upstream of ``X``, after ``X``'s own inputs);
- ``X.onSuccess.A`` / ``X.onFail.A``: an action after ``X``;
- ``X.onLateAction``: the watcher that fires ``X``'s late actions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ductwork.core.flow import Flow
from ductwork.core.operators.base import BaseOperator
from ductwork.core.params import Parameter
from ductwork.core.trigger_rules import TriggerRule
from ductwork.declarative.datapipeline import catalog as cat
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.plan import (
    STYLE,
    PipelineInfo,
    Policy,
    is_task_id,
    kind_of,
    refs,
    task_id_for,
)


class PipelineFlow(Flow):
    """A flow compiled from a declarative definition; ``style`` tells the UI and the API."""

    def __init__(self, flow_id: str, *, style: str, **kwargs: Any) -> None:
        super().__init__(flow_id, **kwargs)
        self._style = style
        self.notes: list[Any] = []
        """What was accepted without effect (IAM roles, regions, EC2 resources), for ``validate``."""
        self.period: str | None = None
        """The Schedule's AWS period (``1 month``), which ``pipelines validate`` shows next to
        the cron text a period in months or years becomes."""

    @property
    def style(self) -> str:
        return self._style


def build_flow(
    info: PipelineInfo,
    *,
    edges: Mapping[str, list[tuple[str, str]]],
    policies: Mapping[str, Policy],
    params: Mapping[str, Parameter[Any]],
    schedule: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    catchup: bool,
    description: str,
    max_active_runs: int,
    tags: list[str],
    paused: bool,
    fixed_params: Mapping[str, list[str]] | None = None,
) -> Flow:
    from ductwork.declarative.datapipeline import actions
    from ductwork.declarative.datapipeline import operators as ops
    from ductwork.declarative.datapipeline.preconditions import PreconditionSensor

    definition = info.definition
    flow = PipelineFlow(
        info.flow_id,
        style=STYLE,
        description=description,
        schedule=schedule,
        start_date=start,
        end_date=end,
        catchup=catchup,
        params=dict(params),
        max_active_runs=max_active_runs,
        tags=["aws-datapipeline", *tags],
        paused_on_creation=paused,
    )
    for name, uses in (fixed_params or {}).items():
        # A run given another value is refused (resolve_values), whichever door it comes through.
        flow.params[name].fixed_by = tuple(uses)
    flow.period = str(info.period) if info.period is not None else None
    taken: set[str] = set()
    tasks: dict[str, BaseOperator] = {}
    runnables = [o for o in definition if kind_of(o) in (cat.ACTIVITY, cat.DATANODE)]
    # An object whose id is a valid task id keeps it; one whose id had to change ("My Activity"
    # -> "My_Activity") gives way: the object written "My_Activity" was shown as "My_Activity_2"
    # when "My Activity" came first, and the failed task named neither object.
    for obj in sorted(runnables, key=lambda o: not is_task_id(o.id)):
        info.task_ids[obj.id] = task_id_for(obj.id, taken)
    with flow:
        for obj in runnables:
            task_id = info.task_ids[obj.id]
            common = _common(obj, task_id, info, policies[obj.id])
            if obj.type == "ShellCommandActivity":
                tasks[obj.id] = ops.ShellCommandActivityOperator(stage=policies[obj.id].stage, **common)
            elif obj.type == "SqlActivity":
                tasks[obj.id] = ops.SqlActivityOperator(**common)
            elif obj.type == "CopyActivity":
                tasks[obj.id] = ops.CopyActivityOperator(**common)
            elif obj.type == "RedshiftCopyActivity":
                tasks[obj.id] = ops.CopyActivityOperator(
                    insert_mode=policies[obj.id].insert_mode, copy_options=policies[obj.id].copy_options, **common
                )
            else:
                tasks[obj.id] = ops.DataNodeOperator(**common)
        for obj_id, ups in edges.items():
            for up, _via in ups:
                if up in tasks and obj_id in tasks:
                    tasks[obj_id].add_upstream(tasks[up])
        for obj in runnables:
            target = tasks[obj.id]
            upstream = [tasks[up] for up, _via in edges.get(obj.id, []) if up in tasks]
            runnable: list[tuple[PipelineObject, BaseOperator]] = [(obj, target)]
            for pre_id in refs(definition.effective(obj).get("precondition")):
                pre = definition.objects[pre_id]
                policy = policies[pre_id]
                sensor = PreconditionSensor(
                    task_id=task_id_for(f"{target.task_id}.{pre_id}", taken),
                    info=info,
                    object_id=pre_id,
                    node_id=obj.id,
                    poke_interval=policy.retry_delay,
                    timeout=policy.precondition_timeout,
                    max_checks=policy.max_checks,
                    queue=policies[obj.id].queue,
                    doc=f"{pre.type} {pre_id!r} of {obj.id!r}",
                )
                for before in upstream:
                    sensor.add_upstream(before)
                target.add_upstream(sensor)
                runnable.append((pre, sensor))
            for source, task in runnable:
                _attach_actions(info, source, task, policies, taken, actions)
    return flow


def _attach_actions(
    info: PipelineInfo,
    obj: PipelineObject,
    task: BaseOperator,
    policies: Mapping[str, Policy],
    taken: set[str],
    actions: Any,
) -> None:
    definition = info.definition
    effective = definition.effective(obj)
    policy = policies.get(obj.id, Policy())
    for when, rule in (("onSuccess", TriggerRule.ALL_SUCCESS), ("onFail", TriggerRule.ONE_FAILED)):
        for action_id in refs(effective.get(when)):
            action = actions.ActionOperator(
                task_id=task_id_for(f"{task.task_id}.{when}.{action_id}", taken),
                info=info,
                action_id=action_id,
                node_id=obj.id,
                node_task_id=task.task_id,
                when=when,
                cascade=policy.cascade,
                trigger_rule=rule,
                queue=policy.queue,
                doc=f"{definition.objects[action_id].type} {action_id!r}, {when} of {obj.id!r}",
            )
            action.add_upstream(task)
    late = refs(effective.get("onLateAction"))
    if late and policy.late_after is not None and info.schedule_type != "ondemand":
        actions.LateWatcher(
            task_id=task_id_for(f"{task.task_id}.onLateAction", taken),
            info=info,
            node_id=obj.id,
            node_task_id=task.task_id,
            late_after=policy.late_after,
            actions=tuple(late),
            queue=policy.queue,
            doc=f"fires {', '.join(late)} if {obj.id!r} is not finished {policy.late_after:g}s after its start",
        )


def _common(obj: PipelineObject, task_id: str, info: PipelineInfo, policy: Policy) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "info": info,
        "object_id": obj.id,
        "cascade": policy.cascade,
        "retries": policy.retries,
        "retry_delay": policy.retry_delay,
        "execution_timeout": policy.timeout,
        "queue": policy.queue,
        "doc": f"{obj.type} {obj.id!r}" + (f" ({obj.name})" if obj.name != obj.id else ""),
    }
