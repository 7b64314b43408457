"""The scheduler's step, written in one transaction: state changes and the asset events they made.

``StepSinks`` opens one transaction per supervisor step and lets each writer add its rows, so a
task's success and the asset updates of its outlets commit together (a crash between the two
would otherwise lose an update, or record one for a try the database never saw end).
``AssetEventWriter`` turns the successful tries' ``asset_events`` into ``asset_events`` rows and
queues them for the flows scheduled on those assets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection, Engine

from ductwork.core.events import EngineEvent, TryEnded
from ductwork.core.states import TaskState
from ductwork.store.engine import transaction
from ductwork.store.repo import assets as asset_repo
from ductwork.store.repo.runs import split_run_key


class StepWriter(Protocol):
    def write(self, conn: Connection, events: Sequence[EngineEvent]) -> None: ...


class StepSinks:
    """An ``EventSink`` that hands each step to several writers inside one transaction."""

    def __init__(self, engine: Engine, writers: Sequence[StepWriter]) -> None:
        self.engine = engine
        self.writers = list(writers)

    def record(self, events: Sequence[EngineEvent]) -> None:
        if not events:
            return
        with transaction(self.engine) as conn:
            for writer in self.writers:
                writer.write(conn, events)


class AssetEventWriter:
    def write(self, conn: Connection, events: Sequence[EngineEvent]) -> None:
        new = asset_updates(events)
        if new:
            asset_repo.record_events(conn, new)


def asset_updates(events: Sequence[EngineEvent]) -> list[asset_repo.NewAssetEvent]:
    out: list[asset_repo.NewAssetEvent] = []
    for event in events:
        if not isinstance(event, TryEnded) or event.outcome.state != TaskState.SUCCESS:
            continue
        if not event.outcome.asset_events:
            continue
        flow_id, run_id = split_run_key(event.run_key)
        for uri, extra in event.outcome.asset_events.items():
            out.append(
                asset_repo.NewAssetEvent(
                    uri, extra, flow_id=flow_id, run_id=run_id, task_id=event.task_id, at=event.outcome.ended_at
                )
            )
    return out
