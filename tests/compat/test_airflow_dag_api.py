"""What a repository's DAG integrity tests read off a DAG object: ``dag.tasks`` is a list of
operators in Airflow (``[t.task_id for t in dag.tasks]``, ``dag.tasks[0]``), ``dag.task_dict`` a
dict of them by id, and ``dag.topological_sort()`` the operators upstream first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

PIPELINE = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator

    with DAG("pipeline", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        load = PythonOperator(task_id="load", python_callable=lambda: "loaded")
        extract = EmptyOperator(task_id="extract")
        report = EmptyOperator(task_id="report")
        extract >> load >> report
"""


def test_dag_tasks_is_a_list_of_operators(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, PIPELINE)
    assert [t.task_id for t in dag.tasks] == ["load", "extract", "report"]
    assert dag.tasks[0].task_id == "load"
    assert [t.task_id for t in dag.tasks[1:]] == ["extract", "report"]
    assert len(dag.tasks) == 3
    assert dag.tasks[0] in dag.tasks
    assert all(t.retries == 0 for t in dag.tasks)


def test_dag_task_dict_is_a_dict_by_task_id(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, PIPELINE)
    assert list(dag.task_dict) == ["load", "extract", "report"]
    assert dag.task_dict["report"].upstream_task_ids == {"load"}
    assert sorted(dag.task_ids) == ["extract", "load", "report"]


def test_topological_sort_puts_upstream_tasks_first(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, PIPELINE)
    assert [t.task_id for t in dag.topological_sort()] == ["extract", "load", "report"]


def test_a_dag_whose_tasks_were_listed_still_runs(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, PIPELINE)
    assert [t.task_id for t in dag.tasks]
    summary = run_locally(dag)
    assert summary.state.value == "success"
    assert summary.result("load") == "loaded"


WITH_PARAMS = """
    import pendulum
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.bash import BashOperator

    with DAG("with_params", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"dry_run": False, "limit": Param(5, type="integer", minimum=1), "env": "dev"}) as dag:
        BashOperator(task_id="deploy", bash_command=f"echo {dag.params['env']} {{{{ params.limit }}}}")
"""


def test_dag_params_read_as_values(tmp_path: Path) -> None:
    """``dag.params["env"]`` gave Ductwork's parameter object, not the value Airflow's
    ``ParamsDict`` gives (an f-string in a DAG file printed ``StrParameter(default='dev')``)."""
    dag: Any = load_dag(tmp_path, WITH_PARAMS)
    assert dag.params["dry_run"] is False
    assert dag.params["limit"] == 5
    assert dag.params.get("env") == "dev"
    assert dag.params.get("missing", "x") == "x"
    summary = run_locally(dag, params={"limit": "7"})
    assert summary.state.value == "success"
    assert summary.result("deploy") == "dev 7"
