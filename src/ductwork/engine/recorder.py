"""An event sink that keeps a run's history in memory and summarizes it.

The in-process runner prints its table from this, and ``ductwork.testing`` answers assertions
from it; the persistent store records the same events in the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.results import MISSING, RETURN_VALUE, MemoryResults
from ductwork.core.states import RunState, TaskState
from ductwork.engine.supervisor import EngineEvent, NodesAdded, RunEnded, StateChanged, TryBegan, TryEnded


@dataclass
class TryInfo:
    try_number: int
    state: TaskState
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    error: str | None = None
    traceback: str | None = None
    rendered: dict[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    log_range: tuple[int, int] | None = None
    """(offset, bytes) of this try's text in ``log_path`` when that is the run's pack of short
    tries' logs (ADR 0018); ``None`` when ``log_path`` is the try's own file."""
    reused_from: str | None = None
    """``cache="content"``: up to date, the results of this run were reused (the code did not run)."""

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class TaskSummary:
    task_id: str
    state: TaskState = TaskState.NONE
    tries: list[TryInfo] = field(default_factory=list)
    reason: str = ""
    already_complete: bool = False

    @property
    def reused_from(self) -> str | None:
        """The run whose results the task's last try reused (it was up to date), or None."""
        return self.tries[-1].reused_from if self.tries else None


@dataclass
class RunSummary:
    """What happened in one run."""

    flow_id: str
    run_id: str
    graph: FlowGraph
    results: MemoryResults
    state: RunState = RunState.RUNNING
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    tasks: dict[str, TaskSummary] = field(default_factory=dict)
    logs: Mapping[tuple[str, int], str] = field(default_factory=dict)
    """Each try's log text by (task id, try number); read from its file when asked for."""
    reason: str = ""
    """Why the run ended as it did when its tasks did not decide it (its ``run_timeout`` passed)."""

    @property
    def key(self) -> str:
        return f"{self.flow_id}/{self.run_id}"

    def __getitem__(self, task_id: str) -> TaskSummary:
        return self.tasks[task_id]

    @property
    def task_states(self) -> dict[str, TaskState]:
        return {t: s.state for t, s in self.tasks.items()}

    @property
    def any_failed(self) -> bool:
        return any(s.state.is_failure for s in self.tasks.values())

    def result(self, task_id: str, key: str = RETURN_VALUE) -> Any:
        if task_id not in self.tasks:
            from ductwork.errors import did_you_mean

            raise KeyError(f"no task {task_id!r} in this run.{did_you_mean(task_id, self.tasks)}")
        value = self.results.pull(self.key, task_id, key)
        if value is MISSING:
            raise KeyError(f"task {task_id!r} has no result under key {key!r}")
        return value

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for summary in self.tasks.values():
            out[summary.state.value] = out.get(summary.state.value, 0) + 1
        return out


class MemoryRecorder:
    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        for node in summary.graph:
            self._add(node)

    def _add(self, node: NodeSpec) -> None:
        if node.task_id not in self.summary.tasks:
            complete = bool(node.extra.get("already_complete"))
            self.summary.tasks[node.task_id] = TaskSummary(
                node.task_id,
                state=TaskState.SUCCESS if complete else TaskState.NONE,
                reason="already complete" if complete else "",
                already_complete=complete,
            )

    def record(self, events: Sequence[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, StateChanged):
                task = self.summary.tasks[event.change.task_id]
                task.state = event.change.new
                task.reason = event.change.reason
            elif isinstance(event, TryBegan):
                self.summary.tasks[event.task_id].tries.append(
                    TryInfo(event.try_number, TaskState.RUNNING, started_at=event.at)
                )
            elif isinstance(event, TryEnded):
                self._try_ended(event)
            elif isinstance(event, NodesAdded):
                self.summary.graph = self.summary.graph.with_nodes(event.nodes)
                for node in event.nodes:
                    self._add(node)
            elif isinstance(event, RunEnded):
                self.summary.state = event.state
                self.summary.ended_at = event.at
                self.summary.reason = event.reason

    def _try_ended(self, event: TryEnded) -> None:
        task = self.summary.tasks[event.task_id]
        outcome = event.outcome
        current = next((t for t in reversed(task.tries) if t.try_number == event.try_number), None)
        if outcome.state == TaskState.NONE:
            # Waiting for dynamic dependencies: not a try; the same try number runs again later.
            if current is not None:
                task.tries.remove(current)
            return
        if current is None or current.state != TaskState.RUNNING:
            current = TryInfo(event.try_number, outcome.state, started_at=outcome.started_at)
            task.tries.append(current)
        current.state = outcome.state
        current.ended_at = outcome.ended_at
        current.error = outcome.error
        current.traceback = outcome.traceback
        current.rendered = outcome.rendered
        current.reused_from = outcome.reused_from


def states_from_nodes(nodes: Mapping[str, NodeSpec]) -> dict[str, TaskState]:
    """Initial states for a new run: class tasks found complete at build time start as success."""
    return {t: TaskState.SUCCESS for t, n in nodes.items() if n.extra.get("already_complete")}
