"""``ductwork run`` says when it runs a ``depends_on_past`` task whose previous run's try did not
succeed: it does not wait for the past, and an Airflow user expects a hold-back."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Cli

DAG = """
    from datetime import datetime
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    def load(params):
        if params["fail"]:
            raise ValueError("told to fail")

    with DAG("dop", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False, params={"fail": False}):
        PythonOperator(task_id="load", python_callable=load, depends_on_past=True)
"""


def test_run_says_it_does_not_wait_for_a_failed_past(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "dop.py").write_text(textwrap.dedent(DAG))
    failed = cli("run", "dop", "--date", "2024-01-01", "--param", "fail=true")
    assert failed.exit_code == 1, failed.output
    assert "depends_on_past" not in failed.output  # no run before it
    after = cli("run", "dop", "--date", "2024-01-02")
    assert after.exit_code == 0, after.output
    assert (
        "note: task load has depends_on_past, and in the previous run manual__2024-01-01T00:00:00+00:00 it is "
        "failed: ductwork run runs it anyway"
    ) in " ".join(after.output.split())
    again = cli("run", "dop", "--date", "2024-01-03")  # its previous run succeeded
    assert again.exit_code == 0 and "depends_on_past" not in again.output, again.output
