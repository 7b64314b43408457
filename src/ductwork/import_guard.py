"""Importing a user's file in the command's own process without letting it end or hang the command.

``ductwork run FILE`` and ``ductwork build --module`` import the user's code in their own
process, since its tasks run there. A file that calls ``os._exit()`` at import would end the
command with that status having done nothing, and one that hangs would hang it. Parsing the
file in a child process first (what commands that only read a flow's definition do,
``cli.flow_index``) costs a second interpreter and a second import of the whole flow, more than
a whole run of a small flow. Instead, while the file is imported here:

- ``os._exit`` raises ``ImportExit`` (a ``BaseException``, so the file's own ``except
  Exception`` does not swallow it): the import fails with the file and line that called it;
- an interval timer stops an import that runs longer than ``timeout`` seconds with
  ``ImportTimeout`` (in the main thread only, where Python delivers signals), and the processes
  the import started are killed, as the parsing child's process group would be; an import
  stuck in C code that never returns to Python ends the command (status 2) a few seconds
  later, with the same message, from a watchdog thread.

A crash of the interpreter (a segfault in an extension) still ends the process, with a
non-zero status. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn


class ImportExit(BaseException):
    """The file called ``os._exit()`` while it was being imported."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"it calls os._exit() (status {status}) at import, which would end this command having done nothing"
        )


class ImportTimeout(BaseException):
    """The file's import ran past the time allowed (``parse_timeout``)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"importing it took longer than {timeout:g}s (parse_timeout) and was stopped")


STUCK_GRACE = 5.0
"""Seconds past the timeout after which an import stuck in C code ends the command."""


@contextmanager
def guarded_import(timeout: float | None) -> Iterator[None]:
    """Import user code in this block; see the module's docstring."""
    real_exit = os._exit
    importing = threading.get_ident()

    def refuse_exit(status: int) -> NoReturn:
        if threading.get_ident() != importing:  # another thread's exit is not the import's
            real_exit(status)
        raise ImportExit(status)

    timed = bool(timeout) and threading.current_thread() is threading.main_thread()
    previous: Any = None
    done = threading.Event()
    if timed:
        assert timeout is not None
        before = descendants()

        def stop(_signum: int, _frame: object) -> None:
            for pid in descendants() - before:
                _kill(pid)
            raise ImportTimeout(timeout)

        def watchdog() -> None:
            if not done.wait(timeout + STUCK_GRACE):
                sys.stderr.write(f"Error: {ImportTimeout(timeout)} (it did not return to Python)\n")
                sys.stderr.flush()
                real_exit(2)

        previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        threading.Thread(target=watchdog, name="ductwork-import-watchdog", daemon=True).start()
    os._exit = refuse_exit
    try:
        yield
    finally:
        done.set()
        os._exit = real_exit
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def descendants(pid: int | str = "self") -> set[int]:
    """The processes below ``pid`` (Linux ``/proc``; none where it cannot be read)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                children = [int(child) for child in fh.read().split()]
        except OSError:
            continue
        for child in children:
            found.add(child)
            found |= descendants(child)
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:  # it ended meanwhile
        pass
