"""Clears that cross flows: what an ``ExternalTaskMarker`` among the cleared tasks adds.

Airflow's recursive clear: clearing a marker clears the task it names in the other flow's run
for the marker's logical date, with that task's downstream tasks, and the markers among those
lead further, up to the first marker's ``recursion_depth``. The whole plan is worked out
before anything changes, so a clear that would go too deep (a cycle of markers) changes
nothing; runs or tasks that do not exist are passed over, as Airflow passes them over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ductwork.core.context import date_strings
from ductwork.core.graph import EXTERNAL_MARKER, FlowGraph
from ductwork.core.schedule import get_timezone
from ductwork.core.templating import render_string
from ductwork.errors import InvalidTransitionError, TemplateError
from ductwork.store.records import RunRecord
from ductwork.store.repo import runs as run_repo

_TICK = dt.timedelta(microseconds=1)


@dataclass
class ExternalClear:
    """Tasks of another flow's run that a clear reaches through markers."""

    record: RunRecord
    task_ids: list[str] = field(default_factory=list)


def plan(conn: Connection, record: RunRecord, graph: FlowGraph, cleared: list[str]) -> list[ExternalClear]:
    """The other runs' tasks to clear with ``cleared`` (tasks of ``record``), in the order found."""
    found: dict[int, ExternalClear] = {record.pk: ExternalClear(record, list(cleared))}
    orders: dict[int, list[str]] = {}
    frontier = [(record, graph, task_id, 1) for task_id in cleared]
    max_depth: int | None = None
    while frontier:
        source, source_graph, task_id, depth = frontier.pop(0)
        marker = source_graph.nodes[task_id].extra.get(EXTERNAL_MARKER)
        if not isinstance(marker, dict):
            continue
        if max_depth is None:
            max_depth = int(marker.get("depth") or 10)
        if depth > max_depth:
            raise InvalidTransitionError(
                f"clearing {source.flow_id} {source.run_id} {task_id!r} would go past the maximum recursion depth "
                f"{max_depth} of its ExternalTaskMarkers: they clear too many flows, or they form a cycle; "
                "nothing was cleared"
            )
        target = _target_run(conn, source, source_graph, task_id, marker)
        if target is None:
            continue
        target_run = run_repo.load_run_graph(conn, target.pk)
        if marker["task"] not in target_run.graph.nodes:
            continue
        chosen = {marker["task"], *target_run.graph.downstream_closure([marker["task"]])}
        entry = found.setdefault(target.pk, ExternalClear(target))
        orders[target.pk] = list(target_run.graph.nodes)
        new = [t for t in target_run.graph.nodes if t in chosen and t not in entry.task_ids]
        entry.task_ids += new
        frontier += [(target, target_run.graph, t, depth + 1) for t in new]
    del found[record.pk]  # (a cycle of markers back into this run adds nothing to it)
    for entry in found.values():  # graph order within each run
        chosen = set(entry.task_ids)
        entry.task_ids = [t for t in orders[entry.record.pk] if t in chosen]
    return list(found.values())


def _target_run(
    conn: Connection, source: RunRecord, graph: FlowGraph, task_id: str, marker: dict[str, Any]
) -> RunRecord | None:
    """The run of the marker's flow at the marker's logical date (rendered with the source run)."""
    when = _marker_date(source, graph, task_id, str(marker.get("date") or ""))
    page = run_repo.list_runs(conn, flow_id=str(marker["flow"]), since=when, until=when + _TICK, limit=1)
    return page.items[0] if page.items else None


def _marker_date(source: RunRecord, graph: FlowGraph, task_id: str, template: str) -> dt.datetime:
    tz = get_timezone(graph.meta.timezone)
    ds, ds_nodash, ts, ts_nodash = date_strings(source.logical_date, tz)
    context = {
        "flow_id": source.flow_id,
        "dag_id": source.flow_id,
        "run_id": source.run_id,
        "logical_date": source.logical_date,
        "execution_date": source.logical_date,
        "data_interval_start": source.data_interval_start,
        "data_interval_end": source.data_interval_end,
        "ds": ds,
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": ts_nodash,
        "params": dict(source.params),
        "conf": dict(source.conf),
    }
    where = f"task {task_id!r} of flow {source.flow_id!r} (ExternalTaskMarker logical_date)"
    try:
        text = render_string(template, context, task_id=task_id, field="logical_date").strip()
        value = dt.datetime.fromisoformat(text)
    except (TemplateError, ValueError) as exc:
        raise InvalidTransitionError(f"{where}: {exc}; nothing was cleared") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
