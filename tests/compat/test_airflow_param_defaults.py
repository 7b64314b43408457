"""``Param`` defaults as Airflow treats them: a default its schema refuses does not keep the DAG
out (Airflow validates params when a run is created), it is a value each run must give."""

from __future__ import annotations

from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from ductwork.errors import ParameterError
from tests.compat.dag_files import load_dag

MANUAL = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models.param import Param

    with DAG("manual_inputs", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"table": Param(None, type="string", description="the table to reload"),
                     "limit": Param(10, type="integer")}):
        @task
        def show(params=None):
            return [params["table"], params["limit"]]

        show()
"""


def test_a_param_whose_default_its_schema_refuses_is_one_the_run_must_give(tmp_path: Path) -> None:
    """It was an import error that did not name the param ("None is not of type 'string'")."""
    flow = load_dag(tmp_path, MANUAL)
    with pytest.raises(ParameterError, match="missing required parameter 'table'"):
        flow.resolve_params({})
    summary = run_locally(flow, params={"table": "orders"})
    assert summary.result("show") == ["orders", 10]
