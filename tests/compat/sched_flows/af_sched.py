"""An Airflow DAG file for the scheduler test: daily with catchup, a validated Param, a mapped
task, doc_md, and a task that fails once when the run asks for it (to be cleared)."""

import os
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.models.param import Param
from airflow.operators.bash import BashOperator

MARKS = Path(os.environ["SHIM_TEST_MARKS"])

with DAG(
    "af_sched",
    schedule="@daily",
    start_date=pendulum.today("UTC").subtract(days=3),
    catchup=True,
    params={"n": Param(2, type="integer", minimum=1)},
    doc_md="# af_sched\nA **shimmed** DAG.",
):
    hello = BashOperator(task_id="hello", bash_command="echo hello {{ params.n }}")

    @task
    def double(x, params=None):
        return x * params["n"]

    @task
    def fragile(values, params=None, run_id=None):
        marker = MARKS / f"fragile-{run_id}"
        if params["n"] == 7 and not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("asked to fail once")
        return sum(values)

    hello >> fragile(double.expand(x=[1, 2, 3]))
