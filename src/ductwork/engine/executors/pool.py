"""The local worker pool: tries run in warm worker processes that import a flow once.

Process model
    ``parallelism`` worker processes, started from a ``forkserver`` (not ``fork``: forking a
    scheduler that has threads and open database connections copies locks in whatever state
    other threads left them, and copies the connections; not plain ``spawn`` either: each
    worker would re-import Ductwork from scratch, ~10x slower to start, which matters for
    replacing a dead worker and for ``mode="fresh"``). The forkserver is a fresh, single-threaded
    interpreter that preloads Ductwork's engine (never user code) and forks a worker per
    request. Each worker imports a flow's file the first time one of its tries needs it and
    keeps it (again only if the file changes); ``mode="fresh"`` retires a worker after one
    try instead, so every try runs in a new process.

Messages
    One duplex pipe per worker (``multiprocessing.Pipe``) carrying length-prefixed pickles; a
    reader takes whatever has arrived in one system call (``Connection.recv`` costs two per
    message). A try is one message to the worker (the run's ``RunSetup`` travels only the
    first time that worker sees the run) and, for a try shorter than ``report_started_after``,
    one message back that carries both its start and its outcome; a longer try is reported
    started by the worker's second thread. A worker runs one try at a time. With ``prefetch``
    > 1 the parent keeps up to that many tries in each worker's pipe, so a worker going from
    one quick try to the next neither sleeps nor waits for the parent (on two cores, waking a
    process costs more than a no-op try); a worker whose try runs longer than
    ``report_started_after`` hands the tries queued behind it back, and gets no more until it is
    done, so a long try never holds up quick ones. Tries beyond that wait in the parent.
    ``wait`` blocks on every worker's pipe and process sentinel at once, in one epoll set kept
    for the pool's life (``connection.wait`` builds a selector per call, ten times the cost),
    with the nearest deadline as its timeout: no polling sleeps, no threads between a worker
    and the caller of ``wait``.

Liveness
    A worker that dies (even by ``kill -9``) is seen at once through its process sentinel:
    its try comes back from ``wait`` as failed or up for retry (by the node's retry policy)
    with an error naming the pid and the signal, leftovers of its process group are killed,
    and a new worker takes its place. A try past its ``execution_timeout`` or cancelled is
    stopped the same way: SIGTERM to the worker (which calls the operator's ``on_kill`` and
    exits), SIGKILL to its process group after ``kill_grace`` seconds; the try is reported
    when the worker is gone, so its slot is never reused while its code may still run.
    A worker's runtime may also record heartbeats (``WorkerRuntime.on_try_heartbeat``).

Contract when the parent dies (the scheduler's exactly-once guarantee depends on it)
    1. A worker records each try itself: ``on_try_started`` before any user code runs (and
       runs nothing if it returns False), ``on_try_finished`` before the outcome is sent.
    2. A worker that finds its parent gone (its end of the pipe at EOF, or the parent's
       sentinel readable, checked before every try) finishes the try it is running, records
       it, and exits without starting another one, even one already in its pipe.
    3. SIGTERM waits while a finished try is being recorded and sent, so the outcome the
       parent reports for a stopped worker is the one the worker recorded, if it recorded one.
    So after a scheduler crash every try is in one of three states in the database: not
    started (safe to start again), finished (recorded by its worker), or started by a worker
    that is still running it or died (its pid, and heartbeats if the runtime writes them, tell
    which). The parent reporting a lost try and a worker recording its own outcome can race
    only when the worker dies between the two; a database-backed runtime must therefore write
    a try's end with a compare-and-set on its state, and so must the scheduler.

Caveats
    The forkserver is one per process: if something else started it first, Ductwork is not
    preloaded and workers start slower (they still work). Workers get the parent's
    environment as it is when each is started, and the parent's ``sys.path``.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import functools
import logging
import multiprocessing
import os
import select
import selectors
import signal
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.config import ParamSources
from ductwork.core.states import TaskState
from ductwork.engine.execution import TryOutcome
from ductwork.engine.executor import ExecutorEvent, FieldsRendered, TryFinished, TryKey, TryRequest, TryStarted
from ductwork.engine.executors import _worker as wire
from ductwork.engine.executors.runtime import FlowFileRuntime, RunSetup, WorkerRuntime
from ductwork.engine.packed_logs import rescue_staged
from ductwork.settings import Settings

log = logging.getLogger("ductwork.pool")
Mode = Literal["warm", "fresh"]
_CANCEL_GRACE = 0.5
BOOT_GRACE = 10.0
"""Seconds a worker that has not said anything yet (a new process, starting) may take before
its first try's timeout counts: a retry after a timeout goes to the worker started in place of
the one stopped, and its start-up is not the try's time."""
"""Seconds a worker has to hand back a cancelled try that reached the front of its queue
before it is stopped as running it."""
_PRELOAD = ["__main__", "ductwork.engine.executors._worker"]


@dataclass(eq=False)
class _Assignment:
    """A try handed to the pool, until its outcome is reported."""

    seq: int
    request: TryRequest
    handle: _Handle | None = None
    deadline: float | None = None
    started: bool = False
    cancelled: str = ""
    reached: float | None = None
    """When its worker got to it (monotonic): a try stopped or lost ran from then."""
    started_at: dt.datetime | None = None
    """When it started, as its worker reported."""
    faults: int = 0
    """Times it could not start because of a platform fault (it is tried again after a backoff)."""
    not_before: float = 0.0
    """Not sent to a worker before this moment (monotonic): its backoff after a fault."""


@dataclass
class _Stop:
    """Why a worker is being stopped; ``reason`` is emptied if its try finishes after all."""

    reason: str
    retry: bool
    kill_at: float
    killed: bool = False


@dataclass(eq=False)
class _Handle:
    """The parent's view of one worker process."""

    index: int
    process: BaseProcess
    channel: wire.Channel
    pid: int
    name: str
    runs: wire.Lru
    queue: deque[_Assignment] = field(default_factory=deque)
    sent: int = 0
    retiring: bool = False
    stop: _Stop | None = None
    broken: str | None = None
    listening: bool = True
    dead: bool = False
    faults: int = 0
    """Platform faults in a row on this worker (reset when one of its tries runs)."""
    paused_until: float = 0.0
    """After a fault, no tries go to this worker before this moment (monotonic)."""
    heard: bool = False
    """Whether the worker has sent anything yet (it is up and reading its pipe)."""

    @property
    def accepting(self) -> bool:
        return not (self.dead or self.retiring or self.stop is not None)

    @property
    def current(self) -> _Assignment | None:
        """The try the worker runs (or is about to): the first of those sent to it."""
        return self.queue[0] if self.queue else None

    @property
    def idle(self) -> bool:
        return not self.queue and self.accepting and not self.paused_until

    def resume_if_due(self, now: float) -> bool:
        """End the pause after a fault once it is over; whether it just ended."""
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            return True
        return False


class PoolExecutor:
    """The executor port over a pool of worker processes.

    Args:
        runtime: what workers are given (how to find code, where results go, where tries are
            recorded); ``FlowFileRuntime()`` by default.
        parallelism: worker processes, hence tries at once (default: ``Settings().parallelism``).
        mode: ``"warm"`` (workers run many tries) or ``"fresh"`` (a new process per try).
        max_tries_per_worker: retire a warm worker after this many tries (``None``: never).
        clock: the clock of the events the parent makes up (tries lost, stopped, cancelled).
        kill_grace: seconds between SIGTERM and SIGKILL when a try is stopped.
        report_started_after: a try still running after this many seconds is reported started
            on its own; quicker ones report their start together with their outcome.
        heartbeat_interval: seconds between ``on_try_heartbeat`` calls while a try runs.
        flow_files: the flow file of each flow id, for requests that carry none.
        param_sources: the parameter sources of requests that carry none.
        start_method: ``"forkserver"`` (default) or ``"spawn"``.
        environ: the environment of the workers (default: this process's, when each starts).
        backlog: tries accepted beyond the idle workers, kept in the parent and sent to the next
            worker that finishes: the scheduler's reaction time is then off the critical path.
        prefetch: tries a worker is given at once (the one it runs and those queued behind it).
        fault_backoff: (first, longest) seconds a try waits, and its worker gets no tries, after
            a platform fault (a log or journal that cannot be written); doubling in between.
    """

    starts_when_used = True
    """``submit`` starts the workers if ``start`` was not called yet: a scheduler may put the
    start off while it imports a folder of flow files, which the workers' start slows down."""

    def __init__(
        self,
        runtime: WorkerRuntime | None = None,
        *,
        parallelism: int | None = None,
        mode: Mode = "warm",
        max_tries_per_worker: int | None = None,
        clock: Clock | None = None,
        kill_grace: float = 5.0,
        report_started_after: float = 0.01,
        heartbeat_interval: float = 10.0,
        flow_files: Mapping[str, str] | None = None,
        param_sources: ParamSources | None = None,
        start_method: str = "forkserver",
        environ: Mapping[str, str] | None = None,
        backlog: int = 0,
        prefetch: int = 1,
        fault_backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if mode not in ("warm", "fresh"):
            raise ValueError(f"mode must be 'warm' or 'fresh', got {mode!r}")
        self.runtime = runtime if runtime is not None else FlowFileRuntime()
        self.parallelism = max(1, parallelism if parallelism is not None else Settings().parallelism)
        self.mode = mode
        self.max_tries_per_worker = 1 if mode == "fresh" else max_tries_per_worker
        self.clock = clock or SystemClock()
        self.kill_grace = kill_grace
        self.report_started_after = report_started_after
        self.heartbeat_interval = heartbeat_interval
        self.flow_files = dict(flow_files or {})
        self.param_sources = param_sources or ParamSources()
        self.start_method = start_method
        self.environ = dict(environ) if environ is not None else None
        self.backlog = max(0, backlog)
        self.prefetch = max(1, prefetch)
        self.fault_backoff = fault_backoff
        self.fault: str | None = None
        """The last platform fault, until a try runs again (for the scheduler's health)."""
        self._ctx: Any = None
        self._selector: selectors.BaseSelector | None = None
        self._handles: list[_Handle] = []
        self._idle: list[_Handle] = []
        self._waiting: deque[_Assignment] = deque()
        self._inflight: dict[TryKey, _Assignment] = {}
        self._events: list[ExecutorEvent] = []
        self._seq = 0
        self._spawned = 0
        self._host = socket.gethostname()
        self._closed = False
        self._exit_hook: Any = None
        self._last_poll = 0.0
        self._wake_pipe: tuple[int, int] | None = None
        """Written to by ``wake`` (another thread) to end a ``wait`` at once."""
        self._wake_lock = threading.Lock()
        """Held while the pipe is written or closed: a closed descriptor's number may be reused."""

    @classmethod
    def from_settings(cls, settings: Settings, runtime: WorkerRuntime | None = None, **options: Any) -> PoolExecutor:
        return cls(runtime, parallelism=settings.parallelism, **options)

    # --- the port -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._selector is not None:
            return
        if self._closed:
            raise RuntimeError("this pool has been shut down")
        self._ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(_PRELOAD)
        self._selector = selectors.DefaultSelector()
        self._wake_pipe = os.pipe()
        for fd in self._wake_pipe:
            os.set_blocking(fd, False)
        self._selector.register(self._wake_pipe[0], selectors.EVENT_READ, (None, False))
        # multiprocessing joins non-daemon children at exit; stop ours first (atexit is LIFO)
        self._exit_hook = functools.partial(_shutdown_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)
        for _ in range(self.parallelism):
            self._spawn()

    def free_slots(self) -> int:
        """Idle workers, plus room in the backlog: a worker that finishes a try gets the next
        one from the backlog at once, without waiting for the scheduler's turn."""
        return 0 if self._closed else self.parallelism * self.prefetch + self.backlog - len(self._inflight)

    def holds(self, key: TryKey) -> bool:
        """Whether this try is still here (a try cancelled from outside stays until its worker
        has stopped it): a new try of that task must take another number."""
        return key in self._inflight

    def submit(self, request: TryRequest) -> None:
        """Hand a try to an idle worker; beyond ``free_slots`` it waits in the parent."""
        self.start()
        if request.key in self._inflight:
            raise ValueError(f"try {request.key} is already in this pool")
        self._seq += 1
        assignment = _Assignment(self._seq, request)
        self._inflight[request.key] = assignment
        handle = self._pick()
        if handle is None:
            self._waiting.append(assignment)
        else:
            self._send(handle, assignment)

    def submitted(self) -> None:
        """Each try was handed over in ``submit``."""

    def wake(self) -> None:
        """End the current or next ``wait`` now (from another thread: the scheduler has a new
        run to look at, ``SchedulerService.wake``)."""
        with self._wake_lock:
            if self._wake_pipe is not None:
                try:
                    os.write(self._wake_pipe[1], b"\0")
                except OSError:  # full: a wake is pending anyway
                    pass

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        if self._selector is None:
            return self._take_events()
        if self._events or (timeout is None and not self._inflight and not self._stopping()):
            timeout = 0
        limit = self._next_deadline()
        if limit is not None:
            until = max(0.0, limit - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        self._poll(timeout)
        self._check_deadlines()
        return self._take_events()

    def heartbeat(self) -> list[ExecutorEvent]:
        """Deadlines, and (at most once a second, as ``wait`` already watches every worker)
        a look at workers' pipes and sentinels."""
        if self._selector is not None:
            if time.monotonic() - self._last_poll > 1.0:
                self._poll(0)
            self._check_deadlines()
        return self._take_events()

    def cancel(self, key: TryKey, reason: str) -> None:
        """Stop a try: dropped if it waits for a worker, else its worker is stopped (SIGTERM,
        ``on_kill``, SIGKILL after ``kill_grace``); it ends failed, without retry."""
        assignment = self._inflight.get(key)
        if assignment is None:
            return
        handle = assignment.handle
        if handle is None:
            self._waiting.remove(assignment)
            self._report_lost(assignment, reason, retry=False)
        elif assignment is not handle.current:
            # Queued in a worker behind another try: the worker hands it back unstarted, or, if
            # it started it before it read this, it is stopped like a running one (``_done``).
            assignment.cancelled = reason
            _quietly(handle.channel.send, (wire.CANCEL, assignment.seq))
        elif handle.stop is None:
            self._stop(handle, reason, retry=False)
        elif handle.stop.reason:
            handle.stop.reason, handle.stop.retry = reason, False

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers. ``wait``: let running tries finish (their runtime records them);
        otherwise stop them as if cancelled. Either way no worker outlives this call, and
        events of tries still running are not reported."""
        if self._closed:
            return
        self._closed = True
        if self._exit_hook is not None:
            atexit.unregister(self._exit_hook)
        live = [h for h in self._handles if not h.dead]
        for handle in live:
            _quietly(handle.channel.send, (wire.STOP,))
            if not wait and handle.current is not None:
                _signal(handle.pid, signal.SIGTERM)
        kill_at = None if wait else time.monotonic() + self.kill_grace
        for handle in live:
            limit = handle.stop.kill_at if handle.stop is not None else kill_at
            handle.process.join(None if limit is None else max(0.0, limit - time.monotonic()))
            if handle.process.is_alive():
                _signal(handle.pid, signal.SIGKILL, group=True)
                handle.process.join()
            _signal(handle.pid, signal.SIGKILL, group=True)
            self._close_handle(handle)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        with self._wake_lock:
            if self._wake_pipe is not None:
                pipe, self._wake_pipe = self._wake_pipe, None
                for fd in pipe:
                    os.close(fd)
        self._handles.clear()
        self._idle.clear()

    def worker_pids(self) -> list[int]:
        """Pids of the live workers."""
        return [h.pid for h in self._handles if not h.dead]

    # --- workers ------------------------------------------------------------------------------
    def _spawn(self) -> _Handle:
        assert self._selector is not None
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        index = self._spawned
        self._spawned += 1
        config = wire.WorkerConfig(
            index=index,
            max_tries=self.max_tries_per_worker,
            report_started_after=self.report_started_after,
            heartbeat_interval=self.heartbeat_interval,
            prefetch=self.prefetch,
            # The forkserver's environment may be older than ours; a scheduler passes its own.
            environ=dict(self.environ if self.environ is not None else os.environ),
        )
        process = self._ctx.Process(
            target=wire.main, args=(child_end, self.runtime, config), name=f"ductwork-worker-{index}"
        )
        process.start()
        child_end.close()
        pid = int(process.pid)
        channel = wire.Channel(parent_end)
        handle = _Handle(index, process, channel, pid, f"{self._host}:{pid}", wire.Lru(config.run_cache))
        self._selector.register(channel.fd, selectors.EVENT_READ, (handle, False))
        self._selector.register(process.sentinel, selectors.EVENT_READ, (handle, True))
        self._handles.append(handle)
        self._idle.append(handle)
        return handle

    def _pick(self) -> _Handle | None:
        """An idle worker (the one used last: its caches are warm), or a new one if the pool
        is short of workers."""
        while self._idle:
            handle = self._idle.pop()
            if handle.idle:
                return handle
        if not self._closed and sum(1 for h in self._handles if h.accepting) < self.parallelism:
            handle = self._spawn()
            self._idle.remove(handle)
            return handle
        if self.prefetch > 1:
            best: _Handle | None = None
            for handle in self._handles:
                if self._has_room(handle) and (best is None or len(handle.queue) < len(best.queue)):
                    best = handle
            return best
        return None

    def _has_room(self, handle: _Handle) -> bool:
        return (
            handle.accepting
            and not handle.paused_until
            and len(handle.queue) < self.prefetch
            and not (handle.queue and handle.queue[0].started)
        )

    def _send(self, handle: _Handle, assignment: _Assignment) -> None:
        request = assignment.request
        run_key = request.run.key
        setup = None
        known = handle.runs.items.get(run_key)
        if not handle.runs.touch(run_key) or not (known is request.run or known == request.run):
            # New to this worker, or a run of the same key that is not the one it knows (deleted
            # and created again, with other parameters perhaps): it gets the run's setup.
            handle.runs.add(run_key, request.run)
            setup = self._setup(request)
        message = (
            wire.RUN,
            assignment.seq,
            run_key,
            request.key.task_id,
            request.key.try_number,
            request.node,
            request.downstream,
            request.log_path,
            request.max_tries,
            request.resumed,
            setup,
        )
        assignment.handle = handle
        handle.queue.append(assignment)
        if len(handle.queue) == 1:
            self._set_deadline(assignment)
        handle.sent += 1
        if self.max_tries_per_worker is not None and handle.sent >= self.max_tries_per_worker:
            handle.retiring = True
        try:
            handle.channel.send(message)
        except OSError:  # the worker is gone and never got it; its sentinel will say so
            handle.queue.remove(assignment)
            assignment.handle = None
            assignment.deadline = None
            self._waiting.appendleft(assignment)
            return
        if handle.retiring and not self._closed:
            self._pick_replacement()

    def _set_deadline(self, assignment: _Assignment) -> None:
        """A try's timeout counts from when its worker gets to it (it may wait behind another),
        after the start-up of a worker not heard from yet; once the worker says the try started,
        from that start (``_note_started``)."""
        timeout = assignment.request.node.execution_timeout
        assignment.reached = time.monotonic()
        booting = assignment.handle is not None and not assignment.handle.heard
        assignment.deadline = assignment.reached + timeout + (BOOT_GRACE if booting else 0.0) if timeout else None

    def _pick_replacement(self) -> None:
        """Start the next worker while a retiring one runs its last try."""
        if sum(1 for h in self._handles if h.accepting) < self.parallelism:
            self._spawn()

    def _setup(self, request: TryRequest) -> tuple[RunSetup, dict[str, Any]]:
        if request.param_sources is not None:
            sources = ParamSources.from_dict(request.param_sources)
        else:
            sources = self.param_sources
        flow_file = request.flow_file or self.flow_files.get(request.run.flow_id)
        return RunSetup(request.run, flow_file, sources), sources.to_dict()

    # --- receiving ----------------------------------------------------------------------------
    def _poll(self, timeout: float | None) -> None:
        assert self._selector is not None
        self._last_poll = time.monotonic()
        died: list[_Handle] = []
        for key, _ in self._selector.select(timeout):
            handle, is_sentinel = key.data
            if handle is None:  # ``wake``
                _drain(key.fd)
                continue
            if handle.dead:
                continue
            if is_sentinel:
                died.append(handle)
            else:
                self._receive(handle)
        for handle in died:
            self._bury(handle)
        now = time.monotonic()
        for handle in self._handles:
            if handle.resume_if_due(now) and handle.idle:
                self._idle.append(handle)
        while self._ready_waiting(now):
            handle = self._pick()
            if handle is None:
                break
            self._send(handle, self._take_waiting(now))

    def _ready_waiting(self, now: float) -> bool:
        """Whether a try waiting in the parent may be sent now (not in its backoff after a fault)."""
        return any(a.not_before <= now for a in self._waiting)

    def _take_waiting(self, now: float) -> _Assignment:
        """The first waiting try that may be sent now (``_ready_waiting`` said there is one)."""
        first = self._waiting[0]
        if first.not_before <= now:
            return self._waiting.popleft()
        ready = next(a for a in self._waiting if a.not_before <= now)
        self._waiting.remove(ready)
        return ready

    def _receive(self, handle: _Handle) -> bool:
        """Handle what ``handle`` sent; False at end of file."""
        try:
            messages = handle.channel.read()
        except OSError:
            messages = None
        if messages is None:
            self._stop_listening(handle)
            return False
        for message in messages:
            self._handle_message(handle, message)
        return True

    def _handle_message(self, handle: _Handle, message: tuple[Any, ...]) -> None:
        tag = message[0]
        handle.heard = True
        if tag == wire.BROKEN:
            handle.broken = str(message[1]).strip()
            return
        if tag == wire.RETURNED:
            self._take_back(handle, message[1])
            return
        assignment = handle.current
        if assignment is None or assignment.seq != message[1]:
            return
        if tag == wire.FINISHED:
            self._note_started(handle, assignment, message[2])
            if handle.stop is not None:
                handle.stop.reason = ""  # it finished after all, and its worker recorded this outcome
            self._done(handle, message[3])
        elif tag == wire.STARTED:
            self._note_started(handle, assignment, message[2], message[4])
            self._take_back(handle, message[3])
        elif tag == wire.RENDERED:
            if assignment.started:
                self._events.append(FieldsRendered(assignment.request.key, message[2]))
        elif tag == wire.REFUSED:
            self._done(handle, wire.refused_outcome(self.clock))
        elif tag == wire.FAULT:
            self._fault(handle, message[2], message[3])

    def _fault(self, handle: _Handle, error: str, returned: list[int]) -> None:
        """The worker could not start its try for a reason that is the platform's: the try goes
        back to the line uncharged and is tried again after a backoff, and the worker gets no
        tries for a while (doubling while the fault lasts)."""
        assignment = handle.queue.popleft()
        wanted = set(returned)
        back = [a for a in handle.queue if a.seq in wanted]
        for other in back:
            handle.queue.remove(other)
        now = time.monotonic()
        assignment.faults += 1
        handle.faults += 1
        retry_in = _backoff(assignment.faults, *self.fault_backoff)
        pause = _backoff(handle.faults, *self.fault_backoff)
        assignment.not_before = now + retry_in
        handle.paused_until = now + pause
        self._requeue([assignment, *back])
        if handle.current is not None and handle.current.deadline is None:
            self._new_head(handle)
        key = assignment.request.key
        self.fault = f"worker pid {handle.pid}: {error}"
        log.warning(
            "platform fault, not the task's: worker pid %d could not start %s/%s try %d: %s. The try is not "
            "charged and goes back to the line (again in %gs); no tries go to this worker for %gs",
            *(handle.pid, key.run_key, key.task_id, key.try_number, error, retry_in, pause),
        )

    def _note_started(self, handle: _Handle, assignment: _Assignment, at: Any, rendered: Any = None) -> None:
        if at is not None and not assignment.started:
            assignment.started = True
            assignment.started_at = at
            self._events.append(TryStarted(assignment.request.key, at, self._host, handle.pid, rendered))
            timeout = assignment.request.node.execution_timeout
            if timeout and not assignment.cancelled and handle.stop is None and assignment.reached is not None:
                # The timeout counts from the try's start on the worker (not before the worker
                # was up): at most the time since the worker got to it, at least none.
                now = time.monotonic()
                try:
                    since = (dt.datetime.now(dt.UTC) - at).total_seconds()
                except TypeError:  # a clock without a timezone (a test's)
                    since = 0.0
                ran = min(max(0.0, since), now - assignment.reached)
                assignment.deadline = now - ran + timeout

    def _done(self, handle: _Handle, outcome: TryOutcome) -> None:
        assignment = handle.queue.popleft()
        self._inflight.pop(assignment.request.key, None)
        self._events.append(TryFinished(assignment.request.key, outcome))
        handle.faults = 0
        self.fault = None
        self._new_head(handle)
        now = time.monotonic()
        while self._has_room(handle) and self._ready_waiting(now):
            self._send(handle, self._take_waiting(now))
        if handle.idle:
            self._idle.append(handle)

    def _new_head(self, handle: _Handle) -> None:
        """The worker moves on to the next try in its queue: its timeout starts now; if it was
        cancelled, the worker hands it back soon, or it started it already and is stopped."""
        head = handle.current
        if head is not None:
            self._set_deadline(head)
            if head.cancelled:
                head.deadline = time.monotonic() + _CANCEL_GRACE

    def _take_back(self, handle: _Handle, seqs: list[int]) -> None:
        """Tries ``handle``'s worker hands back unstarted (they were queued behind a long try):
        first in line for the next free worker, in their order."""
        if not seqs:
            return
        wanted = set(seqs)
        back = [a for a in handle.queue if a.seq in wanted]
        for assignment in back:
            handle.queue.remove(assignment)
        self._requeue(back)
        if handle.current is not None and handle.current.deadline is None:
            self._new_head(handle)
        if handle.idle:
            self._idle.append(handle)

    def _requeue(self, assignments: list[_Assignment]) -> None:
        """Tries sent to a worker that never started them: back to the front of the line
        (or ended, if they were cancelled meanwhile), keeping their order."""
        for assignment in reversed(assignments):
            assignment.handle, assignment.deadline, assignment.reached = None, None, None
            if assignment.cancelled:
                self._report_lost(assignment, assignment.cancelled, retry=False)
            else:
                self._waiting.appendleft(assignment)

    def _stop_listening(self, handle: _Handle) -> None:
        if handle.listening and self._selector is not None:
            handle.listening = False
            self._selector.unregister(handle.channel.fd)

    def _bury(self, handle: _Handle) -> None:
        """The worker's process has ended: report its try if it had one, clean up, replace it."""
        while handle.listening and _readable(handle.channel.fd) and self._receive(handle):
            pass  # what it sent before it died comes first
        handle.process.join()
        code = handle.process.exitcode
        _signal(handle.pid, signal.SIGKILL, group=True)  # subprocesses its tries left behind
        self._close_handle(handle)
        self._handles.remove(handle)
        assignment = handle.queue.popleft() if handle.queue else None
        self._requeue(list(handle.queue))  # behind the one it ran: never started (it runs them in order)
        handle.queue.clear()
        if assignment is not None:
            stop = handle.stop
            if stop is not None and stop.reason:
                self._report_lost(assignment, stop.reason, retry=stop.retry, died=handle.pid)
            elif not assignment.started and self.runtime.try_started(assignment.request) is False:
                self._requeue([assignment])  # it had not started (its runtime says): nothing to charge
            else:
                self._report_lost(assignment, _death(handle, code), retry=True, died=handle.pid)
        if not self._closed and handle.broken is None:
            self._pick_replacement()  # a worker that cannot start is replaced only when needed

    def _close_handle(self, handle: _Handle) -> None:
        handle.dead = True
        if self._selector is not None:
            self._stop_listening(handle)
            try:
                self._selector.unregister(handle.process.sentinel)
            except (KeyError, ValueError):
                pass
        handle.channel.close()
        handle.process.close()

    # --- stopping tries -----------------------------------------------------------------------
    def _stopping(self) -> bool:
        return any(h.stop is not None for h in self._handles)

    def _next_deadline(self) -> float | None:
        """The earliest moment a try times out, a stopped worker is due for SIGKILL, or a try or a
        worker comes out of its backoff after a fault."""
        best: float | None = None
        now = time.monotonic()
        for waiting in self._waiting:  # (few: the parent keeps about one try per worker)
            if waiting.not_before > now and (best is None or waiting.not_before < best):
                best = waiting.not_before
        for handle in self._handles:
            if handle.paused_until and (best is None or handle.paused_until < best):
                best = handle.paused_until
            if handle.stop is not None:
                at = None if handle.stop.killed else handle.stop.kill_at
            else:
                at = handle.current.deadline if handle.current is not None else None
            if at is not None and (best is None or at < best):
                best = at
        return best

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for handle in self._handles:
            stop, current = handle.stop, handle.current
            if stop is not None:
                if not stop.killed and now >= stop.kill_at:
                    stop.killed = True
                    _signal(handle.pid, signal.SIGKILL, group=True)
            elif current is not None and current.deadline is not None and now >= current.deadline:
                if current.cancelled:
                    self._stop(handle, current.cancelled, retry=False)
                else:
                    timeout = current.request.node.execution_timeout or 0
                    self._stop(handle, f"timed out after {timeout:g}s", retry=True)

    def _stop(self, handle: _Handle, reason: str, *, retry: bool) -> None:
        """Stop ``handle``'s worker because of its current try: SIGTERM now, SIGKILL later.
        The try is reported when the process is gone (``_bury``)."""
        handle.stop = _Stop(reason, retry, time.monotonic() + self.kill_grace)
        _signal(handle.pid, signal.SIGTERM)

    def _report_lost(self, assignment: _Assignment, reason: str, *, retry: bool, died: int | None = None) -> None:
        """Report a try that will not report itself; ``died``: the pid of the worker that died
        running it."""
        request = assignment.request
        self._inflight.pop(request.key, None)
        recorded = self.runtime.recorded_outcome(request) if retry else None
        if recorded is not None:  # it finished and recorded its end, then died before telling us
            self._events.append(TryFinished(request.key, recorded))
            return
        now = self.clock.now()
        started = assignment.started_at
        if started is None and assignment.reached is not None:
            started = now - dt.timedelta(seconds=time.monotonic() - assignment.reached)
        if retry:  # a timeout or a death, not a cancel: its callbacks and e-mail are still due
            node, number = request.node, request.key.try_number
            outcome = wire.failed_outcome(
                node, number, self.clock, reason, max_tries=request.max_tries, started_at=started
            )
            outcome = dataclasses.replace(outcome, alerts_due=True)
        else:
            outcome = TryOutcome(TaskState.FAILED, started or now, now, error=reason)
        if request.log_path:
            if died is not None:  # what its worker had written is in that worker's staging file
                rescue_staged(request.log_path, died)
            _append(request.log_path, f"try stopped: {reason}\n")
        self._events.append(TryFinished(request.key, outcome))

    def _take_events(self) -> list[ExecutorEvent]:
        events, self._events = self._events, []
        return events


def _backoff(count: int, first: float, longest: float) -> float:
    return min(longest, first * 2 ** min(count - 1, 30))


def _death(handle: _Handle, code: int | None) -> str:
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    text = f"worker pid {handle.pid} {how} while running the try"
    if handle.broken:
        text += f"; it could not start: {handle.broken.splitlines()[-1]}"
    return text


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _signal(pid: int, signum: int, *, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _append(path: str, text: str) -> None:
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
    except OSError:
        pass


def _quietly(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except OSError:
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:  # empty (BlockingIOError) or closed
        pass


def _shutdown_at_exit(ref: weakref.ref[PoolExecutor]) -> None:
    pool = ref()
    if pool is not None:
        pool.shutdown(wait=False)
