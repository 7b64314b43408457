"""An Airflow DAG file for the scheduler test: the "watcher" pattern, a last task that reads its
run's task instances (``dag_run.get_task_instances()``) and fails the run when one failed, and
writes what it saw, with the run's start, for the test to read."""

import json
import os
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator
from airflow.utils.state import State
from airflow.utils.trigger_rule import TriggerRule

MARKS = Path(os.environ["SHIM_TEST_MARKS"])


def watch(**context):
    dag_run = context["dag_run"]
    me = context["task_instance"].task_id
    seen = {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in dag_run.get_task_instances()}
    failed = [ti.task_id for ti in dag_run.get_task_instances(state=[State.FAILED])]
    (MARKS / f"watcher-{dag_run.run_id[-8:]}.json").write_text(
        json.dumps(
            {
                "seen": seen,
                "failed": failed,
                "breaks": dag_run.get_task_instance("breaks").state,
                "missing": dag_run.get_task_instance("no_such_task"),
                "started": dag_run.start_date is not None and dag_run.start_date <= pendulum.now("UTC"),
            }
        )
    )
    if any(task_id != me for task_id in failed):
        raise RuntimeError(f"tasks failed: {failed}")


def alert(context):
    """The DAG's failure callback, called by the scheduler in a child process: which tasks failed."""
    dag_run = context["dag_run"]
    failed = sorted(ti.task_id for ti in dag_run.get_task_instances() if ti.state == State.FAILED)
    (MARKS / f"alert-{dag_run.run_id[-8:]}.json").write_text(json.dumps(failed))


with DAG("af_watcher", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), on_failure_callback=alert):

    @task
    def double(x):
        return 2 * x

    upstream = [
        BashOperator(task_id="works", bash_command="echo fine"),
        BashOperator(task_id="breaks", bash_command="exit 1"),
        double.expand(x=[1, 2]),
    ]
    upstream >> PythonOperator(task_id="watcher", python_callable=watch, trigger_rule=TriggerRule.ALL_DONE)
