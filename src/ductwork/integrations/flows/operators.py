"""``ExternalTaskSensor``, ``ExternalTaskMarker`` and ``TriggerFlowOperator``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ductwork.core.clock import SystemClock
from ductwork.core.context import TaskContext
from ductwork.core.graph import EXTERNAL_MARKER
from ductwork.core.operators.base import BaseOperator
from ductwork.core.operators.empty import EmptyOperator
from ductwork.core.sensors import BaseSensorOperator, context_clock
from ductwork.core.signals import SkipTask
from ductwork.core.task_services import FlowStore, RunView, require_store
from ductwork.errors import DefinitionError, NotFoundError, TaskExecutionError

SUCCESS = "success"
TRIGGER_RUN_ID = "trigger_run_id"
"""The key under which ``TriggerFlowOperator`` pushes the run id it triggered (Airflow's)."""
WHEN_EXISTS = ("reuse", "reset", "skip")
FAILED_STATES = ("failed", "upstream_failed")
DateFunction = Callable[..., dt.datetime]


def _states(value: Collection[str], *, owner: str, name: str) -> frozenset[str]:
    if isinstance(value, str):
        raise DefinitionError(f"{owner}: {name} wants a list of states, got the string {value!r}")
    return frozenset(str(getattr(s, "value", s)) for s in value)


def _task_ids(value: Collection[str] | None, *, owner: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise DefinitionError(f"{owner}: external_task_ids wants a list of task ids, got the string {value!r}")
    ids = tuple(str(t) for t in value)
    if len(set(ids)) != len(ids):
        raise DefinitionError(f"{owner}: external_task_ids names a task twice: {list(ids)}")
    return ids


def _check_disjoint(kinds: Mapping[str, frozenset[str]], *, owner: str) -> None:
    """A state may end the wait in one way only."""
    names = list(kinds)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            both = kinds[first] & kinds[second]
            if both:
                raise DefinitionError(f"{owner}: states both {first} and {second}: {', '.join(sorted(both))}")


class ExternalTaskSensor(BaseSensorOperator):
    """Waits for a task of another flow's run (or for the whole run) to reach an allowed state.

    Args:
        external_flow_id: the flow to watch.
        external_task_id: the task to watch; ``None`` watches the run's own state.
        external_task_ids: several tasks to watch (Airflow's meaning): the wait ends when all
            of them are in ``allowed_states``; one in ``failed_states`` fails the sensor, one in
            ``skipped_states`` skips it.
        external_task_group_id: watch every task of that task group (ids ``<group>.``...) of
            the run, as ``external_task_ids``.
        allowed_states: states that end the wait (default ``("success",)``).
        skipped_states: states that end this task as skipped at once (default: none).
        failed_states: states that fail this task at once (default: failed and
            upstream_failed), or skip it with ``soft_fail``; a run that ended without the task
            counts as failed too.
        execution_delta: the watched run's logical date is this much *before* this run's
            (Airflow's meaning); by default the same logical date.
        execution_date_fn: a callable given this run's logical date (and context variables it
            names) that returns the logical date to watch; instead of ``execution_delta``.

    Poke and reschedule modes work as for every sensor; "not yet" includes "that run does
    not exist yet".
    """

    template_fields = ("external_flow_id", "external_task_id", "external_task_ids", "external_task_group_id")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_flow_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Collection[str] = (SUCCESS,),
        failed_states: Collection[str] = FAILED_STATES,
        skipped_states: Collection[str] = (),
        execution_delta: dt.timedelta | None = None,
        execution_date_fn: DateFunction | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"ExternalTaskSensor(task_id={kwargs.get('task_id')!r})"
        if not external_flow_id:
            raise DefinitionError(f"{owner}: external_flow_id must name a flow")
        if execution_delta is not None and execution_date_fn is not None:
            raise DefinitionError(f"{owner}: give execution_delta or execution_date_fn, not both")
        if execution_date_fn is not None and not callable(execution_date_fn):
            raise DefinitionError(f"{owner}: execution_date_fn must be callable")
        ids = _task_ids(external_task_ids, owner=owner)
        if external_task_id is not None and ids:
            if ids != (external_task_id,):
                raise DefinitionError(f"{owner}: give external_task_id or external_task_ids, not both")
            ids = ()
        if len(ids) == 1:  # one id in the list: the same as external_task_id
            external_task_id, ids = ids[0], ()
        if external_task_group_id is not None and (external_task_id is not None or ids):
            raise DefinitionError(f"{owner}: give external_task_group_id alone, without external_task_id(s)")
        kinds = {
            "allowed": _states(allowed_states, owner=owner, name="allowed_states"),
            "skipped": _states(skipped_states, owner=owner, name="skipped_states"),
            "failed": _states(failed_states, owner=owner, name="failed_states"),
        }
        _check_disjoint(kinds, owner=owner)
        super().__init__(**kwargs)
        self.external_flow_id = external_flow_id
        self.external_task_id = external_task_id
        self.external_task_ids = list(ids)
        self.external_task_group_id = external_task_group_id
        self.allowed_states = kinds["allowed"]
        self.skipped_states = kinds["skipped"]
        self.failed_states = kinds["failed"]
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn

    def watched_date(self, context: TaskContext) -> dt.datetime:
        logical_date: dt.datetime = context["logical_date"]
        if self.execution_date_fn is not None:
            from ductwork.core.operators.python import call_with_context

            value = call_with_context(self.execution_date_fn, [logical_date], {}, context)
            if not isinstance(value, dt.datetime):
                raise TaskExecutionError(f"task {self.task_id!r}: execution_date_fn returned {value!r}, not a datetime")
            return value if value.tzinfo is not None else value.replace(tzinfo=logical_date.tzinfo)
        if self.execution_delta is not None:
            return logical_date - self.execution_delta
        return logical_date

    def poke(self, context: TaskContext) -> bool:
        store = require_store(context, f"task {self.task_id!r} (ExternalTaskSensor)")
        when = self.watched_date(context)
        what = self._what(when)
        run = store.find_run(self.external_flow_id, when)
        log = context["log"]
        if run is None:
            log.info("%s: no such run yet", what)
            return False
        if self.external_task_ids or self.external_task_group_id is not None:
            return self._poke_several(run, what, log)
        state = self._state_of(run)
        log.info("%s (run %s): %s", what, run.run_id, state or "not in the run")
        if state in self.allowed_states:
            return True
        self._stop_on(state, f"{what} (run {run.run_id}) is {state}")
        if state is None and run.state in ("success", "failed"):
            raise TaskExecutionError(
                f"task {self.task_id!r}: run {run.run_id} of flow {self.external_flow_id!r} ended "
                f"({run.state}) and has no task {self.external_task_id!r}"
            )
        return False

    def _poke_several(self, run: RunView, what: str, log: Any) -> bool:
        """Several tasks (a list or a group), as Airflow counts them: one failed fails the
        sensor, one skipped skips it, and the wait ends when every one is allowed."""
        if self.external_task_group_id is not None:
            prefix = f"{self.external_task_group_id}."
            ids = [t for t in run.task_states if t.startswith(prefix)]
            missing_text = f"has no task in group {self.external_task_group_id!r}"
        else:
            ids = list(self.external_task_ids)
            missing = [t for t in ids if t not in run.task_states]
            missing_text = f"has no task {', '.join(repr(t) for t in missing)}"
            if missing:
                ids = []
        states = {t: run.task_states[t] for t in ids}
        log.info("%s (run %s): %s", what, run.run_id, ", ".join(f"{t} {s}" for t, s in states.items()) or "none")
        if not ids:
            if run.state in ("success", "failed"):
                raise TaskExecutionError(
                    f"task {self.task_id!r}: run {run.run_id} of flow {self.external_flow_id!r} ended "
                    f"({run.state}) and {missing_text}"
                )
            return False
        for kind in (self.failed_states, self.skipped_states):
            hit = sorted(t for t, s in states.items() if s in kind)
            if hit:
                shown = ", ".join(f"{t!r} ({states[t]})" for t in hit)
                self._stop_on(states[hit[0]], f"{what} (run {run.run_id}): {shown}")
        return all(s in self.allowed_states for s in states.values())

    def _stop_on(self, state: str | None, seen: str) -> None:
        """End the wait when ``state`` is one of the skipped or failed states."""
        if state in self.skipped_states:
            raise SkipTask(f"{seen}, one of skipped_states")
        if state in self.failed_states:
            message = f"task {self.task_id!r}: {seen}"
            if self.soft_fail:
                raise SkipTask(message + "; soft_fail is set, so the task is skipped")
            raise TaskExecutionError(message)

    def _state_of(self, run: RunView) -> str | None:
        if self.external_task_id is None:
            return run.state
        return run.task_states.get(self.external_task_id)

    def _what(self, when: dt.datetime) -> str:
        if self.external_task_group_id is not None:
            target = f"task group {self.external_task_group_id!r} of flow"
        elif self.external_task_ids:
            target = f"tasks {', '.join(repr(t) for t in self.external_task_ids)} of flow"
        else:
            target = f"task {self.external_task_id!r} of flow" if self.external_task_id else "the run of flow"
        return f"{target} {self.external_flow_id!r} for {when.isoformat()}"

    def extra_spec(self) -> dict[str, Any]:
        return {
            **super().extra_spec(),
            "external_flow_id": self.external_flow_id,
            "external_task_id": self.external_task_id,
            "external_task_ids": self.external_task_ids,
            "external_task_group_id": self.external_task_group_id,
        }


class ExternalTaskMarker(EmptyOperator):
    """Clearing this task also clears ``external_task_id`` (and its downstream tasks) in the run
    of ``external_flow_id`` for ``logical_date``, and what that task's own markers point at, at
    most ``recursion_depth`` flows deep: Airflow's recursive clear across DAGs. It runs nothing.

    Args:
        external_flow_id: the flow whose task depends on this one (usually through an
            ``ExternalTaskSensor``).
        external_task_id: that task.
        logical_date: the logical date of the run to clear, a template rendered with this run's
            dates when the clear happens (default: the same logical date).
        recursion_depth: how many markers deep a clear may go before it is refused (a cycle of
            markers, or more than intended).
    """

    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_flow_id: str,
        external_task_id: str,
        logical_date: str = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        owner = f"ExternalTaskMarker(task_id={kwargs.get('task_id')!r})"
        if not external_flow_id or not external_task_id:
            raise DefinitionError(f"{owner}: external_flow_id and external_task_id must name a flow and a task")
        if not isinstance(logical_date, str):
            raise DefinitionError(f"{owner}: logical_date wants a template string, got {logical_date!r}")
        if isinstance(recursion_depth, bool) or not isinstance(recursion_depth, int) or recursion_depth < 1:
            raise DefinitionError(f"{owner}: recursion_depth must be a whole number of 1 or more")
        super().__init__(**kwargs)
        self.external_flow_id = external_flow_id
        self.external_task_id = external_task_id
        self.marker_date = logical_date
        self.recursion_depth = recursion_depth

    def extra_spec(self) -> dict[str, Any]:
        return {
            **super().extra_spec(),
            EXTERNAL_MARKER: {
                "flow": self.external_flow_id,
                "task": self.external_task_id,
                "date": self.marker_date,
                "depth": self.recursion_depth,
            },
        }


def _known_flow(store: FlowStore, flow_id: str) -> bool:
    try:
        store.flow_task_ids(flow_id)
    except NotFoundError:
        return False
    return True


class TriggerFlowOperator(BaseOperator):
    """Queues a run of another flow through the scheduler's run service, optionally waiting for it.

    Args:
        trigger_flow_id: the flow to run (templated).
        conf: the run's ``conf`` (templated); ``params`` its typed parameters (templated).
        logical_date: the run's logical date: a datetime or an ISO string (templated, e.g.
            ``"{{ logical_date }}"``); by default now.
        trigger_run_id: the run id (templated); by default ``triggered__<flow>__<this run id>``,
            so a retry of this task finds the run it started instead of starting another.
        wait_for_completion: wait until the run ends; it must end in ``allowed_states``.
        poke_interval: seconds between looks while waiting.
        when_exists: what to do when a run with that id exists already: ``"reuse"`` it (so a
            retry of this task does not start a second run), ``"reset"`` it (clear all its
            tasks so that it runs again, and wait for that new run), or ``"skip"`` this task.

    Returns the triggered run's id, also pushed under the key ``trigger_run_id``.
    """

    template_fields = ("trigger_flow_id", "conf", "trigger_params", "logical_date", "trigger_run_id")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_flow_id: str,
        conf: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        logical_date: dt.datetime | str | None = None,
        trigger_run_id: str | None = None,
        wait_for_completion: bool = False,
        poke_interval: float = 10.0,
        allowed_states: Collection[str] = (SUCCESS,),
        failed_states: Collection[str] = ("failed",),
        when_exists: str = "reuse",
        **kwargs: Any,
    ) -> None:
        owner = f"TriggerFlowOperator(task_id={kwargs.get('task_id')!r})"
        if not trigger_flow_id:
            raise DefinitionError(f"{owner}: trigger_flow_id must name a flow")
        if when_exists not in WHEN_EXISTS:
            raise DefinitionError(f"{owner}: when_exists must be one of {', '.join(WHEN_EXISTS)}, not {when_exists!r}")
        if poke_interval <= 0:
            raise DefinitionError(f"{owner}: poke_interval must be positive")
        super().__init__(**kwargs)
        self.trigger_flow_id = trigger_flow_id
        self.conf = dict(conf or {})
        # Its own name: an Airflow operator's ``params`` are its DAG's (the shim's
        # TriggerDagRunOperator), which are not the triggered run's.
        self.trigger_params = dict(params) if params is not None else None
        self.logical_date = logical_date
        self.trigger_run_id = trigger_run_id
        self.wait_for_completion = wait_for_completion
        self.poke_interval = float(poke_interval)
        self.allowed_states = _states(allowed_states, owner=owner, name="allowed_states")
        self.failed_states = _states(failed_states, owner=owner, name="failed_states")
        self.when_exists = when_exists
        self._stop = threading.Event()

    @property
    def params(self) -> dict[str, Any] | None:
        """The triggered run's parameters (the ``params`` argument)."""
        return self.__dict__.get("trigger_params")

    @params.setter
    def params(self, value: Mapping[str, Any] | None) -> None:
        self.trigger_params = dict(value) if value is not None else None

    def _logical_date(self, context: TaskContext) -> dt.datetime | None:
        value = self.logical_date
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise TaskExecutionError(f"task {self.task_id!r}: logical_date {value!r} is not an ISO date") from None
        return value

    def execute(self, context: TaskContext) -> str:
        store = require_store(context, f"task {self.task_id!r} (TriggerFlowOperator)")
        run_id = self.trigger_run_id or f"triggered__{context['flow_id']}__{context['run_id']}"
        run = store.get_run(self.trigger_flow_id, run_id)
        if run is None:
            try:
                run = store.trigger(
                    self.trigger_flow_id,
                    run_id=run_id,
                    logical_date=self._logical_date(context),
                    conf=self.conf,
                    params=self.trigger_params,
                    note=self._note(context),
                )
            except NotFoundError as exc:
                if _known_flow(store, self.trigger_flow_id):
                    raise
                raise TaskExecutionError(
                    f"task {self.task_id!r}: {exc}. A flow is in the database once a scheduler has parsed "
                    "its file (`ductwork run` records only the flow it runs): a `ductwork scheduler` whose "
                    f"flows folder holds {self.trigger_flow_id!r} registers it, and runs the triggered run"
                ) from None
            context["log"].info("triggered run %s of flow %s", run.run_id, self.trigger_flow_id)
        else:
            run = self._existing(store, run, context)
        context["ti"].xcom_push(TRIGGER_RUN_ID, run.run_id)
        self._started(run, context)
        if self.wait_for_completion:
            self._wait(store, run, context)
        return run.run_id

    def _started(self, run: RunView, context: TaskContext) -> None:
        """Called once the run is triggered (or found), before any wait: what a subclass pushes
        about it (the Airflow shim: its logical date, under Airflow's keys)."""

    def _existing(self, store: FlowStore, run: RunView, context: TaskContext) -> RunView:
        """``when_exists`` applied to a run that has the id already."""
        what = f"run {run.run_id} of flow {self.trigger_flow_id}"
        if self.when_exists == "skip":
            raise SkipTask(f"{what} exists already (when_exists='skip')")
        if self.when_exists == "reset":
            context["log"].info("%s exists already: clearing it so that it runs again", what)
            return store.clear_run(run.flow_id, run.run_id, reason=f"reset by {self._note(context)}")
        context["log"].info("%s exists already (a retry?): not triggering it again", what)
        return run

    def _note(self, context: TaskContext) -> str:
        return f"triggered by {context['flow_id']}.{self.task_id} in run {context['run_id']}"

    def _wait(self, store: FlowStore, run: RunView, context: TaskContext) -> None:
        self._stop = threading.Event()
        clock = context_clock(context)
        while True:
            current = store.get_run(run.flow_id, run.run_id)
            state = current.state if current is not None else "deleted"
            if state in self.allowed_states:
                context["log"].info("run %s of flow %s ended: %s", run.run_id, run.flow_id, state)
                return
            if state in self.failed_states or state == "deleted":
                raise TaskExecutionError(
                    f"task {self.task_id!r}: triggered run {run.run_id} of flow {run.flow_id!r} is {state}"
                )
            if self._stop.is_set():
                raise TaskExecutionError(f"task {self.task_id!r} was stopped while waiting for run {run.run_id}")
            context["log"].info("run %s of flow %s is %s; waiting", run.run_id, run.flow_id, state)
            if isinstance(clock, SystemClock):
                self._stop.wait(self.poke_interval)
            else:
                clock.sleep(self.poke_interval)

    def on_kill(self) -> None:
        self._stop.set()

    def extra_spec(self) -> dict[str, Any]:
        return {
            "trigger_flow_id": self.trigger_flow_id,
            "wait_for_completion": self.wait_for_completion,
            "when_exists": self.when_exists,
        }
