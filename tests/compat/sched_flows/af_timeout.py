"""An Airflow DAG file for the scheduler test: a task stopped at its ``execution_timeout``,
whose failure callback (called by the scheduler, since the try could not) tells a timeout from
other failures the way Airflow's callbacks do, by the exception's class."""

import json
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.exceptions import AirflowTaskTimeout
from airflow.operators.bash import BashOperator

MARKS = Path(os.environ["SHIM_TEST_MARKS"])


def alert(context):
    exc = context["exception"]
    (MARKS / f"timeout-{context['run_id'][-8:]}.json").write_text(
        json.dumps({"timeout": isinstance(exc, AirflowTaskTimeout), "message": str(exc)})
    )


with DAG("af_timeout", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    BashOperator(
        task_id="hangs", bash_command="sleep 60", execution_timeout=timedelta(seconds=1), on_failure_callback=alert
    )
