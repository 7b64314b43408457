"""A DAG using a feature Ductwork refuses: nothing of this file may register."""

import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("fine_before", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as fine:
    EmptyOperator(task_id="a")

with DAG("refused", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as refused:
    EmptyOperator(task_id="b", run_as_user="root")
