"""``ductwork flows show`` says what each parameter of a DAG wants, Airflow ``Param``s included."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Cli

DAG = """
    import pendulum
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.empty import EmptyOperator

    with DAG(
        "typed",
        start_date=pendulum.datetime(2024, 1, 1),
        schedule=None,
        params={
            "limit": Param(10, type="integer", minimum=1, maximum=500),
            "mode": Param("full", enum=["full", "delta"]),
            "tags": Param(["a"], type="array"),
            "note": Param(None, type=["null", "string"]),
            "plain": 7,
        },
    ):
        EmptyOperator(task_id="e")
"""


def test_flows_show_gives_what_each_param_schema_wants(cli: Cli, tmp_path: Path) -> None:
    # Every Param's type was "schema" (and "schema or null"): nothing said an integer from 1 to
    # 500 or one of two words was wanted, which the trigger form does say.
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "typed.py").write_text(textwrap.dedent(DAG))
    shown = cli("flows", "show", "typed", env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.output.splitlines() if "│" in line}
    assert rows == {
        "limit": "integer, 1 to 500",
        "mode": 'one of "full", "delta"',
        "tags": "array as JSON",
        "note": "null/string",
        "plain": "int",
    }
