"""Exceptions task code raises to steer the engine rather than to report a bug."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any


class TaskSignal(Exception):
    """Base of the control-flow exceptions; none of them is a failure in itself."""


class SkipTask(TaskSignal):
    """End this try as ``skipped`` (Airflow's AirflowSkipException)."""


class FailNow(TaskSignal):
    """End this try as ``failed`` without using the remaining retries."""


class RescheduleTask(TaskSignal):
    """A sensor in reschedule mode: free the worker slot and try again at ``at``."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(f"rescheduled to {at.isoformat()}")
        self.at = at


class DynamicDependencies(TaskSignal):
    """A class task's ``run()`` yielded requirements that are not complete yet.

    The engine adds them to the run's graph, runs them, and then runs this task again (as Luigi
    does, ``run()`` starts over and its ``yield`` now returns at once).
    """

    def __init__(self, tasks: Sequence[Any]) -> None:
        super().__init__(f"{len(tasks)} new dependencies")
        self.tasks = list(tasks)
