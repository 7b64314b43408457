"""``ductwork tasks render`` on an Airflow DAG renders what a try of the task renders: with
Airflow's template variables and its template files."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from ductwork.engine.local import run_locally
from ductwork.loading import load_file
from tests.conftest import Cli

DAG_FILE = """
    import pendulum
    from airflow import DAG
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.bash import BashOperator

    class SqlPrinter(BaseOperator):
        template_fields = ("sql",)
        template_ext = (".sql",)

        def __init__(self, sql, **kwargs):
            super().__init__(**kwargs)
            self.sql = sql

        def execute(self, context):
            return self.sql

    with DAG("rendered", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily",
             params={"region": "eu"}, user_defined_macros={"twice": lambda x: x * 2}):
        BashOperator(task_id="dates", bash_command="echo {{ prev_ds }} {{ ds }} {{ dag_run.run_id[:6] }}")
        SqlPrinter(task_id="query", sql="sql/q.sql")
"""


def test_tasks_render_gives_what_the_run_renders(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "sql").mkdir(parents=True)
    (flows / "sql" / "q.sql").write_text(
        "SELECT * FROM t WHERE ds = '{{ ds }}' AND region = '{{ params.region }}' AND x = {{ twice(3) }}"
    )
    (flows / "rendered.py").write_text(textwrap.dedent(DAG_FILE))
    query = json.loads(cli("tasks", "render", "rendered", "query", "2024-03-02", "--json").output)
    dates = cli("tasks", "render", "rendered", "dates", "2024-03-02", "--json")
    assert dates.exit_code == 0, dates.output
    [flow] = load_file(flows / "rendered.py").flows
    run = run_locally(flow, logical_date=dt.date(2024, 3, 2))
    assert query["sql"] == run.result("query") == "SELECT * FROM t WHERE ds = '2024-03-02' AND region = 'eu' AND x = 6"
    assert json.loads(dates.output)["bash_command"] == "echo 2024-03-01 2024-03-02 render"
