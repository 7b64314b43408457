"""Airflow's ``dag_run`` as tasks and DAG callbacks see it, and its pendulum dates: apart from
the task context (``_context``) so that the DAG class can build one for its callbacks without an
import cycle.

What only the metadata database knows (the run's start and end, its task instances' states) is
read from the store the try's runtime lends (``context["store"]``) when asked, not when the
context is built: most tries never ask, and each question is one short transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import AirflowException


def to_pendulum(value: dt.datetime | None) -> Any:
    if value is None:
        return None
    import pendulum

    return pendulum.instance(value).in_timezone("UTC")


@dataclass
class RecordedTaskInstance:
    """A task instance of the run as the metadata database holds it (what
    ``dag_run.get_task_instances()`` returns): its identity and state."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    logical_date: Any = None

    @property
    def execution_date(self) -> Any:
        return self.logical_date

    def current_state(self, session: Any = None) -> str | None:
        return self.state

    @property
    def log_url(self) -> str:
        """The task's page in the web UI, as a try's ``ti.log_url`` (what DAG failure callbacks
        put in their alerts)."""
        import os
        import urllib.parse

        base = os.environ.get("AIRFLOW__WEBSERVER__BASE_URL", "").strip() or "http://localhost:8080"
        task_id = self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"
        flow_id, run_id, task = (urllib.parse.quote(p, safe="") for p in (self.dag_id, self.run_id, task_id))
        return f"{base.rstrip('/')}/flows/{flow_id}/runs/{run_id}/tasks/{task}"


@dataclass
class DagRunView:
    """``dag_run``: the run a try belongs to, with Airflow's attribute names."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: Any
    data_interval_start: Any
    data_interval_end: Any
    conf: dict[str, Any] = field(default_factory=dict)
    dag: Any = None
    external_trigger: bool = False
    state: str = "running"
    store: Any = field(default=None, repr=False, compare=False)
    """The store the try's runtime lends (``core.task_services.FlowStore``), or None (a run that
    records nothing)."""
    current_task: str | None = None
    """The task whose try this is (None for a DAG callback): in ``current_state``, whatever is
    recorded."""
    current_state: str = "running"
    """What the try's callbacks see as its state (``failed`` in ``on_failure_callback``...)."""

    @property
    def execution_date(self) -> Any:
        return self.logical_date

    @property
    def start_date(self) -> Any:
        """When the run started, as recorded; None when nothing is recorded."""
        view = self._recorded()
        return to_pendulum(view.start_date) if view is not None else None

    @property
    def end_date(self) -> Any:
        view = self._recorded()
        return to_pendulum(view.end_date) if view is not None else None

    def get_task_instance(self, task_id: str, session: Any = None, map_index: int = -1) -> Any:
        """The task instance ``task_id`` (``map_index``: one instance of a mapped task) as
        recorded now; None when the run has no such task."""
        for ti in self.get_task_instances():
            if ti.task_id == task_id and ti.map_index == map_index:
                return ti
        return None

    def get_task_instances(self, state: Any = None, session: Any = None) -> list[RecordedTaskInstance]:
        """The run's task instances as recorded now (a mapped task's instances, each with its
        ``map_index``), those in ``state`` (one state or several; None is "no state yet") when
        given. A try whose runtime records nothing (``ductwork run --no-record``,
        ``dag.test()``) has none to read: an error says so, where an empty list would let a
        task that checks its run's failures pass."""
        view = self._recorded(settled=True)
        if view is None:
            raise AirflowException(
                f"dag_run.get_task_instances() of run {self.run_id!r} reads the run's task states from "
                "the metadata database, and this try has none (`ductwork run --no-record`, "
                "`dag.test()`, ductwork.testing): run the DAG with a recorded `ductwork run` or the scheduler"
            )
        states = dict(view.task_states)
        if self.current_task in states:
            states[self.current_task] = self.current_state
        mapped = {task_id.split("[", 1)[0] for task_id in states if task_id.endswith("]")}
        found = []
        for task_id, value in states.items():
            name, map_index = _split_map_index(task_id)
            if map_index == -1 and name in mapped:
                continue  # the task that gathers its instances' results: Airflow has no such instance
            found.append(
                RecordedTaskInstance(
                    self.dag_id,
                    self.run_id,
                    name,
                    map_index,
                    None if value == "none" else value,
                    self.logical_date,
                )
            )
        wanted = _wanted_states(state)
        return found if wanted is None else [ti for ti in found if ti.state in wanted]

    def callback_task_instance(self) -> RecordedTaskInstance | None:
        """The task instance Airflow puts in a DAG callback's context (``ti``, ``task_instance``):
        for a failed run one that failed, else the run's last; None when the run's tasks cannot
        be read (nothing recorded), so that the context is still built."""
        try:
            instances = [ti for ti in self.get_task_instances() if ti.state != "removed"]
        except Exception:  # no record to read, a database that does not answer: no ti
            return None
        if self.state == "failed":
            failed = [ti for ti in instances if ti.state == "failed"]
            instances = failed or instances
        return instances[-1] if instances else None

    def _recorded(self, *, settled: bool = False) -> Any:
        """The run as recorded; with ``settled``, once the record has caught up with this try.

        The scheduler (and `ductwork run`) write state changes in batches, in the order they
        happened, and may start a task before the batch with its upstream tasks' ends is
        written: a task reading its run at once could see them still running. Once this
        task's own start (queued or later) is recorded, everything before it is too."""
        if self.store is None:
            return None
        view = self.store.get_run(self.dag_id, self.run_id)
        if not settled or self.current_task is None:
            return view
        deadline = time.monotonic() + _SETTLE_TIMEOUT
        while view is not None and view.task_states.get(self.current_task, "none") in _NOT_STARTED:
            if time.monotonic() >= deadline:
                break  # not recorded as started (a runtime that writes less): what there is
            time.sleep(0.02)
            view = self.store.get_run(self.dag_id, self.run_id)
        return view


class SummaryStore:
    """The run `ductwork run` has just ended, from its summary, as a store answers for it."""

    def __init__(self, summary: Any, logical_date: dt.datetime) -> None:
        self.summary = summary
        self.logical_date = logical_date

    def get_run(self, flow_id: str, run_id: str) -> Any:
        from ductwork.core.task_services import RunView

        summary = self.summary
        if summary.flow_id != flow_id or summary.run_id != run_id:
            return None
        return RunView(
            flow_id,
            run_id,
            summary.state.value,
            self.logical_date,
            {task_id: str(getattr(s, "value", s)) for task_id, s in summary.task_states.items()},
            start_date=summary.started_at,
            end_date=summary.ended_at,
        )


class ConfiguredStore:
    """The metadata database this process is configured for, opened for each question (a DAG
    callback asks once or twice, in a process that lives for that callback)."""

    def get_run(self, flow_id: str, run_id: str) -> Any:
        from ductwork.engine.services_setup import existing_database
        from ductwork.engine.task_env import secrets_environ
        from ductwork.services.flow_store import SqlFlowStore
        from ductwork.settings import Settings

        # the database URL is withheld from user code's os.environ (engine.task_env)
        engine = existing_database(Settings.load(environ=secrets_environ()))
        if engine is None:
            return None
        try:
            return SqlFlowStore(engine).get_run(flow_id, run_id)
        finally:
            engine.dispose()


_NOT_STARTED = frozenset({"none", "scheduled"})
_SETTLE_TIMEOUT = 10.0
"""Seconds a try waits for the record of its own start (batches are written every few
milliseconds; a database that does not answer for this long is answered with what it has)."""


def _split_map_index(task_id: str) -> tuple[str, int]:
    """``"double[2]"`` is instance 2 of ``double``; any other id is an unmapped task (-1)."""
    if task_id.endswith("]") and "[" in task_id:
        name, _, index = task_id[:-1].rpartition("[")
        if index.isdigit():
            return name, int(index)
    return task_id, -1


def _wanted_states(state: Any) -> set[str | None] | None:
    if state is None:
        return None
    values: Iterable[Any] = [state] if isinstance(state, str) else state
    return {None if v is None else str(getattr(v, "value", v)) for v in values}
