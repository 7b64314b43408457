"""``ductwork doctor FILE``: what a file uses that Ductwork does not support, with file and line,
found without running the file."""

from __future__ import annotations

from pathlib import Path

from tests.compat.conformance import extract_airflow_examples

DAGS = Path(__file__).parent / "dags"


def test_doctor_names_file_line_and_feature_without_running_anything(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    dag = tmp_path / "dag.py"
    dag.write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('ran')\n"
        "import pendulum\n"
        "from airflow import DAG\n"
        "from airflow.decorators import task\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.operators.subdag import SubDagOperator\n"
        "with DAG('d', start_date=pendulum.datetime(2024, 1, 1), timetable=object(), catchup=False) as dag:\n"
        "    BashOperator(task_id='b', bash_command='true', run_as_user='root', sla=None, executor_config={})\n"
        "    @task.virtualenv(requirements=['x'])\n"
        "    def v(): pass\n"
    )
    result = cli("doctor", str(dag))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{dag}:7: unsupported: airflow.operators.subdag: SubDAGs (removed in Airflow 3): use task groups" in lines
    assert any(line.startswith(f"{dag}:8: unsupported: DAG(timetable=...)") for line in lines)
    assert any(line.startswith(f"{dag}:9: unsupported: BashOperator(run_as_user=...)") for line in lines)
    assert any(line.startswith(f"{dag}:9: ignored: BashOperator(executor_config=...)") for line in lines)
    assert not any("sla=" in line for line in lines)  # given as None: nothing to report
    assert any(line.startswith(f"{dag}:10: unsupported: @task.virtualenv") for line in lines)
    assert not marker.exists()  # the file was read, not run


def test_doctor_on_supported_files_and_luigi_modules(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    [tutorial] = extract_airflow_examples(["tutorial.py"], tmp_path).values()
    ok = cli("doctor", str(tutorial))
    assert ok.exit_code == 0 and ok.output.strip() == f"{tutorial}: nothing Ductwork runs differently"
    module = tmp_path / "pipeline.py"
    module.write_text("import luigi\nfrom luigi.contrib.s3 import S3Target\nclass T(luigi.Task):\n    pass\n")
    result = cli("doctor", str(module))
    assert result.exit_code == 1
    assert f"{module}:2: unsupported: luigi.contrib.s3" in result.output


def test_doctor_reports_a_file_it_cannot_parse_in_one_line_and_goes_on(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.py").write_text("import airflow\nx = (\n")
    (tmp_path / "latin.py").write_bytes(b"# caf\xe9\n")
    (tmp_path / "fine.py").write_text("from airflow.operators.bash import BashOperator\n")
    result = cli("doctor", "bad.py", "latin.py", "fine.py")
    assert result.exit_code == 1
    assert "bad.py:2: cannot be parsed: SyntaxError: '(' was never closed" in result.output
    assert "latin.py: cannot be read: UnicodeDecodeError" in result.output
    assert "fine.py: nothing Ductwork runs differently" in result.output
    assert "Traceback" not in result.output


def test_doctor_does_not_flag_a_catchup_the_dag_sets_itself(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Only a default differs from Airflow 3; an explicit catchup=True was reported as differing."""
    dag = tmp_path / "explicit.py"
    dag.write_text("from airflow import DAG\nwith DAG('e', schedule='@daily', catchup=True) as dag:\n    pass\n")
    result = cli("doctor", str(dag))
    assert "catchup" not in result.output, result.output
    (tmp_path / "implicit.py").write_text(
        "from airflow import DAG\nwith DAG('i', schedule='@daily') as dag:\n    pass\n"
    )
    assert "catchup not given" in cli("doctor", str(tmp_path / "implicit.py")).output


def test_doctor_checks_the_tasks_arguments_given_in_default_args(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`default_args={"wait_for_downstream": True}` failed the import while doctor said nothing."""
    dag = tmp_path / "waits.py"
    dag.write_text(
        "from airflow import DAG\n"
        "with DAG('w', schedule=None, catchup=False, default_args={'wait_for_downstream': True}) as dag:\n"
        "    pass\n"
    )
    result = cli("doctor", str(dag))
    assert result.exit_code == 1
    assert f"{dag}:2: unsupported: default_args['wait_for_downstream']" in result.output
