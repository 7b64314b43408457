"""Login throttling: how many wrong passwords a user name, or an address, may try, and how many
password hashes the server computes at once.

Checking a password costs an argon2 hash on purpose (64 MiB and tens of milliseconds), which is
what makes a stolen hash expensive to crack; unbounded, it makes logins a way to exhaust the
server's memory (60 parallel attempts took a standalone from 173 MB to 2.66 GB) and lets anyone
guess about ten passwords a second. So:

- after ``login_max_failures`` failed logins for one user name within ``login_failure_window``
  seconds, further attempts for that name are refused, without computing a hash, until the
  oldest of those failures is older than the window (``login_max_failures_per_address`` does
  the same for one client address, across user names);
- at most ``login_concurrency`` hashes are computed at once; attempts beyond that wait, and when
  too many already wait the attempt is turned away at once rather than queued.

The counts live in the web server's memory (one process): several web servers each keep their
own, and a restart forgets them. A successful login clears its user name's failures.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_KEYS = 100_000
"""Failures remembered for at most this many names and addresses (the oldest are forgotten)."""


@dataclass
class _Window:
    limit: int
    seconds: float
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        if self.limit <= 0:
            return 0.0
        recent = self._recent(key, now)
        if recent is None or len(recent) < self.limit:
            return 0.0
        return max(0.0, recent[-self.limit] + self.seconds - now)

    def fail(self, key: str, now: float) -> int:
        recent = self._recent(key, now)
        if recent is None:
            if len(self.failures) >= MAX_KEYS:
                self._forget(now)
            recent = self.failures[key] = deque(maxlen=max(self.limit, 1))
        recent.append(now)
        return len(recent)

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        recent = self.failures.get(key)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.seconds:
            recent.popleft()
        if not recent:
            del self.failures[key]
            return None
        return recent

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self.failures.items() if not v or v[-1] <= now - self.seconds]:
            del self.failures[key]
        while len(self.failures) >= MAX_KEYS:  # still full: forget the oldest names
            del self.failures[next(iter(self.failures))]


class LoginThrottle:
    """Failed logins per user name and per address in a sliding window (see the module docstring)."""

    def __init__(
        self,
        *,
        per_account: int = 5,
        per_address: int = 20,
        window: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = _Window(per_account, window)
        self.addresses = _Window(per_address, window)
        self.clock = clock

    def retry_after(self, username: str, address: str) -> int:
        """Whole seconds until this attempt may be checked; 0 when it may be now."""
        now = self.clock()
        wait = max(self.accounts.wait(username, now), self.addresses.wait(address, now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str) -> tuple[int, int]:
        """Record a failed login; (failures of the name, failures of the address) in the window."""
        now = self.clock()
        return self.accounts.fail(username, now), self.addresses.fail(address, now)

    def succeeded(self, username: str) -> None:
        self.accounts.clear(username)
