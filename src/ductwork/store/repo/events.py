"""The state-change log: one row per task (or run) transition, in the order it happened.

The scheduler's sink appends a whole step's transitions with one executemany; the UI reads a
run's history back from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.store.records import StateEventRecord
from ductwork.store.tables import state_events


@dataclass(frozen=True, slots=True)
class NewStateEvent:
    run_pk: int
    task_id: str | None
    old: str | None
    new: str
    reason: str
    try_number: int
    at: dt.datetime

    def row(self) -> dict[str, object]:
        return {
            "run_pk": self.run_pk,
            "task_id": self.task_id,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "try_number": self.try_number,
            "at": self.at,
        }


def add_state_events(conn: Connection, events: Sequence[NewStateEvent]) -> None:
    """Append events (one executemany)."""
    if events:
        conn.execute(INSERT, [e.row() for e in events])


def list_state_events(
    conn: Connection, run_pk: int, *, task_id: str | None = None, limit: int | None = None
) -> list[StateEventRecord]:
    """A run's events in the order they were recorded; only one task's with ``task_id``."""
    stmt = sa.select(state_events).where(state_events.c.run_pk == run_pk).order_by(state_events.c.id)
    if task_id is not None:
        stmt = stmt.where(state_events.c.task_id == task_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        StateEventRecord(r.id, r.run_pk, r.task_id, r.old, r.new, r.reason, r.try_number, r.at)
        for r in conn.execute(stmt)
    ]


def run_end_reason(conn: Connection, run_pk: int) -> str:
    """Why a finished run ended as it did, when something other than its tasks decided it (its
    ``run_timeout`` passed, someone cancelled it); "" when its tasks did."""
    reason = conn.execute(
        sa.select(state_events.c.reason)
        .where(
            state_events.c.run_pk == run_pk,
            state_events.c.task_id.is_(None),
            state_events.c.new.in_(("success", "failed")),
        )
        .order_by(state_events.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return "" if reason in (None, "", "run ended") else str(reason)


INSERT = sa.insert(state_events)
