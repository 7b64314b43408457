"""Pools, shared by the CLI and the API: setting one (its description kept unless a new one is
given), deleting one, with a dry run that says what it would leave without a limit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from ductwork.core.graph import DEFAULT_POOL
from ductwork.errors import NotFoundError, ParameterError
from ductwork.services.names import check_new_name
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import PoolInUseError
from ductwork.store.records import PoolRecord
from ductwork.store.repo import pools as pool_repo


def check_pool_name(name: str) -> None:
    """Refuse a name of blanks only (a pool nobody can name in a task or see in a list) and
    blanks around a name: 'etl ' made from a form or a script is another pool than the 'etl'
    tasks name, so their limit silently never applied."""
    check_new_name("pool", name)


SLOTS_MAX = 1_000_000
"""The most slots a pool may have, as the REST API's ``PoolIn``: ``ductwork pools set big
100000000000000000000`` was an ``OverflowError`` traceback from the database driver."""


def set_pool(conn: Connection, name: str, slots: int, description: str | None = None) -> PoolRecord:
    """Create a pool or change its slots. ``description`` None keeps the one it has (empty for a
    new pool): changing a pool's slots (``ductwork pools set etl 8``) must not wipe what it says."""
    check_pool_name(name)
    if not 0 <= slots <= SLOTS_MAX:
        raise ParameterError(f"pool {name!r}: slots must be from 0 to {SLOTS_MAX:,}, got {slots}")
    if description is None:
        existing = pool_repo.get_pool(conn, name)
        description = existing.description if existing is not None else ""
    return pool_repo.put_pool(conn, name, slots, description)


@dataclass(frozen=True)
class PoolDeletion:
    name: str
    slots: int
    running_slots: int
    queued_slots: int
    waiting_tasks: int
    """Unfinished task instances of active runs that name the pool: they run without its limit
    once it is gone (a running scheduler keeps the limit it read until it restarts)."""
    dry_run: bool


def delete_pool(engine: Engine, name: str, *, dry_run: bool = False) -> PoolDeletion:
    """Delete a pool (``dry_run``: only say what it holds). ``default_pool`` cannot be deleted;
    an unknown pool is a ``NotFoundError``, in a dry run too."""
    if name == DEFAULT_POOL:
        raise PoolInUseError(f"{DEFAULT_POOL!r} cannot be deleted (tasks without a pool use it); change its slots")
    opener = read_transaction if dry_run else transaction
    with opener(engine) as conn:
        usage = {u.name: u for u in pool_repo.pool_usage(conn)}.get(name)
        if usage is None:
            known = sorted(p.name for p in pool_repo.list_pools(conn))
            raise NotFoundError(f"no pool {name!r}; pools: {', '.join(known)}")
        waiting = pool_repo.tasks_in_pool(conn, name)
        if not dry_run:
            pool_repo.delete_pool(conn, name)
    return PoolDeletion(name, usage.slots, usage.running_slots, usage.queued_slots, waiting, dry_run)
