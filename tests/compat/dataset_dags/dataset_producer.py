"""Airflow 2.x producers: a TaskFlow task and a BashOperator that update datasets (``outlets``),
one attaching extra to its event through ``outlet_events``."""

import pendulum
from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task
from airflow.operators.bash import BashOperator

ORDERS = Dataset("s3://lake/orders")
CUSTOMERS = Dataset("customers")  # a bare name, as Airflow allows

with DAG("produce_orders", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False):

    @task(outlets=[ORDERS])
    def write_orders(*, outlet_events=None):
        outlet_events[ORDERS].extra = {"rows": 3}

    write_orders()

with DAG("produce_customers", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False):
    BashOperator(task_id="write", bash_command="echo customers", outlets=[CUSTOMERS])
