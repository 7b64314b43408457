"""``SqlFlowStore``: the store as tasks see it (``core.task_services.FlowStore``).

Lent to tries by the scheduler's worker runtime, so that an external-task sensor can look at
another flow's run and a trigger-flow operator can queue one, without a global handle. Each
call is one short transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from ductwork.core.states import RunState
from ductwork.core.task_services import RunView
from ductwork.errors import NotFoundError
from ductwork.services import runs as run_service
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo

_TICK = dt.timedelta(microseconds=1)


def _summary(record: RunRecord) -> RunView:
    """A run without its task states, with its dates."""
    return RunView(
        record.flow_id,
        record.run_id,
        record.state.value,
        record.logical_date,
        data_interval_start=record.data_interval_start,
        data_interval_end=record.data_interval_end,
        start_date=record.start_date,
        end_date=record.end_date,
    )


class SqlFlowStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find_run(self, flow_id: str, logical_date: dt.datetime) -> RunView | None:
        """The newest run of ``flow_id`` with exactly this logical date."""
        with read_transaction(self.engine) as conn:
            page = run_repo.list_runs(conn, flow_id=flow_id, since=logical_date, until=logical_date + _TICK, limit=1)
            return self._view(conn, page.items[0]) if page.items else None

    def get_run(self, flow_id: str, run_id: str) -> RunView | None:
        with read_transaction(self.engine) as conn:
            record = run_repo.get_run(conn, flow_id, run_id)
            return self._view(conn, record) if record is not None else None

    def flow_task_ids(self, flow_id: str) -> list[str]:
        return list(run_service.flow_graph(self.engine, flow_id).nodes)

    def last_success(self, flow_id: str, before: dt.datetime) -> RunView | None:
        with read_transaction(self.engine) as conn:
            page = run_repo.list_runs(conn, flow_id=flow_id, states=[RunState.SUCCESS], until=before, limit=1)
        return _summary(page.items[0]) if page.items else None

    def trigger(
        self,
        flow_id: str,
        *,
        run_id: str | None = None,
        logical_date: dt.datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> RunView:
        record = run_service.trigger(
            self.engine, flow_id, params=params, conf=conf, logical_date=logical_date, run_id=run_id, note=note
        )
        return RunView(record.flow_id, record.run_id, record.state.value, record.logical_date)

    def clear_run(self, flow_id: str, run_id: str, *, reason: str) -> RunView:
        with transaction(self.engine) as conn:
            record = run_repo.get_run(conn, flow_id, run_id)
            if record is None:
                raise NotFoundError(f"flow {flow_id!r} has no run {run_id!r}")
            task_ids = run_repo.load_run_graph(conn, record.pk).graph.nodes
            task_repo.clear_task_instances(conn, record.pk, list(task_ids), reason=reason)
            cleared = run_repo.get_run(conn, flow_id, run_id)
            assert cleared is not None
            return self._view(conn, cleared)

    @staticmethod
    def _view(conn: Any, record: RunRecord) -> RunView:
        states = {t: s.value for t, s in task_repo.task_states(conn, record.pk).items()}
        return replace(_summary(record), task_states=states)
