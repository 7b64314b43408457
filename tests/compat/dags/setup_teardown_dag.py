"""Setup and teardown: the teardown cleans up after failed work; the work decides the run."""

import os
from pathlib import Path

import pendulum
from airflow.decorators import dag, setup, task, teardown

MARKS = Path(os.environ.get("SETUP_TEARDOWN_MARKS", "."))


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"fail_work": False, "fail_teardown": False},
)
def setup_teardown_dag():
    @setup
    def create_cluster():
        return "cluster-1"

    @task
    def work(cluster, params=None):
        if params["fail_work"]:
            raise RuntimeError("work failed")
        return f"used {cluster}"

    @teardown
    def delete_cluster(cluster, params=None):
        (MARKS / "deleted").write_text(cluster)
        if params["fail_teardown"]:
            raise RuntimeError("teardown failed")

    cluster = create_cluster()
    with delete_cluster(cluster):
        work(cluster)


setup_teardown_dag()
