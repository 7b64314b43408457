"""``luigi.lock``: at most ``num_available`` processes with the same command line at once.

``luigi Task ...`` takes this lock unless ``--no-lock`` is given (``luigi.build`` never does), as
Luigi does; the pid files are ``ductwork.pid_lock``'s, which ``ductwork build`` takes too.
"""

from __future__ import annotations

from typing import Any

from ductwork.pid_lock import get_info, getpcmd, holders

__all__ = ["acquire_for", "get_info", "getpcmd"]


def acquire_for(pid_dir: str, num_available: int = 1, kill_signal: Any = None) -> bool:
    """Whether this process may run (fewer than ``num_available`` others run the same command).

    ``kill_signal`` (Luigi sends SIGUSR1 for ``--take-lock``, telling the holder to stop taking
    work) is not sent: a Ductwork build has no handler for it and would be killed outright."""
    others = holders(pid_dir, num_available)
    if others:
        print(f"Pid(s) {others} already running")  # Luigi's words, on stdout as Luigi prints them
        return False
    return True
