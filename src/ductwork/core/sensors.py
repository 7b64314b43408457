"""Sensors: operators that wait for something to be true before their downstream tasks run.

A sensor implements ``poke(context)``, which looks once and returns a truthy value (or a
``PokeReturnValue``) when the wait is over. ``execute`` calls it repeatedly:

- ``mode="poke"`` keeps the worker slot and sleeps ``poke_interval`` between pokes, inside the
  try. Cheap for short waits.
- ``mode="reschedule"`` pokes once per try and, when the answer is no, raises
  ``RescheduleTask(at=now + interval)``: the engine frees the slot, marks the task
  ``up_for_reschedule`` and queues it again at that time. A reschedule does not use up a try.

The ``timeout`` is measured from the first poke of the current try, across reschedules: the
sensor records when it first poked (and how many pokes it has made) in the run's result backend
under the reserved key ``SENSOR_STATE_KEY`` of the reserved id ``sensor_state_id(task_id)``,
tagged with the try number so that a marker left by an earlier try is ignored. (It is not kept
under the task's own id because the engine clears a task's results whenever a try starts,
including a resume after a reschedule.)

When the timeout passes the try fails without retries (``SensorTimeout``), or ends as
``skipped`` with ``soft_fail=True``. An exception raised by ``poke`` is an ordinary failure and
is retried by the task's ``retries``.

Time comes from the context's ``clock`` when the engine provides one (so a ``FrozenClock``
makes poke-mode sleeps free in tests), else from the system clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.signals import FailNow, RescheduleTask, SkipTask
from ductwork.errors import DefinitionError, DuctworkError, TaskExecutionError

SENSOR_STATE_KEY = "sensor_state"
"""The result key under which a sensor keeps its first poke time between reschedules."""


def sensor_state_id(task_id: str) -> str:
    """The reserved id, beside the task's own, under which its sensor state is kept."""
    return f"__sensor__.{task_id}"


POKE = "poke"
RESCHEDULE = "reschedule"


@dataclass
class PokeReturnValue:
    """What ``poke`` may return to also hand a value downstream when the wait is over."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return self.is_done


class SensorTimeout(FailNow, DuctworkError):
    """A sensor waited longer than its ``timeout``; the try fails without retries."""


def context_clock(context: TaskContext) -> Clock:
    """The clock of the try: the context's ``clock`` if the engine put one there, else the system's."""
    clock = context.get("clock")
    if clock is not None and hasattr(clock, "now") and hasattr(clock, "sleep"):
        return clock
    return SystemClock()


def _as_seconds(value: dt.timedelta | float | int, *, name: str, owner: str) -> float:
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DefinitionError(f"{owner}: {name} wants a non-negative number of seconds or a timedelta, got {value!r}")
    return float(value)


class BaseSensorOperator(BaseOperator):
    """Waits until ``poke`` says yes, then succeeds (returning the poke's ``xcom_value``, if any).

    Args:
        poke_interval: seconds (or a timedelta) between pokes.
        timeout: seconds (or a timedelta) from the first poke after which the sensor gives up.
        mode: ``"poke"`` (sleep inside the try) or ``"reschedule"`` (free the worker slot
            between pokes).
        soft_fail: on timeout end as ``skipped`` instead of ``failed``.
        exponential_backoff: double the wait after every unsuccessful poke (capped by
            ``max_wait``).
        max_wait: the longest wait between two pokes when backing off.
    """

    ui_color: ClassVar[str] = "#e6f1f2"

    def __init__(
        self,
        *,
        poke_interval: dt.timedelta | float = 60.0,
        timeout: dt.timedelta | float = 7 * 24 * 3600.0,
        mode: str = POKE,
        soft_fail: bool = False,
        exponential_backoff: bool = False,
        max_wait: dt.timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"{type(self).__name__}(task_id={kwargs.get('task_id')!r})"
        if mode not in (POKE, RESCHEDULE):
            raise DefinitionError(f"{owner}: mode must be 'poke' or 'reschedule', got {mode!r}")
        self.poke_interval = _as_seconds(poke_interval, name="poke_interval", owner=owner)
        self.timeout = _as_seconds(timeout, name="timeout", owner=owner)
        self.max_wait = None if max_wait is None else _as_seconds(max_wait, name="max_wait", owner=owner)
        super().__init__(**kwargs)
        self.mode = mode
        self.soft_fail = soft_fail
        self.exponential_backoff = exponential_backoff
        self._stop = threading.Event()

    # --- what subclasses implement ----------------------------------------------------------
    def poke(self, context: TaskContext) -> bool | PokeReturnValue:
        """Look once; return true (or ``PokeReturnValue(True, value)``) when the wait is over."""
        raise NotImplementedError(f"{type(self).__name__} does not implement poke()")

    # --- the waiting loop -------------------------------------------------------------------
    def _poke_once(self, context: TaskContext) -> bool | PokeReturnValue:
        """One poke, as the loop makes it; a subclass may answer a poke's exception otherwise
        (Airflow's ``silent_fail`` keeps poking)."""
        return self.poke(context)

    def execute(self, context: TaskContext) -> Any:
        self._stop = threading.Event()
        clock = context_clock(context)
        ti = context["ti"]
        first, pokes = self._restore(ti, clock.now())
        while True:
            if self._stop.is_set():
                raise TaskExecutionError(f"sensor {self.task_id!r} was stopped")
            result = self._poke_once(context)
            pokes += 1
            if result:
                context["log"].info("sensor %s: condition met after %d poke(s)", self.task_id, pokes)
                return result.xcom_value if isinstance(result, PokeReturnValue) else None
            now = clock.now()
            waited = (now - first).total_seconds()
            if waited >= self.timeout:
                self._give_up(waited, pokes)
            wait = min(self.next_interval(pokes), self.timeout - waited)
            if self.mode == RESCHEDULE:
                state = {"try": ti.try_number, "first_poke": first.isoformat(), "pokes": pokes}
                ti.results.push(ti.run.key, sensor_state_id(self.task_id), SENSOR_STATE_KEY, state)
                raise RescheduleTask(at=now + dt.timedelta(seconds=wait))
            context["log"].info("sensor %s: not yet (poke %d); next poke in %.1fs", self.task_id, pokes, wait)
            self._sleep(clock, wait)

    def next_interval(self, pokes: int) -> float:
        """Seconds to wait after ``pokes`` unsuccessful pokes."""
        if not self.exponential_backoff:
            return self.poke_interval
        wait = self.poke_interval * (2 ** min(pokes - 1, 32))
        return wait if self.max_wait is None else min(wait, self.max_wait)

    def _restore(self, ti: Any, now: dt.datetime) -> tuple[dt.datetime, int]:
        """(first poke time, pokes so far) of this try: from the marker in reschedule mode."""
        if self.mode == RESCHEDULE:
            state = ti.results.pull(ti.run.key, sensor_state_id(self.task_id), SENSOR_STATE_KEY)
            if isinstance(state, dict) and state.get("try") == ti.try_number:
                return dt.datetime.fromisoformat(state["first_poke"]), int(state.get("pokes", 0))
        return now, 0

    def _give_up(self, waited: float, pokes: int) -> None:
        message = (
            f"sensor {self.task_id!r} timed out after {waited:.1f}s and {pokes} poke(s) (timeout {self.timeout:g}s)"
        )
        if self.soft_fail:
            raise SkipTask(message + "; soft_fail is set, so the task is skipped")
        raise SensorTimeout(message)

    def _sleep(self, clock: Clock, seconds: float) -> None:
        if isinstance(clock, SystemClock):
            self._stop.wait(seconds)  # wakes up at once when on_kill is called
        else:
            clock.sleep(seconds)

    def on_kill(self) -> None:
        """End a poke-mode wait at its next poke instead of after the whole timeout."""
        self._stop.set()

    def extra_spec(self) -> dict[str, Any]:
        return {"mode": self.mode, "poke_interval": self.poke_interval, "timeout": self.timeout}


class TimeDeltaSensor(BaseSensorOperator):
    """Waits until ``delta`` after the end of the run's data interval (Airflow's TimeDeltaSensor)."""

    def __init__(self, *, delta: dt.timedelta | float, **kwargs: Any) -> None:
        owner = f"TimeDeltaSensor(task_id={kwargs.get('task_id')!r})"
        self.delta = dt.timedelta(seconds=_as_seconds(delta, name="delta", owner=owner))
        super().__init__(**kwargs)

    def poke(self, context: TaskContext) -> bool:
        target = context["data_interval_end"] + self.delta
        context["log"].info("waiting until %s", target.isoformat())
        return bool(context_clock(context).now() >= target)


class DateTimeSensor(BaseSensorOperator):
    """Waits until ``target_time``: a datetime, or an ISO string that may be a template
    (``"{{ data_interval_end + macros.timedelta(hours=2) }}"``). A time without a zone is read
    in the flow's timezone."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: dt.datetime | str, **kwargs: Any) -> None:
        if not isinstance(target_time, dt.datetime | str):
            raise DefinitionError(
                f"DateTimeSensor(task_id={kwargs.get('task_id')!r}): target_time must be a datetime or an ISO "
                f"string, got {target_time!r}"
            )
        super().__init__(**kwargs)
        self.target_time = target_time

    def _target(self, context: TaskContext) -> dt.datetime:
        value = self.target_time
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise TaskExecutionError(
                    f"task {self.task_id!r}: target_time {value!r} is not an ISO date-time"
                ) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=context["ti"].run.timezone)
        return value

    def poke(self, context: TaskContext) -> bool:
        return bool(context_clock(context).now() >= self._target(context))
