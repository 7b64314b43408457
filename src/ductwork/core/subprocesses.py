"""Stopping a command a task started in a session of its own (``start_new_session=True``, so
that its children can be stopped with it): SIGTERM to its whole process group, then SIGKILL
to what is left after a grace period. The worker's own SIGKILL would not reach it: the
command is not in the worker's process group."""

from __future__ import annotations

import os
import signal
import subprocess

STOP_GRACE = 3.0
"""Seconds a command has to exit after SIGTERM (less than the pool's ``kill_grace``, 5 s by
default, so the worker is still alive to send the SIGKILL)."""


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM ``proc``'s process group, wait up to ``grace`` seconds for ``proc`` to exit,
    then SIGKILL whatever of the group is left (a command that ignores SIGTERM, or children
    that outlived it)."""
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
