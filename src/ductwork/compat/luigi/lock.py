"""``luigi.lock``: at most ``num_available`` processes with the same command line at once.

``luigi Task ...`` takes this lock unless ``--no-lock`` is given (``luigi.build`` never does), as
Luigi does, and with ``--take-lock`` tells the holders to stop taking new tasks; the pid files
are ``ductwork.pid_lock``'s, which ``ductwork build`` takes too.
"""

from __future__ import annotations

from typing import Any

from ductwork.pid_lock import get_info, getpcmd, holders, signal_holders

__all__ = ["acquire_for", "get_info", "getpcmd"]


def acquire_for(pid_dir: str, num_available: int = 1, kill_signal: Any = None) -> bool:
    """Whether this process may run (fewer than ``num_available`` others run the same command).

    ``kill_signal`` (Luigi's ``--take-lock`` sends SIGUSR1) is sent to the holders first, which
    then stop taking new tasks and end once their running ones have; one more process is let
    in, once, as in Luigi."""
    if kill_signal is not None:
        told = signal_holders(pid_dir, kill_signal)
        print(f"Sent kill signal to Pids: {told}")  # Luigi's words, on stdout as Luigi prints them
        num_available += 1
    others = holders(pid_dir, num_available)
    if others:
        print(f"Pid(s) {others} already running")
        if kill_signal is not None:
            print(
                'Note: There have (probably) been 1 other "--take-lock" process which continued to run! '
                "Probably no need to run this one as well."
            )
        return False
    return True
