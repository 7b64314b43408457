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


def test_doctor_passes_the_timetables_the_shim_runs_and_the_modules_it_now_has(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``DAG(timetable=CronDataIntervalTimetable(...))`` runs, but doctor called it a custom
    timetable and exited 1; a subclass of ``Timetable`` is still one."""
    dag = tmp_path / "dag.py"
    dag.write_text(
        "import pendulum\n"
        "from airflow import DAG\n"
        "from airflow.configuration import conf\n"
        "from airflow.hooks.subprocess import SubprocessHook\n"
        "from airflow.models import XCom\n"
        "from airflow.utils.session import provide_session\n"
        "from airflow.timetables.base import Timetable\n"
        "from airflow.timetables.interval import CronDataIntervalTimetable\n"
        "with DAG('d', start_date=pendulum.datetime(2024, 1, 1), catchup=False,\n"
        "         timetable=CronDataIntervalTimetable('0 1 * * *', timezone='UTC')) as dag:\n"
        "    pass\n"
        "custom = DAG('c', start_date=pendulum.datetime(2024, 1, 1), catchup=False, timetable=Timetable())\n"
    )
    result = cli("doctor", str(dag))
    lines = result.output.splitlines()
    assert [line for line in lines if ": unsupported: " in line] == [
        f"{dag}:12: unsupported: DAG(timetable=...): custom timetables: use a cron string, a preset or a timedelta"
    ]


def test_doctor_on_supported_files_and_luigi_modules(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    [tutorial] = extract_airflow_examples(["tutorial.py"], tmp_path).values()
    ok = cli("doctor", str(tutorial))
    # nothing unsupported; its timedelta(days=1) with catchup=False runs at midnights here, where
    # Airflow 2 runs it at the time of day its scheduler first saw it
    assert ok.exit_code == 0
    assert [line.split(": its runs")[0] for line in ok.output.strip().splitlines()] == [
        f"{tutorial}:41: differs: DAG(schedule=timedelta(...), catchup=False)"
    ]
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


def test_doctor_does_not_flag_catchup_on_a_dag_it_cannot_change(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A DAG run only by hand (``schedule=None``), once (``@once``) or by datasets never catches
    up, whatever ``catchup`` says; doctor reported "catchup not given: defaults to True" on each,
    noise on every manual DAG of a repository."""
    dag = tmp_path / "manual.py"
    dag.write_text(
        "from airflow import DAG\nfrom airflow.datasets import Dataset\n"
        "with DAG('m', schedule=None) as m:\n    pass\n"
        "with DAG('o', schedule_interval='@once') as o:\n    pass\n"
        "with DAG('d', schedule=[Dataset('s3://b/k')]) as d:\n    pass\n"
        "with DAG('e', schedule=(Dataset('s3://b/k') | Dataset('s3://b/j'))) as e:\n    pass\n"
    )
    result = cli("doctor", str(dag))
    assert "catchup" not in result.output, result.output
    dag.write_text("from airflow import DAG\nwith DAG('t', schedule='@hourly') as t:\n    pass\n")
    assert "catchup not given" in cli("doctor", str(dag)).output


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


def test_doctor_points_out_a_timedelta_schedule_without_catchup_and_variables_read_at_import(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    """Two things such a file does that run differently (README's table) were not mentioned. A
    timedelta from a midnight was said to give Airflow's times, which it does not: Airflow 2's
    first interval starts at the moment its scheduler sees the DAG less the interval."""
    dag = tmp_path / "dag.py"
    dag.write_text(
        "import datetime as dt\n"
        "import pendulum\n"
        "from airflow import DAG\n"
        "from airflow.models import Variable\n"
        "from airflow.operators.python import PythonOperator\n"
        "TABLES = Variable.get('tables', deserialize_json=True)\n"
        "def work():\n"
        "    return Variable.get('inside_a_task')\n"
        "with DAG('d', start_date=pendulum.datetime(2024, 1, 1, 3), schedule=dt.timedelta(hours=6), catchup=False) as d:\n"
        "    PythonOperator(task_id='w', python_callable=work)\n"
        "with DAG('e', start_date=pendulum.datetime(2024, 1, 1), schedule_interval=dt.timedelta(hours=6),\n"
        "         catchup=False) as other:\n"
        "    PythonOperator(task_id='w', python_callable=work)\n"
    )
    result = cli("doctor", str(dag))
    lines = result.output.splitlines()
    assert any(line.startswith(f"{dag}:6: differs: Variable.get at import:") for line in lines), lines
    assert not any(line.startswith(f"{dag}:8:") for line in lines)  # read when the task runs: as in Airflow
    assert any(line.startswith(f"{dag}:9: differs: DAG(schedule=timedelta(...), catchup=False):") for line in lines)
    # from a midnight too: Airflow 2 starts the first interval at "now - delta", not at a midnight
    assert any(line.startswith(f"{dag}:11: differs: DAG(schedule=timedelta(...), catchup=False):") for line in lines)
    assert result.exit_code == 0  # differences, nothing unsupported


def test_doctor_of_a_folder_examines_its_python_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`ductwork doctor flows/` was refused ("is a directory"): a folder is its .py files."""
    dags = tmp_path / "dags"
    (dags / "sub").mkdir(parents=True)
    (dags / "fine.py").write_text("x = 1\n")
    (dags / "sub" / "bad.py").write_text("def (\n")
    (dags / "notes.txt").write_text("not python\n")
    result = cli("doctor", str(dags))
    assert result.exit_code == 1, result.output
    assert f"{dags / 'fine.py'}: nothing Ductwork runs differently" in result.output
    assert f"{dags / 'sub' / 'bad.py'}:1: cannot be parsed" in result.output
    assert "notes.txt" not in result.output
    (tmp_path / "empty").mkdir()
    empty = cli("doctor", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "holds no .py file" in empty.output, empty.output


def test_doctor_names_the_executor_config_keys_the_kubernetes_executor_refuses(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An Airflow DAG's `executor_config={"pod_override": ...}` got "ignored: executor hints" from
    doctor, and under executor = "kubernetes" every try of the task then failed at its pod with
    "executor_config has no key 'pod_override'". Doctor names each such key with its line; the
    keys Ductwork knows pass, and the file still runs on the other executors (exit status 0)."""
    dag = tmp_path / "train.py"
    dag.write_text(
        "from airflow import DAG\n"
        "from airflow.operators.python import PythonOperator\n"
        "with DAG('t', schedule=None, catchup=False,\n"
        "         default_args={'executor_config': {'KubernetesExecutor': {'image': 'etl:1'}}}) as dag:\n"
        "    PythonOperator(task_id='train', python_callable=print, executor_config={\n"
        "        'pod_override': None,\n"
        "        'namespce': 'ml',\n"
        "        'image': 'etl:1',\n"
        "    })\n"
    )
    result = cli("doctor", str(dag))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith(f"{dag}:4: differs: default_args['executor_config']['KubernetesExecutor']: ")
        and 'under executor = "kubernetes"' in line
        for line in lines
    ), result.output
    assert any(
        line.startswith(f"{dag}:6: differs: PythonOperator(executor_config=...)['pod_override']: ")
        and "pod_template" in line
        for line in lines
    ), result.output
    assert any(
        line.startswith(f"{dag}:7: differs: PythonOperator(executor_config=...)['namespce']: ")
        and "Did you mean 'namespace'?" in line
        for line in lines
    ), result.output
    assert "['image']" not in result.output
