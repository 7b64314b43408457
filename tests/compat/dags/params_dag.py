"""Typed DAG params with JSON-schema validation (Airflow's Param)."""

import pendulum
from airflow.decorators import dag, task
from airflow.models.param import Param


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={
        "rows": Param(10, type="integer", minimum=1, maximum=1000),
        "mode": Param("fast", enum=["fast", "thorough"]),
        "tags": Param(["a"], type="array"),
        "note": "plain default",
    },
)
def params_dag():
    @task
    def show(params=None):
        return [params["rows"], params["mode"], params["tags"], params["note"]]

    show()


params_dag()
