"""Pool processes tell the worker's main process about their tries, through a pipe.

A ``ductwork worker`` keeps its metrics in its main process, which serves them; the tries run
in pool processes forked from it, and a count kept in a pool process would never be scraped.
So each pool process writes one short line per try event (started, dropped, finished) to a
pipe made before the pool forks, and the main process drains it (from Celery's timer, and at
each scrape).

Each line is written with a single ``write`` of at most ``PIPE_BUF`` bytes, so lines from
several processes never interleave, and no lock is shared: a pool process killed mid-write
cannot stall the others. The write end is non-blocking: when the pipe is full the report is
lost, never the try.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import select
import threading
from typing import Any

from ductwork.engine.remote.runner import TryObserver

log = logging.getLogger("ductwork.worker")

PIPE_SIZE = 1 << 20
"""Asked-for pipe buffer (Linux grants it up to /proc/sys/fs/pipe-max-size): thousands of
reports between two drains."""


class ReportPipe:
    """The pipe: ``writer()`` for pool processes, ``drain(into)`` in the main process."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._partial = b""
        self._lock = threading.Lock()  # the timer and a scrape may drain at once

    def writer(self) -> TryObserver:
        return PipeWriter(self._write)

    def drain(self, into: TryObserver) -> int:
        """Hand every complete report waiting in the pipe to ``into``; returns how many."""
        with self._lock:
            chunks = [self._partial]
            while True:
                try:
                    chunk = os.read(self._read, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            *lines, self._partial = b"".join(chunks).split(b"\n")
        for line in lines:
            _dispatch(line, into)
        return len(lines)

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class PipeWriter:
    """A pool process's side: each event is one line on the pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def started(self, flow: str) -> None:
        self._send({"event": "started", "flow": flow})

    def dropped(self, flow: str) -> None:
        self._send({"event": "dropped", "flow": flow})

    def finished(self, flow: str, state: str, seconds: float) -> None:
        self._send({"event": "finished", "flow": flow, "state": state, "seconds": seconds})

    def _send(self, report: dict[str, Any]) -> None:
        line = (json.dumps(report, separators=(",", ":")) + "\n").encode()
        if len(line) > select.PIPE_BUF:  # a longer write could interleave with another process's
            log.warning("a try report of %d bytes is too long for the metrics pipe; not counted", len(line))
            return
        try:
            os.write(self.fd, line)
        except OSError as exc:  # full (the main process is behind) or gone: the try goes on
            log.debug("try report not sent to the worker's main process: %s", exc)


def _dispatch(line: bytes, into: TryObserver) -> None:
    try:
        report = json.loads(line)
        event, flow = report["event"], str(report["flow"])
        if event == "started":
            into.started(flow)
        elif event == "dropped":
            into.dropped(flow)
        elif event == "finished":
            into.finished(flow, str(report["state"]), float(report["seconds"]))
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable try report on the metrics pipe: %r", line[:200])
