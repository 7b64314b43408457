"""``dag.test()`` returns the run as Airflow's ``DagRun``: a pytest around it reads the run's
``state``, ``dag_id``, ``logical_date``, ``conf`` and its task instances' states and results
(``dr.get_task_instance("load").state``, ``.xcom_pull()``), which raised AttributeError on the
run summary it returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.compat.dag_files import load_dag

PIPELINE = """
    import pendulum
    from airflow.decorators import dag, task

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily", catchup=False)
    def pipeline():
        @task
        def extract():
            return [1, 2, 3]

        @task
        def double(x):
            return x * 2

        @task
        def broken(values):
            raise ValueError("no")

        @task
        def after():
            return "never"

        doubled = double.expand(x=extract())
        broken(doubled) >> after()

    pipeline()
"""


def test_dag_test_returns_the_run_as_a_dag_run(tmp_path: Path, capsys: Any) -> None:
    import pendulum
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag: Any = load_dag(tmp_path, PIPELINE)
    dr = dag.test(logical_date=pendulum.datetime(2024, 3, 15, tz="UTC"), run_conf={"source": "s3"})
    assert dr.state == DagRunState.FAILED
    assert dr.dag_id == "pipeline"
    assert dr.run_id.startswith("manual__2024-03-15")
    assert dr.logical_date == pendulum.datetime(2024, 3, 15, tz="UTC")
    assert dr.execution_date == dr.logical_date
    assert dr.data_interval_end == pendulum.datetime(2024, 3, 16, tz="UTC")
    assert dr.conf == {"source": "s3"}
    assert dr.end_date is not None

    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    assert states == {
        ("extract", -1): "success",
        ("double", 0): "success",
        ("double", 1): "success",
        ("double", 2): "success",
        ("broken", -1): "failed",
        ("after", -1): "upstream_failed",
    }
    assert dr.get_task_instance("broken").state == TaskInstanceState.FAILED
    assert [ti.task_id for ti in dr.get_task_instances(state=TaskInstanceState.UPSTREAM_FAILED)] == ["after"]
    assert dr.get_task_instance("extract").xcom_pull() == [1, 2, 3]
    assert dr.get_task_instance("double", map_index=1).xcom_pull() == 4
    assert dr.get_task_instance("broken").xcom_pull(task_ids="double") == [2, 4, 6]
    assert dr.get_task_instance("broken").xcom_pull() is None
    assert dr.get_task_instance("nope") is None
    assert "[dag.test] run manual__2024-03-15" in capsys.readouterr().out


def test_dag_test_without_a_date_runs_now(tmp_path: Path) -> None:
    import pendulum

    dag: Any = load_dag(tmp_path, PIPELINE)
    before = pendulum.now("UTC")
    dr = dag.test()
    assert dr.state == "failed"
    assert before <= dr.logical_date <= pendulum.now("UTC")
    assert dr.conf == {}
    assert dr.get_task_instance("extract").state == "success"
