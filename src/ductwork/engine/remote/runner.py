"""The worker's side of a remote try: claim it, run it, record it, tell the scheduler.

``RemoteHost`` is one worker process's state (a Celery pool process, or a Kubernetes pod): its
database engine, its cache of code versions, the flows it imported (once per code version), its
result backend. ``RemoteHost.run(payload)`` runs one try:

1. **Claim**: queued -> running in the database, guarded by the try number. Anything else (a
   redelivered message for a try that started or ended, a try cleared meanwhile) is dropped
   here, before any user code, so a try runs at most once whatever the broker does.
2. **Run**: the code comes from the bundle the request names; output goes to a local file that
   descriptors 1 and 2 point at, shipped to the remote log store while the try runs.
3. **Record**: running -> the outcome, guarded the same way, with the whole outcome on the try
   row; then the outcome is sent to the scheduler's reply queue (a hint: the database is the
   truth, and a scheduler that did not hear reads it there).

``RemoteHost.run_batch(payloads)`` runs a message of several tries in turn, writing each end in
the transaction that claims the next try (one commit per try); a try's claim still happens
just before it runs, so a pool process that dies mid-batch leaves the later tries queued, and
the worker's main process sends them again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from ductwork.core.clock import SystemClock
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.executable import Executable
from ductwork.core.graph import CLASS_TASK, NodeSpec
from ductwork.core.results import ResultBackend
from ductwork.core.states import TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine import logcapture
from ductwork.engine.execution import TryOutcome, execute_try, lost_try_alerts
from ductwork.engine.executor import try_name
from ductwork.engine.executors._worker import LogFile, Lru, failed_outcome
from ductwork.engine.executors.runtime import FlowFileRuntime, RunSetup
from ductwork.engine.journal import encode_outcome
from ductwork.engine.remote import wire
from ductwork.engine.remote.bundles import BundleCache
from ductwork.engine.remote.logs import LogShipper, is_remote
from ductwork.errors import TaskRemovedError, TryStopped
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, single_statement, transaction, unreachable
from ductwork.store.errors import DatabaseUnreachableError
from ductwork.store.repo import remote as remote_repo

log = logging.getLogger("ductwork.worker")
Notify = Callable[[str, dict[str, Any]], None]

STARTED = "started"
DROPPED = "dropped"
HANDED_BACK = "handed back"
REPLY_HOLD = 0.02
RENDERED_AFTER = 1.0
"""A try still running this long after its start has its rendered template fields recorded
then (the web UI shows what a long try runs while it runs); a shorter one's are recorded with
its end, in the same statement as before: no write more per try."""
"""Seconds a batch's ends may wait to be told to the scheduler in one message."""
HandBack = Callable[[list[dict[str, Any]]], None]
"""Sends try requests back to their queues (a batch that ran long)."""


class TryObserver(Protocol):
    """Hears of the tries a worker starts, drops and records (its metrics). Called in the
    process that does it; must not raise, and must not block: the try waits for it."""

    def started(self, flow: str) -> None: ...

    def dropped(self, flow: str) -> None:
        """A message for a try that had started, ended or been cleared: nothing ran."""

    def finished(self, flow: str, state: str, seconds: float) -> None: ...


class CodeRuntime(FlowFileRuntime):
    """Resolves nodes from the code version a request names, results in the database."""

    def __init__(self, host: RemoteHost) -> None:
        super().__init__()
        self.host = host
        self._current_root: Path | None = None
        self._services: TaskServices | None = None

    def results(self) -> ResultBackend:
        if self._results is None:
            from ductwork.store.offload import ObjectStore
            from ductwork.store.results import SqlResults

            settings = self.host.settings
            offload = ObjectStore(settings.results_offload_url) if settings.results_offload_url else None
            self._results = SqlResults(
                self.host.engine,
                allow_pickle=settings.results_pickle,
                offload=offload,
                offload_threshold=settings.results_offload_threshold,
            )
        return self._results

    def services(self) -> TaskServices:
        if self._services is None:
            from ductwork.engine.services_setup import build_task_services

            self._services = build_task_services(self.host.settings, engine=self.host.engine, with_store=True)
        return self._services

    def use_root(self, root: Path | None) -> None:
        """Switch to another code version: forget the modules the previous one imported, so a
        helper module of the flows folder is imported again from the new version."""
        if root == self._current_root:
            return
        old = self._current_root
        self._current_root = root
        if old is None:
            return
        prefix = str(old.resolve()) + os.sep
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file.startswith(prefix):
                del sys.modules[name]
        sys.path[:] = [p for p in sys.path if not (p + os.sep).startswith(prefix)]
        for file in [f for f in self._files if f.startswith(prefix)]:
            self._forget(file)


class RemoteHost:
    """One worker process: runs tries from requests, records them, sends their ends."""

    def __init__(
        self,
        settings: Settings,
        worker_name: str,
        *,
        notify: Notify | None = None,
        observer: TryObserver | None = None,
    ) -> None:
        self.settings = settings
        self.worker_name = worker_name
        self.notify = notify
        self._replies: dict[str, list[dict[str, Any]]] = {}
        self._replies_since = time.monotonic()
        self._holding = False
        """In a batch, ends are told to the scheduler together (at most ``REPLY_HOLD`` late)."""
        self.observer = observer
        self.pid = os.getpid()
        self._engine: Engine | None = None
        self._statements: Engine | None = None
        self.runtime = CodeRuntime(self)
        self.folders = Lru(256)
        self.log_dir = Path(tempfile.gettempdir()) / f"ductwork-worker-logs-{os.getpid()}"
        self._routing: contextlib.ExitStack | None = None
        self._held_connection: Connection | None = None

    def _forked(self) -> None:
        """A forked process (a pool process) never uses its parent's connections."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self._engine = self._statements = self._held_connection = None

    @property
    def engine(self) -> Engine:
        self._forked()
        if self._engine is None:
            # No pre-ping: every write goes through _write, which retries on a dead connection.
            self._engine = create_engine(self.settings.db_url, pre_ping=False)
        return self._engine

    @property
    def statements(self) -> Engine:
        """The engine of this process's one-statement writes (autocommit: a try's end and the
        next one's claim, one round trip, ``store.engine.single_statement``)."""
        self._forked()
        if self._statements is None:
            self._statements = create_engine(self.settings.db_url, pre_ping=False, autocommit=True)
        return self._statements

    def _held(self) -> Connection:
        """The autocommit connection of this process's one-statement writes, kept from one try
        to the next: taking one from SQLAlchemy's pool and giving it back at each try was 8% of
        a pool process's CPU on 50 ms tries (py-spy, ``benchmarks/remote.py``). A write that
        fails drops it, and its retry connects again."""
        engine = self.statements  # (a forked process's first call: new engines, no connection)
        if self._held_connection is None:
            try:
                self._held_connection = engine.connect()
            except OperationalError as exc:
                raise unreachable(engine.url, exc) from None
        return self._held_connection

    def _drop_held(self) -> None:
        held, self._held_connection = self._held_connection, None
        if held is not None:
            with contextlib.suppress(Exception):
                held.invalidate()
                held.close()

    def close(self) -> None:
        self._drop_held()
        for engine in (self._engine, self._statements):
            if engine is not None:
                engine.dispose()
        if self._routing is not None:
            self._routing.close()
            self._routing = None

    def _keep_routing(self) -> None:
        """Tries' output and log records go to their own logs (``logcapture``), installed once
        for the process's life, as in a local pool worker. Installed per try, it set the levels
        of a dozen loggers twice a try, and each ``setLevel`` walks every logger of the process
        (Celery's, Kombu's, the tasks' libraries'): 13% of a pool process's CPU on 50 ms tries
        (py-spy, ``benchmarks/remote.py``)."""
        if self._routing is None:
            self._routing = contextlib.ExitStack()
            self._routing.enter_context(logcapture.routing())
            self._routing.enter_context(logcapture.streams_are_try_logs())

    # --- tries ---------------------------------------------------------------------------------
    def run(self, payload: dict[str, Any]) -> str:
        return self.run_batch([payload])[0]

    def run_batch(self, payloads: list[dict[str, Any]], *, hand_back: HandBack | None = None) -> list[str]:
        """Run a message's tries one after another. Each try's end is recorded in the same
        transaction as the next one's start (one commit per try, not two). With ``hand_back``,
        the tries not started after ``wire.BATCH_SECONDS`` go back to their queue."""
        results: list[str] = []
        began = time.monotonic()
        self._holding = len(payloads) > 1
        try:
            self._run_tries(payloads, hand_back, results, began)
        finally:
            self._holding = False
            self._send_replies()
        return results

    def _run_tries(
        self, payloads: list[dict[str, Any]], hand_back: HandBack | None, results: list[str], began: float
    ) -> None:
        ended: tuple[wire.RemoteTry, TryOutcome] | None = None
        for index, payload in enumerate(payloads):
            if hand_back is not None and index > 0 and time.monotonic() - began > wire.BATCH_SECONDS:
                if ended is not None:
                    self.record_end(*ended)
                    ended = None
                rest = payloads[index:]
                hand_back(rest)
                log.info("handed back %d tries of a batch that ran past %gs", len(rest), wire.BATCH_SECONDS)
                results += [HANDED_BACK] * len(rest)
                break
            job = wire.decode_request(payload)
            taken_at = dt.datetime.now(dt.UTC)
            found = self._start(job, ended, taken_at)
            ended = None
            if found is not None:
                if found.state is None:  # loud: a worker on the wrong database eats every message
                    log.warning(
                        "dropped %s: this worker's database (%s) has no such run or task; the run was "
                        "deleted, or this worker uses another database than the scheduler that sent it "
                        "(check DUCTWORK_DATABASE_URL); the scheduler sends it again later",
                        wire.try_label(payload),
                        self.engine.url.render_as_string(hide_password=True),
                    )
                else:
                    log.info(
                        "dropped %s: the task is %s at try %d (a redelivered or superseded message)",
                        wire.try_label(payload),
                        found.state.value,
                        found.try_number,
                    )
                if self.observer is not None:
                    self.observer.dropped(_flow_of(job.request.key.run_key))
                results.append(DROPPED)
                continue
            if self.observer is not None:
                self.observer.started(_flow_of(job.request.key.run_key))
            ended = (job, self._execute(job).begun_at(taken_at))
            _say_if_failed(payload, ended[1])
            results.append(STARTED)
        if ended is not None:
            self.record_end(*ended)

    def _start(
        self, job: wire.RemoteTry, ended: tuple[wire.RemoteTry, TryOutcome] | None, at: dt.datetime
    ) -> remote_repo.Found | None:
        """queued -> running for ``job`` at ``at`` (compare-and-set), with the previous try's end
        if any."""
        request = job.request
        key = request.key
        start = remote_repo.TryStart(
            job.run_pk,
            key.task_id,
            key.try_number,
            self.worker_name,
            os.getpid(),
            at,
            request.log_path,
        )
        end = self._end_step(*ended) if ended is not None else None
        end_found, found = self._write(end, start, f"the start of {key.run_key} {key.task_id} #{key.try_number}")
        if ended is not None and end is not None:
            self._ended(ended[0], ended[1], end.encoded, end_found)
        return found

    def _execute(self, job: wire.RemoteTry) -> TryOutcome:
        request = job.request
        node, try_number = request.node, request.key.try_number
        sources = ParamSources.from_dict(request.param_sources) if request.param_sources else ParamSources()
        local_log = self._local_log_path(request.log_path, request.key.run_key, node.task_id, try_number)
        shipper = None
        if is_remote(request.log_path):  # the staging file of the previous try: emptied
            with contextlib.suppress(OSError):
                os.truncate(local_log, 0)
        try:
            sink: logcapture.TrySink = self._open_log(local_log, request.key)
        except OSError as exc:
            error = f"could not open the try's log file {local_log}: {exc}"
            return failed_outcome(node, try_number, SystemClock(), error, max_tries=request.max_tries)
        saved = (os.dup(1), os.dup(2))
        try:
            if is_remote(request.log_path):
                assert request.log_path is not None
                shipper = LogShipper(local_log, request.log_path, interval=1.0)
                shipper.start()
            _flush_std()
            os.dup2(sink.fd, 1)  # type: ignore[attr-defined]
            os.dup2(sink.fd, 2)  # type: ignore[attr-defined]
            self._keep_routing()
            try:
                executable = self._resolve(job, node, sources)
            except Exception as exc:
                tb = traceback.format_exc()
                sink.write(f"could not load task {node.task_id!r} on worker {self.worker_name}: {exc}\n{tb}")
                gone = isinstance(exc, TaskRemovedError)  # another try cannot help: no retry
                return failed_outcome(
                    node,
                    try_number,
                    SystemClock(),
                    f"could not load task: {exc}",
                    None if gone else tb,
                    max_tries=try_number if gone else request.max_tries,
                )
            with use_sources(sources), _stopped_by_sigterm() as stop, self._rendered_later(job) as started:
                outcome = execute_try(
                    executable,
                    node=node,
                    run=request.run,
                    try_number=try_number,
                    results=self.runtime.results(),
                    downstream=request.downstream,
                    clock=SystemClock(),
                    sink=sink,
                    max_tries=request.max_tries,
                    resumed=request.resumed,
                    services=self.runtime.services(),
                    on_started=started,
                )
            if stop.seen:
                outcome = self._after_stop(job, executable, outcome, sink)
            return outcome
        finally:
            _flush_std()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.close()
            if shipper is not None:
                shipper.close()

    @contextlib.contextmanager
    def _rendered_later(self, job: wire.RemoteTry) -> Iterator[Callable[[Any, dict[str, Any]], None]]:
        """The ``on_started`` of a try: its rendered fields are recorded ``RENDERED_AFTER`` its
        start if it still runs then (they were recorded only at its end: a two-hour query's
        SQL could not be seen while it ran, as Airflow shows it)."""
        timers: list[threading.Timer] = []

        def started(_prepared: Any, rendered: dict[str, Any]) -> None:
            if rendered:
                timer = threading.Timer(RENDERED_AFTER, self._record_rendered, (job, rendered))
                timer.daemon = True
                timers.append(timer)
                timer.start()

        try:
            yield started
        finally:
            for timer in timers:  # not joined: a write under way never holds up the try's end
                timer.cancel()  # (nor overwrites it: only an empty ``rendered`` is written)

    def _record_rendered(self, job: wire.RemoteTry, rendered: dict[str, Any]) -> None:
        key = job.request.key
        try:
            with single_statement(self.statements) as conn:
                remote_repo.record_rendered(conn, job.run_pk, key.task_id, key.try_number, rendered)
        except Exception as exc:  # its end records them anyway
            log.warning("could not record the rendered fields of %s %s: %s", key.run_key, key.task_id, exc)

    def _resolve(self, job: wire.RemoteTry, node: NodeSpec, sources: ParamSources) -> Executable:
        code = job.code
        root = None
        if code is not None:
            root = BundleCache(self.settings.home / "bundles", self.engine).path(code)
        self.runtime.use_root(root)
        flow_file = None
        if root is not None and code is not None and code.path:
            flow_file = str(root / code.path)
        if node.kind == CLASS_TASK and root is not None:
            node = _remap_class_task(node, job.flows_root, root)
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
        return self.runtime.resolve(node, RunSetup(job.request.run, flow_file, sources))

    def _open_log(self, path: str, key: Any) -> logcapture.TrySink:
        """The try's log file at ``path`` (the scheduler's log folder, the same path on this
        host, when there is no ``remote_log_url``), or in this worker's own folder where that
        path cannot be written here (another user's home, a read-only file system): every try
        on such a worker failed at its start, retries too."""
        try:
            return LogFile(path, self.folders)
        except OSError as exc:
            fallback = self._local_log_path(None, key.run_key, key.task_id, key.try_number)
            if fallback == path:
                raise
            sink = LogFile(fallback, self.folders)
            why = exc.strerror or str(exc)
            log.warning(
                "cannot write %s on this worker (%s): the log of %s is %s here", path, why, try_name(key), fallback
            )
            sink.write(
                f"note: {path} cannot be written on worker {self.worker_name} ({why}): this log is {fallback} there\n"
            )
            return sink

    def _local_log_path(self, log_path: str | None, run_key: str, task_id: str, try_number: int) -> str:
        if log_path and not is_remote(log_path):
            return log_path
        if is_remote(log_path):  # only a staging file for the shipper: one per process, reused
            return str(self.log_dir / "staging.log")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{run_key}-{task_id}.{try_number}")
        return str(self.log_dir / f"{safe}.log")

    # --- recording ------------------------------------------------------------------------------
    def _after_stop(
        self, job: wire.RemoteTry, executable: Any, outcome: TryOutcome, sink: logcapture.TrySink
    ) -> TryOutcome:
        """A try stopped by SIGTERM: taken away from outside (the scheduler revoked it after a
        cancel, a clear or a mark: the database no longer has it running), it ends there, with
        no callback and no retry said; else the worker is being stopped, and the try fails as
        any failure does, its callbacks called and a retry if its policy allows one."""
        request = job.request
        key = (job.run_pk, request.key.task_id, request.key.try_number)
        try:
            with transaction(self.engine) as conn:
                view = remote_repo.view_tries(conn, [key]).get(key)
        except Exception:
            view = None  # not known: as a worker stopping (the scheduler sorts out a late end)
        else:
            if view is None or view.state != TaskState.RUNNING or view.try_number != request.key.try_number:
                now = view.state.value if view is not None and view.state else "gone"
                sink.write(
                    f"try stopped: it was taken away while it ran (the task is now {now}: its run cancelled, "
                    "or the task cleared or marked); no callback runs for it\n"
                )
                return outcome
        reason = "stopped by SIGTERM while it ran (its worker is stopping)"
        stopped = failed_outcome(
            request.node,
            request.key.try_number,
            SystemClock(),
            reason,
            max_tries=request.max_tries,
            started_at=outcome.started_at,
        )
        sink.write(f"try {reason}\n")
        lost_try_alerts(
            executable,
            request.run,
            request.key.task_id,
            request.key.try_number,
            stopped.state,
            reason,
            self.runtime.services(),
        )
        return stopped

    def record_end(self, job: wire.RemoteTry, outcome: TryOutcome, *, expected: tuple[TaskState, ...] = ()) -> bool:
        """Write the try's end (if the database still has it running) and tell the scheduler."""
        key = job.request.key
        end = self._end_step(job, outcome, expected)
        found = self._write(end, None, f"the end of {key.task_id} #{key.try_number}")[0]
        return self._ended(job, outcome, end.encoded, found)

    def _end_step(
        self, job: wire.RemoteTry, outcome: TryOutcome, expected: tuple[TaskState, ...] = ()
    ) -> remote_repo.TryEnd:
        key = job.request.key
        return remote_repo.TryEnd(
            job.run_pk,
            key.task_id,
            key.try_number,
            outcome,
            encode_outcome(outcome),
            tuple(state.value for state in expected or (TaskState.RUNNING,)),
        )

    def _ended(
        self, job: wire.RemoteTry, outcome: TryOutcome, encoded: dict[str, Any], found: remote_repo.Found | None
    ) -> bool:
        """After the end's transaction: say so if it did not apply, else count it and tell the
        scheduler (a hint: it reads the end from the database when the message is lost)."""
        key = job.request.key
        if found is not None:
            log.warning(
                "the end of %s #%d was not recorded: the task is now %s at try %d (declared lost, or cleared)",
                key.task_id,
                key.try_number,
                found.state.value if found.state else "gone",
                found.try_number,
            )
            return False
        if self.observer is not None:
            self.observer.finished(_flow_of(key.run_key), outcome.state.value, max(0.0, outcome.duration))
        if self.notify is not None and job.reply_to:
            body = {"key": [key.run_key, key.task_id, key.try_number], "outcome": encoded}
            if not self._replies:
                self._replies_since = time.monotonic()
            self._replies.setdefault(job.reply_to, []).append(body)
            if not self._holding or time.monotonic() - self._replies_since > REPLY_HOLD:
                self._send_replies()
        return True

    def _send_replies(self) -> None:
        """Tell each scheduler of the ends recorded for it, all in one message."""
        replies, self._replies = self._replies, {}
        if self.notify is None:
            return
        for queue, bodies in replies.items():
            try:
                self.notify(queue, bodies[0] if len(bodies) == 1 else {"ends": bodies})
            except Exception as exc:  # the scheduler reads the ends from the database instead
                log.warning("could not tell the scheduler that %d tries ended: %s", len(bodies), exc)

    def _write(
        self, end: remote_repo.TryEnd | None, start: remote_repo.TryStart | None, what: str
    ) -> tuple[remote_repo.Found | None, remote_repo.Found | None]:
        """Record a try's end and the next one's start, waiting out a database outage (a fault
        of the platform, not of the try: the try's outcome is kept until it is recorded). When
        they are one statement, it runs without a transaction around it: one round trip."""
        single = remote_repo.one_statement(self.engine.dialect.name, end, start)
        delay = 0.2
        waited = 0.0
        while True:
            try:
                if single and self.engine.dialect.name != "sqlite":
                    return remote_repo.record_steps(self._held(), end, start)
                with single_statement(self.statements) if single else transaction(self.engine) as conn:
                    return remote_repo.record_steps(conn, end, start)
            except (DatabaseUnreachableError, OperationalError, InterfaceError) as exc:
                self._drop_held()
                if waited == 0.0 or waited > 30:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning("database unreachable while recording %s; retrying: %s", what, first)
                    waited = 0.0 if waited > 30 else waited
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    def record_lost(self, payload: dict[str, Any], reason: str) -> str:
        """(In the worker's main process) a pool process died while it had this request: the try
        is failed or up for retry by its policy if it had started; ``"requeue"`` if it had not."""
        job = wire.decode_request(payload)
        request = job.request
        number = request.key.try_number
        key = (job.run_pk, request.key.task_id, number)
        with transaction(self.engine) as conn:
            before = remote_repo.view_tries(conn, [key]).get(key)
        started = before.start_date if before is not None else None  # the try keeps its real start
        outcome = failed_outcome(  # its process died: the try's own callbacks never ran (the scheduler runs them)
            request.node,
            number,
            SystemClock(),
            reason,
            max_tries=request.max_tries,
            started_at=started,
            alerts_due=True,
        )
        if self.record_end(job, outcome):
            return "recorded"
        with transaction(self.engine) as conn:
            found = remote_repo.view_tries(conn, [key])
        view = found.get(key)
        if view is not None and view.state == TaskState.QUEUED and view.try_number == request.key.try_number:
            return "requeue"
        return "ignored"


class _SigtermSeen:
    seen = False


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[_SigtermSeen]:
    """While a try runs in this (pool) process, SIGTERM (Celery's revoke, or the worker being
    stopped) raises ``TryStopped`` in it, which the try's failure handling leaves to the caller;
    it was a ``SystemExit`` the try took for its own failure (callbacks, "will be retried")."""
    mark = _SigtermSeen()
    if threading.current_thread() is not threading.main_thread():
        yield mark
        return

    def stop(_signum: int, _frame: Any) -> None:
        mark.seen = True
        raise TryStopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield mark
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remap_class_task(node: NodeSpec, flows_root: str | None, root: Path) -> NodeSpec:
    """A class task's file, recorded with the scheduler's path, at its place in the bundle."""
    fileloc = node.extra.get("fileloc")
    if not fileloc or not flows_root:
        return node
    try:
        rel = Path(fileloc).relative_to(flows_root)
    except ValueError:
        return node
    return replace(node, extra={**node.extra, "fileloc": str(root / rel)})


def _flow_of(run_key: str) -> str:
    return run_key.partition("/")[0]


def _flush_std() -> None:
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _say_if_failed(payload: dict[str, Any], outcome: TryOutcome) -> None:
    """A try that failed (or will be retried) says so in the worker's own log, with its error's
    first line: Celery's line for the message says "succeeded" (the message was handled), and
    the error was only in the try's log."""
    if outcome.state in (TaskState.FAILED, TaskState.UP_FOR_RETRY):
        error = (outcome.error or "").strip().splitlines()
        log.warning("%s ended %s: %s", wire.try_label(payload), outcome.state.value, error[0] if error else "no error")
