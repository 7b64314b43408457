"""Ending the ``ductwork`` process as soon as its command is done.

After a command, CPython's finalization tears down every module and frees, one by one, the
objects the command made (SQLAlchemy's, Rich's, click's, the flow's): 8-15 ms after the output
is complete, paid before the shell gets its prompt back, which ``trigger --wait`` adds to the
moment a run ended. None of it is needed once the exit handlers have run (logging's flush,
temporary folders, the engine's pool closing its connections) and the standard streams are
flushed, so ``leave`` does exactly that and ends the process with ``os._exit``.

It only does so when nothing else could still need the interpreter: no non-daemon thread (a
thread pool's, a server's), no child process of ``multiprocessing`` alive, and no profiler or
tracer (``python -m cProfile -m ductwork.cli`` writes its figures after the command returns).
Otherwise, and for an exit status that is not a number, the ``SystemExit`` goes on as usual.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def _still_needed() -> bool:
    if sys.getprofile() is not None or sys.gettrace() is not None:  # their figures come after
        return True
    main = threading.main_thread()
    if any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return True
    multiprocessing = sys.modules.get("multiprocessing")  # never imported: no children of its
    return multiprocessing is not None and bool(multiprocessing.active_children())


def leave(exc: SystemExit) -> NoReturn:
    """End the process with ``exc``'s status, skipping the interpreter's teardown when it can."""
    code = exc.code
    if not (code is None or isinstance(code, int)) or _still_needed():
        raise exc
    atexit._run_exitfuncs()
    status = code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`ductwork runs list | head`): as CPython does
            status = status or 120
    os._exit(status)
