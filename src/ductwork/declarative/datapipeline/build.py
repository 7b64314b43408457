"""Building the ``Flow`` of a validated definition (the graph the engine runs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ductwork.core.flow import Flow
from ductwork.core.operators.base import BaseOperator
from ductwork.core.params import Parameter
from ductwork.declarative.datapipeline import catalog as cat
from ductwork.declarative.datapipeline.compiler import STYLE, PipelineInfo, Policy, kind_of, task_id_for
from ductwork.declarative.datapipeline.model import PipelineObject


class PipelineFlow(Flow):
    """A flow compiled from a declarative definition; ``style`` tells the UI and the API."""

    def __init__(self, flow_id: str, *, style: str, **kwargs: Any) -> None:
        super().__init__(flow_id, **kwargs)
        self._style = style

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
) -> Flow:
    from ductwork.declarative.datapipeline import operators as ops

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
        max_active_runs=1 if info.schedule_type == "ondemand" else 16,
    )
    taken: set[str] = set()
    tasks: dict[str, BaseOperator] = {}
    with flow:
        for obj in definition:
            kind = kind_of(obj)
            if kind not in (cat.ACTIVITY, cat.DATANODE):
                continue
            task_id = task_id_for(obj.id, taken)
            info.task_ids[obj.id] = task_id
            common = _common(obj, task_id, info, policies[obj.id])
            if obj.type == "ShellCommandActivity":
                stage = str(definition.effective(obj).get("stage", "false")).lower() == "true"
                tasks[obj.id] = ops.ShellCommandActivityOperator(stage=stage, **common)
            else:
                tasks[obj.id] = ops.DataNodeOperator(**common)
        for obj_id, ups in edges.items():
            for up, _via in ups:
                if up in tasks and obj_id in tasks:
                    tasks[obj_id].add_upstream(tasks[up])
    return flow


def _common(obj: PipelineObject, task_id: str, info: PipelineInfo, policy: Policy) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "info": info,
        "object_id": obj.id,
        "retries": policy.retries,
        "retry_delay": policy.retry_delay,
        "execution_timeout": policy.timeout,
        "queue": policy.queue,
        "doc": f"{obj.type} {obj.id!r}" + (f" ({obj.name})" if obj.name != obj.id else ""),
    }
