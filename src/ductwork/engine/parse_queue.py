"""Parsing in the background: the scheduler's loop hands jobs over and never waits for one.

Each job (import a flow file, build a class-task run's graph) runs a child process with a timeout
(``engine.parsing``), from a thread of its own. At most ``processes`` jobs run at once, but a
job that has run longer than ``slow_after`` seconds stops counting: a file that hangs at import
holds neither the scheduler nor the other files, and N such files cost about one timeout, not
N. ``most`` bounds the children alive at once whatever happens. Jobs wait by priority (lower
first), then in the order they came: files that failed last time go after the others.

The queue has no thread of its own: ``pump`` (called every turn of the scheduler's loop) starts
what may start and returns what finished.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

Job = Callable[[threading.Event], Any]
"""A job is called with the queue's stop event (set at shutdown: kill your child and return)."""


@dataclass(order=True)
class _Waiting:
    priority: int
    seq: int
    key: Hashable = field(compare=False)
    job: Job = field(compare=False)


@dataclass
class Finished:
    key: Any
    result: Any = None
    error: BaseException | None = None


class ParseQueue:
    def __init__(self, *, processes: int = 2, slow_after: float = 5.0, most: int = 32) -> None:
        self.processes = max(1, processes)
        self.slow_after = slow_after
        self.most = max(self.processes, most)
        self.stop = threading.Event()
        self._waiting: list[_Waiting] = []
        self._queued: set[Hashable] = set()
        self._running: dict[Hashable, float] = {}
        self._done: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count()

    def add(self, key: Hashable, job: Job, *, priority: int = 0) -> bool:
        """Queue ``job`` under ``key``; False (and nothing queued) if that key is queued or running."""
        if key in self._queued or key in self._running or self.stop.is_set():
            return False
        self._queued.add(key)
        heapq.heappush(self._waiting, _Waiting(priority, next(self._seq), key, job))
        return True

    def busy(self, key: Hashable) -> bool:
        return key in self._queued or key in self._running

    def pump(self) -> list[Finished]:
        """Start the jobs that may start now; the jobs that finished since the last call."""
        finished: list[Finished] = []
        while True:
            try:
                done = self._done.get_nowait()
            except queue.Empty:
                break
            self._running.pop(done.key, None)
            finished.append(done)
        self._threads = [t for t in self._threads if t.is_alive()]
        now = time.monotonic()
        while self._waiting and len(self._running) < self.most and self._active(now) < self.processes:
            waiting = heapq.heappop(self._waiting)
            self._queued.discard(waiting.key)
            self._running[waiting.key] = now
            thread = threading.Thread(
                target=self._run, args=(waiting.key, waiting.job), name="ductwork-parse", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return finished

    def _active(self, now: float) -> int:
        return sum(1 for started in self._running.values() if now - started < self.slow_after)

    def _run(self, key: Hashable, job: Job) -> None:
        try:
            self._done.put(Finished(key, result=job(self.stop)))
        except BaseException as exc:  # reported to the loop, never raised in a thread
            self._done.put(Finished(key, error=exc))

    def next_wakeup(self) -> float | None:
        """Seconds until a running job turns slow and frees a place for one that waits."""
        if not self._waiting or not self._running:
            return None
        now = time.monotonic()
        soonest = min(started + self.slow_after for started in self._running.values())
        return max(0.0, soonest - now)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Drop waiting jobs, tell running ones to stop (their children are killed), and wait a
        little for them."""
        self.stop.set()
        self._waiting.clear()
        self._queued.clear()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
