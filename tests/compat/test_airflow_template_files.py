"""Template files under the Airflow shim: which templated strings are read as files (Airflow's
``template_ext`` rules) and what a rendering error of one says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

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
    summary = run_locally(load_dag(tmp_path, BASH_SCRIPTS.format(folder=tmp_path)), logical_date=dt.date(2024, 3, 1))
    assert summary.task_states["as_is"].value == "success", summary["as_is"].tries[-1].error
    assert summary.result("as_is") == "count 3"
    assert summary.result("templated") == "hello 2024-03-01"
    error = summary["broken"].tries[-1].error or ""
    assert f"template file {tmp_path / 'broken.sh'}, line 2" in error and "'nowhere' is undefined" in error


PYTHON_TEMPLATES_EXTS = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.python import PythonOperator

    def show(templates_dict=None, **context):
        return templates_dict

    with DAG("exts", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"region": "eu"}):
        PythonOperator(
            task_id="td",
            python_callable=show,
            templates_dict={"when": "{{ ds }}", "q": "sql/q.sql", "not_a_file": "sql/q.sql "},
            templates_exts=[".sql"],
        )
        PythonOperator(task_id="no_exts", python_callable=show, templates_dict={"q": "sql/q.sql"})

        @task(templates_exts=[".sql"])
        def decorated(query):
            return query

        decorated("sql/q.sql")
"""


def test_python_operator_templates_exts_reads_template_files(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "q.sql").write_text("SELECT 1 WHERE ds = '{{ ds }}' AND region = '{{ params.region }}'")
    summary = run_locally(load_dag(tmp_path, PYTHON_TEMPLATES_EXTS), logical_date=dt.date(2024, 3, 1))
    query = "SELECT 1 WHERE ds = '2024-03-01' AND region = 'eu'"
    assert summary.result("td") == {"when": "2024-03-01", "q": query, "not_a_file": "sql/q.sql "}
    assert summary.result("no_exts") == {"q": "sql/q.sql"}
    assert summary.result("decorated") == query


MISSING_FILES = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    def show(templates_dict=None, **context):
        return templates_dict

    with DAG("missing", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        BashOperator(task_id="script", bash_command="scripts/load.sh")
        PythonOperator(task_id="query", python_callable=show, templates_dict={"q": "sql/dayly.sql"},
                       templates_exts=[".sql"])
"""


def test_a_template_file_that_is_not_there_fails_the_try_naming_it(tmp_path: Path) -> None:
    """As Airflow's ``TemplateNotFound``: the name was taken as the text, so the command ran
    (``scripts/load.sh: No such file or directory``, exit 127) and the callable got the file
    name ``sql/dayly.sql`` as its query and succeeded."""
    summary = run_locally(load_dag(tmp_path, MISSING_FILES))
    for task_id, name, field in (
        ("script", "scripts/load.sh", "bash_command"),
        ("query", "sql/dayly.sql", "templates_dict"),
    ):
        assert summary.task_states[task_id].value == "failed", task_id
        error = summary[task_id].tries[-1].error or ""
        assert f"task {task_id!r}, field {field!r}: template file {name!r} not found (looked in {tmp_path})" in error


INCLUDES = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    with DAG("includes", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             template_searchpath=["{shared}"], params={{"table": "orders"}}):
        BashOperator(task_id="inline", bash_command="echo \\"{{% include 'sql/q.sql' %}}\\"")
        BashOperator(task_id="searchpath", bash_command="echo '{{% include 'common.sql' %}}'")
        BashOperator(task_id="from_file", bash_command="wrap.sh")
        BashOperator(task_id="imported", bash_command="{{% import 'macros.j2' as m %}}echo {{{{ m.upper_ds(ds) }}}}")
        BashOperator(task_id="missing", bash_command="echo '{{% include 'nowhere.sql' %}}'")
"""


def test_jinja_include_and_import_find_files_beside_the_dag_and_in_template_searchpath(tmp_path: Path) -> None:
    """`{% include 'q.sql' %}` (or `{% import %}`) in a templated field failed with "TypeError:
    no loader for this environment specified": Airflow's Jinja environment loads templates
    from the DAG's folder and its ``template_searchpath``, and so must ours."""
    flows, shared = tmp_path / "flows", tmp_path / "shared"
    (flows / "sql").mkdir(parents=True)
    shared.mkdir()
    (flows / "sql" / "q.sql").write_text("SELECT '{{ ds }}' FROM {{ params.table }}")
    (shared / "common.sql").write_text("common {{ ds_nodash }}")
    (flows / "wrap.sh").write_text("echo \"{% include 'sql/q.sql' %}\"\n")
    (shared / "macros.j2").write_text("{% macro upper_ds(d) %}{{ d | replace('-', '_') }}{% endmacro %}")
    dag = load_dag(flows, INCLUDES.format(shared=shared))
    summary = run_locally(dag, logical_date=dt.date(2024, 3, 1))
    assert summary.result("inline") == "SELECT '2024-03-01' FROM orders", summary["inline"].tries[-1].error
    assert summary.result("searchpath") == "common 20240301"
    assert summary.result("from_file") == "SELECT '2024-03-01' FROM orders"
    assert summary.result("imported") == "2024_03_01"
    error = summary["missing"].tries[-1].error or ""
    assert "task 'missing', field 'bash_command'" in error and "nowhere.sql" in error, error
