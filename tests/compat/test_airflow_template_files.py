"""Template files under the Airflow shim: which templated strings are read as files (Airflow's
``template_ext`` rules) and what a rendering error of one says."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from ductwork import Flow
from ductwork.engine.local import run_locally
from ductwork.loading import load_file


def _flow(folder: Path, source: str) -> Flow:
    path = folder / "dag_file.py"
    path.write_text(textwrap.dedent(source))
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    [flow] = loaded.flows
    return flow


BASH_SCRIPTS = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    with DAG("scripts", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        # Airflow's documented trick: the trailing space says "run it, it is not a template"
        BashOperator(task_id="as_is", bash_command="{folder}/count.sh ")
        BashOperator(task_id="templated", bash_command="greet.sh")
        BashOperator(task_id="broken", bash_command="broken.sh")
"""


def test_a_command_ending_in_a_space_is_run_not_read_as_a_template_file(tmp_path: Path) -> None:
    script = tmp_path / "count.sh"
    script.write_text('#!/bin/bash\narr=(a b c)\necho "count ${#arr[@]}"\n')  # {# opens a Jinja comment
    script.chmod(0o755)
    (tmp_path / "greet.sh").write_text("echo hello {{ ds }}\n")
    (tmp_path / "broken.sh").write_text("echo one\necho {{ nowhere }}\n")
    summary = run_locally(_flow(tmp_path, BASH_SCRIPTS.format(folder=tmp_path)), logical_date=dt.date(2024, 3, 1))
    assert summary.task_states["as_is"].value == "success", summary["as_is"].tries[-1].error
    assert summary.result("as_is") == "count 3"
    assert summary.result("templated") == "hello 2024-03-01"
    error = summary["broken"].tries[-1].error or ""
    assert f"template file {tmp_path / 'broken.sh'}, line 2" in error and "'nowhere' is undefined" in error
