"""Time as an injected dependency, so rules and tests never call the wall clock directly."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a frozen clock advances instead of blocking."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FrozenClock:
    """A clock that only moves when told to (``advance``) or when someone sleeps on it.

    Retry delays therefore cost no real time in tests, and ``now`` is the same everywhere.
    """

    def __init__(self, at: dt.datetime | str = "2024-01-01T00:00:00+00:00") -> None:
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        self._now = at
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta | float) -> None:
        if not isinstance(delta, dt.timedelta):
            delta = dt.timedelta(seconds=delta)
        with self._lock:
            self._now += delta

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
