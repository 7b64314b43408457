"""The executor port: how the engine hands tries to whatever runs them.

Five verbs, nothing else: ``submit`` a try, ``wait`` for state events, ``heartbeat`` (check that
what runs the tries is alive, reporting lost tries as events), ``cancel`` a try, and
``shutdown``. The in-process executor, the local worker pool and remote executors (Celery,
Kubernetes) all fit this shape; the engine never learns which one it drives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.engine.execution import TryOutcome


@dataclass(frozen=True, slots=True)
class TryKey:
    """One try of one task of one run; ``run_key`` is ``RunInfo.key`` (flow id / run id)."""

    run_key: str
    task_id: str
    try_number: int


def try_name(key: TryKey) -> str:
    """A try as a log line names it: ``etl/manual__2024-06-01 load #2`` (the task alone did not
    say which run, with two runs of one flow in flight)."""
    return f"{key.run_key} {key.task_id} #{key.try_number}"


@dataclass(frozen=True)
class TryRequest:
    """Everything needed to execute one try, as plain data.

    ``flow_file`` (the file the run's flow is defined in) and ``param_sources``
    (``ParamSources.to_dict()`` of the run) are for executors that run tries in other
    processes: a worker imports the flow from that file and resolves class-task config from
    those sources. Both are properties of the run; executors may send them once per run.
    """

    key: TryKey
    node: NodeSpec
    run: RunInfo
    downstream: tuple[str, ...] = ()
    log_path: str | None = None
    max_tries: int | None = None
    """The last try number allowed (grows when the task is cleared); None: retries + 1."""
    resumed: bool = False
    """The try continues after a reschedule: its results so far are kept."""
    flow_file: str | None = None
    param_sources: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TryStarted:
    key: TryKey
    at: dt.datetime
    worker: str = ""
    """The host (or thread) running the try."""
    pid: int | None = None
    rendered: Mapping[str, Any] | None = None
    """Its template fields as rendered, when known when its start is reported."""


@dataclass(frozen=True)
class TryFinished:
    key: TryKey
    outcome: TryOutcome


@dataclass(frozen=True)
class FieldsRendered:
    """A running try's template fields, rendered after its start was reported (a worker
    reports a start within milliseconds; the first render of a flow can take longer)."""

    key: TryKey
    rendered: Mapping[str, Any]


ExecutorEvent = TryStarted | TryFinished | FieldsRendered


class Executor(Protocol):
    def start(self) -> None: ...

    def free_slots(self) -> int:
        """How many more tries may be submitted now."""
        ...

    def submit(self, request: TryRequest) -> None: ...

    def submitted(self) -> None:
        """The step's tries are all submitted: an executor that groups them (several tries per
        broker message) sends them now; the others sent each one in ``submit``."""
        ...

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        """Events that happened since the last call; blocks up to ``timeout`` for the first."""
        ...

    def heartbeat(self) -> list[ExecutorEvent]:
        """Check liveness; tries whose runner died come back as failed ``TryFinished`` events."""
        ...

    def cancel(self, key: TryKey, reason: str) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...
