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


class InstancesFailed(FailNow):
    """A mapped task's instances failed: the task fails with them, without a retry, and without
    its failure callbacks and e-mail, which ran for each instance that failed."""


class RescheduleTask(TaskSignal):
    """A sensor in reschedule mode: free the worker slot and try again at ``at``."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(f"rescheduled to {at.isoformat()}")
        self.at = at


class MissingInput(RescheduleTask):
    """An external input is not there yet (Luigi's "missing" category): the task is pending,
    not failed. Under a scheduler it is checked again ``recheck`` seconds later; an in-process
    build (``ductwork build``, ``luigi.build``) does not wait for it and ends unsuccessful."""

    def __init__(self, message: str, *, recheck: float = 60.0) -> None:
        TaskSignal.__init__(self, message)
        self.at = None  # type: ignore[assignment]
        self.recheck = recheck


class ExpandNodes(TaskSignal):
    """A mapped task expanded: add ``nodes`` (its instances) to the run and replace the task's
    own node with ``waiting`` (which waits for them); see ``core.mapping``."""

    def __init__(self, nodes: Sequence[Any], waiting: Any) -> None:
        super().__init__(f"{len(nodes)} mapped instance(s)")
        self.nodes = tuple(nodes)
        self.waiting = waiting


class DynamicDependencies(TaskSignal):
    """A class task's ``run()`` yielded requirements that are not complete yet.

    The engine adds them to the run's graph, runs them, and then runs this task again (as Luigi
    does, ``run()`` starts over and its ``yield`` now returns at once).
    """

    def __init__(self, tasks: Sequence[Any]) -> None:
        super().__init__(f"{len(tasks)} new dependencies")
        self.tasks = list(tasks)
