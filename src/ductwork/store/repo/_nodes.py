"""Graph nodes as task-instance rows, and back.

A task instance row holds its ``NodeSpec`` as JSON without the task id and upstream list,
which have columns of their own; the upstream column is the one source of truth, so growing a
node's dependencies (dynamic dependencies) updates one place. The columns the scheduler filters
or sorts on (operator, priority, pool, queue, group) are copied out of the node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.states import TaskState
from ductwork.store import fastexec
from ductwork.store.repo._util import chunks
from ductwork.store.tables import task_instances

ti = task_instances


def node_json(node: NodeSpec, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``data``: the node's ``to_dict()``, when the caller has it (``FlowGraph.node_dicts``)."""
    return {k: v for k, v in (node.to_dict() if data is None else data).items() if k not in _OWN_COLUMNS}


_OWN_COLUMNS = frozenset({"task_id", "upstream"})


def graph_json(graph: FlowGraph) -> dict[str, Any]:
    return {
        "meta": graph.meta.to_dict(),
        "nodes": list(graph.node_dicts()),
        "groups": {k: dict(v) for k, v in graph.groups.items()},
    }


def node_from_row(task_id: str, node: Mapping[str, Any], upstream: Iterable[str]) -> NodeSpec:
    return NodeSpec.from_dict({**node, "task_id": task_id, "upstream": list(upstream)})


def definition_columns(node: NodeSpec, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The columns that come from the node's definition (``data``: as for ``node_json``)."""
    return {
        "node": node_json(node, data),
        "upstream": list(node.upstream),
        "operator": node.operator,
        "priority_weight": node.priority_weight,
        "pool": node.pool,
        "pool_slots": node.pool_slots,
        "queue": node.queue,
        "group_id": node.group,
    }


def new_row(
    run_pk: int,
    ordinal: int,
    node: NodeSpec,
    state: TaskState,
    try_number: int,
    now: dt.datetime,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``data``: as for ``node_json``."""
    return {
        "run_pk": run_pk,
        "task_id": node.task_id,
        "ordinal": ordinal,
        "state": state.value,
        "try_number": try_number,
        "max_tries": node.retries + 1,
        "start_date": None,
        "end_date": None,
        "duration": None,
        "hostname": None,
        "pid": None,
        "heartbeat_at": None,
        "next_try_at": None,
        "updated_at": now,
        **definition_columns(node, data),
    }


_INSERT = sa.insert(ti)
"""Long-lived: ``fastexec`` compiles it once (a run of 100,000 tasks inserts as many rows)."""


def insert_nodes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows of ``new_row``: every row has the same columns."""
    fastexec.executemany(conn, _INSERT, rows)


def grow(conn: Connection, run_pk: int, nodes: Iterable[NodeSpec], now: dt.datetime) -> list[str]:
    """Add nodes to a run: insert those it lacks (state NONE), and replace the definition (the
    upstream list above all) of those it has. Returns the ids inserted, in the given order."""
    by_id = {node.task_id: node for node in nodes}
    ids = list(by_id)
    existing: set[str] = set()
    for part in chunks(ids):
        existing.update(
            conn.execute(sa.select(ti.c.task_id).where(ti.c.run_pk == run_pk, ti.c.task_id.in_(part))).scalars()
        )
    next_ordinal = (
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(ti.c.ordinal), -1)).where(ti.c.run_pk == run_pk)
        ).scalar_one()
        + 1
    )
    added = [task_id for task_id in ids if task_id not in existing]
    insert_nodes(
        conn, [new_row(run_pk, next_ordinal + i, by_id[t], TaskState.NONE, 0, now) for i, t in enumerate(added)]
    )
    changed = [task_id for task_id in ids if task_id in existing]
    if changed:
        stmt = (
            sa.update(ti)
            .where(ti.c.run_pk == sa.bindparam("b_run_pk"), ti.c.task_id == sa.bindparam("b_task_id"))
            .values(
                {name: sa.bindparam(f"b_{name}") for name in (*definition_columns(by_id[changed[0]]), "updated_at")}
            )
        )
        params = []
        for task_id in changed:
            values = {f"b_{k}": v for k, v in definition_columns(by_id[task_id]).items()}
            params.append({"b_run_pk": run_pk, "b_task_id": task_id, "b_updated_at": now, **values})
        conn.execute(stmt, params)
    return added
