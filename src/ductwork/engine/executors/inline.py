"""The in-process executor: tries run in threads of the calling process.

It is what ``ductwork run``, ``ductwork build`` and ``ductwork.testing`` use: no database, no
worker processes, results in memory. Parallelism is a thread pool (``--workers N``). A try that
exceeds its execution timeout (measured on the monotonic clock) is reported failed at once and
its operator's ``on_kill`` stops any process it started; Python code in the thread cannot be
interrupted, which is why the worker pool (separate processes) is the executor for production.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ductwork.core.clock import Clock
from ductwork.core.executable import Executable
from ductwork.core.graph import NodeSpec
from ductwork.core.results import ResultBackend
from ductwork.core.states import TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine import logcapture
from ductwork.engine.execution import TryOutcome, execute_try
from ductwork.engine.executor import ExecutorEvent, TryFinished, TryKey, TryRequest, TryStarted
from ductwork.engine.rules import after_failure

Resolver = Callable[[NodeSpec], Executable]


class InProcessExecutor:
    def __init__(
        self,
        resolver: Resolver,
        results: ResultBackend,
        clock: Clock,
        *,
        parallelism: int = 1,
        services: TaskServices | None = None,
    ) -> None:
        self.resolver = resolver
        self.services = services
        self.results = results
        self.clock = clock
        self.parallelism = max(1, parallelism)
        self._events: queue.SimpleQueue[ExecutorEvent] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[TryKey, tuple[TryRequest, float | None, list[Executable]]] = {}
        self._abandoned: set[TryKey] = set()
        self._lock = threading.Lock()
        self.sinks: dict[TryKey, logcapture.TrySink] = {}

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="ductwork-try")

    def free_slots(self) -> int:
        with self._lock:
            return self.parallelism - len(self._running)

    def submit(self, request: TryRequest) -> None:
        self.start()
        assert self._pool is not None
        timeout = request.node.execution_timeout
        deadline = time.monotonic() + timeout if timeout else None
        holder: list[Executable] = []
        with self._lock:
            self._running[request.key] = (request, deadline, holder)
        context = contextvars.copy_context()
        self._pool.submit(context.run, self._execute, request, holder)

    def _execute(self, request: TryRequest, holder: list[Executable]) -> None:
        sink = logcapture.TrySink(Path(request.log_path) if request.log_path else None)
        self.sinks[request.key] = sink
        try:
            executable = self.resolver(request.node)
            self._events.put(TryStarted(request.key, self.clock.now(), threading.current_thread().name))
            outcome = execute_try(
                executable,
                node=request.node,
                run=request.run,
                try_number=request.key.try_number,
                results=self.results,
                downstream=request.downstream,
                clock=self.clock,
                sink=sink,
                on_started=holder.append,
                max_tries=request.max_tries,
                resumed=request.resumed,
                services=self.services,
            )
        except Exception as exc:  # resolving the task failed: the try fails like any other error
            now = self.clock.now()
            state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
            sink.write(f"could not load task {request.key.task_id!r}: {exc}\n")
            outcome = TryOutcome(state, now, now, error=f"could not load task: {exc}", next_try_at=next_at)
        finally:
            sink.close()
        with self._lock:
            self._running.pop(request.key, None)
            if request.key in self._abandoned:
                self._abandoned.discard(request.key)
                return
        self._events.put(TryFinished(request.key, outcome))

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        deadline_timeout = self._next_deadline_in()
        if deadline_timeout is not None:
            timeout = deadline_timeout if timeout is None else min(timeout, deadline_timeout)
        events: list[ExecutorEvent] = []
        try:
            events.append(
                self._events.get(timeout=timeout) if timeout is None or timeout > 0 else self._events.get_nowait()
            )
        except queue.Empty:
            pass
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        return events + self._expire()

    def _next_deadline_in(self) -> float | None:
        with self._lock:
            deadlines = [d for _, d, _ in self._running.values() if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _expire(self) -> list[ExecutorEvent]:
        now = time.monotonic()
        expired: list[tuple[TryRequest, list[Executable]]] = []
        with self._lock:
            for key, (request, deadline, holder) in list(self._running.items()):
                if deadline is not None and now >= deadline:
                    expired.append((request, holder))
                    del self._running[key]
                    self._abandoned.add(key)
        events: list[ExecutorEvent] = []
        for request, holder in expired:
            for executable in holder:
                executable.on_kill()
            events.append(self._lost(request, f"timed out after {request.node.execution_timeout:g}s"))
        return events

    def _lost(self, request: TryRequest, reason: str) -> TryFinished:
        now = self.clock.now()
        state, next_at = after_failure(request.node, request.key.try_number, now, max_tries=request.max_tries)
        sink = self.sinks.get(request.key)
        if sink is not None:
            sink.write(f"try stopped: {reason}\n")
        return TryFinished(request.key, TryOutcome(state, now, now, error=reason, next_try_at=next_at))

    def heartbeat(self) -> list[ExecutorEvent]:
        return self._expire()

    def cancel(self, key: TryKey, reason: str) -> None:
        with self._lock:
            entry = self._running.pop(key, None)
            if entry is not None:
                self._abandoned.add(key)
        if entry is not None:
            _request, _, holder = entry
            for executable in holder:
                executable.on_kill()
            now = self.clock.now()
            self._events.put(TryFinished(key, TryOutcome(TaskState.FAILED, now, now, error=reason)))

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None
