"""SIGUSR1 tells a build to stop taking new tasks and to end once its running ones have.

This is Luigi's worker's ``handle_interrupt``: a cron line run with ``--take-lock`` signals the
builds that hold the lock of its command line (``pid_lock.signal_holders``) and starts beside
them, so an hourly build that overran hands the rest of its work to the next one instead of
blocking it, and no task is cut off half-way. Without a handler, SIGUSR1 would end Python at
once, with the running tries. ``ductwork build`` and the ``luigi`` shim install it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class PhaseOut:
    """Whether the build was told to stop taking new tasks (``told``)."""

    def __init__(self) -> None:
        self.told = False

    def install(self) -> bool:
        """Handle SIGUSR1 from now on, for the rest of the process: a signal that comes after the
        build (while the process prints its summary and exits, still listed in the pid file)
        must not kill it either. Returns whether it could (only the main thread may, and not
        every platform has SIGUSR1)."""
        usr1 = getattr(signal, "SIGUSR1", None)
        if usr1 is None or threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(usr1, self._on_signal)
        signal.siginterrupt(usr1, False)  # a task's system call in progress goes on (as Luigi's)
        return True

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.told = True  # only a flag: the handler may run in the middle of any code, logging's too

    def reason(self) -> str | None:
        """For the run loop (``run_locally``'s ``wind_down``): once told, why nothing new starts;
        the running tries end, and the run ends with the rest not run, recorded with this."""
        return "stopped taking new tasks on SIGUSR1 (another build's --take-lock)" if self.told else None
