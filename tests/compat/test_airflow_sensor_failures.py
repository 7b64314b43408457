"""How an Airflow sensor fails: the exception a timed-out sensor gives its callbacks, and a poke
that raises under ``silent_fail``, ``never_fail`` and ``soft_fail``, as Airflow 2.10's
``BaseSensorOperator.execute`` handles them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

SENSORS = """
    import json
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowFailException, AirflowSensorTimeout
    from airflow.sensors.python import PythonSensor

    CALLS = []

    def broken():
        CALLS.append(1)
        raise RuntimeError("poke broke")

    def gives_up():
        raise AirflowFailException("no point waiting")

    def note(context):
        with open(OUT, "a") as out:
            exc = context["exception"]
            out.write(json.dumps([context["ti"].task_id, isinstance(exc, AirflowSensorTimeout)]) + "\\n")

    with DAG("sensors", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             default_args={"on_failure_callback": note}) as dag:
        PythonSensor(task_id="timed_out", python_callable=lambda: False, poke_interval=0.1, timeout=0.2)
        PythonSensor(task_id="silent", python_callable=broken, poke_interval=0.1, timeout=0.3, silent_fail=True)
        PythonSensor(task_id="never", python_callable=broken, poke_interval=0.1, timeout=5, never_fail=True)
        PythonSensor(task_id="soft_raise", python_callable=broken, poke_interval=0.1, timeout=5, soft_fail=True)
        PythonSensor(task_id="soft_give_up", python_callable=gives_up, poke_interval=0.1, timeout=5, soft_fail=True)

        @task.sensor(poke_interval=0.1, timeout=0.2, mode="reschedule")
        def deco_timed_out():
            return False

        deco_timed_out()
"""


def test_sensor_failures_are_airflows(tmp_path: Path) -> None:
    """A timed-out sensor's callbacks got Ductwork's ``SensorTimeout``, so the usual
    ``isinstance(context["exception"], AirflowSensorTimeout)`` was false; and a poke that raised
    failed the try whatever ``silent_fail`` (keep poking) or ``never_fail`` (skip) said."""
    out = tmp_path / "callbacks.jsonl"
    source = SENSORS.replace("with DAG(", f"OUT = {str(out)!r}\n    with DAG(", 1)
    summary = run_locally(load_dag(tmp_path, source), logical_date=dt.date(2024, 3, 1))
    states = {t: s.state.value for t, s in summary.tasks.items()}
    assert states == {
        "timed_out": "failed",
        "silent": "failed",  # poked until its timeout, then failed as a timeout
        "never": "skipped",
        "soft_raise": "failed",  # soft_fail skips a timeout, not any error (Airflow 2.10)
        "soft_give_up": "skipped",
        "deco_timed_out": "failed",
    }
    assert "timed out" in (summary.tasks["silent"].tries[-1].error or "")
    calls = sorted(tuple(json.loads(line)) for line in out.read_text().splitlines())
    assert calls == [("deco_timed_out", True), ("silent", True), ("soft_raise", False), ("timed_out", True)]
