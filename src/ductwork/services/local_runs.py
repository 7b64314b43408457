"""Recording in-process runs (``ductwork run``, ``ductwork build``) in the metadata database, so
the web UI and ``ductwork runs`` show them next to the scheduler's runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from ductwork.core.context import RunInfo
from ductwork.core.events import EngineEvent, EventSink
from ductwork.core.flow import Flow
from ductwork.core.graph import FlowGraph
from ductwork.core.schedule import DataInterval
from ductwork.core.states import RunState
from ductwork.engine.recorder import RunSummary
from ductwork.services import runs as run_service
from ductwork.store.engine import transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.sink import SqlEventSink

log = logging.getLogger("ductwork")


class StoreRecording:
    """Registers the flow, creates the run, records its events, and keeps its JSON results."""

    def __init__(self, engine: Engine, flow: Flow) -> None:
        self.engine = engine
        self.flow = flow
        self.record: RunRecord | None = None

    def free_run_id(self, flow_id: str, proposed: str) -> str:
        """A re-run of the same logical date gets ``<run id>.2``, ``.3``..."""
        from ductwork.store.engine import read_transaction

        with read_transaction(self.engine) as conn:
            if run_repo.get_run(conn, flow_id, proposed) is None:
                return proposed
            n = 2
            while run_repo.get_run(conn, flow_id, f"{proposed}.{n}") is not None:
                n += 1
        return f"{proposed}.{n}"

    def begin(self, info: RunInfo, graph: FlowGraph) -> EventSink:
        with transaction(self.engine) as conn:
            flow_repo.upsert_flow(conn, self.flow.to_graph(), fileloc=self.flow.fileloc)
        self.record = run_service.create_run(
            self.engine,
            FlowGraph(graph.meta, graph.nodes, graph.groups),
            run_type=info.run_type,
            logical_date=info.logical_date,
            interval=DataInterval(info.data_interval_start, info.data_interval_end),
            params=dict(info.params),
            conf=dict(info.conf),
            run_id=info.run_id,
            note="run in-process (ductwork run/build)",
            pending=False,
        )
        with transaction(self.engine) as conn:
            run_repo.set_run_state(conn, self.record.pk, RunState.RUNNING)
        return _Forgiving(SqlEventSink(self.engine))

    def finish(self, summary: RunSummary) -> None:
        """Keep the results that can be stored as JSON (the in-process run held them in memory)."""
        if self.record is None:
            return
        from ductwork.store.results import SqlResults

        results = SqlResults(self.engine)
        skipped = 0
        for (run_key, task_id, key), value in summary.results.items():
            if run_key != summary.key:
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                skipped += 1
                continue
            results.push(run_key, task_id, key, value)
        if skipped:
            log.info("%d result(s) of run %s were not JSON and were not recorded", skipped, summary.run_id)


class _Forgiving:
    """A sink whose failure stops the recording, not the run it records."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.failed = False

    def record(self, events: Sequence[EngineEvent]) -> None:
        if self.failed:
            return
        try:
            self.sink.record(events)
        except Exception as exc:
            self.failed = True
            log.warning("recording the run in the database failed (the run goes on): %s", exc)
