"""Graph nodes as task-instance rows, and back.

A task instance row holds its ``NodeSpec`` as JSON without the task id and upstream list,
which have columns of their own; the upstream column is the one source of truth, so growing a
node's dependencies (dynamic dependencies) updates one place. The columns the scheduler filters
or sorts on (operator, priority, pool, queue, group) are copied out of the node.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.states import TaskState
from ductwork.store.repo._util import chunks
from ductwork.store.tables import task_instances

ti = task_instances


_BLANK = NodeSpec("_")
_DEFAULT_VALUES: dict[str, Any] = {f.name: getattr(_BLANK, f.name) for f in fields(NodeSpec) if f.name != "task_id"}
"""Field values ``NodeSpec.to_dict`` leaves out, because they are the defaults."""


def node_dict(node: NodeSpec) -> dict[str, Any]:
    """``node.to_dict()``, without its deep copy.

    ``NodeSpec.to_dict`` goes through ``dataclasses.asdict``, which deep-copies every field and
    costs about 25 µs a node: half a second for a 10,000-node run, twice over (the rows and the
    version hash). The store only serializes the result, so a shallow walk is enough. A test
    checks that the two agree for every field.
    """
    data: dict[str, Any] = {"task_id": node.task_id}
    for name, default in _DEFAULT_VALUES.items():
        value = getattr(node, name)
        if value == default:
            continue
        if name == "upstream":
            value = list(value)
        elif name == "trigger_rule":
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        data[name] = value
    return data


def node_json(node: NodeSpec) -> dict[str, Any]:
    data = node_dict(node)
    data.pop("task_id", None)
    data.pop("upstream", None)
    return data


def graph_json(graph: FlowGraph) -> dict[str, Any]:
    """``graph.to_dict()``, with the fast node walk."""
    return {
        "meta": graph.meta.to_dict(),
        "nodes": [node_dict(node) for node in graph.nodes.values()],
        "groups": {k: dict(v) for k, v in graph.groups.items()},
    }


def version_hash(graph: FlowGraph) -> str:
    """``graph.version_hash()``, computed from ``graph_json`` (a test checks they agree)."""
    text = json.dumps(graph_json(graph), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def node_from_row(task_id: str, node: Mapping[str, Any], upstream: Iterable[str]) -> NodeSpec:
    return NodeSpec.from_dict({**node, "task_id": task_id, "upstream": list(upstream)})


def definition_columns(node: NodeSpec) -> dict[str, Any]:
    """The columns that come from the node's definition."""
    return {
        "node": node_json(node),
        "upstream": list(node.upstream),
        "operator": node.operator,
        "priority_weight": node.priority_weight,
        "pool": node.pool,
        "pool_slots": node.pool_slots,
        "queue": node.queue,
        "group_id": node.group,
    }


def new_row(
    run_pk: int, ordinal: int, node: NodeSpec, state: TaskState, try_number: int, now: dt.datetime
) -> dict[str, Any]:
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
        **definition_columns(node),
    }


def insert_nodes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(sa.insert(ti), rows)


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
