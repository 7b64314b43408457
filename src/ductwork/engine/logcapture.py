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

from ductwork.core.masking import MASKER

_SINK: contextvars.ContextVar[TrySink | None] = contextvars.ContextVar("ductwork_try_sink", default=None)
_FORMAT = logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s")


_MADE_FOLDERS: set[str] = set()
"""Log folders this process made or found: a run's tries share one, so ask the disk once."""


class TrySink:
    """One try's log: a file when a path is given, memory otherwise."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._buffer = io.StringIO()
        self._file: IO[str] | None = None
        if self.path is not None:
            folder = os.path.dirname(self.path)
            if folder not in _MADE_FOLDERS:
                os.makedirs(folder, exist_ok=True)
                _MADE_FOLDERS.add(folder)
            try:
                self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            except FileNotFoundError:  # the folder was removed since: make it again
                os.makedirs(folder, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, text: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(text)
            else:
                self._buffer.write(text)

    def text(self) -> str:
        if self.path is not None:
            return self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        return self._buffer.getvalue()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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
            sink.write(MASKER.mask(_FORMAT.format(record)) + "\n")


class _Installation:
    """Reference-counted installation of the router and handler (nested runs are fine)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved: tuple[Any, Any] | None = None
        self.handler = _SinkHandler()


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
