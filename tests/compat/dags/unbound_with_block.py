"""A `with DAG(...)` block not bound to a name, operators attached with dag=, Airflow 2 defaults."""

import datetime

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

with DAG(dag_id="unbound", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), default_args={"retries": 2}):
    BashOperator(task_id="stamp", bash_command="echo {{ task_instance_key_str }} {{ data_interval_end | ds }}")

other = DAG("bound_later", default_args={"start_date": datetime.datetime(2024, 1, 1), "owner": "ana"}, catchup=False)
first = PythonOperator(task_id="first", python_callable=lambda ds, ts_nodash: f"{ds} {ts_nodash}", dag=other)
second = PythonOperator(
    task_id="second",
    python_callable=lambda ti, params: [ti.xcom_pull(task_ids="first"), params["who"], ti.dag_id],
    params={"who": "task-level"},
    dag=other,
)
first >> second
other.doc_md = "# Bound later\nRuns **first** then second."
