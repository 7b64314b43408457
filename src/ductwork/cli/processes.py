"""Whether a process recorded in the database (a worker, a scheduler) on this host still runs."""

from __future__ import annotations

import os


def other_process_runs(pid: int) -> bool:
    """Whether ``pid`` is a running process other than this one.

    A zombie is not running: a process killed with ``kill -9`` stays one until its parent reaps
    it (seconds under a lazy init, for ever under a parent that never waits), and
    ``kill(pid, 0)`` succeeds on it. Nor is this very process: in a container the command is
    pid 1 again after a restart, under the same host name (the pod's), so the record of the
    killed one names this process's pid."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Linux's ``/proc/PID/stat`` state ``Z`` (dead, not yet reaped); False where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False
    return fields[fields.rfind(b")") + 2 : fields.rfind(b")") + 3] == b"Z"  # the name may hold ") "
