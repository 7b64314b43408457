"""Plain-data records of what happens to runs and tries, shared by the engine and the store.

The engine produces them (``execute_try`` returns a ``TryOutcome``; the supervisor hands
``EngineEvent`` batches to its sinks) and the store persists them; keeping them here, in the
pure core, lets the store depend on them without depending on the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ductwork.core.graph import NodeSpec
from ductwork.core.states import RunState, TaskState


@dataclass
class TryOutcome:
    """How a try ended, as plain data that can cross a process boundary."""

    state: TaskState
    started_at: dt.datetime
    ended_at: dt.datetime
    error: str | None = None
    traceback: str | None = None
    next_try_at: dt.datetime | None = None
    skip: tuple[str, ...] = ()
    skip_recursive: bool = False
    new_nodes: tuple[NodeSpec, ...] = ()
    rendered: dict[str, Any] = field(default_factory=dict)
    result_keys: tuple[str, ...] = ()
    missing: bool = False
    """The try found an external input missing (pending, checked again later), not a failure."""
    asset_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The assets a successful try updated (its outlets), each with the extra the task gave it."""
    reused_from: str | None = None
    """``cache="content"``: the run whose results this try took as its own (it was up to date and
    its code did not run), so that a run's own summary can say so without asking the store."""
    alerts_due: bool = False
    """The try ended without running its callbacks or failure e-mail (a timeout, a worker that
    died): the scheduler has them called (``engine.lost_try_alerts``)."""

    @property
    def duration(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def begun_at(self, at: dt.datetime) -> TryOutcome:
        """This outcome of a try its worker took at ``at``, before loading its task: the start
        recorded for the try is then, and its duration must run from it too (it ran from the
        task's own start: 0.02 s shown for a try whose start and end were 3 s apart, the time
        its worker spent importing the flow file on a busy machine)."""
        return replace(self, started_at=at) if at < self.started_at else self


@dataclass(frozen=True)
class StateChanged:
    run_key: str
    change: StateChange
    at: dt.datetime
    try_number: int


@dataclass(frozen=True)
class TryBegan:
    run_key: str
    task_id: str
    try_number: int
    at: dt.datetime
    worker: str
    """The host (or thread) running the try."""
    log_path: str | None = None
    pid: int | None = None
    rendered: Mapping[str, Any] | None = None
    """The try's template fields as rendered (secrets masked), when known at its start: shown
    while it runs, as Airflow's rendered fields are."""


@dataclass(frozen=True)
class TryRendered:
    """A running try's rendered fields, known after its ``TryBegan`` was sent."""

    run_key: str
    task_id: str
    try_number: int
    rendered: Mapping[str, Any]


@dataclass(frozen=True)
class TryEnded:
    run_key: str
    task_id: str
    try_number: int
    outcome: TryOutcome


@dataclass(frozen=True)
class NodesAdded:
    run_key: str
    nodes: tuple[NodeSpec, ...]


@dataclass(frozen=True)
class RunEnded:
    run_key: str
    state: RunState
    at: dt.datetime
    reason: str = ""
    """Why, when the run did not simply end with its tasks (its ``run_timeout`` passed)."""


EngineEvent = StateChanged | TryBegan | TryRendered | TryEnded | NodesAdded | RunEnded


class EventSink(Protocol):
    def record(self, events: Sequence[EngineEvent]) -> None:
        """Persist or show one step's events, in order."""
        ...


@dataclass(frozen=True, slots=True)
class StateChange:
    """One task's state change, with the reason it was made."""

    task_id: str
    old: TaskState
    new: TaskState
    reason: str = ""
