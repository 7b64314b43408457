"""The worker process of the pool: tries arrive over a pipe, run one at a time, outcomes go back.

This module is what the forkserver preloads, so it imports the engine's execution code and
nothing of the user's; flows are imported by the worker's runtime when a try needs them.

Wire format (tuples; the first item is a tag):

- parent -> worker ``(RUN, seq, run_key, task_id, try_number, node, downstream, log_path, setup)``
  where ``setup`` is ``(RunSetup, param_sources_dict)`` the first time this worker sees the run
  and ``None`` afterwards (both sides keep the same LRU of run keys, see ``Lru``);
  ``(STOP,)``: finish the current try, then exit (tries queued behind it are not started);
  ``(CANCEL, seq)``: do not start that queued try, hand it back.
- worker -> parent ``(FINISHED, seq, started_at | None, outcome)``; ``started_at`` is set
  when the start was not reported already, so a quick try costs one message, not two.
  ``(STARTED, seq, at, returned, rendered)`` is sent by a second thread only when a try runs longer than
  ``report_started_after``; ``(RENDERED, seq, rendered)`` follows it when the try's fields
  were rendered after it was sent; ``returned`` lists the tries queued behind it (``prefetch``) that
  the worker hands back unstarted, so they do not wait for a long try; ``(RETURNED, seqs)``
  does the same for tries that arrive later while it runs. ``(REFUSED, seq)``: the runtime's
  ``on_try_started`` said no. ``(BROKEN, text)``: the worker could not set itself up and exits.
  ``(FAULT, seq, error, returned)``: the try could not start for a reason that is the
  platform's (its log or journal cannot be written, the result store is down); it did not run
  and is handed back with the tries queued behind it (``returned``).

With ``prefetch`` > 1 the parent sends a worker several tries at once; the worker runs them in
order, one at a time, and reports each outcome as it has it. A worker therefore sleeps (and
is woken by the parent) once per batch instead of once per try.

See ``ductwork.engine.executors.pool`` for the contract with the parent.
"""

from __future__ import annotations

import copyreg
import datetime as dt
import errno
import io
import os
import pickle
import resource
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from multiprocessing import parent_process
from multiprocessing.connection import Connection
from operator import attrgetter
from types import FrameType
from typing import Any

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.config import use_sources
from ductwork.core.executable import Executable
from ductwork.core.graph import NodeSpec
from ductwork.core.results import ResultBackend
from ductwork.core.states import TaskState
from ductwork.engine import logcapture, task_env
from ductwork.engine.execution import TryOutcome, begin_try, execute_try, leave_if_forked
from ductwork.engine.executor import TryKey, TryRequest
from ductwork.engine.executors.runtime import RunSetup, WorkerRuntime
from ductwork.engine.executors.staged_log import Stage, StagedLog
from ductwork.engine.packed_logs import PackedLogs, write_all
from ductwork.engine.rules import after_failure
from ductwork.errors import TaskRemovedError
from ductwork.gc_tuning import freeze_startup, tune_collector

RUN = 1
STOP = 2
CANCEL = 3
STARTED = 11
FINISHED = 12
REFUSED = 13
BROKEN = 14
RETURNED = 15
FAULT = 16
RENDERED = 17

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_HEADER = struct.Struct("!I")
_NODE_FIELDS = attrgetter(*(f.name for f in fields(NodeSpec)))
_OUTCOME_FIELDS = attrgetter(*(f.name for f in fields(TryOutcome)))
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _utc_datetime(microseconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=microseconds)


def _reduce_datetime(value: dt.datetime) -> Any:
    """A UTC time as its microseconds since the epoch: the default pickles its time zone object
    by object (half the cost of a try's end message, which holds three times)."""
    if value.tzinfo is dt.UTC and not value.fold:
        return _utc_datetime, ((value - _EPOCH) // _MICROSECOND,)
    return value.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


_REDUCERS = copyreg.dispatch_table.copy()
# NodeSpec has slots, so the default pickling calls dataclasses' Python-level __getstate__;
# rebuilding it from its field values in order is a third cheaper and as exact. The same holds
# for a try's outcome (its instance dictionary, key by key, otherwise).
_REDUCERS[NodeSpec] = lambda node: (NodeSpec, _NODE_FIELDS(node))
_REDUCERS[TryOutcome] = lambda outcome: (TryOutcome, _OUTCOME_FIELDS(outcome))
_REDUCERS[dt.datetime] = _reduce_datetime


def dumps(message: Any) -> bytes:
    """One framed message: a 4-byte length, then the pickle."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(message)
    data = buffer.getbuffer()
    _HEADER.pack_into(data, 0, len(data) - 4)
    return bytes(data)


class Channel:
    """Framed pickles over one end of a duplex pipe. A read takes whatever has arrived in one
    system call and returns every complete message in it (the framing of
    ``multiprocessing.connection`` costs two reads per message)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        self._buffer = bytearray()

    def send(self, message: Any) -> None:
        self.write(dumps(message))

    def write(self, data: bytes) -> None:
        """Send a message ``dumps`` encoded already."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def read(self) -> list[Any] | None:
        """Messages that arrived (blocking until some bytes do); ``None`` at end of file."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        buffer = self._buffer
        buffer += chunk
        messages = []
        while len(buffer) >= 4:
            end = 4 + _HEADER.unpack_from(buffer)[0]
            if len(buffer) < end:
                break
            messages.append(pickle.loads(buffer[4:end]))
            del buffer[:end]
        return messages

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker behaves; built by the parent for each worker it starts."""

    index: int
    max_tries: int | None = None
    report_started_after: float = 0.01
    heartbeat_interval: float = 10.0
    run_cache: int = 64
    environ: Mapping[str, str] | None = None
    prefetch: int = 1


def failed_outcome(
    node: NodeSpec,
    try_number: int,
    clock: Clock,
    error: str,
    tb: str | None = None,
    *,
    max_tries: int | None = None,
    started_at: dt.datetime | None = None,
    alerts_due: bool = False,
) -> TryOutcome:
    """A try that ended without ``execute_try`` deciding it: up for retry while tries remain.
    ``alerts_due``: its process died, so its failure (or retry) callbacks never ran: the
    scheduler runs them (``TryOutcome.alerts_due``)."""
    now = clock.now()
    state, next_at = after_failure(node, try_number, now, max_tries=max_tries)
    return TryOutcome(
        state, started_at or now, now, error=error, traceback=tb, next_try_at=next_at, alerts_due=alerts_due
    )


def describe_error(exc: BaseException, *, known_path: str | None = None) -> str:
    """An error as an operator wants to read it: the cause's name (ENOSPC, EACCES, EROFS) and
    the path (unless it is ``known_path``) for system errors, the type and message otherwise."""
    if isinstance(exc, OSError) and exc.errno:
        text = f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)})"
        return f"{text}: {exc.filename}" if exc.filename and str(exc.filename) != known_path else text
    return f"{type(exc).__name__}: {exc}"


def refused_outcome(clock: Clock) -> TryOutcome:
    now = clock.now()
    error = "not started: the worker runtime refused it (the try is no longer wanted)"
    return TryOutcome(TaskState.FAILED, now, now, error=error)


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def encode_outcome(
    outcome: TryOutcome, request: TryRequest, clock: Clock, frame: Callable[[TryOutcome], tuple[Any, ...]]
) -> tuple[TryOutcome, bytes]:
    """The outcome as data any process can load, and the message ``frame(outcome)`` encoded.

    Rendered fields that hold objects (an operator's output reference, say) become their
    ``repr``; an outcome that still will not pickle fails the try with a message saying so."""
    if not all(_plain(v) for v in outcome.rendered.values()):
        outcome = replace(outcome, rendered={k: v if _plain(v) else repr(v) for k, v in outcome.rendered.items()})
    try:
        return outcome, dumps(frame(outcome))
    except Exception as exc:
        error = f"the outcome of the try cannot be sent to the scheduler: {type(exc).__name__}: {exc}"
        outcome = failed_outcome(request.node, request.key.try_number, clock, error, max_tries=request.max_tries)
        return outcome, dumps(frame(outcome))


class Lru:
    """A bounded map that forgets the least recently used key.

    For runs: the parent keeps one per worker with ``None`` values and the worker one with its
    ``RunSetup``s; because both see the same sequence of requests, they agree on which runs the
    worker knows without ever talking about it."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.items: OrderedDict[str, Any] = OrderedDict()

    def touch(self, key: str) -> bool:
        """Mark ``key`` used; whether it was known."""
        if key in self.items:
            self.items.move_to_end(key)
            return True
        return False

    def add(self, key: str, value: Any) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.size:
            self.items.popitem(last=False)


class LogFile(logcapture.TrySink):
    """A try's log file, open on one descriptor that file descriptors 1 and 2 point to while
    the try runs, so output of subprocesses lands in the same file, in order."""

    def __init__(self, path: str, folders: Lru) -> None:
        super().__init__(None)
        self.path = path
        folder = os.path.dirname(path) or "."
        if not folders.touch(folder):
            _make_folder(folder)
            folders.add(folder, None)
        try:
            self.fd = os.open(path, _LOG_FLAGS, 0o644)
        except FileNotFoundError:  # the folder was removed since (or a file system unmounted)
            _make_folder(folder)
            self.fd = os.open(path, _LOG_FLAGS, 0o644)

    def write(self, text: str) -> None:
        if self.fd >= 0:
            write_all(self.fd, text)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(eq=False)
class _Current:
    seq: int
    request: TryRequest
    started_at: dt.datetime
    t0: float
    noticed: bool = False
    rendered: dict[str, Any] | None = None
    rendered_late: bool = False
    next_beat: float = 0.0
    next_sweep: float | None = None
    sweep_gap: float = 0.0


class _Watch(threading.Thread):
    """The worker's second thread: reports a try as started once it has run for a while, and
    calls the runtime's heartbeat hook while it runs. It sleeps while the worker is idle, and
    is not woken for each quick try, so short tries pay nothing for it."""

    def __init__(self, worker: _Worker) -> None:
        super().__init__(name="ductwork-watch", daemon=True)
        self.worker = worker
        self.lock = threading.Lock()
        self.current: _Current | None = None
        self._wake = threading.Event()
        self._needs_wake = True
        config = worker.config
        self._notice = config.report_started_after
        beats = type(worker.runtime).on_try_heartbeat is not WorkerRuntime.on_try_heartbeat
        self._beat = config.heartbeat_interval if beats and config.heartbeat_interval > 0 else None

    def begin(self, current: _Current) -> None:
        if self._beat is not None:
            current.next_beat = current.t0 + self._beat
        with self.lock:
            self.current = current
            wake = self._needs_wake
        if wake:
            self._wake.set()

    def rendered(self, fields: dict[str, Any]) -> None:
        """The current try's rendered fields, sent with its start if it runs long enough for
        that to be reported."""
        if fields:
            copy = dict(fields)  # the try adds its map index label to its own later
            with self.lock:
                current = self.current
                if current is not None:
                    current.rendered = copy
                    current.rendered_late = current.noticed
            if current is not None and current.noticed:
                self._wake.set()

    def end(self) -> bool:
        """Forget the current try; whether its start was reported already."""
        with self.lock:
            current, self.current = self.current, None
        return current is not None and current.noticed

    def run(self) -> None:
        linger = False
        while True:
            woken = self._wake.wait(self._plan(linger))
            self._wake.clear()
            linger = woken  # woken by a try that may have ended already: stay up a little

    def _plan(self, linger: bool) -> float | None:
        """Do what is due; how long to sleep (``None``: until a try begins).

        While a try has not been reported started, sleep until it is due (a try that begins
        meanwhile need not wake this thread); after being woken for a try that has already
        ended, sleep one interval before sleeping for good, so a stream of quick tries
        wakes this thread at most about once per ``report_started_after``."""
        with self.lock:
            current = self.current
            now = time.monotonic()
            if current is not None and not current.noticed and now >= current.t0 + self._notice:
                current.noticed = True
                self.worker.send((STARTED, current.seq, current.started_at, self.worker.take_back(), current.rendered))
                current.rendered_late = False
                if self.worker.config.prefetch > 1:
                    current.sweep_gap = max(self._notice, 0.001)
                    current.next_sweep = now + current.sweep_gap
            elif current is not None and current.next_sweep is not None and now >= current.next_sweep:
                # Tries the parent sent before it heard this one is long: hand them back too,
                # looking less and less often (at most once a second).
                returned = self.worker.take_back()
                if returned:
                    self.worker.send((RETURNED, returned))
                current.sweep_gap = min(current.sweep_gap * 2, 1.0)
                current.next_sweep = now + current.sweep_gap
            if current is not None and current.rendered_late:  # rendered after its start was reported
                current.rendered_late = False
                self.worker.send((RENDERED, current.seq, current.rendered))
            if current is not None and not current.noticed:
                self._needs_wake = False
                return current.t0 + self._notice - now
            if current is None and linger:
                self._needs_wake = False
                return self._notice
            self._needs_wake = True
        if current is None:
            return None
        wake = current.next_sweep
        if self._beat is not None:
            if now >= current.next_beat:
                current.next_beat = now + self._beat
                self.worker.heartbeat(current.request)
            wake = current.next_beat if wake is None else min(wake, current.next_beat)
        return None if wake is None else max(0.0, wake - time.monotonic())


class _Worker:
    def __init__(self, conn: Connection, runtime: WorkerRuntime, config: WorkerConfig) -> None:
        self.channel = Channel(conn)
        self.inbox: deque[tuple[Any, ...]] = deque()
        self.cancelled: set[int] = set()  # seqs of queued tries the parent cancelled
        self.runtime = runtime
        self.config = config
        self.clock = SystemClock()
        self.pid = os.getpid()
        self.runs = Lru(config.run_cache)
        self.stage = Stage()  # where tries' logs are written (ADR 0018)
        self.packs = PackedLogs()
        self.watch = _Watch(self)
        self.executable: Executable | None = None
        self.finishing = False
        self.term_pending = False
        self.orphaned = False
        self._pipe = select.poll()
        self._pipe.register(self.channel.fd, select.POLLIN)
        self._parent = select.poll()
        parent = parent_process()
        if parent is not None:
            self._parent.register(parent.sentinel, select.POLLIN)
        self._saved = (os.dup(1), os.dup(2))

    # --- life cycle ---------------------------------------------------------------------------
    def boot(self) -> None:
        os.setpgrp()  # its own process group: terminal signals pass it by; its leftovers can be killed
        # A handler, not SIG_IGN: an ignored signal stays ignored in the programs tasks start.
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGTERM, self._on_term)
        if self.config.environ is not None:
            os.environ.clear()
            os.environ.update(self.config.environ)
        task_env.withhold()  # tasks get no Fernet key, database URL or DUCTWORK_CONN_/VAR_ values
        self.runtime.open()
        self.baseline = _Baseline()
        self.watch.start()

    def serve(self) -> None:
        done = 0
        while not self.orphaned:
            message = self.next_message()
            if message is None:
                return  # the parent is gone
            if message[0] == STOP:
                return
            if message[0] != RUN:
                continue
            if message[1] in self.cancelled:
                self.cancelled.discard(message[1])
                self._note_run(message[2], message[-1])
                self.send((RETURNED, [message[1]]))
                continue
            if not self.parent_alive():
                return  # the parent died: start nothing more (see the pool's contract)
            self.run_try(message)
            done += 1
            if self.config.max_tries is not None and done >= self.config.max_tries:
                return

    def next_message(self) -> tuple[Any, ...] | None:
        if self.config.prefetch > 1 and self.inbox:
            self._drain()
        while True:
            while not self.inbox:
                try:
                    messages = self.channel.read()
                except OSError:
                    return None
                if messages is None:
                    return None
                self.inbox.extend(messages)
            self._apply_cancels()
            if self.inbox:
                break
        if len(self.inbox) > 1 and any(message[0] == STOP for message in self.inbox):
            return (STOP,)  # a stop sent after tries already queued here is obeyed before them
        return self.inbox.popleft()

    def _drain(self) -> None:
        """Read what has arrived without waiting."""
        while self._pipe.poll(0):
            try:
                messages = self.channel.read()
            except OSError:
                return
            if messages is None:
                return
            self.inbox.extend(messages)

    def _apply_cancels(self) -> None:
        """Note the queued tries the parent cancelled; each is handed back unstarted when its
        turn comes (in order, so the run cache stays in step with the parent's)."""
        if any(message[0] == CANCEL for message in self.inbox):
            self.cancelled.update(message[1] for message in self.inbox if message[0] == CANCEL)
            self.inbox = deque(message for message in self.inbox if message[0] != CANCEL)

    def take_back(self) -> list[int]:
        """Hand back the tries queued in this worker (called by the watch thread, while the
        main thread runs a long try and reads nothing): their seqs, for the parent to give to
        another worker. The run cache is updated as if they had run, because the parent's
        copy of it was updated when it sent them."""
        if self.config.prefetch <= 1:
            return []
        self._drain()
        if not any(message[0] == RUN for message in self.inbox):
            return []
        returned: list[int] = []
        kept: deque[tuple[Any, ...]] = deque()
        for message in self.inbox:
            if message[0] == RUN:
                self._note_run(message[2], message[-1])
                self.cancelled.discard(message[1])
                returned.append(message[1])
            else:
                kept.append(message)
        self.inbox = kept
        return returned

    def _note_run(self, run_key: str, setup: Any) -> bool:
        """Keep the run cache in step with the parent's; False if the run is unknown here."""
        if setup is not None:
            self.runs.add(run_key, setup)
            return True
        return self.runs.touch(run_key)

    def parent_alive(self) -> bool:
        return not self._parent.poll(0)

    def send(self, message: tuple[Any, ...]) -> None:
        self.write(dumps(message))

    def write(self, data: bytes) -> None:
        try:
            self.channel.write(data)
        except OSError:
            self.orphaned = True

    def heartbeat(self, request: TryRequest) -> None:
        try:
            self.runtime.on_try_heartbeat(request, self.pid)
        except Exception:
            self._complain("on_try_heartbeat failed")

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM: the parent stops this worker (timeout, cancel, shutdown). Let the running
        operator clean up what it started, then exit at once; the parent reports the try. While
        the outcome of a finished try is being recorded and sent, the stop waits for that."""
        if self.finishing:
            self.term_pending = True
            return
        executable = self.executable
        if executable is not None:
            try:
                executable.on_kill()
            except Exception:
                self._complain("on_kill failed")
        os._exit(128 + signal.SIGTERM)

    # --- one try ------------------------------------------------------------------------------
    def run_try(self, message: tuple[Any, ...]) -> None:
        _, seq, run_key, task_id, try_number, node, downstream, log_path, max_tries, resumed, setup = message
        if not self._note_run(run_key, setup):  # cannot happen while both sides keep the same LRU
            outcome = failed_outcome(node, try_number, self.clock, f"worker {self.pid} has no setup for run {run_key}")
            self.send((FINISHED, seq, None, outcome))
            return
        run, sources = self.runs.items[run_key]
        key = TryKey(run_key, task_id, try_number)
        request = TryRequest(
            key,
            node,
            run.info,
            downstream,
            log_path,
            max_tries=max_tries,
            resumed=resumed,
            flow_file=run.flow_file,
            param_sources=sources,
        )
        # Everything the platform must do before the try counts, done before its start is
        # recorded: a failure here (a full disk, a read-only log folder or journal, the database
        # down) is the platform's fault; the try goes back to the parent, its retries untouched.
        sink: logcapture.TrySink | None = None
        try:
            sink = self._open_log(log_path)
            results = self.runtime.results()
            begin_try(
                sink,
                node=node,
                run=run.info,
                try_number=try_number,
                results=results,
                max_tries=max_tries,
                resumed=resumed,
            )
        except Exception as exc:
            if sink is not None:
                self._close_log(sink)
            where = f"write the try's log file {log_path}" if isinstance(exc, OSError) else "prepare the try"
            self._fault(seq, f"cannot {where}: {describe_error(exc, known_path=log_path)}")
            return
        try:
            wanted = self.runtime.on_try_started(request, self.pid)
        except Exception as exc:
            self._close_log(sink)
            self._fault(seq, f"cannot record the start of the try: {describe_error(exc)}")
            return
        if not wanted:
            self._close_log(sink)
            self.send((REFUSED, seq))
            return
        started_at = self.clock.now()
        self.watch.begin(_Current(seq, request, started_at, time.monotonic()))
        try:
            with use_sources(run.param_sources):
                outcome = self._execute(request, run, sink, results)
            leave_if_forked(self.pid)  # (also checked as the task's code returns)
        finally:
            self._close_log(sink)
            self.executable = None
            self.baseline.restore()
        noticed = self.watch.end()
        self._finish(seq, request, outcome.begun_at(started_at), None if noticed else started_at)

    def _fault(self, seq: int, error: str) -> None:
        """Tell the parent the try could not start, for a reason that is not the task's; tries
        queued behind it go back too (the same fault would hit them)."""
        self.send((FAULT, seq, error, self.take_back()))

    def _execute(
        self, request: TryRequest, run: RunSetup, sink: logcapture.TrySink, results: ResultBackend
    ) -> TryOutcome:
        node, try_number = request.node, request.key.try_number
        try:
            executable = self.runtime.resolve(node, run)
        except Exception as exc:  # loading the task failed: the try fails like any other error
            tb = traceback.format_exc()
            sink.write(f"could not load task {node.task_id!r}: {exc}\n{tb}")
            gone = isinstance(exc, TaskRemovedError)  # another try cannot help: no retry
            return failed_outcome(
                node,
                try_number,
                self.clock,
                f"could not load task: {exc}",
                None if gone else tb,
                max_tries=try_number if gone else request.max_tries,
            )
        return execute_try(
            executable,
            node=node,
            run=run.info,
            try_number=try_number,
            results=results,
            downstream=request.downstream,
            clock=self.clock,
            sink=sink,
            on_started=self._started,
            max_tries=request.max_tries,
            resumed=request.resumed,
            services=self.runtime.services(),
            begun=True,
        )

    def _started(self, executable: Executable, rendered: dict[str, Any]) -> None:
        self.executable = executable
        self.watch.rendered(rendered)

    def _finish(self, seq: int, request: TryRequest, outcome: TryOutcome, started_at: dt.datetime | None) -> None:
        """Record the outcome durably, then tell the parent; a stop waits until both are done."""
        self.finishing = True
        try:
            outcome, data = encode_outcome(outcome, request, self.clock, lambda o: (FINISHED, seq, started_at, o))
            try:
                self.runtime.on_try_finished(request, outcome)
            except Exception:
                self._complain("on_try_finished failed")
            self.write(data)
        finally:
            self.finishing = False
        if self.term_pending:
            os._exit(128 + signal.SIGTERM)

    # --- logs ---------------------------------------------------------------------------------
    def _open_log(self, path: str | None) -> logcapture.TrySink:
        if path is None:
            return logcapture.TrySink(None)
        sink = StagedLog(path, self.stage, self.packs)
        _flush_std()
        os.dup2(sink.fd, 1)
        os.dup2(sink.fd, 2)
        return sink

    def _close_log(self, sink: logcapture.TrySink) -> None:
        if isinstance(sink, StagedLog):
            _flush_std()  # text written straight to sys.__stdout__ during the try belongs to it
            os.dup2(self._saved[0], 1)
            os.dup2(self._saved[1], 2)
        sink.close()

    def _complain(self, what: str) -> None:
        try:
            os.write(self._saved[1], f"ductwork worker {self.pid}: {what}\n{traceback.format_exc()}".encode())
        except OSError:
            pass


class _Baseline:
    """What a try may change in its worker process that the next try (of any flow) must not
    inherit, as it would not with a process per try: the environment, the working folder and
    the resource limits. Taken when the worker has booted; put back after each try."""

    LIMITS = ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_STACK")

    def __init__(self) -> None:
        self.environ = dict(os.environ)
        self._raw = _raw_environ()
        self.cwd = os.getcwd()
        self.limits = {n: resource.getrlimit(getattr(resource, n)) for n in self.LIMITS if hasattr(resource, n)}

    def restore(self) -> None:
        raw = getattr(os.environ, "_data", None)
        if (raw != self._raw) if self._raw is not None else (os.environ != self.environ):
            os.environ.clear()
            os.environ.update(self.environ)
        try:
            moved = os.getcwd() != self.cwd
        except OSError:  # the folder it moved to was deleted
            moved = True
        if moved:
            try:
                os.chdir(self.cwd)
            except OSError as exc:
                sys.stderr.write(f"ductwork worker: could not go back to {self.cwd} after a try: {exc}\n")
        for name, limits in self.limits.items():
            which = getattr(resource, name)
            if resource.getrlimit(which) != limits:
                try:
                    resource.setrlimit(which, limits)
                except (ValueError, OSError):  # a lowered hard limit cannot be raised again
                    sys.stderr.write(f"ductwork worker: a try lowered its {name} for good; the next tries keep it\n")


def _raw_environ() -> dict[Any, Any] | None:
    """A copy of the encoded mapping behind ``os.environ`` (CPython's), to compare with after
    each try: a dict comparison in C (about a microsecond), where ``os.environ == dict`` decodes
    every variable in Python (40 us for a usual environment, 10-15% of a no-op try's CPU in its
    worker). None where there is no such mapping: the comparison of decoded values then."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else None


def _make_folder(folder: str) -> None:
    """Most tries log to a folder of their own that does not exist yet: one ``mkdir``."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGINT is for the scheduler; it stops its workers itself."""


def _flush_std() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def main(conn: Connection, runtime: WorkerRuntime, config: WorkerConfig) -> None:
    """The target of a worker process."""
    tune_collector()
    worker = _Worker(conn, runtime, config)
    try:
        worker.boot()
    except BaseException:
        worker.send((BROKEN, traceback.format_exc()))
        raise
    freeze_startup()
    try:
        with logcapture.routing(), logcapture.streams_are_try_logs():
            worker.serve()
    finally:
        try:
            runtime.close()
        except Exception:
            worker._complain("runtime.close failed")
