"""Render a task's templated fields without running it (``ductwork tasks render``).

The context is the one a try of that task would get for the given logical date and
parameters, with connections and variables from the configured secrets backends and no results
(``ti.xcom_pull`` gives ``None``). Secrets are masked in what is returned, as in what a try
records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ductwork.core.context import RunInfo, TaskInstance, build_context
from ductwork.core.flow import Flow
from ductwork.core.masking import MASKER
from ductwork.core.results import MemoryResults
from ductwork.core.schedule import as_aware
from ductwork.core.task_services import TaskServices
from ductwork.engine.execution import render_fields, task_logger


def render_task(
    flow: Flow,
    task_id: str,
    *,
    logical_date: dt.datetime | None = None,
    params: Mapping[str, Any] | None = None,
    services: TaskServices | None = None,
    now: dt.datetime | None = None,
    map_index: int | None = None,
) -> dict[str, Any]:
    """The task's template fields, rendered, by field name (in ``template_fields`` order); with
    ``map_index``, those of that instance of a mapped task (``airflow tasks render --map-index``),
    built from its own item of the mapped values (a task's output is not known here: None)."""
    operator = flow.get_task(task_id)
    if map_index is not None:
        return _render_instance(
            flow, operator, map_index, logical_date=logical_date, params=params, services=services, now=now
        )
    run = _render_run(flow, logical_date, params, now)
    ti = TaskInstance(run, task_id, 1, 1 + operator.retries, MemoryResults(), operator.downstream_task_ids)
    extra = (services or TaskServices()).context_values()
    context = build_context(run, ti, operator, log=task_logger, extra=extra)
    adapt = getattr(operator, "adapt_context", None)
    if adapt is not None:  # as a try does: the Airflow shim's names (prev_ds...), its template files
        context = adapt(context)
    own = getattr(operator, "rendered_fields", None)
    if own is not None:  # an AWS pipeline object: its fields' #{...} expressions, evaluated
        return {name: MASKER.mask_value(value) for name, value in own(context).items()}
    return render_fields(operator, context)


def _render_run(
    flow: Flow, logical_date: dt.datetime | None, params: Mapping[str, Any] | None, now: dt.datetime | None
) -> RunInfo:
    """The run a rendering pretends to be part of: at ``logical_date`` (or now), with its params."""
    when = as_aware(logical_date, flow.tz) if logical_date is not None else (now or dt.datetime.now(dt.UTC))
    interval = flow.schedule.interval_starting(when)
    return RunInfo(
        flow_id=flow.flow_id,
        run_id=f"render__{when.isoformat()}",
        logical_date=when,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        params=flow.resolve_params(params),
        run_type="render",
        timezone=flow.tz,
    )


def _render_instance(
    flow: Flow,
    mapped: Any,
    map_index: int,
    *,
    logical_date: dt.datetime | None,
    params: Mapping[str, Any] | None,
    services: TaskServices | None,
    now: dt.datetime | None,
) -> dict[str, Any]:
    """Instance ``map_index`` of ``mapped``: its operator is built as its try would build it
    (``adapt_context``), then its fields are rendered."""
    from ductwork.core.mapping import lone_instance
    from ductwork.errors import ParameterError

    found = lone_instance(mapped, map_index)
    if found is None:
        raise ParameterError(f"--map-index: task {mapped.task_id!r} is not mapped (it has no instances)")
    instance = flow.resolve_operator(found[0])
    run = _render_run(flow, logical_date, params, now)
    ti = TaskInstance(run, instance.task_id, 1, 1 + mapped.retries, MemoryResults(), mapped.downstream_task_ids)
    extra = (services or TaskServices()).context_values()
    context = instance.adapt_context(build_context(run, ti, mapped, log=task_logger, extra=extra))
    error = getattr(instance, "_error", None)
    if error is not None:  # its values could not be read (a task's output is None here)
        raise ParameterError(
            f"task {instance.task_id!r}: {error} (render reads no task's output: a list mapped from one is "
            "known only in a run, whose tries keep each instance's rendered fields)"
        )
    built = instance.built_operator
    if built is None:
        raise ParameterError(f"task {mapped.task_id!r} has no map index {map_index}: its list is shorter")
    return render_fields(built, context.with_values(task=built))
