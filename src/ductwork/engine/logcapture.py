"""Route what a try prints and logs to that try's own log, even with tries in several threads.

While a run is active, ``sys.stdout``/``sys.stderr`` are replaced by a router that writes to the
sink of the try running in the current thread (a context variable), and a logging handler does
the same for log records. Code outside a try writes where it always did.

Both mask registered secrets (``ductwork.core.masking``) before writing: a try's log never
holds a connection's password, whether printed or logged. Output that a subprocess writes to
descriptors 1 and 2 itself goes around Python and is not masked; relay it through ``print``
(as ``BashOperator`` does, line by line) to have it masked.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ductwork.core.log_lines import LineFormatter
from ductwork.core.masking import MASKER
from ductwork.engine.alarms import ALARMS, Alarm
from ductwork.engine.packed_logs import SPILL_BYTES, PackedLogs, keep_if_removed, read_range

_SINK: contextvars.ContextVar[TrySink | None] = contextvars.ContextVar("ductwork_try_sink", default=None)
_FORMAT = LineFormatter()


_MADE_FOLDERS: set[str] = set()
"""Log folders this process made or found: a run's tries share one, so ask the disk once."""


class TrySink:
    """One try's log: a file when a path is given, memory otherwise.

    With a ``pack`` (in-process runs), the log stays in memory while the try is short and is
    packed with the run's other short logs when it ends (``engine.packed_logs``, ADR 0018); it
    gets its own file at ``path`` once the try has run the pack's ``spill_after`` seconds or
    written ``SPILL_BYTES``."""

    def __init__(self, path: str | Path | None = None, pack: PackedLogs | None = None) -> None:
        self.path = os.fspath(path) if path else None  # a str: a Path costs microseconds per try
        self._lock = threading.Lock()
        self._buffer = io.StringIO()
        self._file: IO[str] | None = None
        self._pack = pack if self.path is not None else None
        self._packed: tuple[str, int, int] | None = None
        self._alarm: Alarm | None = None
        self._lost: OSError | None = None
        """Why the log file could not be written any more (``_give_up``)."""
        self._kept_in_memory = False
        """The own file could not be made: the text waits in memory for the pack."""
        self.mid_line = False
        """The task's output so far ends without a newline (a log record starts a new line)."""
        if self._pack is not None:
            self._alarm = ALARMS.set(self._pack.spill_after, self._spill_on_time)
        elif self.path is not None:
            self._file = _open_log(self.path)

    def write(self, text: str) -> None:
        failed: tuple[OSError, str] | None = None
        with self._lock:
            if self._file is not None:
                try:
                    self._file.write(text)
                except OSError as exc:
                    failed = self._give_up(exc)
            elif self._lost is None:
                self._buffer.write(text)
                if self._pack is not None and not self._kept_in_memory and self._buffer.tell() > SPILL_BYTES:
                    try:
                        self._spill()
                    except OSError as exc:  # it stays in memory and is packed at its end
                        self._kept_in_memory = True
                        failed = (exc, "it is kept in memory until the try ends")
        if failed is not None:
            warn_unwritable(self.path, *failed)

    def _give_up(self, exc: OSError) -> tuple[OSError, str]:
        """The log file cannot be written (a full disk, a quota, an I/O error): what the try
        writes next is dropped, and the try goes on. The error used to reach the task's
        ``print`` or the end of its try and stop the whole run, every task recorded failed."""
        self._lost = exc
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        return exc, "the rest of this try's output is dropped"

    def _spill_on_time(self) -> None:
        """Give a still-running try its own log file (so that it can be followed)."""
        failed: OSError | None = None
        with self._lock:
            if self._pack is not None and self._file is None and self._packed is None and not self._kept_in_memory:
                try:
                    self._spill()
                except OSError as exc:  # it stays in memory and is packed at its end
                    self._kept_in_memory = True
                    failed = exc
        if failed is not None:
            warn_unwritable(self.path, failed, "it is kept in memory until the try ends")

    def _spill(self) -> None:
        """The own file appears with what the try wrote so far already in it (written aside,
        then renamed): a reader never sees it empty while the text is still in memory."""
        assert self.path is not None
        aside = self.path + ".spill"
        try:
            with _open_log(aside) as early:
                early.write(self._buffer.getvalue())
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(aside)
            raise
        os.replace(aside, self.path)
        self._file = _open_log(self.path)
        self._buffer = io.StringIO()
        self._pack = None

    @property
    def packed(self) -> tuple[str, int, int] | None:
        """(pack file, offset, bytes) once this try's log was packed; ``None`` while it is in
        memory or when it has a file of its own (``path``)."""
        return self._packed

    def text(self) -> str:
        if self._packed is not None:
            return read_range(*self._packed)
        if self._pack is not None or self.path is None:  # still in memory
            return self._buffer.getvalue()
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        failed: tuple[OSError, str] | None = None
        with self._lock:
            if self._alarm is not None:
                ALARMS.cancel(self._alarm)
                self._alarm = None
            if self._file is not None:
                try:
                    self._file.flush()
                    if self.path is not None:
                        keep_if_removed(self._file.fileno(), self.path)
                    self._file.close()
                except OSError as exc:
                    failed = self._give_up(exc)
                self._file = None
            elif (pack := self._pack) is not None and self.path is not None:
                try:
                    self._packed = pack.append(self.path, self._buffer.getvalue())
                    self._pack = None
                    self._buffer = io.StringIO()
                except OSError as exc:  # a full disk: the text stays here, for this process to show
                    failed = (exc, "its text stays in this process's memory")
        if failed is not None:
            warn_unwritable(self.path, *failed)


def warn_unwritable(path: str | None, exc: OSError, then: str) -> None:
    """Said to the process's own log, not the try's (which is what cannot be written; and the
    sink's lock is not taken twice); on stderr when the process has no log handler of its own
    (``ductwork run``: the user sees it on the terminal)."""
    message = f"could not write the try log {path} ({exc.strerror or exc}): {then}"
    if any(h is not _INSTALL.handler for h in logging.getLogger().handlers):
        token = _SINK.set(None)
        try:
            logging.getLogger(__name__).warning("%s", message)
        finally:
            _SINK.reset(token)
        return
    stream = sys.__stderr__
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(f"warning: {message}\n")
            stream.flush()


def _open_log(path: str) -> IO[str]:
    """Open for appending, and for reading too: a log removed during its try is read back
    from its descriptor as it closes (``packed_logs.keep_if_removed``)."""
    folder = os.path.dirname(path)
    if folder not in _MADE_FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _MADE_FOLDERS.add(folder)
    try:
        return open(path, "a+", encoding="utf-8", buffering=1)
    except FileNotFoundError:  # the folder was removed since: make it again
        os.makedirs(folder, exist_ok=True)
        return open(path, "a+", encoding="utf-8", buffering=1)


class TryLogs(Mapping[tuple[str, int], str]):
    """The logs of a run's tries by (task id, try number), each read when it is asked for: a
    run of 100,000 tries does not read 100,000 files back to return."""

    def __init__(self, sinks: Mapping[tuple[str, int], TrySink]) -> None:
        self._sinks = dict(sinks)

    def __getitem__(self, key: tuple[str, int]) -> str:
        return self._sinks[key].text()

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._sinks)

    def __len__(self) -> int:
        return len(self._sinks)


class _Router(io.TextIOBase):
    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        sink = _SINK.get()
        if sink is None:
            return int(self.fallback.write(text) or 0)
        sink.write(MASKER.mask(text))
        if text:
            sink.mid_line = text[-1] != "\n"
        return len(text)

    def flush(self) -> None:
        if _SINK.get() is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.fallback, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8") or "utf-8"

    def fileno(self) -> int:
        return int(self.fallback.fileno())


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = _SINK.get()
        if sink is not None:
            # A record after a print that ended mid-line starts a line of its own: it ran on
            # after the text (``half a line[2026-...] ERROR ductwork.task: p failed``).
            head = "\n" if sink.mid_line else ""
            sink.mid_line = False
            sink.write(head + MASKER.mask(_FORMAT.format(record)) + "\n")


QUIET_LOGGERS = (
    *("httpx", "httpcore", "urllib3", "requests", "botocore", "boto3", "s3transfer", "aiobotocore"),
    *("celery", "kombu", "amqp", "billiard"),
)
"""Loggers that stay at the level they had when tasks' INFO records are let through. HTTP
clients log every request's URL at INFO (a webhook's secret path, a presigned URL's signature);
Celery, a remote worker's host, logs each message it takes and ends at INFO, and does more work
for it when INFO is on (the message's arguments and the result, formatted: a third of a
millisecond of a no-op try's CPU, ``benchmarks/remote.py``)."""


class _Installation:
    """Reference-counted installation of the router and handler (nested runs are fine)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved: tuple[Any, Any] | None = None
        self.handler = _SinkHandler()
        self.levels: list[tuple[logging.Handler | logging.Logger, int]] = []

    def open_info(self) -> None:
        """A task's ``logging.info(...)`` (its own loggers', its libraries') reaches its try's
        log, as in Airflow, whose task processes log at INFO: with the root logger at Python's
        default WARNING it was dropped before any handler saw it. The root logger goes down to
        INFO; the handlers that were there keep their threshold (the process's own output does
        not grow), and all is put back when the last run ends."""
        root = logging.getLogger()
        if root.level <= logging.INFO:
            return
        threshold = root.level
        for handler in root.handlers:
            if handler is not self.handler and handler.level < threshold:
                self.levels.append((handler, handler.level))
                handler.setLevel(threshold)
        for name in QUIET_LOGGERS:  # as they were (see QUIET_LOGGERS)
            library = logging.getLogger(name)
            if library.level == logging.NOTSET:
                self.levels.append((library, library.level))
                library.setLevel(threshold)
        self.levels.append((root, root.level))
        root.setLevel(logging.INFO)

    def close_info(self) -> None:
        for owner, level in reversed(self.levels):
            owner.setLevel(level)
        self.levels.clear()


_INSTALL = _Installation()


@contextlib.contextmanager
def routing() -> Iterator[None]:
    """Activate per-try routing for the duration of a run."""
    with _INSTALL.lock:
        if _INSTALL.users == 0:
            _INSTALL.saved = (sys.stdout, sys.stderr)
            sys.stdout = _Router(sys.stdout)
            sys.stderr = _Router(sys.stderr)
            logging.getLogger().addHandler(_INSTALL.handler)
            _INSTALL.open_info()
            task_logger = logging.getLogger("ductwork.task")
            if task_logger.level == logging.NOTSET:
                task_logger.setLevel(logging.INFO)
        _INSTALL.users += 1
    try:
        yield
    finally:
        with _INSTALL.lock:
            _INSTALL.users -= 1
            if _INSTALL.users == 0 and _INSTALL.saved is not None:
                sys.stdout, sys.stderr = _INSTALL.saved
                logging.getLogger().removeHandler(_INSTALL.handler)
                _INSTALL.close_info()


class _NotFromATry(logging.Filter):
    """Drops the records a try logs (its thread has a sink): the sink's handler writes them to
    the try's log already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _SINK.get() is None


@contextlib.contextmanager
def streams_are_try_logs() -> Iterator[None]:
    """For a process whose descriptors 1 and 2 are the running try's log file (a pool worker, a
    Celery worker's pool process): the handlers the process had (a stream handler on stderr,
    set up by ``--log-level``) leave a try's records to the sink's handler. At INFO, each of a
    task's ``logging.info`` lines was in its try's log twice, once from each handler; outside
    a try, and from threads a task starts, those handlers write as before."""
    only_once = _NotFromATry()
    handlers = [h for h in logging.getLogger().handlers if h is not _INSTALL.handler]
    for handler in handlers:
        handler.addFilter(only_once)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(only_once)


@contextlib.contextmanager
def capture(sink: TrySink) -> Iterator[TrySink]:
    """Send this thread's output and log records to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)


def current_sink() -> TrySink | None:
    return _SINK.get()
