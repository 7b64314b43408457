"""Recording in-process runs (``ductwork run``, ``ductwork build``) in the metadata database, so
the web UI and ``ductwork runs`` show them next to the scheduler's runs.

The database is written by time, as the scheduler does (ADR 0006): while tries run, one
transaction every ``FLUSH_INTERVAL`` for all the steps in it, not one per step. What makes that
safe is the run's journal (``$DUCTWORK_HOME/journal/local``): each try's start is journaled
before its code runs and its end before the run loop hears of it. A run whose process was
killed is finished by the next in-process run on the same home (``recover_killed_runs``): the
tries its journal saw end are recorded as they ended, those still running are recorded failed,
and the run failed, naming the process that died.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.context import RunInfo
from ductwork.core.events import EngineEvent, EventSink, RunEnded, TryOutcome
from ductwork.core.flow import Flow
from ductwork.core.graph import FlowGraph
from ductwork.core.schedule import DataInterval
from ductwork.core.states import RunState, TaskState
from ductwork.engine.journal import JournalWriter, dead_segments, read_journals
from ductwork.engine.local import EarlierTries
from ductwork.engine.recorder import RunSummary
from ductwork.errors import DuctworkError, RunStopped
from ductwork.services import runs as run_service
from ductwork.store.asset_sink import AssetEventWriter, StepSinks
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.sink import SqlEventSink
from ductwork.store.tables import IN_PROCESS_OWNER, task_instances
from ductwork.store.types import utcnow

if TYPE_CHECKING:
    from ductwork.settings import Settings
    from ductwork.store.results import SqlResults

WATCH_INTERVAL = 1.0
"""Seconds between two looks at whether the run was cancelled from outside."""

FLUSH_INTERVAL = 0.05
"""Seconds between two transactions while tries run (a run's end is recorded at once)."""

log = logging.getLogger("ductwork")


class StoreRecording:
    """Registers the flow, creates the run, records its events, and keeps its JSON results."""

    def __init__(
        self,
        engine: Engine,
        flow: Flow,
        *,
        journal_dir: str | Path | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        settings: Settings | None = None,
    ) -> None:
        """Without ``journal_dir`` every step is recorded in its own transaction. ``settings``
        give how results are stored (``results_pickle``, ``results_offload_url``), as a
        scheduler's workers store them."""
        self.engine = engine
        self.settings = settings
        self.flow = flow
        self.record: RunRecord | None = None
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        self.journal: JournalWriter | None = None
        self.flush_interval = flush_interval

    def free_run_id(self, flow_id: str, proposed: str) -> str:
        """A re-run of the same logical date gets ``<run id>.2``, ``.3``..."""
        with read_transaction(self.engine) as conn:
            if run_repo.get_run(conn, flow_id, proposed) is None:
                return proposed
            n = 2
            while run_repo.get_run(conn, flow_id, f"{proposed}.{n}") is not None:
                n += 1
        return f"{proposed}.{n}"

    def begin(self, info: RunInfo, graph: FlowGraph, *, definition: FlowGraph | None = None) -> EventSink:
        if self.journal_dir is not None:
            for key in recover_killed_runs(self.engine, self.journal_dir):
                log.warning("run %s was left running by a process that died: recorded as failed", key)
        definition = definition or self.flow.to_graph()
        code = _code_of(self.flow, definition)
        with transaction(self.engine) as conn:
            flow_repo.upsert_flow(conn, definition, fileloc=self.flow.fileloc, code=code)
        self.record = run_service.create_run(
            self.engine,
            graph,  # the same object: its version hash, worked out for the flow's, is not again
            run_type=info.run_type,
            logical_date=info.logical_date,
            interval=DataInterval(info.data_interval_start, info.data_interval_end),
            params=dict(info.params),
            conf=dict(info.conf),
            run_id=info.run_id,
            note="run in-process (ductwork run/build)",
            pending=False,
            owner=IN_PROCESS_OWNER,  # a scheduler on this database must not take it over
        )
        with transaction(self.engine) as conn:
            run_repo.set_run_state(conn, self.record.pk, RunState.RUNNING)
        if self.journal_dir is not None:
            try:
                self.journal = JournalWriter(self.journal_dir)
                self.journal.began_run(info.key)
            except OSError as exc:  # a full or read-only DUCTWORK_HOME: the run must not stay running
                self.journal = None
                reason = f"cannot write the run's journal in {self.journal_dir}: {exc.strerror or exc}"
                self.interrupted(reason)
                raise DuctworkError(f"{reason} (run {info.run_id} recorded failed)") from None
        # The asset updates of its tasks are recorded too, so flows scheduled on them start.
        store = SqlEventSink(self.engine)
        # A cancel from outside moves the revision: what this process decided before it noticed
        # is then written only where it agrees with the cancel (ADR 0026).
        store.remember(info.key, self.record.pk, self.record.revision)
        sinks = StepSinks(self.engine, [store, AssetEventWriter()])
        return _Forgiving(_StopsWhenCancelled(sinks, self.engine, self.record))

    def watch(self, stop: Callable[[str], None]) -> Callable[[], None]:
        record = self.record
        if record is None:
            return lambda: None
        ended = threading.Event()

        def look() -> None:
            while not ended.wait(WATCH_INTERVAL):
                try:
                    state = _state_of(self.engine, record.pk)
                except Exception:  # the database is down: look again later
                    continue
                if state is not None and state.is_terminal:
                    stop(f"the run was set {state.value} from outside while this command ran it")
                    return

        threading.Thread(target=look, name="ductwork-run-watch", daemon=True).start()
        return ended.set

    def interrupted(self, reason: str) -> None:
        """The run failed for ``reason``, as ``runs cancel`` (and Airflow) mark a run failed: its
        running tasks (those whose start was recorded after a cancel, too) failed, those not
        started skipped (they were recorded failed, under a try that never ran); a run
        cancelled from outside keeps the cancel's end."""
        if self.record is None:
            return
        try:
            with transaction(self.engine) as conn:
                states = task_repo.task_states(conn, self.record.pk)
                running = [t for t, s in states.items() if s == TaskState.RUNNING]
                waiting = [t for t, s in states.items() if not s.is_terminal and s != TaskState.RUNNING]
                if running:
                    task_repo.mark_task_instances(conn, self.record.pk, running, TaskState.FAILED, reason=reason)
                if waiting:
                    task_repo.mark_task_instances(conn, self.record.pk, waiting, TaskState.SKIPPED, reason=reason)
                run_repo.set_run_state(
                    conn, self.record.pk, RunState.FAILED, expected=(RunState.QUEUED, RunState.RUNNING), reason=reason
                )
        except Exception as exc:  # the database is down: the next in-process run finishes it
            log.warning("could not record that run %s was stopped: %s", self.record.run_id, exc)

    def earlier_tries(self) -> EarlierTries:
        """The fingerprints of earlier tries in the database (the scheduler's runs and the
        recorded in-process ones alike: one history per task) and their stored results, read as
        ``finish`` writes them."""
        from ductwork.store.cache import SqlCacheStore

        return EarlierTries(cache=SqlCacheStore(self.engine), results=self._results())

    def _results(self) -> SqlResults:
        return stored_results(self.engine, self.settings)

    def finish(self, summary: RunSummary) -> None:
        """Keep the results the store can hold (the in-process run held them in memory): the
        values its serializer takes (dates, bytes, tuples... not only what ``json.dumps`` takes),
        so a task cleared later and run by a scheduler reads them."""
        if self.record is None:
            return
        from ductwork.store.errors import ResultSerializationError

        results = self._results()
        skipped = 0
        for (run_key, task_id, key), value in summary.results.items():
            if run_key != summary.key:
                continue
            try:
                results.push(run_key, task_id, key, value)
            except ResultSerializationError:
                skipped += 1
        if skipped:
            log.info("%d result(s) of run %s could not be stored and were not recorded", skipped, summary.run_id)
        if self.journal is not None:
            self.journal.remove()  # every try is recorded: the journal has nothing left to tell


def recover_killed_runs(engine: Engine, folder: str | Path) -> list[str]:
    """Finish the record of in-process runs whose process died (their journals in ``folder``
    belong to a process that is gone): record the tries their journal saw end, mark the tries
    still running or queued failed and the run failed, then delete the journals. Returns the
    keys of the runs ended."""
    folder = Path(folder)
    files = dead_segments(folder)
    if not files:
        return []
    journal = read_journals(folder, files)
    ended: list[str] = []
    now = utcnow()
    with transaction(engine) as conn:
        pks = run_repo.run_pks(conn, {e.run_key for e in journal.entries.values()} | set(journal.runs))
        for entry in journal.entries.values():
            pk = pks.get(entry.run_key)
            if pk is not None:
                task_repo.replay_try(
                    conn,
                    pk,
                    entry.task_id,
                    entry.try_number,
                    outcome=entry.outcome,
                    pid=entry.pid,
                    at=entry.started_at,
                    log_path=entry.log_path,
                )
        for run_key, (pid, _started) in journal.runs.items():
            pk = pks.get(run_key)
            if pk is None:
                continue
            reason = f"the process running this run in-process (pid {pid}) died"
            open_tries = conn.execute(
                sa.select(task_instances.c.task_id, task_instances.c.try_number, task_instances.c.start_date).where(
                    task_instances.c.run_pk == pk,
                    task_instances.c.state.in_([TaskState.RUNNING.value, TaskState.QUEUED.value]),
                )
            ).all()
            never_started = []
            for row in open_tries:
                if row.start_date is None:  # queued, never started: no try of it is made up
                    never_started.append(row.task_id)
                    continue
                outcome = TryOutcome(TaskState.FAILED, row.start_date, now, error=reason)
                task_repo.try_finished(conn, pk, row.task_id, row.try_number, outcome)
            if never_started:
                task_repo.mark_task_instances(conn, pk, never_started, TaskState.FAILED, reason=reason, now=now)
            if run_repo.set_run_state(conn, pk, RunState.FAILED, at=now, expected=(RunState.RUNNING,), reason=reason):
                ended.append(run_key)
    for path in files:
        path.unlink(missing_ok=True)
    return ended


def _state_of(engine: Engine, run_pk: int) -> RunState | None:
    from ductwork.store.engine import read_transaction
    from ductwork.store.tables import runs

    with read_transaction(engine) as conn:
        state = conn.execute(sa.select(runs.c.state).where(runs.c.id == run_pk)).scalar_one_or_none()
    return RunState(state) if state is not None else None


class _StopsWhenCancelled:
    """Before each batch of events, a look at the run's state in the database: a run cancelled
    from outside (``ductwork runs cancel``, the web UI) stops the command, which would
    otherwise run its remaining tasks and record the run over the cancel."""

    def __init__(self, sink: EventSink, engine: Engine, run: RunRecord) -> None:
        self.sink = sink
        self.engine = engine
        self.run = run

    def record(self, events: Sequence[EngineEvent]) -> None:
        state = _state_of(self.engine, self.run.pk)
        if state is not None and state.is_terminal:
            # What its tasks did up to now is recorded (a task that ended before the cancel, but
            # was not recorded yet, ran): only the run's own end would write over the cancel.
            self.sink.record([e for e in events if not isinstance(e, RunEnded)])
            raise RunStopped(
                f"run {self.run.flow_id} {self.run.run_id} was set {state.value} from outside while this "
                "command ran it (ductwork runs cancel, the web UI or the API): its remaining tasks do not run"
            )
        self.sink.record(events)


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


def _code_of(flow: Flow, graph: FlowGraph) -> dict[str, Any] | None:
    """What code this in-process run runs (the flow is imported here already); ``graph`` is
    the flow's, compiled already (a class flow's compiles its whole requirement tree)."""
    from ductwork.engine.code_info import flow_code

    try:
        return flow_code(flow, graph=graph)
    except Exception as exc:  # hashing the files must never stop the run
        log.debug("could not fingerprint the code of %s: %s", flow.flow_id, exc)
        return None


def stored_results(engine: Engine, settings: Settings | None) -> SqlResults:
    """The result store as a scheduler's workers write it (journal_runtime): its serializers,
    and large values in the object store of ``results_offload_url``."""
    from ductwork.store.offload import ObjectStore
    from ductwork.store.results import SqlResults

    if settings is None:
        return SqlResults(engine)
    url = settings.results_offload_url
    return SqlResults(
        engine,
        allow_pickle=settings.results_pickle,
        offload=ObjectStore(url) if url else None,
        offload_threshold=settings.results_offload_threshold,
    )


def recorded_upstream_results(
    engine: Engine, settings: Settings, flow_id: str, logical_date: dt.datetime, task_ids: Sequence[str]
) -> tuple[str | None, dict[str, Any]]:
    """The return values the newest recorded run of ``flow_id`` for ``logical_date`` kept for
    ``task_ids`` (those it has), and that run's id: what Airflow's ``tasks test`` reads from
    the XComs of the run for the date given."""
    from ductwork.core.context import run_key
    from ductwork.core.results import MISSING

    until = logical_date + dt.timedelta(microseconds=1)
    with read_transaction(engine) as conn:
        page = run_repo.list_runs(conn, flow_id=flow_id, since=logical_date, until=until, limit=1)
    if not page.items:
        return None, {}
    record = page.items[0]
    results = stored_results(engine, settings)
    found: dict[str, Any] = {}
    for task_id in task_ids:
        try:
            value = results.pull(run_key(record.flow_id, record.run_id), task_id)
        except Exception as exc:  # stored with a serializer not configured here: left out, and said
            log.warning("the result of %s in run %s cannot be read (%s)", task_id, record.run_id, exc)
            continue
        if value is not MISSING:
            found[task_id] = value
    return record.run_id, found
