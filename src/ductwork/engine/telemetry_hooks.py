"""Where the scheduler meets the telemetry port: a sample of what it holds, and a sink that
times the database writes. Used only when telemetry is configured."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ductwork.core.events import EngineEvent, EventSink
from ductwork.core.states import TaskState
from ductwork.core.telemetry import Sample
from ductwork.engine.supervisor import Supervisor

_WAITING = (TaskState.SCHEDULED, TaskState.QUEUED)


class TimedSink:
    """An event sink that reports how long the sink it wraps took to record each step."""

    def __init__(self, sink: EventSink, report: Callable[[float], None]) -> None:
        self.sink = sink
        self.report = report

    def record(self, events: Sequence[EngineEvent]) -> None:
        started = time.perf_counter()
        self.sink.record(events)
        if events:
            self.report(time.perf_counter() - started)


def sample_of(supervisor: Supervisor, executor: Any) -> Sample:
    """Task states of the active runs by flow, queue depth, slots (tries running out of the
    executor's worker processes) and pools, workers."""
    tasks: dict[tuple[str, str], int] = {}
    runs: dict[str, int] = {}
    waiting = running = in_flight = 0
    for run in supervisor.runs.values():
        flow = run.info.flow_id
        runs[flow] = runs.get(flow, 0) + 1
        for state in run.tracker.state.values():
            key = (flow, state.value)
            tasks[key] = tasks.get(key, 0) + 1
            if state in _WAITING:
                waiting += 1
            elif state == TaskState.RUNNING:
                running += 1
        in_flight += len(run.in_flight)
    free = max(0, int(executor.free_slots())) if executor is not None else 0
    total = getattr(executor, "parallelism", None)
    pids = getattr(executor, "worker_pids", None)
    limits = supervisor.limits
    return Sample(
        tasks=tasks,
        runs=runs,
        queue_depth=waiting,
        slots_in_use=running,
        slots_total=int(total) if isinstance(total, int) else in_flight + free,
        pools_in_use={k: v for k, v in limits.pool_used.items() if v or k in limits.pools},
        pools_total=dict(limits.pools),
        workers=len(pids()) if callable(pids) else 0,
    )
