"""``ti.xcom_pull`` as Airflow 2 code calls it: without ``task_ids`` (any task of the run),
and with the arguments Ductwork does not follow (earlier runs, another DAG), which must fail
the try saying so rather than hand back ``None``."""

from __future__ import annotations

import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator


def _pull(ti):
    return [ti.xcom_pull(key="k"), ti.xcom_pull(task_ids="push", key="k"), ti.xcom_pull(key="nothing", default=7)]


with DAG("xcom_pull_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
    push = PythonOperator(task_id="push", python_callable=lambda ti: ti.xcom_push(key="k", value=42))
    pull = PythonOperator(task_id="pull", python_callable=_pull)
    here = PythonOperator(task_id="here", python_callable=lambda ti: ti.xcom_pull(key="k", include_prior_dates=True))
    prior = PythonOperator(
        task_id="prior", python_callable=lambda ti: ti.xcom_pull(key="absent", include_prior_dates=True)
    )
    other = PythonOperator(
        task_id="other", python_callable=lambda ti: ti.xcom_pull(task_ids="push", dag_id="elsewhere")
    )
    push >> [pull, here, prior, other]
