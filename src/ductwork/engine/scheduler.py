"""The scheduler service: parse flows, create due runs, run them durably, survive restarts.

One loop, two clocks. Every turn drives the supervisor (dispatch ready tasks, apply finished
tries, record a step in one transaction): when a task ends, its downstream tasks are handed to
the workers in the same turn, without a sleep. Between turns, at most every ``poll_interval``,
the scheduler looks at the store: new runs (triggered from the CLI or the API, or due by the
schedule), runs changed from outside (clear, mark, cancel: their ``revision`` moved), graphs to
build for class-task runs, and tries adopted after a restart. Flow files are re-parsed in child
processes when they change (ADR 0001).

Exactly once: a try is recorded ``queued`` before it is handed to a worker; the worker records
``running`` (only if the try is still queued) before running user code and records the try's
end before telling the scheduler. After a kill -9 and a restart, the scheduler therefore finds
every finished try recorded, re-queues tries that never started, and adopts tries still
running (their workers finish and record them; a try whose heartbeat stops is failed or
retried by its policy).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.config import ParamSources
from ductwork.core.events import TryOutcome
from ductwork.core.graph import FlowGraph, FlowMeta
from ductwork.core.schedule import DataInterval
from ductwork.core.states import RunState, TaskState
from ductwork.engine.executor import Executor, TryFinished, TryKey
from ductwork.engine.local import try_log_path
from ductwork.engine.parsing import FileWatcher, materialize, parse_file
from ductwork.engine.rules import after_failure
from ductwork.engine.scheduling import ScheduleState, due_runs, next_run_after
from ductwork.engine.supervisor import Limits, Supervisor
from ductwork.errors import DuctworkError
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.records import NewImportError, RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import jobs as job_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.sink import SqlEventSink
from ductwork.store.tables import runs as runs_table
from ductwork.store.tables import task_instances

log = logging.getLogger("ductwork.scheduler")
S = TaskState


@dataclass
class SchedulerOptions:
    parse_interval: float = 2.0
    """Seconds between looks at the flows folder for changed files."""
    poll_interval: float = 0.5
    """Seconds between looks at the store for new, changed and due runs."""
    job_heartbeat: float = 5.0
    orphan_timeout: float = 30.0
    """A try found running after a restart whose heartbeat is older than this is lost."""
    parse_timeout: float = 60.0
    parse: bool = True
    schedule: bool = True


class SchedulerService:
    """The scheduler: one per database (a second one would hand out the same tries)."""

    def __init__(
        self,
        settings: Settings,
        *,
        executor_factory: Callable[[Settings], Executor] | None = None,
        clock: Clock | None = None,
        options: SchedulerOptions | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or SchedulerOptions()
        self.clock = clock or SystemClock()
        self.engine = engine or create_engine(settings.db_url)
        self._executor_factory = executor_factory or default_executor
        self.executor: Executor | None = None
        self.supervisor: Supervisor | None = None
        self.sink = SqlEventSink(self.engine)
        self.watcher = FileWatcher(settings.flows_folder)
        self._revisions: dict[str, int] = {}
        self._pks: dict[str, int] = {}
        self._adopted: dict[TryKey, dt.datetime] = {}
        self._last_parse = 0.0
        self._last_poll = 0.0
        self._last_heartbeat = 0.0
        self._job_id: int | None = None
        self.stop_event = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Bring the database to the code's schema, start the workers, and take over the runs
        a previous scheduler left active."""
        if migrate.current_revision(self.engine) is None:
            migrate.upgrade(self.engine)
        migrate.check(self.engine)
        self.executor = self._executor_factory(self.settings)
        self.executor.start()
        with read_transaction(self.engine) as conn:
            pools = {p.name: p.slots for p in pool_repo.list_pools(conn)}
        limits = Limits(pools=pools, resources=dict(self.settings.resources))
        self.supervisor = Supervisor(
            self.executor,
            self.clock,
            [self.sink],
            limits=limits,
            log_path=lambda run, task_id, n: try_log_path(self.settings.logs, run, task_id, n),
        )
        with transaction(self.engine) as conn:
            self._job_id = job_repo.start_job(conn, "scheduler", hostname=socket.gethostname(), pid=os.getpid())
        log.info("scheduler started (pid %d) on %s", os.getpid(), self.settings.flows_folder)

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self._job_id is not None:
            with transaction(self.engine) as conn:
                job_repo.end_job(conn, self._job_id)
        self.engine.dispose()

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Loop until ``stop()`` (or SIGTERM/SIGINT in the CLI) or ``until()`` is true."""
        self.start()
        try:
            while not self.stop_event.is_set():
                self.turn()
                if until is not None and until():
                    break
        finally:
            self.shutdown()

    # --- one turn --------------------------------------------------------------------------
    def turn(self) -> None:
        assert self.supervisor is not None
        now_mono = time.monotonic()
        if self.options.parse and now_mono - self._last_parse >= self.options.parse_interval:
            self._last_parse = now_mono
            self.parse_changed()
        if now_mono - self._last_poll >= self.options.poll_interval:
            self._last_poll = now_mono
            if self.options.schedule:
                self.create_due_runs()
            self.build_pending_graphs()
            self.sync_runs()
            self.check_adopted()
        if now_mono - self._last_heartbeat >= self.options.job_heartbeat and self._job_id is not None:
            self._last_heartbeat = now_mono
            with transaction(self.engine) as conn:
                job_repo.heartbeat_job(conn, self._job_id)
        remaining = max(0.0, self.options.poll_interval - (time.monotonic() - self._last_poll))
        if self.supervisor.idle:
            self.stop_event.wait(remaining)
        else:
            self.supervisor.step(timeout=remaining)

    # --- flows -----------------------------------------------------------------------------
    def parse_changed(self) -> None:
        changed, removed = self.watcher.changes()
        for file in changed:
            parsed = parse_file(file, timeout=self.options.parse_timeout)
            with transaction(self.engine) as conn:
                for graph in parsed.graphs:
                    flow_repo.upsert_flow(conn, graph, fileloc=file)
                flow_repo.deactivate_missing(conn, file, [g.flow_id for g in parsed.graphs])
                error_repo.replace_import_errors(
                    conn, file, [NewImportError(e.error, e.line, e.traceback) for e in parsed.errors]
                )
            for error in parsed.errors:
                log.warning("import error: %s", error)
        for file in removed:
            with transaction(self.engine) as conn:
                flow_repo.deactivate_missing(conn, file, [])
                error_repo.replace_import_errors(conn, file, [])

    # --- runs ------------------------------------------------------------------------------
    def create_due_runs(self) -> None:
        now = self.clock.now()
        with read_transaction(self.engine) as conn:
            flows = [f for f in flow_repo.list_flows(conn, paused=False) if f.schedule not in ("None", "")]
        for flow in flows:
            with read_transaction(self.engine) as conn:
                graph = flow_repo.get_flow_graph(conn, flow.flow_id)
                last = run_repo.list_runs(conn, flow_id=flow.flow_id, run_types=["scheduled"], limit=1).items
                active = len(run_repo.active_runs(conn, flow_id=flow.flow_id))
            if graph is None:
                continue
            last_interval = DataInterval(last[0].data_interval_start, last[0].data_interval_end) if last else None
            try:
                intervals = due_runs(graph.meta, ScheduleState(last_interval, active), now)
            except DuctworkError as exc:
                log.error("flow %s: %s", flow.flow_id, exc)
                continue
            for interval in intervals:
                try:
                    run_service.create_run(
                        self.engine,
                        graph,
                        run_type="scheduled",
                        logical_date=interval.start,
                        interval=interval,
                        params=run_service.validate_params(graph.meta, None),
                    )
                except DuctworkError as exc:
                    log.error("flow %s: could not create the run for %s: %s", flow.flow_id, interval.start, exc)
                    break
                last_interval = interval
            following = next_run_after(graph.meta, last_interval, now)
            with transaction(self.engine) as conn:
                flow_repo.set_next_run(
                    conn,
                    flow.flow_id,
                    logical_date=following.start if following else None,
                    interval_start=following.start if following else None,
                    interval_end=following.end if following else None,
                )

    def build_pending_graphs(self) -> None:
        """Build the graphs of class-task runs in a child process (it imports the user's code)."""
        with read_transaction(self.engine) as conn:
            pending = [r for r in run_repo.active_runs(conn) if r.graph_pending]
        for record in pending:
            with read_transaction(self.engine) as conn:
                flow = flow_repo.get_flow(conn, record.flow_id)
            try:
                if flow is None or flow.fileloc is None:
                    raise DuctworkError(f"flow {record.flow_id!r} is not known to the scheduler")
                graph = materialize(
                    flow.fileloc,
                    record.flow_id,
                    params=dict(record.params),
                    logical_date=record.logical_date.isoformat(),
                    timeout=self.options.parse_timeout,
                )
            except DuctworkError as exc:
                log.error("run %s: %s", record.key, exc)
                with transaction(self.engine) as conn:
                    run_repo.set_run_note(conn, record.pk, str(exc))
                    run_repo.set_run_graph(conn, record.pk, FlowGraph(flow_meta_of(record), {}))
                    run_repo.set_run_state(conn, record.pk, RunState.FAILED, reason=str(exc))
                continue
            with transaction(self.engine) as conn:
                run_repo.set_run_graph(
                    conn,
                    record.pk,
                    graph,
                    states={t: S.SUCCESS for t, n in graph.nodes.items() if n.extra.get("already_complete")},
                )

    def sync_runs(self) -> None:
        """Take new active runs into the supervisor, reload runs changed from outside, and let go
        of runs that were ended from outside."""
        assert self.supervisor is not None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    runs_table.c.id,
                    runs_table.c.flow_id,
                    runs_table.c.run_id,
                    runs_table.c.revision,
                    runs_table.c.graph_pending,
                ).where(runs_table.c.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]))
            ).all()
        active = {f"{r.flow_id}/{r.run_id}": r for r in rows if not r.graph_pending}
        for key in list(self.supervisor.runs):
            if key not in active and key not in {f"{r.flow_id}/{r.run_id}" for r in rows}:
                self._let_go(key)
        for key, row in active.items():
            if key not in self.supervisor.runs:
                self._take(row.id, recovering=True)
            elif self._revisions.get(key) != row.revision:
                self._take(row.id, recovering=False)

    def _let_go(self, key: str) -> None:
        assert self.supervisor is not None and self.executor is not None
        run = self.supervisor.drop_run(key)
        if run is None:
            return
        for try_key in run.in_flight.values():
            self.executor.cancel(try_key, "the run was ended from outside the scheduler")
            self._adopted.pop(try_key, None)
        self._revisions.pop(key, None)

    def _take(self, run_pk: int, *, recovering: bool) -> None:
        """Load a run from the store into the supervisor (new, recovered after a restart, or
        changed from outside)."""
        assert self.supervisor is not None
        with transaction(self.engine) as conn:
            loaded = run_repo.load_run_graph(conn, run_pk)
            record = loaded.run
            if record.state == RunState.QUEUED:
                run_repo.set_run_state(conn, run_pk, RunState.RUNNING, expected=(RunState.QUEUED,))
            states = dict(loaded.states)
            in_flight = self.supervisor.runs.get(record.key)
            flying = set(in_flight.in_flight) if in_flight is not None else set()
            for task_id, state in loaded.states.items():
                if task_id in flying:
                    continue
                if state == S.QUEUED:
                    # Handed to a worker that never started it (its scheduler died): send it again.
                    conn.execute(
                        sa.update(task_instances)
                        .where(
                            task_instances.c.run_pk == run_pk,
                            task_instances.c.task_id == task_id,
                            task_instances.c.state == S.QUEUED.value,
                        )
                        .values(state=S.SCHEDULED.value, try_number=task_instances.c.try_number - 1)
                    )
                    states[task_id] = S.SCHEDULED
        tries = {t: (n - 1 if loaded.states[t] == S.QUEUED and t not in flying else n) for t, n in loaded.tries.items()}
        info = run_service.run_info(record, loaded.graph.meta)
        self.supervisor.replace_run(info, loaded.graph, states=states, tries=tries, due=dict(loaded.next_try_at))
        run = self.supervisor.runs[info.key]
        run.max_tries.update(loaded.max_tries)
        self._revisions[info.key] = record.revision
        self._pks[info.key] = run_pk
        now = self.clock.now()
        for task_id, state in states.items():
            if state == S.RUNNING and task_id not in run.in_flight:
                key = self.supervisor.adopt(info.key, task_id, loaded.tries.get(task_id, 1))
                self._adopted[key] = now
        if recovering:
            log.info("took over run %s (%d tasks)", info.key, len(loaded.graph.nodes))

    def check_adopted(self) -> None:
        """Tries found running after a restart: pick up their recorded end, or declare them lost
        when their heartbeat stops."""
        if not self._adopted:
            return
        assert self.supervisor is not None
        now = self.clock.now()
        finished: list[TryFinished] = []
        with read_transaction(self.engine) as conn:
            for key, since in list(self._adopted.items()):
                pk = self._pks.get(key.run_key)
                if pk is None:
                    del self._adopted[key]
                    continue
                row = conn.execute(
                    sa.select(task_instances).where(
                        task_instances.c.run_pk == pk, task_instances.c.task_id == key.task_id
                    )
                ).first()
                if row is None:
                    del self._adopted[key]
                    continue
                state = TaskState(row.state)
                if state != S.RUNNING or row.try_number != key.try_number:
                    started = row.start_date or since
                    ended = row.end_date or now
                    outcome = TryOutcome(
                        state if state != S.NONE else S.FAILED, started, ended, next_try_at=row.next_try_at
                    )
                    finished.append(TryFinished(key, outcome))
                    del self._adopted[key]
                    continue
                beat = row.heartbeat_at or row.start_date or since
                if (now - max(beat, since)).total_seconds() > self.options.orphan_timeout:
                    node = self.supervisor.runs[key.run_key].tracker.nodes[key.task_id]
                    max_tries = self.supervisor.runs[key.run_key].max_tries.get(key.task_id)
                    new_state, next_at = after_failure(node, key.try_number, now, max_tries=max_tries)
                    reason = f"the worker running this try stopped sending heartbeats (pid {row.pid}, last {beat})"
                    finished.append(
                        TryFinished(key, TryOutcome(new_state, beat, now, error=reason, next_try_at=next_at))
                    )
                    del self._adopted[key]
        if finished:
            self.supervisor.feed(finished)


def flow_meta_of(record: RunRecord) -> FlowMeta:
    return FlowMeta(record.flow_id)


def default_executor(settings: Settings) -> Executor:
    """The local worker pool, recording tries in the settings' database."""
    from ductwork.engine.executors.pool import PoolExecutor
    from ductwork.engine.sql_runtime import SqlWorkerRuntime

    return PoolExecutor(
        SqlWorkerRuntime(settings.db_url, settings),
        parallelism=settings.parallelism,
        param_sources=ParamSources.load(),
    )
