"""The sensor base: poke and reschedule modes, timeouts across reschedules, soft fail, backoff."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ductwork import BaseSensorOperator, EmptyOperator, Flow, PokeReturnValue
from ductwork.core.clock import FrozenClock
from ductwork.core.context import RunInfo, TaskContext, TaskInstance, build_context
from ductwork.core.results import MemoryResults
from ductwork.core.sensors import (
    SENSOR_STATE_KEY,
    DateTimeSensor,
    SensorTimeout,
    TimeDeltaSensor,
    sensor_state_id,
)
from ductwork.core.signals import FailNow, RescheduleTask, SkipTask
from ductwork.errors import DefinitionError
from ductwork.testing import SystemClock, run_flow


class CountingSensor(BaseSensorOperator):
    """Says yes at the ``ready_at``-th poke (never when it is None)."""

    def __init__(self, *, ready_at: int | None, value: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready_at = ready_at
        self.value = value
        self.pokes = 0

    def poke(self, context: TaskContext) -> bool | PokeReturnValue:
        self.pokes += 1
        done = self.ready_at is not None and self.pokes >= self.ready_at
        return PokeReturnValue(done, self.value) if self.value is not None else done


def _context(task: BaseSensorOperator, clock: FrozenClock, results: MemoryResults, try_number: int = 1) -> TaskContext:
    now = clock.now()
    run = RunInfo("f", "r1", now, now - dt.timedelta(days=1), now)
    ti = TaskInstance(run, task.task_id, try_number, 1, results)
    return build_context(run, ti, task, extra={"clock": clock})


def test_poke_mode_waits_in_the_try_and_passes_the_value_down() -> None:
    with Flow("poke") as f:
        s = CountingSensor(task_id="s", ready_at=3, value={"rows": 7}, poke_interval=0.01, timeout=30)
        s >> EmptyOperator(task_id="after")
    result = run_flow(f)
    assert result.state == "success"
    assert result.result("s") == {"rows": 7}
    assert len(result["s"].tries) == 1
    assert "condition met after 3 poke(s)" in result.logs[("s", 1)]


def test_timeout_fails_without_using_retries() -> None:
    with Flow("timeout") as f:
        CountingSensor(task_id="s", ready_at=None, poke_interval=0.01, timeout=0.05, retries=3)
    result = run_flow(f)
    assert result["s"].state == "failed"
    assert len(result["s"].tries) == 1
    assert "sensor 's' timed out after" in (result["s"].tries[-1].error or "")


def test_soft_fail_skips_the_sensor_and_its_downstream() -> None:
    with Flow("soft") as f:
        s = CountingSensor(task_id="s", ready_at=None, poke_interval=0.01, timeout=0.03, soft_fail=True)
        s >> EmptyOperator(task_id="after")
    result = run_flow(f)
    assert result["s"].state == "skipped"
    assert result["after"].state == "skipped"


def test_reschedule_mode_frees_the_slot_and_keeps_one_try() -> None:
    with Flow("resched") as f:
        s = CountingSensor(task_id="s", ready_at=4, value="ok", mode="reschedule", poke_interval=0.01, timeout=30)
        s >> EmptyOperator(task_id="after")
    result = run_flow(f, clock=SystemClock())
    assert result.state == "success"
    assert result.result("s") == "ok"
    assert s.pokes == 4  # four separate executions of the task, each one poke
    assert {t.try_number for t in result["s"].tries} == {1}


def test_reschedule_mode_measures_timeout_from_the_first_poke() -> None:
    with Flow("resched_timeout") as f:
        s = CountingSensor(task_id="s", ready_at=None, mode="reschedule", poke_interval=0.02, timeout=0.1)
    result = run_flow(f, clock=SystemClock())
    assert result["s"].state == "failed"
    error = result["s"].tries[-1].error or ""
    assert "timed out" in error
    assert s.pokes >= 3
    assert f"and {s.pokes} poke(s)" in error  # the count survived every reschedule


def test_reschedule_timeout_holds_in_a_retried_try() -> None:
    class FlakyThenWaiting(CountingSensor):
        def poke(self, context: TaskContext) -> bool:
            self.pokes += 1
            if self.pokes == 1:
                raise RuntimeError("first try breaks")
            if self.pokes > 40:
                raise FailNow("never timed out")
            return False

    with Flow("retried") as f:
        FlakyThenWaiting(
            task_id="s", ready_at=None, mode="reschedule", poke_interval=0.01, timeout=0.05, retries=1, retry_delay=0
        )
    result = run_flow(f, clock=SystemClock())
    assert "timed out" in (result["s"].tries[-1].error or "")


def test_reschedule_time_and_backoff_follow_the_context_clock() -> None:
    clock = FrozenClock("2024-05-01T00:00:00+00:00")
    results = MemoryResults()
    sensor = CountingSensor(
        task_id="s",
        ready_at=None,
        mode="reschedule",
        poke_interval=10,
        timeout=100,
        exponential_backoff=True,
        max_wait=30,
    )
    waits = []
    for _ in range(4):
        with pytest.raises(RescheduleTask) as raised:
            sensor.execute(_context(sensor, clock, results))
        waits.append((raised.value.at - clock.now()).total_seconds())
        clock.advance(raised.value.at - clock.now())
    assert waits == [10, 20, 30, 30]
    state = results.pull("f/r1", sensor_state_id("s"), SENSOR_STATE_KEY)
    assert state["pokes"] == 4 and state["first_poke"] == "2024-05-01T00:00:00+00:00"
    with pytest.raises(RescheduleTask) as raised:  # 90 s after the first poke: the last wait is cut short
        sensor.execute(_context(sensor, clock, results))
    assert (raised.value.at - clock.now()).total_seconds() == 10
    clock.advance(10)
    with pytest.raises(SensorTimeout, match=r"timed out after 100\.0s and 6 poke"):
        sensor.execute(_context(sensor, clock, results))


def test_a_marker_from_an_earlier_try_is_ignored() -> None:
    clock = FrozenClock("2024-05-01T00:00:00+00:00")
    results = MemoryResults()
    results.push(
        "f/r1",
        sensor_state_id("s"),
        SENSOR_STATE_KEY,
        {"try": 1, "first_poke": "2024-01-01T00:00:00+00:00", "pokes": 9},
    )
    sensor = CountingSensor(task_id="s", ready_at=None, mode="reschedule", poke_interval=5, timeout=60)
    with pytest.raises(RescheduleTask):
        sensor.execute(_context(sensor, clock, results, try_number=2))
    assert results.pull("f/r1", sensor_state_id("s"), SENSOR_STATE_KEY)["first_poke"] == "2024-05-01T00:00:00+00:00"


def test_poke_mode_sleeps_on_a_frozen_clock() -> None:
    clock = FrozenClock("2024-05-01T00:00:00+00:00")
    sensor = CountingSensor(task_id="s", ready_at=5, poke_interval=60, timeout=3600)
    assert sensor.execute(_context(sensor, clock, MemoryResults())) is None
    assert clock.now() == dt.datetime(2024, 5, 1, 0, 4, tzinfo=dt.UTC)


def test_soft_fail_raises_skip() -> None:
    clock = FrozenClock()
    sensor = CountingSensor(task_id="s", ready_at=None, poke_interval=60, timeout=120, soft_fail=True)
    with pytest.raises(SkipTask, match="soft_fail"):
        sensor.execute(_context(sensor, clock, MemoryResults()))


def test_time_sensors() -> None:
    clock = FrozenClock("2024-05-01T00:00:00+00:00")
    results = MemoryResults()
    delta = TimeDeltaSensor(task_id="d", delta=dt.timedelta(hours=1), poke_interval=600, timeout=86400)
    delta.execute(_context(delta, clock, results))  # data interval ends "now": waits one hour
    assert clock.now() == dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)
    at = DateTimeSensor(task_id="t", target_time="2024-05-01T01:30:00", poke_interval=60, timeout=86400)
    at.execute(_context(at, clock, results))
    assert clock.now() == dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.UTC)


def test_date_time_sensor_renders_its_template_in_a_run() -> None:
    with Flow("dt", start_date="2024-01-01") as f:
        DateTimeSensor(task_id="t", target_time="{{ data_interval_start }}", poke_interval=1, timeout=5)
        DateTimeSensor(task_id="bad", target_time="not {{ ds }}", poke_interval=1, timeout=5)
    result = run_flow(f, logical_date="2024-01-02", clock=FrozenClock("2024-01-03T00:00:00+00:00"))
    assert result["t"].state == "success"
    assert result["bad"].state == "failed"
    assert "task 'bad': target_time 'not 2024-01-02' is not an ISO date-time" in (result["bad"].tries[-1].error or "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "wait"}, "mode must be 'poke' or 'reschedule'"),
        ({"poke_interval": -1}, "poke_interval wants a non-negative"),
        ({"timeout": "soon"}, "timeout wants a non-negative"),
    ],
)
def test_bad_arguments_are_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        CountingSensor(task_id="s", ready_at=1, **kwargs)
