"""``ductwork tasks render`` of a task with nothing to render printed nothing and exited 0,
which reads as "rendered to empty": a mapped task (``BashOperator.partial(...).expand(...)``)
renders its fields in each instance's try, and an ``EmptyOperator`` has no templated field.
It now says which, on stderr."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli

DAG_FILE = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator

with DAG("mapped_render", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily"):
    BashOperator.partial(task_id="echo").expand(bash_command=["echo {{ ds }}", "echo 2"])
    EmptyOperator(task_id="nothing")
    BashOperator(task_id="plain", bash_command="echo {{ ds }}")
"""


def test_render_says_why_a_task_shows_no_fields(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "mapped_render.py").write_text(DAG_FILE)
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")}
    mapped = cli("tasks", "render", "mapped_render", "echo", "2024-03-01", env=env)
    assert mapped.exit_code == 0, mapped.output
    assert "task 'echo' is mapped" in mapped.output
    empty = cli("tasks", "render", "mapped_render", "nothing", "2024-03-01", env=env)
    assert "task 'nothing' has no templated fields" in empty.output
    plain = cli("tasks", "render", "mapped_render", "plain", "2024-03-01", env=env)
    assert "echo 2024-03-01" in plain.output
