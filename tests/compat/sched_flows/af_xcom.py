"""An Airflow DAG file for the scheduler test: ``XCom.get_one``/``get_many`` reading the values
of an earlier run (named by ``dag_run.conf["src_run"]``) from the metadata database, and
answering ``None`` for a run that does not exist, as Airflow's."""

import json
import os
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.models import XCom

MARKS = Path(os.environ["SHIM_TEST_MARKS"])

with DAG("af_xcom", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:

    @task
    def produce(run_id=None, ti=None):
        ti.xcom_push(key="rows", value=7)
        return f"made in {run_id}"

    @task
    def consume(dag_run=None, run_id=None):
        source = dag_run.conf.get("src_run") or run_id
        rows = XCom.get_many(dag_ids="af_xcom", run_id=source, task_ids="produce")
        seen = {
            "value": XCom.get_one(dag_id="af_xcom", run_id=source, task_id="produce"),
            "keys": sorted(r.key for r in rows),
            "nowhere": XCom.get_one(dag_id="af_xcom", run_id="no_such_run", task_id="produce"),
        }
        (MARKS / f"xcom-{run_id[-8:]}.json").write_text(json.dumps(seen))

    produce() >> consume()
