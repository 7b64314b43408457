"""A try's code run in a process forked for it, as Luigi's worker runs each task with
``--workers N`` (N > 1) or ``[worker] force_multiprocessing``.

Threads of one process take turns on Python's GIL: N busy ``run()`` methods used one core, and
a task that changed process-wide state (``os.chdir``, ``os.environ``) or crashed the interpreter
took the others with it. Here the try's thread forks a child that runs ``execute()`` and sends
back, over a pipe, what the task printed and logged (written to the try's log by the parent, as
it comes) and then its return value or the exception it raised (with the child's traceback as
a note). The parent keeps everything else (callbacks, results, the record), so the run is
recorded exactly as a threaded one. What the task changes in its own memory stays in the child,
as in Luigi: its event handlers run there.

A child killed by a signal (the OOM killer, a segfault in a C extension) fails its try saying
so; at the try's timeout or cancel, ``on_kill`` sends the child SIGTERM (the task's ``on_kill``
runs there and the task's code raises ``TryStopped``) and SIGKILL a few seconds later. A child
whose build is killed gets SIGTERM too (Linux), rather than running on as an orphan.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from ductwork.core.context import TaskContext
from ductwork.core.executable import Executable
from ductwork.core.masking import MASKER
from ductwork.engine import logcapture
from ductwork.errors import TaskExecutionError, TryStopped

KILL_GRACE = 5.0
"""Seconds between the SIGTERM of a stopped try's child and its SIGKILL."""

_HEADER = struct.Struct("!cI")
_LOG = b"L"
_END = b"E"


def can_fork() -> bool:
    return hasattr(os, "fork")


def forkable(executable: Executable) -> bool:
    """Whether a try of ``executable`` runs in a child: a Luigi task's (its class says so;
    Ductwork's own tasks share the process's ``MemoryTarget`` data, so they stay in threads)
    whose runner has no fields to render (an operator's rendered copy is made per try)."""
    task = getattr(executable, "task", None)
    return bool(getattr(task, "_ductwork_own_process", False)) and not getattr(executable, "template_fields", ())


class ForkedExecutable:
    """``executable`` with its ``execute`` run in a child process; everything else is its own."""

    def __init__(self, inner: Executable) -> None:
        self._inner = inner
        self._child: int | None = None
        self._lock = threading.Lock()
        self.stopped = False
        """``on_kill`` was called: the child's end is the stop's, not the task's doing."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def execute(self, context: TaskContext) -> Any:
        try:
            return run_in_child(lambda: self._inner.execute(context), self._inner, self._started)
        except BaseException:
            if self.stopped:  # its executor reported the try's end when it stopped it
                raise TryStopped() from None
            raise

    def _started(self, pid: int | None) -> None:
        with self._lock:
            self._child = pid

    def on_kill(self) -> None:
        with self._lock:
            self.stopped = True
            pid = self._child
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        timer = threading.Timer(KILL_GRACE, _signal, args=(pid, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def __repr__(self) -> str:
        return f"<forked {self._inner!r}>"


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:  # it ended already
        pass


def run_in_child(call: Callable[[], Any], inner: Executable, started: Callable[[int | None], None]) -> Any:
    """``call()`` in a forked child; its return value, or its exception raised here."""
    sink = logcapture.current_sink()
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: it never returns from here
        os.close(read_end)
        _child(call, inner, write_end, parent)
    os.close(write_end)
    started(pid)
    outcome: tuple[Any, ...] | None = None
    try:
        with os.fdopen(read_end, "rb") as pipe:
            while header := pipe.read(_HEADER.size):
                if len(header) < _HEADER.size:
                    break
                kind, size = _HEADER.unpack(header)
                body = pipe.read(size)
                if len(body) < size:
                    break
                if kind == _LOG:
                    if sink is not None:
                        sink.write(body.decode("utf-8", "replace"))
                elif kind == _END:
                    outcome = pickle.loads(body)
    finally:
        status = _reap(pid)
        started(None)
    if outcome is None:
        raise TaskExecutionError(f"the task's process (pid {pid}) {_said(status)} before it ended")
    if outcome[0] == "returned":
        return outcome[1]
    exc: BaseException = outcome[1]
    exc.__ductwork_traceback__ = outcome[2]  # type: ignore[attr-defined]  # where the task's code raised it
    raise exc


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def _said(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class _PipeSink(logcapture.TrySink):
    """The try's log in the child: each write goes to the parent at once."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._send_lock = threading.Lock()

    def write(self, text: str) -> None:
        if text:
            _send(self._fd, _LOG, text.encode("utf-8", "replace"), self._send_lock)

    def close(self) -> None:
        pass


def _send(fd: int, kind: bytes, body: bytes, lock: threading.Lock | None = None) -> None:
    data = _HEADER.pack(kind, len(body)) + body
    if lock is not None:
        lock.acquire()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        if lock is not None:
            lock.release()


def _task_traceback(exc: BaseException) -> str:
    """The traceback from the task's code on, without this module's frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _sendable(outcome: tuple[Any, ...]) -> bytes:
    """``outcome`` pickled, or, if it cannot be pickled or read back (an exception class whose
    ``__init__`` needs other arguments than its ``args``), a ``TaskExecutionError`` saying what
    it was: the try fails with the child's message and traceback rather than a lost process."""
    try:
        body = pickle.dumps(outcome)
        pickle.loads(body)
        return body
    except Exception as exc:
        if outcome[0] == "returned":
            error = TaskExecutionError(f"the task's return value could not be sent back from its process: {exc}")
            return pickle.dumps(("raised", error, ""))
        raised = outcome[1]
        error = TaskExecutionError(f"{type(raised).__module__}.{type(raised).__qualname__}: {raised}")
        return pickle.dumps(("raised", error, outcome[2]))


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM to this child when the thread that forked it ends (the build killed with
    ``kill -9``, the OOM killer): an orphan would go on writing the outputs of a task that the
    next build, finishing the killed one's record, runs again."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _child(call: Callable[[], Any], inner: Executable, fd: int, parent: int) -> NoReturn:
    """Run ``call`` and send its outcome; leave without any of the parent's clean-up (its
    atexit handlers, its open files' buffers, its database connections)."""
    code = 0
    try:
        # Ctrl-C reaches the whole terminal's group: the parent decides, and stops this child
        # (SIGTERM) if the run stops. SIGTERM: the task stops what it started, then raises.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        MASKER.after_fork()
        if "multiprocessing.util" in sys.modules:  # what multiprocessing's own children do:
            # proxies of a manager's objects (Luigi's MockTarget data) get their own connection
            sys.modules["multiprocessing.util"]._run_after_forkers()

        def stop(_signum: int, _frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                inner.on_kill()
            except Exception:
                traceback.print_exc()  # into the try's log
            raise TryStopped()

        signal.signal(signal.SIGTERM, stop)
        _die_with_parent(parent)
        sink = _PipeSink(fd)
        try:
            with logcapture.capture(sink):
                value = call()
            outcome: tuple[Any, ...] = ("returned", value)
        except BaseException as exc:  # everything goes back to the parent, which decides
            outcome = ("raised", exc, _task_traceback(exc))
        _send(fd, _END, _sendable(outcome))
    except BaseException:
        code = 1
        try:
            traceback.print_exc(file=sys.__stderr__)
        except BaseException:
            pass
    finally:
        os._exit(code)
