"""The in-process executor: tries run in the calling process, in its thread or in a thread pool.

It is what ``ductwork run``, ``ductwork build`` and ``ductwork.testing`` use: no database, no
worker processes, results in memory. Parallelism is a thread pool (``--workers N``), used for
tries that wait (I/O, sleeps, other processes) or run long; short busy tries, and a lone try,
run one after another in the calling thread (``_start`` says why), and a try there that runs
long lets the others go on in the threads (ADR 0020). A try with an execution timeout always
runs in a thread. A try that exceeds its execution timeout (measured on the monotonic clock)
is reported failed at once, its operator's ``on_kill`` stops any process it started, and its
thread is made to raise ``TryInterrupted`` (``_raise_in``), so its code stops at its next Python
instruction rather than running on beside its retry. A thread blocked in one long call (a sleep,
a read) raises only when the call returns, which is why the worker pool (separate processes,
killed at the timeout) is the executor for production.

With a ``journal`` (an in-process run recorded in the database), a try's start is journaled
before its code runs and its end before the supervisor hears of it, as workers do (ADR 0006):
the database is then written by time, many tries per transaction, and a killed run's journal
says what the database had not been told yet.
"""

from __future__ import annotations

import contextvars
import ctypes
import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ductwork.core.clock import Clock
from ductwork.core.executable import Executable
from ductwork.core.graph import NodeSpec
from ductwork.core.results import ResultBackend
from ductwork.core.states import TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine import logcapture
from ductwork.engine.alarms import ALARMS, Alarm
from ductwork.engine.execution import TryOutcome, execute_try, lost_try_alerts
from ductwork.engine.executor import ExecutorEvent, TryFinished, TryKey, TryRequest, TryStarted
from ductwork.engine.forked import ForkedExecutable, can_fork, forkable
from ductwork.engine.journal import JournalWriter
from ductwork.engine.packed_logs import PackedLogs
from ductwork.engine.rules import after_failure
from ductwork.errors import TryInterrupted, TryTimedOut

log = logging.getLogger(__name__)

Resolver = Callable[[NodeSpec], Executable]

PREFETCH = 2
"""Tries handed to the threads ahead of time, per thread: a thread that ends a try takes the
next at once, instead of waiting for the run loop to hear of the end and hand it one."""

PARK_TIME = 0.05
"""How long (seconds) an event may wait for others to travel with it to the run loop."""

INLINE_LIMIT = 0.002
"""A try that runs longer in the loop's thread sends the tries after it to the threads
(seconds): the longest a try's start waits on another's."""

STRIKES = 2
"""Tries of a kind in a row that ran long or waited before its tries go to the threads."""

WAIT_LIMIT = 0.0005
"""A try that spent longer than this waiting (its wall time less its CPU time) is not a
busy one: tries of its kind overlap their waits in the threads."""


def _alert_timed_out(
    executable: Executable, request: TryRequest, outcome: TryOutcome, services: TaskServices | None
) -> None:
    """A try past its execution timeout has its failure (or retry) callbacks and e-mail called
    now, as a worker process killed at its timeout has them called by the scheduler, and a class
    task's event handlers hear of it (Luigi's ``Event.TIMEOUT``, then ``FAILURE``): its thread
    raises only when its code returns to Python, which a run that ends first never sees (a
    thread blocked in one call got no callback at all)."""
    try:
        lost_try_alerts(
            executable,
            request.run,
            request.key.task_id,
            request.key.try_number,
            outcome.state,
            outcome.error or "timed out",
            services or TaskServices(),
        )
    except Exception:
        log.exception("the failure callbacks of %s failed", request.key.task_id)


def _kind(node: NodeSpec) -> tuple[str, Any, Any]:
    """Tries of one kind run alike: the same operator, function or task class."""
    return (node.operator, node.extra.get("callable"), node.family)


class _Batch:
    """Tries run one after another in the loop's thread, and where they are."""

    __slots__ = ("alarm", "done", "entries", "handed_off", "index", "reported", "since", "standing")

    def __init__(self, entries: list[tuple[TryRequest, float | None, list[Executable]]]) -> None:
        self.entries = entries
        self.index = 0
        self.since = time.monotonic()
        self.reported = False
        self.handed_off = False
        self.standing = False
        """A stand-in does the loop's work while this batch holds the loop's thread."""
        self.done = False
        self.alarm: Alarm | None = None


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
        fork: bool = False,
    ) -> None:
        """``threads_only``: never run a lone try in the calling thread, so the run loop stays
        free to stop it (a run with a ``run_timeout``). ``fork``: each try's code runs in a
        process forked for it (``engine.forked``: Luigi's ``--workers N``), its thread waiting."""
        self.resolver = resolver
        self.fork = fork and can_fork()
        self.threads_only = threads_only or self.fork
        self.services = services
        self.journal = journal
        self.results = results
        self.clock = clock
        self.parallelism = max(1, parallelism)
        self.prefetch = PREFETCH
        """Tries per thread queued ahead (``PREFETCH``); 0 for a run whose tasks have priorities:
        a try queued ahead ran before a higher-priority one that became ready after it."""
        self._events: list[tuple[float, ExecutorEvent]] = []
        """Starts and ends, in the order they happened, with when (monotonic) they were put."""
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        """A token per wake-up of the run loop. Waking it for each event cost as much as a no-op
        try; it is woken when the threads are about to run out of tries (or an event has
        waited ``PARK_TIME``)."""
        self._ahead = 0
        """Tries handed to the thread pool that no thread has taken yet."""
        self._in_pool = 0
        """Tries handed to the thread pool that have not ended."""
        self._threaded: set[tuple[str, Any, Any]] = set()
        """Kinds of task (``_kind``) whose tries run in the threads: they wait or run long."""
        self._strikes: dict[tuple[str, Any, Any], int] = {}
        self.stand_in: Callable[[list[ExecutorEvent]], None] | None = None
        """Where the threads' events go while a long try holds the loop's thread (``_stand_in``):
        the run loop's own work on them (``Supervisor.stand_in``)."""
        self._pool: _Threads | None = None
        self._context: contextvars.Context | None = None
        """The run loop's context (settings given to the run, such as a build's command-line
        configuration), taken when it waits: every try runs in a copy of it, including those the
        timer's and the stand-in's threads hand to the pool."""
        self._running: dict[TryKey, tuple[TryRequest, float | None, list[Executable]]] = {}
        self._abandoned: set[TryKey] = set()
        self._threads_of: dict[TryKey, int] = {}
        """The thread (ident) each try of the pool runs in, to interrupt it (``_raise_in``)."""
        self._started_at: dict[TryKey, dt.datetime] = {}
        """When each try running began: a try stopped (timed out, cancelled, the command
        interrupted) ends with its real start, not a duration of 0."""
        self._turn_given_back: set[TryKey] = set()
        """Tries of the pool abandoned at their timeout whose thread may stay blocked: their turn
        went back at once, with a new thread, so the tries after them (their own retry with
        ``--workers 1``) run rather than "time out" waiting for a turn that never came."""
        self._to_start: list[tuple[TryRequest, float | None, list[Executable]]] = []
        self._host = socket.gethostname()  # once: a try reports it when it starts
        self._lock = threading.Lock()
        self._turns = threading.Semaphore(self.parallelism)
        """A try runs holding one of ``parallelism`` turns, in a thread or in the loop's thread:
        a try handed to the threads while the loop's thread runs one waits for a turn, so no
        more than ``--workers`` tries run at once."""
        self.sinks: dict[TryKey, logcapture.TrySink] = {}
        self.packs = PackedLogs()  # the logs of short tries, one file per run (ADR 0018)
        self.report_early: Callable[[list[ExecutorEvent]], None] | None = None
        """Where the events of a long lone try go while the run loop waits for it (see
        ``_watch``); the loop applies and records them (``Supervisor.record_now``)."""
        self._early = threading.Lock()

    def start(self) -> None:
        if self._pool is None:
            self._pool = _Threads(self.parallelism, "ductwork-try")

    def free_slots(self) -> int:
        """The threads, and ``PREFETCH`` tries per thread queued ahead of them (queued tries
        wait their turn, as in a worker's queue, and start in the order they came)."""
        with self._lock:
            ahead = self.prefetch * self.parallelism
            return self.parallelism + ahead - len(self._running)

    def _put(self, event: ExecutorEvent, *, wake: bool) -> None:
        with self._lock:
            self._events.append((time.monotonic(), event))
        if wake:
            self._wake.put(None)

    def _take(self) -> list[ExecutorEvent]:
        with self._lock:
            events, self._events = self._events, []
        return [event for _, event in events]

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
        """Start the tries submitted since the last wait.

        Tries of a kind that has run short and busy (no waiting) run here, one after another,
        in the run loop's thread, while the thread pool has nothing to do: handing a try to a
        thread costs two thread wake-ups and a GIL hand-over at each of the try's system calls
        (a thread woken on the other core takes the GIL from this one: measured at twice the
        CPU of the try itself), and threads running Python only take turns on the GIL. A try
        that runs past ``INLINE_LIMIT`` here hands the rest to the threads (``_watch``); a kind
        whose try waited or ran long has its tries run in the threads from then on."""
        starting = self._take_submitted()
        if not starting:
            return
        with self._lock:
            # Not while a try with a timeout may run in the threads: the loop must stay free to
            # stop it at its deadline (``_expire``), not run another try for as long as that takes.
            pool_idle = self._in_pool == 0 and all(d is None for _, d, _ in self._running.values())
        alone = len(starting) == 1  # threads would bring it nothing
        here: list[tuple[TryRequest, float | None, list[Executable]]] = []
        pooled: list[tuple[TryRequest, float | None, list[Executable]]] = []
        for entry in starting:
            (here if pool_idle and self._may_run_here(entry[0], entry[1], alone) else pooled).append(entry)
        self._to_pool(pooled)
        if here:
            self._run_here(here)

    def _take_submitted(self) -> list[tuple[TryRequest, float | None, list[Executable]]]:
        """The tries submitted since last asked; one cancelled before it started is dropped."""
        submitted, self._to_start = self._to_start, []
        with self._lock:
            self._abandoned.difference_update(e[0].key for e in submitted if e[0].key not in self._running)
            return [entry for entry in submitted if entry[0].key in self._running]

    def _may_run_here(self, request: TryRequest, deadline: float | None, alone: bool) -> bool:
        if deadline is not None or self.threads_only:  # the loop must stay free to stop it
            return False
        return alone or self.parallelism == 1 or _kind(request.node) not in self._threaded

    def _to_pool(self, entries: list[tuple[TryRequest, float | None, list[Executable]]]) -> None:
        if not entries:
            return
        self.start()
        assert self._pool is not None
        with self._lock:
            self._ahead += len(entries)
            self._in_pool += len(entries)
        context = self._context if self._context is not None else contextvars.copy_context()
        for request, _deadline, holder in entries:
            self._pool.submit(context.copy().run, self._take_turn, request, holder)

    def _take_turn(self, request: TryRequest, holder: list[Executable]) -> None:
        """A thread takes a try queued ahead: it runs unless cancelled meanwhile, and its
        execution timeout counts from now."""
        try:
            self._turns.acquire()
        except BaseException:
            with self._lock:
                self._in_pool -= 1
            raise
        try:
            with self._lock:
                self._ahead -= 1
                entry = self._running.get(request.key)
                if entry is None:
                    self._abandoned.discard(request.key)
                    return
                if entry[1] is not None and request.node.execution_timeout:
                    self._running[request.key] = (request, time.monotonic() + request.node.execution_timeout, holder)
                self._threads_of[request.key] = threading.get_ident()
            self._execute(request, holder)
        except TryInterrupted:  # raised after its code ended: the try was reported lost already
            with self._lock:
                self._abandoned.discard(request.key)
                self._threads_of.pop(request.key, None)
        finally:
            with self._lock:
                self._in_pool -= 1
                given_back = request.key in self._turn_given_back
                self._turn_given_back.discard(request.key)
            if not given_back:
                self._turns.release()

    def _run_here(self, entries: list[tuple[TryRequest, float | None, list[Executable]]]) -> None:
        """Run ``entries`` in this thread (the run loop's, blocked meanwhile), one after
        another, watched by ``_watch`` from the alarms' thread."""
        batch = _Batch(entries)
        learn = len(entries) > 1  # a lone try runs here whatever its kind: nothing to learn
        with self._lock:
            batch.alarm = ALARMS.set(self._first_alarm(batch), lambda: self._watch(batch))
        try:
            for index, (request, _deadline, holder) in enumerate(entries):
                with self._lock:
                    if batch.handed_off:
                        break
                    if request.key not in self._running:  # cancelled meanwhile
                        self._abandoned.discard(request.key)
                        continue
                    batch.index, batch.since, batch.reported = index, time.monotonic(), False
                if not learn:
                    with self._turns:
                        contextvars.copy_context().run(self._execute, request, holder, False)
                    continue
                cpu = time.thread_time()
                with self._turns:
                    contextvars.copy_context().run(self._execute, request, holder, False)
                wall, cpu = time.monotonic() - batch.since, time.thread_time() - cpu
                if wall > INLINE_LIMIT or wall - cpu > WAIT_LIMIT:  # long, or waited
                    self._strike(_kind(request.node))
                elif self._strikes:
                    self._strikes.pop(_kind(request.node), None)
        finally:
            with self._lock:
                batch.done = True
                if batch.alarm is not None:
                    ALARMS.cancel(batch.alarm)
                    batch.alarm = None  # no cycle (batch, alarm, call-back) left for the collector
            with self._early:  # a report or a stand-in's turn under way ends before the loop goes on
                pass
            self._wake.put(None)  # the loop takes the batch's events at once

    def _strike(self, kind: tuple[str, Any, Any]) -> None:
        """A try of ``kind`` ran long or waited; at the second in a row, its tries go to the
        threads (a kind's first try often pays once for imports and files, and any try can be
        held up by another process or the collector now and then)."""
        strikes = self._strikes[kind] = self._strikes.get(kind, 0) + 1
        if strikes >= STRIKES:
            self._threaded.add(kind)

    def _first_alarm(self, batch: _Batch) -> float:
        return INLINE_LIMIT if self._may_hand_off(batch) else self.packs.spill_after

    def _may_hand_off(self, batch: _Batch) -> bool:
        """Whether there is anything to hand to the threads: tries after the current one."""
        return self.parallelism > 1 and not batch.handed_off and batch.index < len(batch.entries) - 1

    def _watch(self, batch: _Batch) -> None:
        """The alarm of a batch run in the loop's thread. A try there past ``INLINE_LIMIT``
        sends the batch's other tries to the threads, and a stand-in (``_stand_in``) dispatches
        on the loop's behalf until it ends; past the pack's ``spill_after`` its start goes to
        ``report_early``, so the record shows it running (and its log can be followed) without
        a commit per try for the short ones (ADR 0008)."""
        rest: list[tuple[TryRequest, float | None, list[Executable]]] = []
        with self._lock:
            if batch.done:
                return
            request = batch.entries[batch.index][0]
            ran = time.monotonic() - batch.since
            hand_off = self._may_hand_off(batch) and ran >= INLINE_LIMIT
            if hand_off:
                batch.handed_off = True
                rest = batch.entries[batch.index + 1 :]
            report = not batch.reported and ran >= self.packs.spill_after
            batch.reported = batch.reported or report
            until = self.packs.spill_after - ran if not batch.reported else None
            if self._may_hand_off(batch):
                until = min(until, INLINE_LIMIT - ran) if until is not None else INLINE_LIMIT - ran
            batch.alarm = ALARMS.set(max(until, 0.001), lambda: self._watch(batch)) if until is not None else None
            # A stand-in once the batch has others to hand to the threads, or once its try runs
            # long even alone: retries and reschedules come due, and tries of other branches
            # end, while it holds the loop's thread (a retry waited for a long lone try's end).
            stand_in = (hand_off or report) and not batch.standing and self.stand_in is not None
            batch.standing = batch.standing or stand_in
        if hand_off:
            self._to_pool(rest)
        if stand_in:
            threading.Thread(target=self._stand_in, args=(batch,), name="ductwork-stand-in", daemon=True).start()
        if report and self.report_early is not None:
            with self._early:
                if batch.done:
                    return
                try:
                    self.report_early(self._take())
                except Exception as exc:  # the database is down: the run loop records them later
                    log.warning("could not record the start of %s yet: %s", request.key.task_id, exc)

    def _stand_in(self, batch: _Batch) -> None:
        """While a long try holds the loop's thread, hand the events of the threads' tries to
        ``stand_in`` (the supervisor applies them and dispatches what they made ready), so
        that other branches of the flow go on meanwhile."""
        while True:
            try:
                self._wake.get(timeout=PARK_TIME)
                woken = True
            except queue.Empty:
                woken = False
            with self._early:
                if batch.done or self.stand_in is None:
                    if woken:  # the wake-up was the loop's
                        self._wake.put(None)
                    return
                events = self._take() + self._expire()
                try:
                    self.stand_in(events)
                except Exception as exc:  # the database is down: the run loop records them later
                    log.warning("could not record tries while a long try runs: %s", exc)
                self._to_pool(self._take_submitted())

    def _execute(self, request: TryRequest, holder: list[Executable], threaded: bool = True) -> None:
        key = request.key
        with self._lock:  # started, or cancelled before it started (then it never runs)
            if key not in self._running:
                self._abandoned.discard(key)
                return
            started_at = self._started_at[key] = self.clock.now()
        sink = logcapture.TrySink(request.log_path, pack=self.packs)
        self.sinks[request.key] = sink
        try:
            executable = self.resolver(request.node)
            if self.fork and forkable(executable):
                executable = ForkedExecutable(executable)
            if self.journal is not None:
                self.journal.started_try(key.run_key, key.task_id, key.try_number, started_at, request.log_path)
            reported: list[bool] = []

            def started(prepared: Executable, rendered: dict[str, Any]) -> None:
                holder.append(prepared)
                # Reported once rendered, so that the record shows the rendered fields while it runs.
                self._put(TryStarted(key, started_at, worker, os.getpid(), dict(rendered) or None), wake=False)
                reported.append(True)

            # The host, as a worker process reports it (the thread's name, "MainThread", was
            # shown as the try's hostname in the API and the task's page).
            worker = self._host
            outcome = execute_try(
                executable,
                node=request.node,
                run=request.run,
                try_number=request.key.try_number,
                results=self.results,
                downstream=request.downstream,
                clock=self.clock,
                sink=sink,
                on_started=started,
                max_tries=request.max_tries,
                resumed=request.resumed,
                services=self.services,
            )
            if not reported:  # its fields could not be rendered: it started all the same
                self._put(TryStarted(key, started_at, worker, os.getpid()), wake=False)
        except Exception as exc:  # resolving the task failed: the try fails like any other error
            now = self.clock.now()
            state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
            sink.write(f"could not load task {request.key.task_id!r}: {exc}\n")
            outcome = TryOutcome(state, now, now, error=f"could not load task: {exc}", next_try_at=next_at)
        finally:
            sink.close()
        self._started_at.pop(request.key, None)  # kept when the command is interrupted: its stop needs it
        with self._lock:
            self._running.pop(request.key, None)
            ident = self._threads_of.pop(request.key, None)
            if request.key in self._abandoned:  # already reported lost (timed out, cancelled)
                self._abandoned.discard(request.key)
                if ident is not None:
                    _raise_in(ident, None)  # its code ended first: no interruption is due any more
                return
        if self.journal is not None:
            key = request.key
            self.journal.ended_try(key.run_key, key.task_id, key.try_number, outcome)
        with self._lock:  # the loop hears of it when the threads are about to run dry
            wake = threaded and self._ahead <= self.parallelism
        self._put(TryFinished(request.key, outcome), wake=wake)

    def submitted(self) -> None:
        """Each try was handed over in ``submit``."""

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        self._context = contextvars.copy_context()
        self._start()
        deadline_timeout = self._next_deadline_in()
        if deadline_timeout is not None:
            timeout = deadline_timeout if timeout is None else min(timeout, deadline_timeout)
        with self._lock:
            if self._events:
                until = max(0.0, self._events[0][0] + PARK_TIME - time.monotonic())
                timeout = until if timeout is None else min(timeout, until)
        try:
            self._wake.get(timeout=timeout) if timeout is None or timeout > 0 else self._wake.get_nowait()
        except queue.Empty:
            pass
        while True:
            try:
                self._wake.get_nowait()
            except queue.Empty:
                break
        return self._take() + self._expire()

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
                    if not _forked(holder):  # its child is stopped (on_kill below); its thread waits for it
                        self._interrupt(key, TryTimedOut)
                    if key in self._threads_of and self._pool is not None:
                        self._turn_given_back.add(key)
                        self._turns.release()
                        self._pool.add_thread()
        events: list[ExecutorEvent] = []
        for request, holder in expired:
            reason = f"timed out after {request.node.execution_timeout:g}s"
            lost = self._lost(request, reason)
            for executable in holder:
                executable.on_kill()
                _alert_timed_out(executable, request, lost.outcome, self.services)
            events.append(lost)
        return events

    def _interrupt(self, key: TryKey, exc: type[TryInterrupted] = TryInterrupted) -> None:
        """(Holding the lock.) Make the thread running ``key`` raise ``exc``, unless it is this
        one (the loop's: its own try is not running while it is here)."""
        ident = self._threads_of.get(key)
        if ident is not None and ident != threading.get_ident():
            _raise_in(ident, exc)

    def _lost(self, request: TryRequest, reason: str) -> TryFinished:
        now = self.clock.now()
        state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
        sink = self.sinks.get(request.key)
        if sink is not None:
            sink.write(f"try stopped: {reason}\n")
        started = self._started_at.get(request.key, now)
        return TryFinished(request.key, TryOutcome(state, started, now, error=reason, next_try_at=next_at))

    def heartbeat(self) -> list[ExecutorEvent]:
        return self._expire()

    def cancel(self, key: TryKey, reason: str) -> None:
        """Stop the try: one that has started ends failed with ``reason``; one still waiting for
        a thread never starts, and ends nothing (an interrupted run records its task as not
        started: skipped; it was recorded failed, under a try of 0.00s that never ran)."""
        with self._lock:
            entry = self._running.pop(key, None)
            started = key in self._started_at
            if entry is not None and started:
                self._abandoned.add(key)
                if not _forked(entry[2]):
                    self._interrupt(key)
        if entry is not None and started:
            _request, _, holder = entry
            for executable in holder:
                executable.on_kill()
            now = self.clock.now()
            begun = self._started_at.get(key, now)
            self._put(TryFinished(key, TryOutcome(TaskState.FAILED, begun, now, error=reason)), wake=True)

    def drain(self) -> list[ExecutorEvent]:
        """The events not taken yet: after ``shutdown``, the starts and ends of the tries
        stopped with the run."""
        return self._take()

    def cancel_all(self, reason: str) -> None:
        """Stop every try submitted or running (from any thread): the run was cancelled."""
        with self._lock:
            keys = list(self._running)
        for key in keys:
            self.cancel(key, reason)

    def shutdown(self, wait: bool = True) -> None:
        self._to_start.clear()
        with self._lock:
            stuck = bool(self._abandoned)  # a timed-out try's code may never return: not waited for
        if self._pool is not None:
            # Tries stopped (Ctrl-C, a cancel, a timeout) end in their threads a moment later:
            # given a few seconds, so that their ends go to their logs while the run's routing
            # lasts (under load, "c failed: TryInterrupted" and its traceback reached the terminal).
            self._pool.shutdown(wait=wait and not stuck, grace=STOPPED_TRIES_GRACE if wait and stuck else 0.0)
            self._pool = None
        self.packs.close()  # a try that ends later (not waited for) opens its pack again


STOPPED_TRIES_GRACE = 5.0
"""Seconds ``shutdown`` waits for the threads of tries told to stop (their code may never return)."""


def _forked(holder: list[Executable]) -> bool:
    return any(isinstance(executable, ForkedExecutable) for executable in holder)


def _raise_in(ident: int, exc: type[BaseException] | None) -> None:
    """Make thread ``ident`` raise ``exc`` at its next Python instruction (``None``: take back
    one it has not raised yet). A thread blocked in a call raises when the call returns."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


class _Threads:
    """The run's try threads: daemon threads taking calls from a queue. Not ``concurrent.futures``,
    whose threads the interpreter joins at exit, so a try abandoned at its execution timeout
    (Python code in a thread cannot be stopped) would keep the command from ever ending."""

    def __init__(self, size: int, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._name = name
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True) for i in range(max(1, size))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        self._calls.put((call, args))

    def add_thread(self) -> None:
        """One more thread, for one that a try abandoned at its timeout may hold for ever."""
        thread = threading.Thread(target=self._serve, name=f"{self._name}_{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            call, args = item
            try:
                call(*args)
            except BaseException:  # a try's thread must survive anything its code raised
                log.exception("a try's thread met an error outside the try")

    def shutdown(self, *, wait: bool, grace: float = 0.0) -> None:
        """Stop the threads when they are done; without ``wait``, calls not started are dropped
        and the threads are given ``grace`` seconds to end (a try told to stop logs its end
        into its own log meanwhile; one whose code never returns is not waited for longer)."""
        if not wait:
            while True:
                try:
                    self._calls.get_nowait()
                except queue.Empty:
                    break
        for _ in self._threads:
            self._calls.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        elif grace > 0:
            deadline = time.monotonic() + grace
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
