"""``dag.test()`` returns the run as Airflow's ``DagRun``: a pytest around it reads the run's
``state``, ``dag_id``, ``logical_date``, ``conf`` and its task instances' states and results
(``dr.get_task_instance("load").state``, ``.xcom_pull()``), which raised AttributeError on the
run summary it returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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


SECRETS = """
    import pendulum
    from airflow import DAG
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    with DAG("secrets", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        BashOperator(task_id="templated", bash_command="echo {{ var.value.region }} {{ conn.warehouse.host }}")
        PythonOperator(task_id="looked_up", python_callable=lambda: [
            Variable.get("limits", deserialize_json=True),
            BaseHook.get_connection("api").extra_dejson,
        ])
"""


def test_dag_test_reads_the_databases_variables_and_connections(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python dags/my_dag.py`` with ``dag.test()`` read connections and variables from the
    environment only: one saved with ``ductwork variables set`` (or ``connections add``) failed
    the try with 'variable ... is not defined; looked in environment', while ``ductwork run`` of
    the same DAG found it, as Airflow's ``dag.test()`` finds the metadata database's."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("DUCTWORK_FERNET_KEY", Fernet.generate_key().decode())
    assert cli("variables", "set", "region", "eu-west-1").exit_code == 0
    assert cli("variables", "set", "limits", '{"rows": 5}').exit_code == 0
    assert cli("connections", "add", "warehouse", "postgres://etl@db-host:5432/dw").exit_code == 0
    assert cli("connections", "add", "api", "https://api.example.com?timeout=5").exit_code == 0
    dag: Any = load_dag(tmp_path, SECRETS)
    dr = dag.test()
    assert dr.get_task_instance("templated").xcom_pull() == "eu-west-1 db-host", dr.state
    assert dr.get_task_instance("looked_up").xcom_pull() == [{"rows": 5}, {"timeout": "5"}]


def test_dag_test_reads_the_files_it_is_given(tmp_path: Path) -> None:
    """``dag.test(variable_file_path=..., conn_file_path=...)`` (Airflow's local file backend:
    ``.json``, ``.yaml`` or ``.env``) were accepted and ignored."""
    variables = tmp_path / "variables.json"
    variables.write_text('{"region": "eu-west-1", "limits": {"rows": 5}}')
    connections = tmp_path / "connections.yaml"
    connections.write_text(
        "warehouse: postgres://etl@db-host:5432/dw\n"
        "api:\n  conn_type: https\n  host: api.example.com\n  extra:\n    timeout: 5\n"
    )
    dag: Any = load_dag(tmp_path, SECRETS)
    dr = dag.test(variable_file_path=str(variables), conn_file_path=str(connections))
    assert dr.get_task_instance("templated").xcom_pull() == "eu-west-1 db-host", dr.state
    assert dr.get_task_instance("looked_up").xcom_pull() == [{"rows": 5}, {"timeout": 5}]

    env_file = tmp_path / "variables.env"
    env_file.write_text('# the region\nregion=us-east-1\nlimits={"rows": 7}\n')
    env_conns = tmp_path / "connections.env"
    env_conns.write_text("warehouse=postgres://etl@other-host/dw\napi=https://api.example.com?timeout=9\n")
    dr = dag.test(variable_file_path=str(env_file), conn_file_path=str(env_conns))
    assert dr.get_task_instance("templated").xcom_pull() == "us-east-1 other-host", dr.state
    assert dr.get_task_instance("looked_up").xcom_pull() == [{"rows": 7}, {"timeout": "9"}]
