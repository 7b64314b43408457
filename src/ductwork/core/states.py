"""Task and run states, and the state machine written as data.

The table ``TRANSITIONS`` is the whole automatic lifecycle of a task try; manual operations
(clear, mark success, mark failed) are the only other way a state may change, and they are
listed in ``MANUAL_TARGETS``. Every writer of task state (the in-process runner, the scheduler,
the workers, the API) goes through ``check_transition`` so that no layer invents its own rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from ductwork.errors import InvalidTransitionError


class TaskState(StrEnum):
    """The state of one task in one run."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_failure(self) -> bool:
        return self in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)


class RunState(StrEnum):
    """The state of a whole run of a flow."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (RunState.SUCCESS, RunState.FAILED)


TERMINAL: frozenset[TaskState] = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED}
)
"""States after which a task will not change again unless someone clears or marks it."""

ACTIVE: frozenset[TaskState] = frozenset({TaskState.QUEUED, TaskState.RUNNING})
"""States in which a try occupies (or is about to occupy) a worker slot."""

WAITING: frozenset[TaskState] = frozenset(
    {TaskState.NONE, TaskState.SCHEDULED, TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE}
)
"""States of a task that has not finished and holds no worker slot."""

_S = TaskState

TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    # Waiting for upstream: becomes ready, or is decided without running by its trigger rule.
    _S.NONE: frozenset({_S.SCHEDULED, _S.SKIPPED, _S.UPSTREAM_FAILED, _S.SUCCESS}),
    # Ready: handed to an executor, or overtaken by a branch or short-circuit decision.
    _S.SCHEDULED: frozenset({_S.QUEUED, _S.SKIPPED, _S.UPSTREAM_FAILED, _S.NONE}),
    # With an executor: it starts, or the executor loses it before it starts.
    _S.QUEUED: frozenset({_S.RUNNING, _S.SCHEDULED, _S.FAILED, _S.UP_FOR_RETRY}),
    # Executing: it ends, asks to be retried or rescheduled, or yields dynamic
    # dependencies and goes back to waiting for them (NONE).
    _S.RUNNING: frozenset(
        {
            _S.SUCCESS,
            _S.FAILED,
            _S.UP_FOR_RETRY,
            _S.UP_FOR_RESCHEDULE,
            _S.SKIPPED,
            _S.NONE,
        }
    ),
    _S.UP_FOR_RETRY: frozenset({_S.SCHEDULED, _S.QUEUED, _S.SKIPPED, _S.UPSTREAM_FAILED}),
    _S.UP_FOR_RESCHEDULE: frozenset({_S.SCHEDULED, _S.QUEUED, _S.SKIPPED, _S.UPSTREAM_FAILED}),
    _S.SUCCESS: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
    _S.UPSTREAM_FAILED: frozenset(),
}

MANUAL_TARGETS: frozenset[TaskState] = frozenset({_S.NONE, _S.SUCCESS, _S.FAILED, _S.SKIPPED})
"""States a person may set by hand from any state: clear (NONE), mark success/failed/skipped."""


def can_transition(old: TaskState, new: TaskState, *, manual: bool = False) -> bool:
    """Whether ``old -> new`` is allowed; ``manual`` admits clear and mark operations."""
    if old == new:
        return False
    if manual and new in MANUAL_TARGETS:
        return True
    return new in TRANSITIONS[old]


def check_transition(task_id: str, old: TaskState, new: TaskState, *, manual: bool = False) -> None:
    """Raise ``InvalidTransitionError`` naming the task when ``old -> new`` is not allowed."""
    if not can_transition(old, new, manual=manual):
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing (terminal)"
        raise InvalidTransitionError(
            f"task {task_id!r}: cannot go from {old.value} to {new.value}; from {old.value} it may go to {allowed}"
        )


def run_state_of(states: Mapping[str, TaskState], leaves: Iterable[str]) -> RunState:
    """The state of a run given its task states.

    Like Airflow, a finished run is failed when one of its leaf tasks failed or had an upstream
    failure; a failure that a downstream ``all_done`` task absorbed does not fail the run.
    """
    if any(not s.is_terminal for s in states.values()):
        return RunState.RUNNING
    if any(states[leaf].is_failure for leaf in leaves if leaf in states):
        return RunState.FAILED
    return RunState.SUCCESS
