"""Flows for the browser tests (read by a real scheduler from this folder)."""

import os
from pathlib import Path

from ductwork import BashOperator, EmptyOperator, Flow, PythonOperator, ShortCircuitOperator, TaskGroup, flow, task

with Flow("greet", params={"times": 2}, tags=["browser"], owner="tests") as greet:
    with TaskGroup("work"):
        hello = BashOperator(task_id="hello", bash_command="for i in $(seq {{ params.times }}); do echo hello $i; done")
        count = PythonOperator(task_id="count", python_callable=lambda params: params["times"] * 10)
    done = EmptyOperator(task_id="done")
    hello >> count >> done


def fragile_step() -> str:
    marker = Path(os.environ["DUCTWORK_HOME"]) / "fragile.marker"
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("the first try fails on purpose")
    print("second time lucky")
    return "ok"


with Flow("flaky", tags=["browser"]) as flaky:
    prepare = PythonOperator(task_id="prepare", python_callable=lambda: print("preparing"))
    fragile = PythonOperator(task_id="fragile", python_callable=fragile_step)
    after = EmptyOperator(task_id="after")
    prepare >> fragile >> after


with Flow("ticks", tags=["browser"]) as ticks:
    EmptyOperator(task_id="tick")


with Flow("short_circuit", tags=["browser"]) as short_circuit:
    ShortCircuitOperator(task_id="gate", python_callable=lambda: False) >> EmptyOperator(task_id="skipped_step")


def second_try_lucky() -> None:
    marker = Path(os.environ["DUCTWORK_HOME"]) / "retry_once.marker"
    if not marker.exists():
        marker.write_text("failed once")
        print("first try, failing")
        raise RuntimeError("the first try fails on purpose")
    print("second try, succeeding")


with Flow("retry_once", tags=["browser"], default_args={"retries": 1, "retry_delay": 4}) as retry_once:
    PythonOperator(task_id="wobbly", python_callable=second_try_lucky)


@task
def three() -> list[int]:
    return [0, 1, 2]


@task
def double(x: int) -> int:
    if x == 1:
        raise ValueError("one is refused")
    return 2 * x


@task
def added(xs: list[int]) -> int:
    return sum(xs)


@flow(tags=["browser"])
def one_bad_instance() -> None:
    added(double.expand(x=three()))


with Flow("stoppable", tags=["browser"]) as stoppable:
    BashOperator(task_id="wait", bash_command="sleep 60") >> BashOperator(task_id="then", bash_command="echo then")


with Flow("future_daily", schedule="@daily", start_date="2100-01-01", tags=["browser"]) as future_daily:
    EmptyOperator(task_id="noop")


with Flow("long_names", tags=["browser"]) as long_names:
    PythonOperator(
        task_id="load_the_daily_orders_from_the_eu_warehouse_into_the_reporting_schema", python_callable=lambda: None
    )
