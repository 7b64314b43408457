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

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.config import ParamSources
from ductwork.core.context import RunInfo
from ductwork.core.events import EngineEvent, EventSink, RunEnded, TryEnded, TryOutcome
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.schedule import DataInterval
from ductwork.core.states import RunState, TaskState
from ductwork.core.telemetry import Telemetry
from ductwork.engine.class_ledger import ClassTaskLedger
from ductwork.engine.coordination import Coordination, scheduler_engine
from ductwork.engine.executor import Executor, TryFinished, TryKey
from ductwork.engine.journal import read_journals, removable_segments
from ductwork.engine.local import try_log_path
from ductwork.engine.parse_queue import Finished, ParseQueue
from ductwork.engine.parsing import (
    FLOW_CALLBACKS,
    TASK_ALERTS,
    FileWatcher,
    ParsedFile,
    call_in_child,
    materialize,
    parse_file,
    parse_files,
)
from ductwork.engine.rules import after_failure
from ductwork.engine.scheduling import ScheduleState, due_runs, next_run_after
from ductwork.engine.supervisor import ActiveRun, Limits, Supervisor
from ductwork.engine.telemetry_hooks import TimedSink, sample_of
from ductwork.errors import DefinitionError, DuctworkError
from ductwork.services import assets as asset_service
from ductwork.services import pipelines as pipeline_service
from ductwork.services import runs as run_service
from ductwork.services.retention import RetentionWorker
from ductwork.settings import Settings
from ductwork.store.asset_sink import AssetEventWriter, StepSinks
from ductwork.store.engine import database_unavailable, missing_table, ping, read_transaction, transaction
from ductwork.store.errors import RunExistsError, SchemaGoneError
from ductwork.store.fresh_schema import ensure_schema
from ductwork.store.records import NewImportError, RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import jobs as job_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.repo import variables as variable_repo
from ductwork.store.repo.events import NewStateEvent, add_state_events
from ductwork.store.sink import SqlEventSink
from ductwork.store.tables import IN_PROCESS_OWNER, task_instances
from ductwork.store.tables import flows as flows_table
from ductwork.store.tables import runs as runs_table

log = logging.getLogger("ductwork.scheduler")
BATCH_AT_LEAST = 4
"""This many never-parsed files at once are parsed in batches, one child process per batch."""
EXECUTOR_START_DELAY = 1.0
"""The workers start when the first batches of flow files are parsed, at the latest this many
seconds after the scheduler's start, or at its first try, whichever comes first: booting them
while a folder of files is imported made a scheduler on 100 files list them 150-400 ms later."""
S = TaskState
SENT_AGAIN = "queued for a worker by a scheduler that stopped before the worker started it: sent again"


@dataclass
class SchedulerOptions:
    parse_interval: float = 2.0
    """Seconds between looks at the flows folder for changed files."""
    poll_interval: float = 0.5
    """Seconds between looks at the store for new, changed and due runs."""
    job_heartbeat: float = 5.0
    parse_timeout: float = 60.0
    """A flow file (or a class-task run's graph) not parsed by then is an import error, and the
    processes its parse started are killed."""
    parse_processes: int = 2
    """Parses at once; one that has run longer than ``parse_slow_after`` stops counting, so files
    that hang hold up neither the loop nor the other files."""
    parse_slow_after: float = 5.0
    parse: bool = True
    schedule: bool = True
    flush_interval: float = 0.02
    """While tries run, record their progress at most this often (workers journal their tries,
    so nothing is lost in between)."""
    wake_interval: float = 0.02
    """Between polls, look this often whether a run was created (one cheap query: the largest
    run id), and poll at once if one was: a triggered run starts within tens of milliseconds,
    not at the next poll."""
    prometheus: bool = False
    """Record Prometheus metrics even without ``metrics_port`` (``ductwork standalone`` shows
    them at its web server's /metrics)."""
    outage_backoff_max: float = 30.0
    """While the database is unreachable, the longest wait between two tries to reach it."""
    start_wait: float = 10.0
    """At start, how long to wait for an unreachable database before exiting with its error: a
    wrong URL or a database not yet up says so within seconds instead of hanging (a service
    manager or Kubernetes restarts the process); 0 waits forever. Once running, an outage is
    always waited out."""
    retention_interval: float = 600.0
    """Seconds between two passes of the background retention (``retention_days`` setting)."""
    retention_first_after: float = 10.0

    def __post_init__(self) -> None:
        # An idle scheduler sleeps poll_interval per turn: 0 would spin a core doing nothing.
        for name in ("parse_interval", "poll_interval", "job_heartbeat", "parse_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise DefinitionError(f"{name.replace('_', '-')} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class SchedulerStatus:
    """What the scheduler is doing, for its health (``/api/v1/health`` in ``standalone``)."""

    state: str
    """``starting``, ``running``, ``waiting_for_database`` or ``stopped``."""
    since: dt.datetime
    detail: str = ""
    """Why, for people: the error that made it wait, and when it tries again."""
    platform_fault: str | None = None
    """A fault of the platform (full disk, unwritable log folder or journal) that keeps a worker
    from starting tries, until one runs again."""


class SchedulerService:
    """The scheduler: one per database (a second one would hand out the same tries)."""

    def __init__(
        self,
        settings: Settings,
        *,
        executor_factory: Callable[[Settings, Mapping[str, str]], Executor] | None = None,
        clock: Clock | None = None,
        options: SchedulerOptions | None = None,
        engine: Engine | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        """``telemetry``: where metrics and traces go (default: from the settings; None when
        nothing is configured, and then the engine makes no telemetry call at all)."""
        self.settings = settings
        self._logs = str(settings.logs)  # asked for every try (a Path built each time: 2% of its CPU)
        self.options = options or SchedulerOptions()
        self.clock = clock or SystemClock()
        self.engine = engine or scheduler_engine(settings)
        self._executor_factory = executor_factory or default_executor
        self.executor: Executor | None = None
        self.supervisor: Supervisor | None = None
        self.sink = SqlEventSink(self.engine)
        self.watcher = FileWatcher(settings.flows_folder, pipeline_service.stored_folder(settings.home))
        self.parsing = ParseQueue(processes=self.options.parse_processes, slow_after=self.options.parse_slow_after)
        self._parsed: dict[str, ParsedFile] = {}
        self._variables_of: dict[str, _VariablesRead] = {}
        """Files whose import looked up variables (``check_variables``)."""
        """The latest parse of every flow file in the folder."""
        self._unrecorded: set[str] = set()
        """Files parsed (or removed) whose result the store does not have yet."""
        self._reparse: set[str] = set()
        """Files that changed again while being parsed."""
        self._batched: set[str] = set()
        """Files being parsed in a batch (``parse_files``)."""
        self._executor_start_by: float | None = None
        """Set while the workers' start waits for the first batches of flow files to be parsed
        (both take the machine's cores at once); at the latest then, or at the first try."""
        self._failed_before: set[str] = set()
        """Files whose last parse had errors: parsed after the others."""
        self._clashes: dict[str, tuple[str, ...]] = {}
        """Flow ids defined in more than one file, with those files."""
        self._building: dict[int, RunRecord] = {}
        """Class-task runs whose graph a parsing process is building."""
        self._revisions: dict[str, int] = {}
        self._pks: dict[str, int] = {}
        self._past_checked: dict[tuple[str, str], float] = {}
        self._adopted: dict[TryKey, dt.datetime] = {}
        """Tries found running after a restart, with when they were found."""
        self._last_parse = 0.0
        self._last_poll = 0.0
        self._last_heartbeat = 0.0
        self._last_wake_check = 0.0
        self._top_run_id: int | None = None
        self._job_id: int | None = None
        self._schema_gone = False  # its tables went away under it: the stop records what it can
        self.coordination: Coordination | None = None
        self.retention: RetentionWorker | None = None
        self.telemetry = telemetry
        self.metrics_registry: Any = None
        self._metrics_server: Any = None
        self.stop_event = threading.Event()
        self._nudge = threading.Event()
        """Set by ``wake`` (and ``stop``): ends the idle loop's wait at once."""
        self._ended = _EndedRuns()
        self._callback_threads: list[threading.Thread] = []
        self.triggerer: Any = None
        """The listeners of flows' message triggers, when they run in the scheduler."""
        self._scope: Callable[[str, str | None], bool] | None = None
        self._told_outside: set[str] = set()
        self._told_taken: set[tuple[str, dt.datetime]] = set()
        self._told_unmade: dict[str, str] = {}
        """Per flow, why its scheduled run could not be created, as last logged."""
        self.environ = dict(os.environ)
        """The environment the scheduler started with: its parsing processes get exactly this."""
        self._status = SchedulerStatus("starting", dt.datetime.now(dt.UTC))

    def status(self) -> SchedulerStatus:
        """Safe to call from any thread (the web server's, in ``standalone``)."""
        fault = getattr(self.executor, "fault", None)
        return dataclasses.replace(self._status, platform_fault=fault) if fault else self._status

    def _set_status(self, state: str, detail: str = "") -> None:
        since = self._status.since if state == self._status.state else dt.datetime.now(dt.UTC)
        self._status = SchedulerStatus(state, since, detail)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Bring the database to the code's schema, start the workers, and take over the runs
        a previous scheduler left active. When the database goes away part way, ``run`` waits
        for it and calls this again: each step done already is not done twice."""
        ensure_schema(self.engine)  # Alembic only when there is work for it
        if self.coordination is None:
            self.coordination = Coordination(
                self.engine,
                remote_executor=self.settings.executor != "local",
                lease=self.settings.scheduler_lease,
                executor=self.settings.executor,
            )
        self._job_id = self.coordination.begin()  # refuses when another scheduler may not share the database
        if self.coordination.leases:
            self.sink.owner = self._job_id
            self.options.job_heartbeat = min(self.options.job_heartbeat, self.settings.scheduler_lease / 4)
        self.replay_journals()
        if self.executor is None:
            self.executor = self._executor_factory(self.settings, self.environ)
            if getattr(self.executor, "starts_when_used", False):
                self._executor_start_by = time.monotonic() + EXECUTOR_START_DELAY
            else:
                self.executor.start()
        with read_transaction(self.engine) as conn:
            pools = {p.name: p.slots for p in pool_repo.list_pools(conn)}
        limits = Limits(pools=pools, resources=dict(self.settings.resources), pools_known=True)
        self._start_telemetry()
        self.supervisor = self.supervisor or Supervisor(
            self.executor,
            self.clock,
            self._sinks(StepSinks(self.engine, [self.sink, AssetEventWriter()])),
            limits=limits,
            log_path=self._log_path,
            flush_interval=self.options.flush_interval,
            gate=self.may_start,
            record_before_submit=getattr(self.executor, "records_tries", False),
            ledger=ClassTaskLedger(),
            limits_guard=self._limits_held if self.coordination.leases else None,
        )
        with read_transaction(self.engine) as conn:
            self._failed_before = {e.fileloc for e in error_repo.list_import_errors(conn)}
        if self.settings.triggerer == "scheduler" and self.triggerer is None:
            from ductwork.engine.services_setup import build_secrets
            from ductwork.engine.triggerer import TriggererService

            self.triggerer = TriggererService(
                self.engine,
                secrets=build_secrets(self.settings, engine=self.engine),
                schedules=self._in_watched_folders,
            )
            self.triggerer.on_delivery = self._on_message  # a new run: look at the store next turn
            self.triggerer.start()
        if self.retention is None:
            self.retention = RetentionWorker(
                self.engine,
                self.settings,
                interval=self.options.retention_interval,
                first_after=self.options.retention_first_after,
                clock=self.clock.now,
            )
            self.retention.start()
        self._set_status("running")
        if self.stop_event.is_set():  # SIGTERM while starting: "started" after "stopping" misled the reader
            log.info("scheduler started (pid %d) and stops at once: a stop was asked for while it started", os.getpid())
        else:
            log.info("scheduler started (pid %d) on %s", os.getpid(), self.settings.flows_folder)
        folder = Path(self.settings.flows_folder)
        if not folder.is_dir():  # a typo would otherwise look like "no flows"
            log.warning(
                "the flows folder %s %s: no flow is scheduled until it is one (set flows_folder, "
                "DUCTWORK_FLOWS_FOLDER or --flows-folder%s)",
                folder,
                "is a file, not a folder" if folder.exists() else "does not exist",
                " to the folder that holds it" if folder.is_file() else "",
            )

    def _start_telemetry(self) -> None:
        if self.telemetry is None:
            from ductwork.telemetry.setup import build_telemetry

            self.telemetry, self.metrics_registry = build_telemetry(self.settings, prometheus=self.options.prometheus)
        if self.metrics_registry is not None and self.settings.metrics_port and self._metrics_server is None:
            from ductwork.telemetry.prometheus import serve

            self._metrics_server = serve(
                self.metrics_registry, self.settings.metrics_port, token=self.settings.metrics_token or ""
            )
            log.info("metrics on http://0.0.0.0:%d/metrics", self.settings.metrics_port)

    def _sinks(self, store: EventSink) -> list[EventSink]:
        """The supervisor's sinks: the store, the ended-runs note, and (when configured) the
        telemetry, with the store's writes timed."""
        if self.telemetry is None:
            return [store, self._ended]
        return [TimedSink(store, self.telemetry.db_write_took), self._ended, self.telemetry]

    def stop(self) -> None:
        self.stop_event.set()
        self._nudge.set()

    def wake(self) -> None:
        """Look for new runs now, not at the next ``wake_interval``: another thread of this
        process has just queued one (``ductwork trigger`` handed over its local socket). The
        loop waits either for the stop event (idle) or in the executor (tries running)."""
        self._last_wake_check = 0.0
        self._nudge.set()
        wake = getattr(self.executor, "wake", None)  # busy: it waits in the executor, not idle
        if callable(wake):
            wake()

    def _log_path(self, run: RunInfo, task_id: str, try_number: int) -> str:
        """Where a try's log goes: the remote log store when workers are remote and one is set."""
        if self.settings.remote_log_url and self.settings.executor != "local":
            from ductwork.engine.remote.logs import remote_log_url

            return remote_log_url(self.settings.remote_log_url, run, task_id, try_number)
        return try_log_path(self._logs, run, task_id, try_number)

    def _on_message(self, _flow_id: str, _delivery: Any) -> None:
        self._last_poll = 0.0

    def shutdown(self, *, ended: str = "success") -> None:
        """Stop everything, and record the job ``ended`` ("failed": an error ended its loop)."""
        if self.triggerer is not None:
            self.triggerer.stop()
        self.parsing.shutdown()
        if self.retention is not None:
            self.retention.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self._drain()
        if self.supervisor is not None:
            try:
                self.supervisor.flush()
            except Exception as exc:
                if not self._unrecordable(exc):
                    raise
                log.error(
                    "stopping with %d state changes not recorded: the database is unreachable (%s); the "
                    "workers' journals hold how their tries ended, and the next start records them",
                    self.supervisor.unrecorded,
                    _first_line(exc),
                )
        try:
            self.run_flow_callbacks()
        except Exception as exc:
            if not self._unrecordable(exc):
                raise
        for thread in self._callback_threads:
            thread.join(timeout=self.options.parse_timeout)
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self._record_drained_tries()
        if self.coordination is not None:
            self.coordination.end()
        if self._job_id is not None:
            try:
                with transaction(self.engine) as conn:
                    job_repo.end_job(conn, self._job_id, ended)
            except Exception as exc:
                if not self._unrecordable(exc):
                    raise
        self.engine.dispose()
        self._set_status("stopped")

    def _unrecordable(self, exc: BaseException) -> bool:
        """Whether a stopping scheduler may leave ``exc`` unrecorded: the database is out of
        reach, or its tables are gone (then nothing can be recorded, and a traceback for each
        write only buried the one line that says why)."""
        if database_unavailable(exc):
            return True
        return self._schema_gone and (missing_table(exc) is not None or isinstance(exc, DuctworkError))

    def _drain(self) -> None:
        """Wait for the tries running in this host's workers to end, applying their ends as they
        come, and keep reading the runs changed from outside meanwhile: a run cancelled, or a
        task marked, while the scheduler stops has its try stopped (the wait in the pool's join
        was deaf to them for as long as the try ran). Nothing new starts (``holding``); runs stay
        running for the next scheduler. Remote workers record their own tries: no wait for them."""
        supervisor, executor = self.supervisor, self.executor
        if supervisor is None or executor is None or getattr(executor, "records_tries", False):
            return
        if not supervisor.in_flight() or supervisor.paused:
            return
        supervisor.holding = True
        if not self._unstartable():
            log.info("stopping: waiting for %d running tries to end", len(supervisor.in_flight()))
        last_look = time.monotonic()
        while supervisor.in_flight():
            if self._unstartable():
                return
            try:
                if time.monotonic() - last_look >= self.options.poll_interval:
                    last_look = time.monotonic()
                    self.sync_runs(take_new=False)
                supervisor.step(timeout=min(self.options.poll_interval, 1.0))
            except Exception as exc:
                if not self._unrecordable(exc):
                    raise
                # The workers journal how their tries end; the next start records them.
                log.error("stopping without waiting for the running tries: the database is unreachable (%s)", exc)
                supervisor.paused = True
                return

    def _unstartable(self) -> bool:
        """Whether the tries in flight wait for a start that a platform fault keeps refusing
        (an unwritable log folder...), none having started: a stop waiting for them never ended."""
        assert self.supervisor is not None
        fault = getattr(self.executor, "fault", None)
        if not fault or self.supervisor.started_in_flight():
            return False
        log.warning(
            "stopping: %d tries could not start (%s); they are left queued for the next scheduler",
            len(self.supervisor.in_flight()),
            fault,
        )
        return True

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Loop until ``stop()`` (or SIGTERM/SIGINT in the CLI) or ``until()`` is true. While the
        database is unreachable it waits (``wait_for_database``) instead of exiting."""
        if not self.wait_for_database(at_start=True):
            return
        while True:
            try:
                self.start()
                break
            except Exception as exc:  # the database went away again while starting
                if not database_unavailable(exc):
                    self._end_job_failed()
                    raise
                if not self.wait_for_database(exc, at_start=True):
                    self.shutdown()
                    return
        ended = "failed"  # unless the loop ends as asked (stop(), a signal, ``until``)
        gone: SchemaGoneError | None = None
        try:
            while not self.stop_event.is_set():
                try:
                    self.turn()
                except Exception as exc:
                    gone = _schema_gone(exc)
                    if gone is not None:
                        log.error("stopping: %s", gone)
                        self._schema_gone = True
                        break
                    if not database_unavailable(exc):
                        raise
                    self.wait_for_database(exc)
                if until is not None and until():
                    break
            if gone is None:
                ended = "success"
        except KeyboardInterrupt:
            ended = "success"
            raise
        finally:
            self.shutdown(ended=ended)
        if gone is not None:
            raise gone

    def _end_job_failed(self) -> None:
        """A scheduler that cannot start (its executor has nothing to talk to) after its job was
        recorded: the job row said ``running`` for ever, and its runs stayed leased to it until
        the lease lapsed. Best effort: the error that stops it is what the user needs to see."""
        try:
            if self.coordination is not None:
                self.coordination.end()
            if self._job_id is not None:
                with transaction(self.engine) as conn:
                    job_repo.end_job(conn, self._job_id, "failed")
        except Exception as exc:
            log.warning("could not record this scheduler's end: %s", _first_line(exc))

    # --- database outages ------------------------------------------------------------------
    def wait_for_database(self, error: BaseException | None = None, *, at_start: bool = False) -> bool:
        """Wait until the database answers again, trying with a backoff (0.5 s doubling to
        ``outage_backoff_max``), saying so in the log and in ``status()``; False if stopped
        meanwhile. Meanwhile no new try starts, tries already running go on in their workers
        (which journal how they end) and their ends are applied in memory; once the database
        answers, everything held back is recorded first, then the loop goes on."""
        if error is None:
            try:
                ping(self.engine)
                return True
            except DuctworkError as exc:
                error = exc
        since = time.monotonic()
        attempt = 0
        if self.supervisor is not None:
            self.supervisor.paused = True
        log.warning(
            "the database %s%s: %s. Waiting for it: no new task starts meanwhile; tasks already "
            "running go on and nothing they do is lost",
            _out_how(error),
            " at start" if at_start else "",
            _first_line(error),
        )
        while not self.stop_event.is_set():
            waited = time.monotonic() - since
            if at_start and self.options.start_wait > 0 and waited >= self.options.start_wait:
                self._set_status("stopped", f"the database is unreachable: {_first_line(error)}")
                raise error
            delay = min(self.options.outage_backoff_max, 0.5 * 2**attempt)
            if at_start and self.options.start_wait > 0:
                delay = max(0.05, min(delay, self.options.start_wait - waited))
            attempt += 1
            self._set_status(
                "waiting_for_database",
                f"the database is unreachable ({_first_line(error)}); try {attempt} in {delay:g}s",
            )
            self._pause(delay)
            try:
                ping(self.engine)
                self._probe_write()
                if self.supervisor is not None:
                    self.supervisor.flush()  # what happened meanwhile, first
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                error = exc
                if attempt % 5 == 0:
                    log.warning(
                        "the database %s still after %.0fs: %s",
                        _out_how(exc),
                        time.monotonic() - since,
                        _first_line(exc),
                    )
                continue
            if self.supervisor is not None:
                self.supervisor.paused = False
            self._last_poll = self._last_heartbeat = 0.0  # look at the store at once
            self._set_status("running" if not at_start else "starting")
            log.warning("the database answers again after %.1fs; going on", time.monotonic() - since)
            return True
        return False

    def _probe_write(self) -> None:
        """Write this scheduler's heartbeat, the smallest write it makes: a database that answers
        a read but cannot write (a full disk, SQLite's "database or disk is full") is still out.
        With only a read as the probe, the log said "answers again" and "unreachable" twice a
        second for as long as the disk stayed full."""
        if self._job_id is None:
            return
        with transaction(self.engine) as conn:
            job_repo.heartbeat_job(conn, self._job_id)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``; with runs in memory, keep taking the ends of running tries (the
        supervisor is paused: it records nothing and starts nothing)."""
        if self.supervisor is None or self.supervisor.idle:
            self.stop_event.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set() and (left := deadline - time.monotonic()) > 0:
            self.supervisor.step(timeout=min(left, 0.5))

    # --- one turn --------------------------------------------------------------------------
    def turn(self) -> None:
        assert self.supervisor is not None
        now_mono = time.monotonic()
        if self.options.parse and now_mono - self._last_parse >= self.options.parse_interval:
            self._last_parse = now_mono
            self.parse_changed()
        self.collect_parsed()
        if self._executor_start_by is not None and (not self._batched or now_mono >= self._executor_start_by):
            self._executor_start_by = None
            self.executor.start()  # type: ignore[union-attr]
        if now_mono - self._last_poll < self.options.poll_interval and self.new_run_created():
            # Only what a new run needs (its graph, if it is a class-task run, then taking it):
            # the rest of the poll can wait for its turn.
            self.build_pending_graphs()
            self.sync_runs()
        if now_mono - self._last_poll >= self.options.poll_interval:
            self._last_poll = now_mono
            if self.options.schedule:
                self.create_due_runs()
                asset_service.create_asset_runs(self.engine, now=self.clock.now(), schedules=self._in_watched_folders)
            self.build_pending_graphs()
            self.refresh_pools()
            self.check_variables()
            self.sync_runs()
            self.check_adopted()
            self.drop_old_journals()
            self.run_flow_callbacks()
            if self.telemetry is not None:
                self.telemetry.poll_took(time.monotonic() - now_mono)
                self.telemetry.sample(sample_of(self.supervisor, self.executor))
        if now_mono - self._last_heartbeat >= self.options.job_heartbeat and self._job_id is not None:
            self._last_heartbeat = now_mono
            with transaction(self.engine) as conn:
                fault = getattr(self.executor, "fault", None)
                beating = job_repo.heartbeat_job(conn, self._job_id, fault=str(fault) if fault else None)
                if not beating and job_repo.get_job(conn, self._job_id) is None:
                    # The tables were made again under it (a reset): the flows it registered,
                    # the runs it drove are gone, and going on it heartbeat nothing, quietly.
                    raise SchemaGoneError(
                        f"this scheduler's record (job {self._job_id}) is gone from the database: its tables were "
                        "dropped and made again while it ran. Start the scheduler again"
                    )
        now_mono = time.monotonic()
        remaining = max(
            0.0,
            min(
                self.options.poll_interval - (now_mono - self._last_poll),
                self.options.wake_interval - (now_mono - self._last_wake_check),
            ),
        )
        if self.supervisor.idle:
            self._nudge.wait(remaining)
            self._nudge.clear()
        else:
            self.supervisor.step(timeout=remaining)

    def new_run_created(self) -> bool:
        """Whether a run was created since the last look (taken at most every ``wake_interval``):
        ``ductwork trigger`` and the API only write the run, and this is how the scheduler
        hears of it without waiting for its next poll. A failed look says no: the regular poll
        meets the database's trouble at its own pace."""
        now = time.monotonic()
        if now - self._last_wake_check < self.options.wake_interval:
            return False
        self._last_wake_check = now
        try:
            with self.engine.connect() as conn:
                top = conn.execute(sa.select(sa.func.max(runs_table.c.id))).scalar()
        except sa.exc.SQLAlchemyError:
            return False
        if top == self._top_run_id:
            return False
        self._top_run_id = top
        return True

    # --- flows -----------------------------------------------------------------------------
    def parse_changed(self) -> None:
        """Queue the files that changed for parsing (in the background) and note those removed."""
        self.sync_stored_pipelines()
        changed, removed = self.watcher.changes()
        for file in removed:
            self._parsed.pop(file, None)
            self._variables_of.pop(file, None)
            self._unrecorded.add(file)
        for file in [f for f in changed if f in self._batched]:  # its batch's result will be stale
            self._reparse.add(file)
        changed = [f for f in changed if f not in self._batched]
        fresh = [f for f in changed if f not in self._parsed and not self.parsing.busy(("parse", f))]
        if len(fresh) >= BATCH_AT_LEAST:
            # Many files never parsed (a scheduler starting on a folder): a few children import
            # them in batches, instead of one fresh interpreter per file.
            size = max(BATCH_AT_LEAST, -(-len(fresh) // max(1, self.options.parse_processes)))
            for start in range(0, len(fresh), size):
                batch = tuple(fresh[start : start + size])
                if self.parsing.add(("batch", batch), functools.partial(self._batch_job, batch)):
                    self._batched.update(batch)
            changed = [f for f in changed if f not in self._batched]
        for file in changed:
            job = functools.partial(self._parse_job, file)
            if not self.parsing.add(("parse", file), job, priority=int(file in self._failed_before)):
                self._reparse.add(file)

    def sync_stored_pipelines(self) -> None:
        """Stored declarative pipelines (``ductwork pipelines put/activate``): their active
        versions become files of a folder watched like the flows folder, and on-demand
        activations get their run."""
        try:
            for name in pipeline_service.sync_stored(self.engine, pipeline_service.stored_folder(self.settings.home)):
                log.info("pipeline %s: started the run of its activation", name)
        except (DuctworkError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.error("could not sync the stored pipelines: %s", exc)

    def _parse_job(self, file: str, stop: threading.Event) -> ParsedFile:
        started = time.monotonic()
        begun = dt.datetime.now(dt.UTC)
        parsed = parse_file(file, timeout=self.options.parse_timeout, environ=self.environ, stop=stop)
        parsed.begun_at = begun
        if self.telemetry is not None:
            self.telemetry.parsed(file, time.monotonic() - started, len(parsed.errors))
        return parsed

    def _batch_job(self, files: tuple[str, ...], stop: threading.Event) -> dict[str, ParsedFile]:
        # A file that hangs holds the files after it only this long; they are then parsed alone.
        timeout = min(self.options.parse_timeout, self.options.parse_slow_after + 0.2 * len(files))
        begun = dt.datetime.now(dt.UTC)
        parsed = parse_files(list(files), timeout=timeout, environ=self.environ, stop=stop)
        for one in parsed.values():
            one.begun_at = begun
        return parsed

    def _take_batch(self, files: tuple[str, ...], done: Finished) -> None:
        self._batched.difference_update(files)
        reported: Mapping[str, ParsedFile] = done.result if done.error is None and done.result else {}
        for file in files:
            parsed = reported.get(file)
            if parsed is None:  # the batch ended before this file (a file before it hung or crashed)
                self._reparse.discard(file)
                if not self.parsing.stop.is_set() and file in self.watcher.seen:
                    self.parsing.add(("parse", file), functools.partial(self._parse_job, file))
                continue
            self._take_parse(file, Finished(("parse", file), parsed))

    def collect_parsed(self) -> None:
        """Take in what the parsing processes finished, and record it."""
        for done in self.parsing.pump():
            kind, target = done.key
            if kind == "parse":
                self._take_parse(target, done)
            elif kind == "batch":
                self._take_batch(target, done)
            else:
                self._take_graph(target, done)
        self.record_parsed()

    def _take_parse(self, file: str, done: Finished) -> None:
        if file in self._reparse:  # it changed while being parsed: this result is stale
            self._reparse.discard(file)
            self.parsing.add(("parse", file), functools.partial(self._parse_job, file))
            return
        if self.parsing.stop.is_set() or file not in self.watcher.seen:
            return
        if done.error is not None:  # the parse could not run at all (no fork, no temp dir)
            log.error("could not parse %s: %s; trying again later", file, done.error)
            self.watcher.forget(file)
            return
        self._parsed[file] = done.result
        self._unrecorded.add(file)
        self.watcher.note_dependencies(file, done.result.code_paths)  # a helper module changing re-parses it
        self._variables_of.pop(file, None)
        if done.result.variables:
            begun = done.result.begun_at or dt.datetime.now(dt.UTC)
            self._variables_of[file] = _VariablesRead(frozenset(done.result.variables), begun)

    def check_variables(self) -> None:
        """Parse again the files whose import looked up a variable that changed since (a flow
        whose tasks are made from a variable's value): as Airflow's files are parsed again every
        30 seconds, without parsing every file again."""
        if not self._variables_of:
            return
        names = set().union(*(seen.names for seen in self._variables_of.values()))
        with read_transaction(self.engine) as conn:
            now = variable_repo.updated_at(conn, names)
        for file, seen in list(self._variables_of.items()):
            # Changed since its parse began (a little before, for clocks of other hosts: at
            # worst one parse more), or deleted since this scheduler last saw it.
            since = seen.begun_at - VARIABLE_CLOCK_SLACK
            changed = sorted(n for n in seen.names if (at := now.get(n)) is not None and _utc(at) >= since)
            changed += sorted(n for n in seen.existing - now.keys())
            if changed:
                log.info("variable %s changed: parsing %s again", ", ".join(changed), file)
                del self._variables_of[file]
                self.watcher.forget(file)
            else:
                seen.existing = frozenset(n for n in seen.names if n in now)

    def record_parsed(self) -> None:
        """Write parsed files to the store: their flows, and their import errors. A flow id
        defined in more than one file is an import error of each of them, and the scheduler
        keeps the definition it had (if any) until only one file defines it."""
        if not self._unrecorded:
            return
        clashes = duplicate_flow_ids(self._parsed)
        before, after = _by_file(self._clashes), _by_file(clashes)
        touched = self._unrecorded | {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
        # One transaction for all of them: a scheduler starting on a folder of 100 files
        # records them at once instead of committing 100 times.
        failed = {file: self._file_errors(file, clashes) for file in sorted(touched)}
        recorded = {
            file: [(graph, parsed.code.get(graph.flow_id)) for graph in parsed.graphs if not clashes.get(graph.flow_id)]
            for file in sorted(touched)
            if (parsed := self._parsed.get(file)) is not None
        }
        present = {file: [g.flow_id for g in p.graphs] if (p := self._parsed.get(file)) else [] for file in touched}
        for attempt in range(3):
            try:
                with transaction(self.engine) as conn:
                    flow_repo.record_files(conn, recorded, present)
                    error_repo.replace_many(conn, failed)
                break
            except sa.exc.IntegrityError:
                # A command (`ductwork trigger`, `ductwork run`) recorded one of these flows
                # between this transaction's look and its insert: look again.
                if attempt == 2:
                    raise
                log.info("a flow was recorded by another process meanwhile; recording the parsed files again")
        for file, errors in failed.items():
            self._unrecorded.discard(file)
            if errors:
                self._failed_before.add(file)
            else:
                self._failed_before.discard(file)
            for error in errors:
                log.warning("import error: %s:%s: %s", file, error.line or "?", error.error)
        self._clashes = clashes

    def _file_errors(self, file: str, clashes: Mapping[str, tuple[str, ...]]) -> list[NewImportError]:
        """A file's import errors: its own, and each flow id another file defines too."""
        parsed = self._parsed.get(file)
        if parsed is None:  # the file is gone
            return []
        errors = [NewImportError(e.error, e.line, e.traceback) for e in parsed.errors]
        for graph in parsed.graphs:
            files = clashes.get(graph.flow_id)
            if files:
                others = ", ".join(f for f in files if f != file)
                message = (
                    f"flow id {graph.flow_id!r} is also defined in {others}: the scheduler takes neither "
                    "definition until only one file defines it"
                )
                errors.append(NewImportError(message, parsed.lines.get(graph.flow_id)))
        return errors

    # --- runs ------------------------------------------------------------------------------
    def create_due_runs(self) -> None:
        now = self.clock.now()
        with read_transaction(self.engine) as conn:
            flows = [
                f
                for f in flow_repo.list_flows(conn, paused=False)
                if f.schedule not in ("None", "") and self._in_watched_folders(f.flow_id, f.fileloc)
            ]
        for flow in flows:
            with read_transaction(self.engine) as conn:
                graph = flow_repo.get_flow_graph(conn, flow.flow_id)
                last = run_repo.list_runs(conn, flow_id=flow.flow_id, run_types=["scheduled"], limit=1).items
                active = len(run_repo.active_runs(conn, flow_id=flow.flow_id))
            if graph is None:
                continue
            last_interval = DataInterval(last[0].data_interval_start, last[0].data_interval_end) if last else None
            try:
                last_interval = self._create_scheduled_runs(flow.flow_id, graph, last_interval, active, now)
            except (DuctworkError, ValueError) as exc:  # a row parsed by an older release, say
                log.error("flow %s (%s) cannot be scheduled: %s", flow.flow_id, flow.fileloc, exc)
                continue
            following = next_run_after(graph.meta, last_interval, now)
            with transaction(self.engine) as conn:
                flow_repo.set_next_run(
                    conn,
                    flow.flow_id,
                    logical_date=following.start if following else None,
                    interval_start=following.start if following else None,
                    interval_end=following.end if following else None,
                )

    def _create_scheduled_runs(
        self, flow_id: str, graph: FlowGraph, last: DataInterval | None, active: int, now: dt.datetime
    ) -> DataInterval | None:
        """Create the flow's due scheduled runs after ``last``; the last interval dealt with.

        One run per logical date, as in Airflow: a date a backfill or a trigger already ran is
        passed over, and so is one whose scheduled run id another run took (said once). When
        every due date was passed over, the next ones are looked at, so dates taken ahead of the
        schedule never hold it up."""
        for _ in range(_MAX_PASSES):
            intervals = due_runs(graph.meta, ScheduleState(last, active), now)
            taken = self._dates_taken(flow_id, intervals)
            created = False
            for interval in intervals:
                if interval.start in taken:
                    last = interval
                    continue
                try:
                    run_service.create_run(
                        self.engine,
                        graph,
                        run_type="scheduled",
                        logical_date=interval.start,
                        interval=interval,
                        params=run_service.validate_params(graph.meta, None),
                    )
                except (RunExistsError, sa.exc.IntegrityError):
                    if self._scheduled_run_exists(flow_id, interval):
                        return last  # another scheduler on this database created it first: its runs
                    if (flow_id, interval.start) not in self._told_taken:
                        self._told_taken.add((flow_id, interval.start))
                        log.error(
                            "flow %s: the id of its scheduled run for %s is taken by another run: that date is "
                            "passed over",
                            flow_id,
                            interval.start.isoformat(),
                        )
                    last = interval
                    continue
                except DuctworkError as exc:
                    # Said once per flow and reason (a required parameter without a default was
                    # logged twice a second, for ever); said again once the reason changes.
                    if self._told_unmade.get(flow_id) != str(exc):
                        self._told_unmade[flow_id] = str(exc)
                        log.error(
                            "flow %s: could not create the run for %s: %s (said once: its scheduled runs wait "
                            "until the flow is changed)",
                            flow_id,
                            interval.start,
                            exc,
                        )
                    return last
                created = True
                self._told_unmade.pop(flow_id, None)
                last = interval
            if created or not intervals:
                return last
        return last

    def _dates_taken(self, flow_id: str, intervals: Sequence[DataInterval]) -> set[dt.datetime]:
        """The logical dates among ``intervals`` some run of the flow already has (any kind)."""
        if not intervals:
            return set()
        with read_transaction(self.engine) as conn:
            found = run_repo.list_runs(
                conn,
                flow_id=flow_id,
                since=intervals[0].start,
                until=intervals[-1].start + dt.timedelta(microseconds=1),
                limit=len(intervals) * 4 + 10,
            ).items
        return {r.logical_date for r in found}

    def _scheduled_run_exists(self, flow_id: str, interval: DataInterval) -> bool:
        with read_transaction(self.engine) as conn:
            found = run_repo.list_runs(
                conn,
                flow_id=flow_id,
                run_types=["scheduled"],
                since=interval.start,
                until=interval.start + dt.timedelta(microseconds=1),
                limit=1,
            ).items
        return bool(found)

    def build_pending_graphs(self) -> None:
        """Have the graphs of new class-task runs built by a parsing process (it imports the
        user's code); ``collect_parsed`` records them."""
        with read_transaction(self.engine) as conn:
            pending = [r for r in run_repo.active_runs(conn) if r.graph_pending]
        for record in pending:
            if self.parsing.busy(("graph", record.pk)):
                continue
            with read_transaction(self.engine) as conn:
                flow = flow_repo.get_flow(conn, record.flow_id)
            if flow is None or flow.fileloc is None:
                self._fail_graph(record, DuctworkError(f"flow {record.flow_id!r} is not known to the scheduler"))
                continue
            self._building[record.pk] = record
            self.parsing.add(("graph", record.pk), functools.partial(self._graph_job, flow.fileloc, record))

    def _graph_job(self, fileloc: str, record: RunRecord, stop: threading.Event) -> FlowGraph:
        return materialize(
            fileloc,
            record.flow_id,
            params=dict(record.params),
            logical_date=record.logical_date.isoformat(),
            timeout=self.options.parse_timeout,
            environ=self.environ,
            stop=stop,
        )

    def _take_graph(self, run_pk: int, done: Finished) -> None:
        record = self._building.pop(run_pk)
        if self.parsing.stop.is_set():
            return
        if isinstance(done.error, DuctworkError):
            self._fail_graph(record, done.error)
        elif done.error is not None:  # the parse could not run at all: the next poll tries again
            log.error("run %s: could not build its graph: %s; trying again", record.key, done.error)
        else:
            graph: FlowGraph = done.result
            with transaction(self.engine) as conn:
                run_repo.set_run_graph(
                    conn,
                    record.pk,
                    graph,
                    states={t: S.SUCCESS for t, n in graph.nodes.items() if n.extra.get("already_complete")},
                )

    def _fail_graph(self, record: RunRecord, exc: DuctworkError) -> None:
        """Fail a run whose graph could not be built, unless another scheduler built it."""
        with transaction(self.engine) as conn:
            if not run_repo.set_run_graph(conn, record.pk, FlowGraph(flow_meta_of(record), {})):
                return
            run_repo.set_run_note(conn, record.pk, str(exc))
            run_repo.set_run_state(conn, record.pk, RunState.FAILED, reason=str(exc))
        log.error("run %s: %s", record.key, exc)

    def refresh_pools(self) -> None:
        """Pool sizes as set now (``ductwork pools set``, the UI): a new size applies at the next
        poll, to tries not dispatched yet."""
        assert self.supervisor is not None
        limits = self.supervisor.limits
        with read_transaction(self.engine) as conn:
            limits.pools = {p.name: p.slots for p in pool_repo.list_pools(conn)}
            if self.coordination is not None and self.coordination.leases and self._job_id is not None:
                # Other schedulers' tries hold slots of the same pools: counted each poll, so
                # that together they keep to the limits (each held its own count only).
                limits.pool_elsewhere, limits.flow_tasks_elsewhere = pool_repo.held_elsewhere(conn, self._job_id)

    @contextlib.contextmanager
    def _limits_held(self, runs: Sequence[ActiveRun]) -> Iterator[None]:
        """Several schedulers: the rows of the pools and flows whose limits the ready tasks of
        ``runs`` meet are locked while this one counts what the others queued and records what
        it queues (the supervisor's dispatch), as Airflow's scheduler holds its pools in its
        critical section. Counted once a poll only, two schedulers could both fill the slots a
        pool had free at their last poll (a new pool size, ended tries)."""
        assert self.supervisor is not None and self._job_id is not None and self.coordination is not None
        limits = self.supervisor.limits
        pools = {n.pool for run in runs for n in run.tracker.ready_nodes() if n.pool in limits.pools}
        flows = {run.info.flow_id for run in runs if run.max_active_tasks is not None}
        if self.coordination.alone or (not pools and not flows):
            yield  # alone at its last poll: one starting since counts what this one queued
            return
        with transaction(self.engine) as conn:  # writes nothing: its end lets go of the locks
            busy_pools, busy_flows = pool_repo.lock_limits(conn, pools, flows)
            limits.pool_elsewhere, limits.flow_tasks_elsewhere = pool_repo.held_elsewhere(conn, self._job_id)
            for pool in busy_pools:  # another scheduler is queueing into it: its tasks wait a turn
                limits.pool_elsewhere[pool] = limits.pools[pool]
            for flow_id in busy_flows:
                limits.flow_tasks_elsewhere[flow_id] = BUSY_FLOW
            yield

    def sync_runs(self, *, take_new: bool = True) -> None:
        """Take new active runs into the supervisor (a queued run waits while its flow has
        ``max_active_runs`` running, whatever made it: schedule, trigger, backfill), reload runs
        changed from outside, and let go of runs that were ended from outside. ``take_new=False``
        (stopping): only the runs already held are looked at."""
        assert self.supervisor is not None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    runs_table.c.id,
                    runs_table.c.flow_id,
                    runs_table.c.run_id,
                    runs_table.c.revision,
                    runs_table.c.graph_pending,
                    runs_table.c.state,
                )
                .where(
                    runs_table.c.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
                    sa.or_(runs_table.c.owner.is_(None), runs_table.c.owner != IN_PROCESS_OWNER),
                )
                .order_by(runs_table.c.id)
            ).all()
        waiting = self._over_max_active_runs([r for r in rows if not r.graph_pending])
        active = {f"{r.flow_id}/{r.run_id}": r for r in rows if not r.graph_pending}
        unfinished = {f"{r.flow_id}/{r.run_id}" for r in rows}
        if self.coordination is not None and self.coordination.leases:
            # Several schedulers: drive only the runs this one holds; let go of runs taken over.
            healthy = getattr(self.executor, "can_hand_out", None)
            owned = self.coordination.owned(claim=take_new and (healthy() if healthy is not None else True))
            lost, self.sink.lost_runs = self.sink.lost_runs, set()
            active = {k: r for k, r in active.items() if r.id in owned and k not in lost}
            for key in list(self.supervisor.runs):
                if key not in unfinished:  # ended from outside (cancelled): stop its tries, below
                    continue
                if key not in active:
                    self._let_go(key, cancel=False)
                elif active[key].id in self.coordination.claimed:
                    # Held by another scheduler since this one loaded it (this one stalled past its
                    # lease), and back now: what this one holds in memory is stale. Load it again.
                    self._let_go(key, cancel=False, why="came back to this scheduler: loading it again")
            rows = [r for r in rows if f"{r.flow_id}/{r.run_id}" in active]
        if any(
            key not in unfinished or (key in active and self._revisions.get(key) != active[key].revision)
            for key in self.supervisor.runs
        ):
            # Record what this scheduler decided on the states it held (the sink keeps only what
            # agrees with the change from outside) before it loads them again or lets them go.
            self.supervisor.flush()
        for key in list(self.supervisor.runs):
            if key not in active and key not in unfinished:
                self._let_go(key)
        for key, row in active.items():
            if key not in self.supervisor.runs:
                if row.id not in waiting and take_new:
                    self._take(row.id, recovering=True)
            elif self._revisions.get(key) != row.revision:
                self._take(row.id, recovering=False)

    def _over_max_active_runs(self, rows: Sequence[Any]) -> set[int]:
        """The queued runs (of ``rows``, oldest first) that must wait because their flow has
        ``max_active_runs`` running already."""
        queued = [r for r in rows if r.state == RunState.QUEUED.value]
        if not queued:
            return set()
        with read_transaction(self.engine) as conn:
            limits = dict(
                conn.execute(
                    sa.select(flows_table.c.flow_id, flows_table.c.max_active_runs).where(
                        flows_table.c.flow_id.in_({r.flow_id for r in queued})
                    )
                ).all()
            )
        running = Counter(r.flow_id for r in rows if r.state == RunState.RUNNING.value)
        waiting: set[int] = set()
        for row in queued:
            limit = limits.get(row.flow_id)
            if limit is not None and running[row.flow_id] >= limit:
                waiting.add(row.id)
            else:
                running[row.flow_id] += 1
        return waiting

    def _in_watched_folders(self, flow_id: str, fileloc: str | None) -> bool:
        """Whether this scheduler schedules the flow: one of its flows folder (or a stored
        pipeline), not one recorded by `ductwork run FILE` from elsewhere, whose schedule would
        otherwise start here with a catch-up nobody asked for. Said once per flow."""
        if self._scope is None:
            from ductwork.engine.triggerer import folder_scope

            self._scope = folder_scope(self.settings.flows_folder, pipeline_service.stored_folder(self.settings.home))
        if self._scope(flow_id, fileloc):
            return True
        if flow_id not in self._told_outside:
            self._told_outside.add(flow_id)
            log.warning(
                "flow %s is defined in %s, outside the flows folder %s (recorded by `ductwork run`): it runs when "
                "triggered, but this scheduler does not start its scheduled runs; move the file into the folder "
                "to schedule it",
                flow_id,
                fileloc,
                self.settings.flows_folder,
            )
        return False

    def _let_go(self, key: str, *, cancel: bool = True, why: str = "was taken over by another scheduler") -> None:
        """Forget a run; ``cancel`` its tries (it was ended from outside) unless another
        scheduler took it over (then they go on, and whoever holds the run adopts them)."""
        assert self.supervisor is not None and self.executor is not None
        run = self.supervisor.drop_run(key)
        if run is None:
            return
        if not cancel:
            log.warning("run %s %s", key, why)
        for try_key in run.in_flight.values():
            if cancel:
                self.executor.cancel(try_key, "the run was ended from outside the scheduler")
            else:
                forget = getattr(self.executor, "forget", None)
                if forget is not None:
                    forget(try_key)
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
            tries = dict(loaded.tries)
            in_flight = self.supervisor.runs.get(record.key)
            flying = set(in_flight.in_flight) if in_flight is not None else set()
            sent_again: list[NewStateEvent] = []
            for task_id, state in loaded.states.items():
                if task_id in flying:
                    continue
                if state == S.QUEUED:
                    # Handed to a worker that never started it (its scheduler died): send it again.
                    # Conditional: a remote worker may start it at this very moment; then it runs.
                    reset = conn.execute(
                        sa.update(task_instances)
                        .where(
                            task_instances.c.run_pk == run_pk,
                            task_instances.c.task_id == task_id,
                            task_instances.c.state == S.QUEUED.value,
                        )
                        .values(state=S.SCHEDULED.value, try_number=task_instances.c.try_number - 1)
                    )
                    if reset.rowcount == 1:
                        states[task_id] = S.SCHEDULED
                        tries[task_id] = tries.get(task_id, 1) - 1
                        # In the task's history too: its next change starts from scheduled.
                        sent_again.append(
                            NewStateEvent(
                                run_pk,
                                task_id,
                                S.QUEUED.value,
                                S.SCHEDULED.value,
                                SENT_AGAIN,
                                max(0, tries[task_id]),
                                self.clock.now(),
                            )
                        )
                    else:
                        current = task_repo.get_task_instance(conn, run_pk, task_id)
                        if current is not None:
                            states[task_id], tries[task_id] = current.state, current.try_number
            add_state_events(conn, sent_again)
            starts = _running_starts(conn, run_pk) if S.RUNNING in states.values() else {}
        # (max: older releases stored a rescheduled sensor's try number as -1)
        tries = {t: max(0, n) for t, n in tries.items()}
        info = run_service.run_info(record, loaded.graph.meta)
        self.supervisor.replace_run(
            info,
            loaded.graph,
            states=states,
            tries=tries,
            due=dict(loaded.next_try_at),
            deadline=self._deadline(record, loaded.graph.meta),
            created=record.queued_at or record.created_at,  # a finished run cleared: queued again then
        )
        run = self.supervisor.runs[info.key]
        run.max_tries.update(loaded.max_tries)
        for task_id in flying:
            # Marked success, failed or skipped while its try ran: the mark wins. Cleared while
            # it ran (back to none): that try is stopped and the task runs again, as a new try.
            found = states.get(task_id)
            if found in (S.SUCCESS, S.FAILED, S.SKIPPED, S.NONE):
                stopped = self.supervisor.abandon(info.key, task_id)
                if stopped is not None and self.executor is not None and found is not None:
                    why = "cleared" if found == S.NONE else f"marked {found.value}"
                    self.executor.cancel(stopped, f"{why} while it ran")
                    self._adopted.pop(stopped, None)
        self._revisions[info.key] = record.revision
        self._pks[info.key] = run_pk
        self.sink.remember(info.key, run_pk, record.revision)
        now = self.clock.now()
        for task_id, state in states.items():
            if state == S.RUNNING and task_id not in run.in_flight:
                key = self.supervisor.adopt(info.key, task_id, tries.get(task_id, 1))
                adopt = getattr(self.executor, "adopt", None)  # remote executors watch such tries
                if adopt is None or not adopt(key, run.tracker.nodes[task_id], run.max_tries.get(task_id)):
                    self._adopted[key] = starts.get(task_id) or now
        if recovering and record.state == RunState.RUNNING:  # under way before: another party ran it
            log.info("took over run %s (%d tasks), which was under way", info.key, len(loaded.graph.nodes))
        elif recovering:
            log.info("started run %s (%d tasks)", info.key, len(loaded.graph.nodes))

    def _deadline(self, record: RunRecord, meta: FlowMeta) -> dt.datetime | None:
        """When the run times out: its start (now, for a run starting now; its last queueing, for
        a run cleared to run again, as Airflow restarts the clock on a clear) plus the
        ``run_timeout`` its recorded graph carries, so a run keeps the timeout it began with."""
        if meta.run_timeout is None:
            return None
        started = None
        if record.state != RunState.QUEUED:
            started = max((d for d in (record.start_date, record.queued_at) if d is not None), default=None)
        return (started or self.clock.now()) + dt.timedelta(seconds=meta.run_timeout)

    def check_adopted(self) -> None:
        """Tries found running after a restart: pick up the end their worker journaled, or
        declare them lost when their worker is gone without journaling one."""
        if not self._adopted:
            return
        assert self.supervisor is not None
        now = self.clock.now()
        entries = read_journals(journal_dir(self.settings)).entries
        finished: list[TryFinished] = []
        for key in list(self._adopted):
            run = self.supervisor.runs.get(key.run_key)
            if run is None or run.in_flight.get(key.task_id) != key:
                del self._adopted[key]
                continue
            entry = entries.get((key.run_key, key.task_id, key.try_number))
            if entry is not None and entry.outcome is not None:
                finished.append(TryFinished(key, entry.outcome))
            elif entry is None or not entry.worker_alive:
                node = run.tracker.nodes[key.task_id]
                state, next_at = after_failure(node, key.try_number, now, max_tries=run.max_tries.get(key.task_id))
                if entry is not None:
                    reason = f"the worker running this try (pid {entry.pid}) died before it ended"
                else:  # (its start, journaled, may have been recorded and its journal removed)
                    reason = "the worker running this try died before it ended: no end of it was journaled"
                started = entry.started_at if entry is not None and entry.started_at else self._adopted[key]
                outcome = TryOutcome(state, started, now, error=reason, next_try_at=next_at, alerts_due=True)
                finished.append(TryFinished(key, outcome))
            elif (timeout := run.tracker.nodes[key.task_id].execution_timeout) and _past(
                entry.started_at, timeout, now
            ):
                # Its deadline was the pool's of the scheduler that died: this one keeps it. SIGTERM
                # lets the worker's operator stop what it started (on_kill), as at a pool deadline.
                _stop_worker(entry.pid)
                node = run.tracker.nodes[key.task_id]
                state, next_at = after_failure(node, key.try_number, now, max_tries=run.max_tries.get(key.task_id))
                started = entry.started_at or self._adopted[key]
                reason = f"timed out after {timeout:g}s"
                outcome = TryOutcome(state, started, now, error=reason, next_try_at=next_at, alerts_due=True)
                finished.append(TryFinished(key, outcome))
            else:
                continue
            del self._adopted[key]
        if finished:
            self.supervisor.feed(finished)

    def run_flow_callbacks(self) -> None:
        """Call the flow-level callbacks of runs that ended, each in a child process (user code)
        started from a thread, so the loop never waits for them."""
        self._callback_threads = [t for t in self._callback_threads if t.is_alive()]
        while self._ended.runs:  # one at a time: a database error leaves the rest for next time
            run_key, state = self._ended.runs[0]
            flow_id, run_id = run_key.split("/", 1)
            with read_transaction(self.engine) as conn:
                graph = flow_repo.get_flow_graph(conn, flow_id)
                record = run_repo.get_run(conn, flow_id, run_id)
            del self._ended.runs[0]
            if graph is None or record is None or not graph.meta.fileloc:
                continue
            kind = "failure" if state == RunState.FAILED else "success"
            if kind not in graph.meta.callbacks:
                continue
            request = {"state": state.value, **_run_request(record)}
            thread = threading.Thread(target=self._call_back, args=(graph.meta.fileloc, flow_id, request), daemon=True)
            thread.start()
            self._callback_threads.append(thread)
        while self._ended.lost:
            self._alert_lost(self._ended.lost[0])
            del self._ended.lost[0]

    def _alert_lost(self, ended: TryEnded) -> None:
        """A try that timed out or whose worker died ran none of its failure (or retry) callbacks
        and e-mail: they are called now, in a child process, as Airflow calls them for a zombie."""
        flow_id, run_id = ended.run_key.split("/", 1)
        with read_transaction(self.engine) as conn:
            flow = flow_repo.get_flow(conn, flow_id)
            record = run_repo.get_run(conn, flow_id, run_id)
            node = task_repo.task_node(conn, record.pk, ended.task_id) if record is not None else None
        if flow is None or record is None or not flow.fileloc:
            return
        request = {
            **_run_request(record),
            "task_id": ended.task_id,
            "try_number": ended.try_number,
            "task_state": ended.outcome.state.value,
            "error": ended.outcome.error or "",
            "node": node.to_dict() if node is not None else None,  # a class task is made from it
        }
        thread = threading.Thread(target=self._call_back_lost, args=(flow.fileloc, flow_id, request), daemon=True)
        thread.start()
        self._callback_threads.append(thread)

    def _call_back(self, fileloc: str, flow_id: str, request: dict[str, Any]) -> None:
        error = call_in_child(
            FLOW_CALLBACKS, fileloc, flow_id, request, timeout=self.options.parse_timeout, environ=self.environ
        )
        if error:
            log.error("flow %s: its %s callback failed: %s", flow_id, request["state"], error)

    def _call_back_lost(self, fileloc: str, flow_id: str, request: dict[str, Any]) -> None:
        error = call_in_child(
            TASK_ALERTS, fileloc, flow_id, request, timeout=self.options.parse_timeout, environ=self.environ
        )
        if error:
            log.error("flow %s: the callbacks of task %s failed: %s", flow_id, request["task_id"], error)

    def may_start(self, run: ActiveRun, node: NodeSpec) -> bool:
        """``depends_on_past``: a task waits until the same task of the flow's previous run (by
        logical date) succeeded or was skipped; a refusal is re-checked at most once a poll, and a
        "yes" is not kept at all: the previous run's task may be marked failed and this one cleared
        (the first "yes" was kept for the life of the scheduler, and the cleared task ran)."""
        if not node.depends_on_past:
            return True
        key = (run.key, node.task_id)
        checked = self._past_checked.get(key)
        if checked is not None and time.monotonic() - checked < self.options.poll_interval:
            return False
        with read_transaction(self.engine) as conn:
            previous = conn.execute(
                sa.select(task_instances.c.state)
                .select_from(task_instances.join(runs_table, runs_table.c.id == task_instances.c.run_pk))
                .where(
                    runs_table.c.flow_id == run.info.flow_id,
                    runs_table.c.logical_date < run.info.logical_date,
                    task_instances.c.task_id == node.task_id,
                )
                .order_by(runs_table.c.logical_date.desc())
                .limit(1)
            ).first()
        allowed = previous is None or previous.state in (S.SUCCESS.value, S.SKIPPED.value)
        if allowed:
            self._past_checked.pop(key, None)
        else:
            self._past_checked[key] = time.monotonic()
        return allowed

    def replay_journals(self) -> None:
        """Record what the workers of a previous scheduler journaled and it did not record: tries
        that ended are recorded; tries still running are marked so (and adopted when their run
        is taken over). Then forget the journals of workers that are gone."""
        folder = journal_dir(self.settings)
        journal = read_journals(folder)
        if journal.entries:
            with transaction(self.engine) as conn:
                pks = run_repo.run_pks(conn, {e.run_key for e in journal.entries.values()})
                for entry in journal.entries.values():
                    pk = pks.get(entry.run_key)
                    if pk is None:
                        continue
                    applied = task_repo.replay_try(
                        conn,
                        pk,
                        entry.task_id,
                        entry.try_number,
                        outcome=entry.outcome,
                        pid=entry.pid,
                        at=entry.started_at,
                        log_path=entry.log_path,
                        hostname=socket.gethostname(),  # journals are local: their workers ran here
                    )
                    if applied and entry.outcome is not None:
                        # Its outlets' updates, with its end, as the step would have written
                        # them: a try that ended while its scheduler was killed -9 updated no
                        # asset, and the flows scheduled on it never ran.
                        ended = TryEnded(entry.run_key, entry.task_id, entry.try_number, entry.outcome)
                        AssetEventWriter().write(conn, [ended])
        for path in removable_segments(folder, older_than=0, now=time.time()):
            path.unlink(missing_ok=True)

    def _record_drained_tries(self) -> None:
        """The tries that ended while the executor drained at a stop were journaled by their
        workers, not recorded: record them now, so that the database does not show them running
        until the next start (nor another scheduler run them again when this host's journal is
        gone with its disk). Their runs stay running: the next scheduler goes on with them."""
        if not journal_dir(self.settings).exists():
            return
        try:
            self.replay_journals()
        except Exception as exc:
            if not self._unrecordable(exc):
                raise
            log.error(
                "stopping without recording the tries that ended while stopping: the database is unreachable "
                "(%s); their journals hold how they ended, and the next start records them",
                _first_line(exc),
            )

    def drop_old_journals(self) -> None:
        for path in removable_segments(journal_dir(self.settings), older_than=300, now=time.time()):
            path.unlink(missing_ok=True)


_DISK_FULL = ("disk is full", "no space left on device", "could not extend file", "(1021,", "errno 28")


def _out_how(error: BaseException) -> str:
    """How the database is out, in the outage's log lines: a full disk answers every read, and
    "unreachable" sent the reader to the network instead of ``df``."""
    text = str(error).lower()
    return "cannot write (its disk is full)" if any(mark in text for mark in _DISK_FULL) else "is unreachable"


def _schema_gone(exc: BaseException) -> SchemaGoneError | None:
    """The error that stops a scheduler whose tables went away under it, saying what to do."""
    if isinstance(exc, SchemaGoneError):
        return exc
    table = missing_table(exc)
    if table is None:
        return None
    return SchemaGoneError(
        f"the database has no table {table!r} any more: Ductwork's tables were dropped or reset while this "
        "scheduler ran. Make them again (`ductwork db upgrade`, or restore the backup) and start the scheduler again"
    )


class _EndedRuns:
    """A sink that notes which runs ended, for their flow-level callbacks, and which tries
    ended without running their own failure callbacks (``TryOutcome.alerts_due``)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, RunState]] = []
        self.lost: list[TryEnded] = []

    def record(self, events: Sequence[EngineEvent]) -> None:
        self.runs.extend((e.run_key, e.state) for e in events if isinstance(e, RunEnded))
        self.lost.extend(
            e
            for e in events
            if isinstance(e, TryEnded) and e.outcome.alerts_due and e.outcome.state in (S.FAILED, S.UP_FOR_RETRY)
        )


BUSY_FLOW = 1 << 30
"""The tasks counted elsewhere of a flow whose row another scheduler holds (``_limits_held``):
none of its tasks starts in this dispatch."""
VARIABLE_CLOCK_SLACK = dt.timedelta(seconds=2)


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


@dataclass
class _VariablesRead:
    """The variables a flow file's import looked up, and when that parse began."""

    names: frozenset[str]
    begun_at: dt.datetime
    existing: frozenset[str] = frozenset()
    """Those that existed at the last look (one deleted since is a change too)."""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def flow_meta_of(record: RunRecord) -> FlowMeta:
    return FlowMeta(record.flow_id)


def _run_request(record: RunRecord) -> dict[str, Any]:
    """A run, as a callback child process is told of it."""
    return {
        "run_id": record.run_id,
        "run_type": record.run_type,
        "logical_date": record.logical_date.isoformat(),
        "data_interval_start": record.data_interval_start.isoformat(),
        "data_interval_end": record.data_interval_end.isoformat(),
        "params": dict(record.params),
        "conf": dict(record.conf),
    }


def _timeout_of(run: Any, task_id: str) -> float | None:
    timeout = run.tracker.nodes[task_id].execution_timeout
    return float(timeout) if timeout else None


def _past(started: dt.datetime | None, timeout: float, now: dt.datetime) -> bool:
    return started is not None and now >= started + dt.timedelta(seconds=timeout)


def _stop_worker(pid: int | None) -> None:
    """Stop an orphaned worker running a try past its timeout: SIGTERM (its operator stops what
    it started), then SIGKILL a few seconds later if it is still there."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return

    def finish() -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(_KILL_GRACE, finish)
    timer.daemon = True
    timer.start()


_KILL_GRACE = 5.0
"""Seconds an orphaned worker stopped at its try's timeout has before it is killed."""

_MAX_PASSES = 100
"""Looks further along a flow's schedule in one poll when every due date had a run already."""


def duplicate_flow_ids(parsed: Mapping[str, ParsedFile]) -> dict[str, tuple[str, ...]]:
    """Flow ids defined in more than one file, with those files (sorted)."""
    files: dict[str, set[str]] = {}
    for file, result in parsed.items():
        for graph in result.graphs:
            files.setdefault(graph.flow_id, set()).add(file)
    return {flow_id: tuple(sorted(where)) for flow_id, where in files.items() if len(where) > 1}


def _by_file(clashes: Mapping[str, tuple[str, ...]]) -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    out: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for flow_id, files in clashes.items():
        for file in files:
            out.setdefault(file, set()).add((flow_id, files))
    return out


def journal_dir(settings: Settings) -> Path:
    return settings.home / "journal"


def default_executor(settings: Settings, environ: Mapping[str, str]) -> Executor:
    """The executor the settings name: the local worker pool (recording tries in the settings'
    database through its journal), or Celery workers on any host."""
    if settings.executor == "celery":
        from ductwork.engine.remote.executor import CeleryExecutor

        return CeleryExecutor(settings, environ=environ)
    if settings.executor == "kubernetes":
        from ductwork.engine.remote.kube_executor import KubernetesExecutor

        return KubernetesExecutor(settings, environ=environ)
    from ductwork.engine.executors.pool import PoolExecutor
    from ductwork.engine.journal_runtime import JournalRuntime

    return PoolExecutor(
        JournalRuntime(settings.db_url, journal_dir(settings), settings),
        parallelism=settings.parallelism,
        param_sources=ParamSources.load(environ=environ),
        environ=environ,
        backlog=settings.parallelism if settings.worker_mode == "warm" else 0,
        prefetch=settings.worker_prefetch,
        mode="fresh" if settings.worker_mode == "fresh" else "warm",
    )


def _running_starts(conn: sa.Connection, run_pk: int) -> dict[str, dt.datetime]:
    """The recorded starts of a run's running tasks: a try adopted after a restart and then
    found lost keeps its real start (it was given the adoption's time, a 9 s try recorded as
    lasting a millisecond)."""
    ti = task_instances
    rows = conn.execute(
        sa.select(ti.c.task_id, ti.c.start_date).where(ti.c.run_pk == run_pk, ti.c.state == S.RUNNING.value)
    )
    return {r.task_id: r.start_date for r in rows if r.start_date is not None}
