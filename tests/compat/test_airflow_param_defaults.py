"""``Param`` defaults as Airflow treats them: a default its schema refuses does not keep the DAG
out (Airflow validates params when a run is created), it is a value each run must give."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from ductwork.errors import ParameterError
from ductwork.loading import load_file
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


SCHEDULED = """
    import pendulum
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.empty import EmptyOperator

    with DAG("nightly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily",
             params={"table": Param(type="string"), "limit": Param(10, type="integer")}):
        EmptyOperator(task_id="reload")
"""


def test_a_scheduled_dag_with_a_param_without_default_is_an_import_error_naming_it(tmp_path: Path) -> None:
    """As Airflow's "DAG is not allowed to define a Schedule, if there are any required params
    without default values": it loaded, and its scheduler logged "missing required parameter"
    at every poll without ever creating a run."""
    path = tmp_path / "nightly.py"
    path.write_text(textwrap.dedent(SCHEDULED))
    loaded = load_file(path)
    assert loaded.flows == []
    [error] = loaded.errors
    assert error.line == 7  # the `with DAG(...)` line
    assert "DAG 'nightly' is scheduled and its param(s) 'table' have no valid default" in str(error)
    manual = load_dag(tmp_path, SCHEDULED.replace('schedule="@daily"', "schedule=None"), name="manual.py")
    assert manual.flow_id == "nightly"
