"""Graphs, times and shortcuts shared by the store's contract tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec, topological
from ductwork.core.states import TaskState
from ductwork.core.trigger_rules import TriggerRule
from ductwork.engine.tracker import Change
from ductwork.store.records import RunRecord
from ductwork.store.repo import runs

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
_counter = itertools.count(1)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def graph(
    flow_id: str = "etl",
    edges: Mapping[str, Iterable[str]] | None = None,
    *,
    paused_on_creation: bool = False,
    fileloc: str | None = "/flows/etl.py",
    tags: tuple[str, ...] = (),
    description: str = "",
    groups: Mapping[str, Mapping[str, Any]] | None = None,
    **node_kwargs: Any,
) -> FlowGraph:
    """A graph from ``{task_id: upstream ids}`` (default: the diamond a -> b, c -> d, plus e)."""
    edges = edges if edges is not None else {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
    nodes = {t: NodeSpec(t, tuple(ups), **node_kwargs) for t, ups in edges.items()}
    meta = FlowMeta(
        flow_id,
        description=description,
        schedule="@daily",
        timezone="Europe/Paris",
        tags=tags,
        fileloc=fileloc,
        paused_on_creation=paused_on_creation,
        max_active_runs=3,
    )
    return FlowGraph(meta, topological(nodes, where=flow_id), dict(groups or {}))


def rich_graph() -> FlowGraph:
    """Nodes that use most NodeSpec fields, to check they survive the store."""
    nodes = {
        "extract": NodeSpec(
            "extract", (), operator="PythonOperator", retries=2, retry_delay=5.0, pool="io", pool_slots=2
        ),
        "check": NodeSpec(
            "check",
            ("extract",),
            kind="class_task",
            operator="Check",
            trigger_rule=TriggerRule.ALL_DONE,
            priority_weight=7,
            resources={"db": 1},
            queue="fast",
            group="quality",
            family="Check",
            module="pipelines.quality",
            params={"day": "2024-01-01", "strict": None},
            extra={"already_complete": False, "note": ["x", 1]},
            execution_timeout=30.5,
            max_retry_delay=60.0,
            retry_exponential_backoff=True,
            owner="ana",
            doc="checks",
            depends_on_past=True,
        ),
    }
    meta = FlowMeta("rich", params={"day": {"type": "date", "default": "2024-01-01"}}, tags=("a", "b"))
    return FlowGraph(meta, topological(nodes), {"quality": {"tooltip": "checks", "children": ["check"]}})


def create_run(conn: Connection, g: FlowGraph | None = None, run_id: str | None = None, **kwargs: Any) -> RunRecord:
    kwargs.setdefault("logical_date", T0)
    kwargs.setdefault("now", T0)
    return runs.create_run(conn, g or graph(), run_id=run_id or f"run_{next(_counter)}", **kwargs)


def change(task_id: str, old: TaskState, new: TaskState, reason: str = "") -> Change:
    return Change(task_id, old, new, reason)


def queue_task(conn: Connection, engine: Engine, key: str, task_id: str, try_number: int = 1) -> None:
    """Queue a task the way the scheduler does: through the event sink."""
    from ductwork.engine.supervisor import StateChanged
    from ductwork.store.sink import SqlEventSink

    SqlEventSink(engine).write(
        conn,
        [
            StateChanged(key, change(task_id, TaskState.NONE, TaskState.SCHEDULED), T0, try_number - 1),
            StateChanged(key, change(task_id, TaskState.SCHEDULED, TaskState.QUEUED), T0, try_number),
        ],
    )
