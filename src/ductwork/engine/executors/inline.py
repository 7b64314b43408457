"""The in-process executor: tries run in threads of the calling process.

It is what ``ductwork run``, ``ductwork build`` and ``ductwork.testing`` use: no database, no
worker processes, results in memory. Parallelism is a thread pool (``--workers N``); a try that
is the only one to run (a chain, or one worker) runs in the calling thread when it has no
execution timeout. A try that
exceeds its execution timeout (measured on the monotonic clock) is reported failed at once and
its operator's ``on_kill`` stops any process it started; Python code in the thread cannot be
interrupted, which is why the worker pool (separate processes) is the executor for production.

With a ``journal`` (an in-process run recorded in the database), a try's start is journaled
before its code runs and its end before the supervisor hears of it, as workers do (ADR 0006):
the database is then written by time, many tries per transaction, and a killed run's journal
says what the database had not been told yet.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ductwork.core.clock import Clock
from ductwork.core.executable import Executable
from ductwork.core.graph import NodeSpec
from ductwork.core.results import ResultBackend
from ductwork.core.states import TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine import logcapture
from ductwork.engine.alarms import ALARMS
from ductwork.engine.execution import TryOutcome, execute_try
from ductwork.engine.executor import ExecutorEvent, TryFinished, TryKey, TryRequest, TryStarted
from ductwork.engine.journal import JournalWriter
from ductwork.engine.packed_logs import PackedLogs
from ductwork.engine.rules import after_failure

log = logging.getLogger(__name__)

Resolver = Callable[[NodeSpec], Executable]


class InProcessExecutor:
    def __init__(
        self,
        resolver: Resolver,
        results: ResultBackend,
        clock: Clock,
        *,
        parallelism: int = 1,
        services: TaskServices | None = None,
        journal: JournalWriter | None = None,
        threads_only: bool = False,
    ) -> None:
        """``threads_only``: never run a lone try in the calling thread, so the run loop stays
        free to stop it (a run with a ``run_timeout``)."""
        self.resolver = resolver
        self.threads_only = threads_only
        self.services = services
        self.journal = journal
        self.results = results
        self.clock = clock
        self.parallelism = max(1, parallelism)
        self._events: queue.SimpleQueue[ExecutorEvent] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[TryKey, tuple[TryRequest, float | None, list[Executable]]] = {}
        self._abandoned: set[TryKey] = set()
        self._to_start: list[tuple[TryRequest, float | None, list[Executable]]] = []
        self._lock = threading.Lock()
        self.sinks: dict[TryKey, logcapture.TrySink] = {}
        self.packs = PackedLogs()  # the logs of short tries, one file per run (ADR 0018)
        self.report_early: Callable[[list[ExecutorEvent]], None] | None = None
        """Where the events of a long lone try go while the run loop waits for it (see
        ``_run_alone``); the loop applies and records them (``Supervisor.record_now``)."""
        self._early = threading.Lock()

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="ductwork-try")

    def free_slots(self) -> int:
        with self._lock:
            return self.parallelism - len(self._running)

    def submit(self, request: TryRequest) -> None:
        """Take a try; it starts when the run loop next waits (``wait``), so that a try that is
        the only one to run can be run in this thread."""
        timeout = request.node.execution_timeout
        deadline = time.monotonic() + timeout if timeout else None
        holder: list[Executable] = []
        with self._lock:
            self._running[request.key] = (request, deadline, holder)
        self._to_start.append((request, deadline, holder))

    def _start(self) -> None:
        """Start the tries submitted since the last wait. A lone try (nothing else running or
        starting, no timeout to enforce) runs here, in the calling thread: handing it to a
        thread and waiting for it costs two thread wake-ups, more than a short try itself,
        and the run loop would only wait for it. Several tries go to the thread pool."""
        submitted, self._to_start = self._to_start, []
        with self._lock:  # a try cancelled before it started is not started
            starting = [entry for entry in submitted if entry[0].key in self._running]
            self._abandoned.difference_update(e[0].key for e in submitted if e[0].key not in self._running)
        if not starting:
            return
        if len(starting) == 1 and starting[0][1] is None and not self.threads_only:
            request, _deadline, holder = starting[0]
            with self._lock:
                alone = len(self._running) == 1
            if alone:
                self._run_alone(request, holder)
                return
        self.start()
        assert self._pool is not None
        for request, _deadline, holder in starting:
            self._pool.submit(contextvars.copy_context().run, self._execute, request, holder)

    def _run_alone(self, request: TryRequest, holder: list[Executable]) -> None:
        """Run a lone try in this thread (the run loop's, blocked meanwhile). If it is still
        running after the pack's ``spill_after``, its start goes to ``report_early`` from the
        alarms' thread, so the record shows it running (and its log can be followed) without a
        commit per try for the short ones (ADR 0008)."""
        if self.report_early is None:
            contextvars.copy_context().run(self._execute, request, holder)
            return
        running = [True]

        def report() -> None:
            with self._early:
                if not running[0] or self.report_early is None:
                    return
                events: list[ExecutorEvent] = []
                while True:
                    try:
                        events.append(self._events.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self.report_early(events)
                except Exception as exc:  # the database is down: the run loop records them later
                    log.warning("could not record the start of %s yet: %s", request.key.task_id, exc)

        alarm = ALARMS.set(self.packs.spill_after, report)
        try:
            contextvars.copy_context().run(self._execute, request, holder)
        finally:
            ALARMS.cancel(alarm)
            with self._early:  # a report under way ends before the run loop goes on
                running[0] = False

    def _execute(self, request: TryRequest, holder: list[Executable]) -> None:
        sink = logcapture.TrySink(request.log_path, pack=self.packs)
        self.sinks[request.key] = sink
        try:
            executable = self.resolver(request.node)
            started_at = self.clock.now()
            key = request.key
            if self.journal is not None:
                self.journal.started_try(key.run_key, key.task_id, key.try_number, started_at, request.log_path)
            self._events.put(TryStarted(key, started_at, threading.current_thread().name))
            outcome = execute_try(
                executable,
                node=request.node,
                run=request.run,
                try_number=request.key.try_number,
                results=self.results,
                downstream=request.downstream,
                clock=self.clock,
                sink=sink,
                on_started=holder.append,
                max_tries=request.max_tries,
                resumed=request.resumed,
                services=self.services,
            )
        except Exception as exc:  # resolving the task failed: the try fails like any other error
            now = self.clock.now()
            state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
            sink.write(f"could not load task {request.key.task_id!r}: {exc}\n")
            outcome = TryOutcome(state, now, now, error=f"could not load task: {exc}", next_try_at=next_at)
        finally:
            sink.close()
        with self._lock:
            self._running.pop(request.key, None)
            if request.key in self._abandoned:  # already reported lost (timed out, cancelled)
                self._abandoned.discard(request.key)
                return
        if self.journal is not None:
            key = request.key
            self.journal.ended_try(key.run_key, key.task_id, key.try_number, outcome)
        self._events.put(TryFinished(request.key, outcome))

    def submitted(self) -> None:
        """Each try was handed over in ``submit``."""

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        self._start()
        deadline_timeout = self._next_deadline_in()
        if deadline_timeout is not None:
            timeout = deadline_timeout if timeout is None else min(timeout, deadline_timeout)
        events: list[ExecutorEvent] = []
        try:
            events.append(
                self._events.get(timeout=timeout) if timeout is None or timeout > 0 else self._events.get_nowait()
            )
        except queue.Empty:
            pass
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        return events + self._expire()

    def _next_deadline_in(self) -> float | None:
        with self._lock:
            deadlines = [d for _, d, _ in self._running.values() if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _expire(self) -> list[ExecutorEvent]:
        now = time.monotonic()
        expired: list[tuple[TryRequest, list[Executable]]] = []
        with self._lock:
            for key, (request, deadline, holder) in list(self._running.items()):
                if deadline is not None and now >= deadline:
                    expired.append((request, holder))
                    del self._running[key]
                    self._abandoned.add(key)
        events: list[ExecutorEvent] = []
        for request, holder in expired:
            for executable in holder:
                executable.on_kill()
            events.append(self._lost(request, f"timed out after {request.node.execution_timeout:g}s"))
        return events

    def _lost(self, request: TryRequest, reason: str) -> TryFinished:
        now = self.clock.now()
        state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
        sink = self.sinks.get(request.key)
        if sink is not None:
            sink.write(f"try stopped: {reason}\n")
        return TryFinished(request.key, TryOutcome(state, now, now, error=reason, next_try_at=next_at))

    def heartbeat(self) -> list[ExecutorEvent]:
        return self._expire()

    def cancel(self, key: TryKey, reason: str) -> None:
        with self._lock:
            entry = self._running.pop(key, None)
            if entry is not None:
                self._abandoned.add(key)
        if entry is not None:
            _request, _, holder = entry
            for executable in holder:
                executable.on_kill()
            now = self.clock.now()
            self._events.put(TryFinished(key, TryOutcome(TaskState.FAILED, now, now, error=reason)))

    def shutdown(self, wait: bool = True) -> None:
        self._to_start.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None
        self.packs.close()  # a try that ends later (not waited for) opens its pack again
