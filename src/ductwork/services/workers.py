"""Remote workers as the CLI, the REST API and the web UI show them.

A worker is ``running`` while it heartbeats, ``lost`` once it has been silent for longer than
``worker_lost_after`` (the scheduler then fails or retries its tries by their policy), and
``stopped`` after a clean shutdown. Queues that have queued tries but no live worker are
reported too: such tries wait, and this is where a user learns why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.states import RunState, TaskState
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction
from ductwork.store.repo import remote as remote_repo
from ductwork.store.tables import runs, task_instances
from ductwork.store.types import utcnow


@dataclass(frozen=True)
class WorkerView:
    name: str
    hostname: str
    kind: str
    queues: tuple[str, ...]
    concurrency: int
    slots_used: int
    current: tuple[str, ...]
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: str
    version: str

    @property
    def heartbeat_age(self) -> float:
        return (utcnow() - self.heartbeat_at).total_seconds()


@dataclass(frozen=True)
class Workers:
    workers: list[WorkerView]
    unserved: dict[str, int]
    """Queue name -> tries queued on it while no live worker listens on it."""


def list_workers(engine: Engine, settings: Settings, *, include_stopped: bool = False) -> Workers:
    now = utcnow()
    with read_transaction(engine) as conn:
        rows = remote_repo.list_workers(conn, include_stopped=include_stopped)
        waiting: dict[str, int] = dict(
            conn.execute(
                sa.select(task_instances.c.queue, sa.func.count())
                .select_from(task_instances.join(runs, runs.c.id == task_instances.c.run_pk))
                .where(
                    task_instances.c.state == TaskState.QUEUED.value,
                    runs.c.state == RunState.RUNNING.value,
                )
                .group_by(task_instances.c.queue)
            ).all()
        )
    views = []
    for w in rows:
        status = w.status(settings.worker_lost_after, now)
        busy = status == remote_repo.RUNNING  # a lost or stopped worker's last tries were retried elsewhere
        views.append(
            WorkerView(
                w.name,
                w.hostname,
                w.kind,
                w.queues,
                w.concurrency,
                w.slots_used if busy else 0,
                w.current if busy else (),
                w.started_at,
                w.heartbeat_at,
                status,
                w.version,
            )
        )
    served = {q for v in views if v.state == remote_repo.RUNNING for q in v.queues}
    unserved: dict[str, int] = {}
    if queues_need_workers(settings) and (settings.executor != "local" or views):
        unserved = {str(q): int(n) for q, n in waiting.items() if q not in served}
    return Workers(views, unserved)


def queues_need_workers(settings: Settings) -> bool:
    """Whether a queued try waits for a worker listening on its queue. Not under the
    Kubernetes executor, which makes a pod for each try whatever its queue: "start one with
    `ductwork worker`" sent users to start Celery workers that would never get a try."""
    return settings.executor != "kubernetes"


def unserved_queues(engine: Engine, settings: Settings, queues: Iterable[str]) -> set[str]:
    """Of ``queues``, those no live worker listens on: a try queued on one waits until a worker
    for it starts, and the commands and pages that show such a try say so next to it (as
    ``list_workers`` does for all of them), instead of a bare ``queued`` that never changes.
    Under the local executor with no remote worker, none: its pool runs every queue; under
    the Kubernetes executor, none: each try gets a pod of its own (``queues_need_workers``)."""
    wanted = {q or "default" for q in queues}
    if not wanted or not queues_need_workers(settings):
        return set()
    with read_transaction(engine) as conn:
        rows = remote_repo.list_workers(conn, include_stopped=False)
    if settings.executor == "local" and not rows:
        return set()
    now = utcnow()
    served = {q for w in rows if w.status(settings.worker_lost_after, now) == remote_repo.RUNNING for q in w.queues}
    return wanted - served


def unserved_tasks(engine: Engine, settings: Settings, run_pk: int) -> dict[str, str]:
    """Task id -> queue, for the run's queued tasks whose queue no live worker listens on (one
    read of its queued tasks only: ``trigger --wait`` asks every few seconds, runs are large)."""
    with read_transaction(engine) as conn:
        queued = conn.execute(
            sa.select(task_instances.c.task_id, task_instances.c.queue).where(
                task_instances.c.run_pk == run_pk, task_instances.c.state == TaskState.QUEUED.value
            )
        ).all()
    if not queued:
        return {}
    missing = unserved_queues(engine, settings, [q for _, q in queued])
    return {str(t): str(q or "default") for t, q in queued if (q or "default") in missing}


def unserved_note(queue: str) -> str:
    """What a try waiting on ``queue`` is waiting for, and what starts it."""
    return f"no live worker listens on queue {queue!r}: start one with `ductwork worker --queues {queue}`"
