"""Pools: named slot limits shared by all runs (``default_pool`` always exists)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.graph import DEFAULT_POOL
from ductwork.core.states import TaskState
from ductwork.errors import NotFoundError
from ductwork.store.errors import PoolInUseError
from ductwork.store.records import PoolRecord, PoolUsage
from ductwork.store.tables import flows, pools, task_instances
from ductwork.store.upsert import upsert


def get_pool(conn: Connection, name: str) -> PoolRecord | None:
    row = conn.execute(sa.select(pools).where(pools.c.name == name)).first()
    return PoolRecord(row.name, row.slots, row.description) if row is not None else None


def list_pools(conn: Connection) -> list[PoolRecord]:
    return [PoolRecord(r.name, r.slots, r.description) for r in conn.execute(sa.select(pools).order_by(pools.c.name))]


def put_pool(conn: Connection, name: str, slots: int, description: str = "") -> PoolRecord:
    """Create a pool or change its slots and description."""
    if slots < 0:
        raise ValueError(f"pool {name!r}: slots must be 0 or more, got {slots}")
    upsert(
        conn,
        pools,
        [{"name": name, "slots": slots, "description": description}],
        keys=("name",),
        update=("slots", "description"),
    )
    return PoolRecord(name, slots, description)


def delete_pool(conn: Connection, name: str) -> None:
    """Delete a pool; ``default_pool`` cannot be deleted, an unknown pool raises ``NotFoundError``."""
    if name == DEFAULT_POOL:
        raise PoolInUseError(f"{DEFAULT_POOL!r} cannot be deleted (tasks without a pool use it); change its slots")
    if conn.execute(sa.delete(pools).where(pools.c.name == name)).rowcount == 0:
        raise NotFoundError(f"no pool {name!r}")


def pool_usage(conn: Connection) -> list[PoolUsage]:
    """Every pool with the slots its queued and running task instances hold, across all runs."""
    ti = task_instances
    used = (
        sa.select(ti.c.pool, ti.c.state, sa.func.sum(ti.c.pool_slots).label("slots"))
        .where(ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]))
        .group_by(ti.c.pool, ti.c.state)
    )
    taken: dict[tuple[str, str], int] = {(r.pool, r.state): int(r.slots) for r in conn.execute(used)}
    return [
        PoolUsage(
            p.name,
            p.slots,
            taken.get((p.name, TaskState.QUEUED.value), 0),
            taken.get((p.name, TaskState.RUNNING.value), 0),
        )
        for p in list_pools(conn)
    ]


def lock_limits(conn: Connection, pool_names: Iterable[str], flow_ids: Iterable[str]) -> tuple[set[str], set[str]]:
    """Lock the rows of these pools and flows until ``conn``'s transaction ends: a scheduler
    holds them from counting what the others queued (``held_elsewhere``) to recording what it
    queued, so that two deciding at once take turns instead of both filling the same free slots.
    The pools and flows another scheduler holds now are not waited for (``SKIP LOCKED``): their
    tasks wait for a later dispatch, and a scheduler frozen while it holds them (its session is
    ended after its lease) holds up no other one. Returns the pools and flows that are busy:
    those named that have a row this transaction could not lock."""
    return _busy(conn, pools.c.name, pool_names), _busy(conn, flows.c.flow_id, flow_ids)


def _busy(conn: Connection, key: sa.Column[str], names: Iterable[str]) -> set[str]:
    """Lock the rows of ``names`` this transaction can lock; the names whose row exists but
    another transaction holds."""
    unique = sorted(set(names))
    if not unique:
        return set()
    wanted = sa.select(key).where(key.in_(unique))
    locked = set(conn.execute(wanted.with_for_update(skip_locked=True)).scalars())
    if len(locked) == len(unique):
        return set()
    return set(conn.execute(wanted).scalars()) - locked


def held_elsewhere(conn: Connection, owner: int) -> tuple[dict[str, int], dict[str, int]]:
    """What the queued and running task instances of the runs that scheduler ``owner`` does not
    hold take: slots by pool, and tasks by flow. Several schedulers share the pools and each
    flow's ``max_active_tasks``; each counts its own tries in memory, and these beside them."""
    from ductwork.store.tables import runs

    ti = task_instances
    rows = conn.execute(
        sa.select(ti.c.pool, runs.c.flow_id, sa.func.sum(ti.c.pool_slots), sa.func.count())
        .select_from(ti.join(runs, runs.c.id == ti.c.run_pk))
        .where(
            ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]),
            sa.or_(runs.c.owner.is_(None), runs.c.owner != owner),
        )
        .group_by(ti.c.pool, runs.c.flow_id)
    )
    slots: dict[str, int] = {}
    tasks: dict[str, int] = {}
    for pool, flow_id, used, count in rows:
        slots[pool] = slots.get(pool, 0) + int(used or 0)
        tasks[flow_id] = tasks.get(flow_id, 0) + int(count)
    return slots, tasks


def tasks_in_pool(conn: Connection, name: str) -> int:
    """Task instances of queued or running runs that name pool ``name`` and have not finished:
    what deleting the pool would leave without its limit."""
    from ductwork.core.states import TERMINAL
    from ductwork.store.tables import runs

    ti = task_instances
    stmt = (
        sa.select(sa.func.count())
        .select_from(ti.join(runs, runs.c.id == ti.c.run_pk))
        .where(
            ti.c.pool == name,
            ti.c.state.not_in([s.value for s in TERMINAL]),
            runs.c.state.in_(["queued", "running"]),
        )
    )
    return int(conn.execute(stmt).scalar_one())
