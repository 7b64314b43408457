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


INTEGRITY = """
    import datetime as dt
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator
    from airflow.utils.task_group import TaskGroup

    default_args = {"email_on_failure": False, "email_on_retry": False, "sla": dt.timedelta(hours=1)}
    with DAG("integrity", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily",
             default_args=default_args, on_failure_callback=print, owner_links={"data": "mailto:d@x.io"}) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("extract") as extract:
            one = EmptyOperator(task_id="one")
            two = EmptyOperator(task_id="two", max_active_tis_per_dag=2)
            one >> two
        end = PythonOperator(task_id="end", python_callable=lambda: None, email_on_failure=True)
        start >> extract >> end
"""


def test_what_a_dag_integrity_test_reads_off_tasks_and_the_dag(tmp_path: Path) -> None:
    """Attributes a repository's DAG tests assert on (``for t in dag.tasks: assert not
    t.email_on_failure``) raised AttributeError."""
    dag: Any = load_dag(tmp_path, INTEGRITY)
    start, two, end = dag.get_task("start"), dag.get_task("extract.two"), dag.get_task("end")
    assert start.email_on_failure is False and start.email_on_retry is False
    assert end.email_on_failure is True
    assert start.sla == __import__("datetime").timedelta(hours=1)
    assert two.max_active_tis_per_dag == 2 and start.max_active_tis_per_dag is None
    assert start.wait_for_downstream is False and start.run_as_user is None
    assert start.get_direct_relative_ids() == {"extract.one"}
    assert end.get_direct_relative_ids(upstream=True) == {"extract.two"}
    assert start.get_flat_relative_ids() == {"extract.one", "extract.two", "end"}
    assert {t.task_id for t in end.get_flat_relatives(upstream=True)} == {"extract.two", "extract.one", "start"}
    assert list(dag.task_group_dict) == ["extract"]
    assert dag.has_on_failure_callback is True and dag.has_on_success_callback is False
    assert dag.owner_links == {"data": "mailto:d@x.io"}
