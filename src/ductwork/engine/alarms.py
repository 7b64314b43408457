"""Call-backs for tries that are still running after a delay, from one thread per process.

An in-process run treats a try as short until it has run half a second: its log stays in memory
(``engine.packed_logs``) and, when it runs alone in the run loop's own thread, the record hears
of its start only when it ends. A try still running after that delay gets its own log file and
its start recorded (``executors.inline``). A timer thread per try would cost more than a short
try itself, so one thread serves every alarm; it sleeps while none is set.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Alarm:
    """A set alarm (pass it to ``Alarms.cancel``)."""

    __slots__ = ("at", "callback")

    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at = at
        self.callback = callback


class Alarms:
    def __init__(self) -> None:
        self._reset()
        self._fork_safe = False

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._set: set[Alarm] = set()
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")

    def set(self, delay: float, callback: Callable[[], None]) -> Alarm:
        """Call ``callback`` (in the alarms' thread) in ``delay`` seconds unless cancelled first."""
        alarm = Alarm(time.monotonic() + delay, callback)
        with self._cond:
            self._set.add(alarm)
            if self._thread is None or not self._thread.is_alive():
                if not self._fork_safe:  # a forked child starts with no alarms and no thread
                    os.register_at_fork(after_in_child=self._reset)
                    self._fork_safe = True
                self._thread = threading.Thread(target=self._loop, name="ductwork-alarms", daemon=True)
                self._thread.start()
            elif alarm.at < self._wakes_at:
                self._cond.notify()
        return alarm

    def cancel(self, alarm: Alarm) -> None:
        with self._cond:
            self._set.discard(alarm)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [a for a in self._set if a.at <= now]
                self._set.difference_update(due)
                if not due:
                    self._wakes_at = min((a.at for a in self._set), default=float("inf"))
                    self._cond.wait(None if self._wakes_at == float("inf") else self._wakes_at - now)
                    self._wakes_at = float("inf")
                    continue
            for alarm in sorted(due, key=lambda a: a.at):
                try:
                    alarm.callback()
                except Exception:  # a failed call-back must not stop the others
                    log.exception("an alarm's call-back failed")


ALARMS = Alarms()
"""The process's alarms (its thread starts with the first alarm set)."""
