"""Parts of Airflow 2 that DAG files use and the shim lacked: ``airflow.configuration.conf``,
``airflow.models.XCom``, ``airflow.utils.session``, ``airflow.hooks.subprocess.SubprocessHook``,
``dag.task_group`` (the root group), ``dag.timetable`` and ``dag.tags`` as given."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ductwork.compat.features import UnsupportedFeatureError
from ductwork.engine.local import run_locally
from ductwork.engine.packed_logs import read_range
from ductwork.loading import load_file
from tests.compat.dag_files import load_dag


def _ok(summary: Any) -> None:
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}


def _error(summary: Any, task_id: str) -> str:
    return str(summary.tasks[task_id].tries[-1].error or "")


CONF = """
    import pendulum
    from airflow import DAG, configuration
    from airflow.configuration import conf
    from airflow.decorators import task

    with DAG("conf_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
        @task
        def read():
            try:
                conf.get("my_section", "nothing_here")
                missing = "no error"
            except Exception as exc:
                missing = f"{type(exc).__name__}: {exc}"
            return {
                "dags_folder": conf.get("core", "dags_folder"),
                "base_url": conf.get("webserver", "base_url"),
                "on_failure": conf.getboolean("email", "default_email_on_failure"),
                "parallelism": conf.getint("core", "parallelism"),
                "from_env": conf.get("My_Section", "my_key"),
                "flag": conf.getboolean("my_section", "flag"),
                "fallback": conf.get("my_section", "nothing_here", fallback="fb"),
                "missing": missing,
                "same": configuration.conf is conf,
            }

        read()
"""


def test_conf_reads_airflow_environment_variables_then_defaults(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DUCTWORK_FLOWS_FOLDER", str(tmp_path / "flows"))
    monkeypatch.setenv("AIRFLOW__MY_SECTION__MY_KEY", "from the environment")
    monkeypatch.setenv("AIRFLOW__MY_SECTION__FLAG", "False")
    monkeypatch.setenv("AIRFLOW__WEBSERVER__BASE_URL", "https://airflow.example.com")
    summary = run_locally(load_dag(tmp_path, CONF))
    _ok(summary)
    got = summary.result("read")
    assert got["dags_folder"] == str((tmp_path / "flows").resolve())
    assert got["base_url"] == "https://airflow.example.com"
    assert got["on_failure"] is True and got["parallelism"] == 32
    assert got["from_env"] == "from the environment" and got["flag"] is False
    assert got["fallback"] == "fb" and got["same"] is True
    assert got["missing"].startswith("AirflowConfigException: section/key [my_section/nothing_here] not found")
    assert "AIRFLOW__MY_SECTION__NOTHING_HERE" in got["missing"]


XCOM = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import XCom
    from airflow.models.xcom import XCOM_RETURN_KEY

    with DAG("xcom_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
        @task
        def produce(ti=None):
            ti.xcom_push(key="rows", value=42)
            return "made"

        @task
        def double(x):
            return x * 2

        @task
        def consume(run_id=None, dag=None, logical_date=None, ti=None):
            XCom.set(key="note", value="set by consume", task_id="consume", dag_id=dag.dag_id, run_id=run_id)
            rows = XCom.get_many(run_id=run_id, task_ids=["produce"], dag_ids=dag.dag_id)
            return {
                "one": XCom.get_one(run_id=run_id, task_id="produce", dag_id=dag.dag_id),
                "by_date": XCom.get_one(execution_date=logical_date, task_id="produce", key="rows"),
                "instance": XCom.get_one(run_id=run_id, task_id="double", map_index=1),
                "absent": XCom.get_one(run_id=run_id, task_id="produce", key="nothing"),
                "many": sorted((r.task_id, r.key, r.value) for r in rows),
                "first": rows.first().value if rows.count() else None,
                "note": ti.xcom_pull(task_ids="consume", key="note"),
                "value": XCom.get_value(ti_key=ti.key, key="note"),
                "return_key": XCOM_RETURN_KEY,
            }

        @task
        def elsewhere(run_id=None):
            return XCom.get_one(run_id="another_run", task_id="produce", dag_id="xcom_dag")

        p = produce()
        doubled = double.expand(x=[1, 2])
        [p, doubled] >> consume()
        p >> elsewhere()
"""


def test_xcom_class_methods_read_and_write_the_runs_values(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, XCOM), logical_date=dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    assert summary.tasks["consume"].state.value == "success", _error(summary, "consume")
    assert summary.result("consume") == {
        "one": "made",
        "by_date": 42,
        "instance": 4,
        "absent": None,
        "many": [("produce", "return_value", "made"), ("produce", "rows", 42)],
        "first": "made",
        "note": "set by consume",
        "value": "set by consume",
        "return_key": "return_value",
    }
    # `ductwork run` keeps only its own run's values: another run's is refused, not None.
    assert summary.tasks["elsewhere"].state.value == "failed"
    assert "XCom.get_one(dag_id='xcom_dag', run_id='another_run')" in _error(summary, "elsewhere")


def test_xcom_outside_a_task_says_so(tmp_path: Path) -> None:
    path = tmp_path / "at_import.py"
    path.write_text(
        "import pendulum\nfrom airflow import DAG\nfrom airflow.models import XCom\n"
        "value = XCom.get_one(run_id='r', task_id='t', dag_id='d')\n"
        "dag = DAG('at_import', start_date=pendulum.datetime(2024, 1, 1), schedule=None)\n"
    )
    loaded = load_file(path)
    assert loaded.errors and "XCom.get_one() is called outside a running task" in str(loaded.errors[0])


SESSION = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.utils.session import NEW_SESSION, create_session, provide_session

    @provide_session
    def describe(name, session=NEW_SESSION):
        return f"{name}: {session!r}"

    @provide_session
    def query(session=NEW_SESSION):
        return session.query("DagRun").all()

    with DAG("session_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
        @task
        def passes_it_on():
            with create_session() as session:
                session.commit()
                given = describe("given", session=session)
            return [describe("filled"), given]

        @task
        def queries():
            return query()

        passes_it_on() >> queries()
"""


def test_provide_session_fills_a_session_that_refuses_queries_by_name(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, SESSION))
    assert summary.result("passes_it_on") == [
        "filled: <no Airflow metadata session under Ductwork>",
        "given: <no Airflow metadata session under Ductwork>",
    ]
    assert summary.tasks["queries"].state.value == "failed"
    assert "session.query(...): Airflow's metadata database is not available" in _error(summary, "queries")


SUBPROCESS = """
    import os
    import pendulum
    from airflow import DAG
    from airflow.hooks.subprocess import SubprocessHook
    from airflow.models.baseoperator import BaseOperator
    from airflow.providers.standard.hooks.subprocess import SubprocessHook as StandardHook

    class RunIt(BaseOperator):
        def __init__(self, command, cwd=None, env=None, **kwargs):
            super().__init__(**kwargs)
            self.command, self.cwd, self.env = command, cwd, env

        def execute(self, context):
            result = SubprocessHook().run_command(["bash", "-c", self.command], cwd=self.cwd, env=self.env)
            return [result.exit_code, result.output]

    with DAG("subprocess_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
        RunIt(task_id="ok", command="echo first; echo second >&2; echo last")
        RunIt(task_id="fails", command="echo oops; exit 3")
        RunIt(task_id="where", command="pwd", cwd=os.path.dirname(__file__))
        RunIt(task_id="temp", command="pwd")
        RunIt(task_id="env", command="echo $ONLY", env={"ONLY": "this"})
        same = StandardHook is SubprocessHook
"""


def test_subprocess_hook_returns_the_exit_code_and_last_line(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, SUBPROCESS), log_dir=tmp_path / "logs")
    _ok(summary)
    assert summary.result("ok") == [0, "last"]
    assert summary.result("fails") == [3, "oops"]
    assert summary.result("where") == [0, str(tmp_path)]
    assert summary.result("temp")[1].split("/")[-1].startswith("airflowtmp")
    assert summary.result("env") == [0, "this"]
    [first] = summary.tasks["ok"].tries
    assert first.log_path is not None
    log = Path(first.log_path).read_text() if first.log_range is None else read_range(first.log_path, *first.log_range)
    assert "SubprocessHook: Running command: ['bash', '-c'" in log and "SubprocessHook: second" in log


GROUPS = """
    import datetime as dt
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.task_group import TaskGroup

    with DAG("groups_dag", start_date=pendulum.datetime(2024, 1, 1), schedule="@daily", tags=["etl"]) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("outer", parent_group=dag.task_group) as outer:
            first = EmptyOperator(task_id="first")
            with TaskGroup("inner") as inner:
                EmptyOperator(task_id="deep")
        start >> outer

    with DAG("tuple_tags", start_date=pendulum.datetime(2024, 1, 1), schedule=dt.timedelta(hours=6),
             tags=("a", "b")) as other:
        EmptyOperator(task_id="only")
"""


def test_the_root_task_group_and_direct_children(tmp_path: Path) -> None:
    path = tmp_path / "groups.py"
    path.write_text(textwrap.dedent(GROUPS))
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    dag, other = loaded.flows
    root: Any = dag.task_group  # type: ignore[attr-defined]
    assert root.group_id is None and root.is_root
    assert list(root.children) == ["start", "outer"]
    outer = root.get_child_by_label("outer")
    assert list(outer.children) == ["outer.first", "outer.inner"]
    assert [t.task_id for t in outer] == ["outer.first", "outer.inner.deep"]
    assert list(root.get_task_group_dict()) == [None, "outer", "outer.inner"]
    assert [t.task_id for t in dag.tasks["outer.first"].upstream_list] == ["start"]  # type: ignore[attr-defined]
    assert [t.task_id for t in root] == ["start", "outer.first", "outer.inner.deep"]
    # tags as given (a list stays a list), what the database keeps is the same
    assert dag.tags == ["etl"] and other.tags == ("a", "b")  # type: ignore[attr-defined]
    assert other.meta().tags == ("a", "b")


def test_dag_timetable_is_airflows_for_each_kind_of_schedule(tmp_path: Path) -> None:
    source = """
        import datetime as dt
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset
        from airflow.timetables.interval import CronDataIntervalTimetable

        start = pendulum.datetime(2024, 1, 1, tz="UTC")
        none = DAG("none", start_date=start, schedule=None)
        once = DAG("once", start_date=start, schedule="@once")
        preset = DAG("preset", start_date=start, schedule="@daily")
        cron = DAG("cron", start_date=start, schedule_interval="30 6 * * 1-5")
        delta = DAG("delta", start_date=start, schedule=dt.timedelta(hours=6))
        default = DAG("default", start_date=start)
        data = DAG("data", start_date=start, schedule=[Dataset("s3://bucket/key")])
        given = DAG("given", start_date=start, timetable=CronDataIntervalTimetable("@hourly", timezone="UTC"))
    """
    path = tmp_path / "timetables.py"
    path.write_text(textwrap.dedent(source))
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    tables = {f.flow_id: f.timetable for f in loaded.flows}  # type: ignore[attr-defined]
    assert {k: (type(t).__name__, t.summary) for k, t in tables.items()} == {
        "none": ("NullTimetable", "None"),
        "once": ("OnceTimetable", "@once"),
        "preset": ("CronDataIntervalTimetable", "0 0 * * *"),
        "cron": ("CronDataIntervalTimetable", "30 6 * * 1-5"),
        "delta": ("DeltaDataIntervalTimetable", "6:00:00"),
        "default": ("DeltaDataIntervalTimetable", "1 day, 0:00:00"),
        "data": ("DatasetTriggeredTimetable", "Dataset"),
        "given": ("CronDataIntervalTimetable", "0 * * * *"),
    }
    assert not tables["none"].can_be_scheduled and tables["preset"].periodic
    from airflow.timetables.base import DataInterval, TimeRestriction

    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    first = tables["preset"].next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(start, None, True)
    )
    assert (first.logical_date, first.run_after) == (start, start + dt.timedelta(days=1))
    after = tables["cron"].next_dagrun_info(
        last_automated_data_interval=DataInterval(start, start), restriction=TimeRestriction(start, None, True)
    )
    assert after.data_interval == (
        dt.datetime(2024, 1, 1, 6, 30, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 6, 30, tzinfo=dt.UTC),
    )
    assert (
        tables["none"].next_dagrun_info(
            last_automated_data_interval=None, restriction=TimeRestriction(start, None, True)
        )
        is None
    )


def test_a_custom_timetable_subclass_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "custom_tt.py"
    path.write_text(
        "import pendulum\nfrom airflow import DAG\nfrom airflow.timetables.base import Timetable\n"
        "class Weekdays(Timetable):\n    pass\n"
        "dag = DAG('custom_tt', start_date=pendulum.datetime(2024, 1, 1), timetable=Weekdays())\n"
    )
    loaded = load_file(path)
    assert loaded.errors
    error = loaded.errors[0]
    assert isinstance(getattr(error, "error", error), UnsupportedFeatureError) or "custom timetables" in str(error)
    assert f"{path}:6" in str(error) and "custom timetables" in str(error)


@pytest.mark.parametrize("module", ["airflow.configuration", "airflow.utils.session", "airflow.hooks.subprocess"])
def test_the_modules_import(module: str) -> None:
    import importlib

    assert importlib.import_module(module)


def test_a_timetables_timezone_decides_when_its_cron_fires(tmp_path: Path) -> None:
    """``CronDataIntervalTimetable("0 3 * * *", timezone="Europe/Paris")`` on a DAG whose start
    date is UTC fired at 03:00 UTC: the timetable's timezone was dropped. Airflow evaluates the
    cron in the timetable's timezone (03:00 in Paris is 02:00 UTC in winter)."""
    path = tmp_path / "zones.py"
    source = """
        import datetime as dt
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset
        from airflow.timetables.datasets import DatasetOrTimeSchedule
        from airflow.timetables.interval import CronDataIntervalTimetable
        from airflow.timetables.trigger import CronTriggerTimetable

        paris = DAG("paris", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                    timetable=CronDataIntervalTimetable("0 3 * * *", timezone="Europe/Paris"))
        york = DAG("york", start_date=dt.datetime(2024, 1, 1),
                   schedule=DatasetOrTimeSchedule(
                       timetable=CronTriggerTimetable("0 3 * * *", timezone=pendulum.timezone("America/New_York")),
                       datasets=[Dataset("s3://b/k")]))
    """
    path.write_text(textwrap.dedent(source))
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    paris, york = loaded.flows
    now = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    first = paris.schedule.next_interval(None, start_date=paris.start_date, end_date=None, catchup=True, now=now)
    assert first is not None and first.start == dt.datetime(2024, 1, 1, 2, 0, tzinfo=dt.UTC)
    assert paris.meta().timezone == "Europe/Paris"
    assert york.start_date == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # naive: UTC, as Airflow's default
    first = york.schedule.next_interval(None, start_date=york.start_date, end_date=None, catchup=True, now=now)
    assert first is not None and first.start == dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)


HELPERS = """
    import pendulum
    from airflow import DAG, settings
    from airflow.decorators import task
    from airflow.utils.db import provide_session
    from airflow.utils.log.secrets_masker import mask_secret, redact
    from airflow.utils.operator_helpers import context_to_airflow_vars

    with DAG("helpers_dag", start_date=pendulum.datetime(2024, 1, 1), schedule=None) as dag:
        @task
        def helpers(**context):
            mask_secret("tok-123456")
            print("calling the API with tok-123456")
            return {
                "dags_folder": settings.DAGS_FOLDER,
                "vars": context_to_airflow_vars(context),
                "env": sorted(context_to_airflow_vars(context, in_env_var_format=True)),
                "redacted": redact("key=tok-123456"),
                "by_name": redact("plain", name="api_key"),
            }

        helpers()
"""


def test_settings_secrets_masker_and_operator_helpers(tmp_path: Path, monkeypatch: Any) -> None:
    """``from airflow import settings``, ``airflow.utils.log.secrets_masker``,
    ``airflow.utils.operator_helpers`` and ``airflow.utils.db`` failed to import."""
    monkeypatch.setenv("DUCTWORK_FLOWS_FOLDER", str(tmp_path))
    summary = run_locally(load_dag(tmp_path, HELPERS), log_dir=tmp_path / "logs", run_id="r1")
    _ok(summary)
    got = summary.result("helpers")
    assert got["dags_folder"] == str(tmp_path.resolve())
    assert got["vars"]["airflow.ctx.dag_id"] == "helpers_dag" and got["vars"]["airflow.ctx.dag_run_id"] == "r1"
    assert got["vars"]["airflow.ctx.task_id"] == "helpers"
    assert "AIRFLOW_CTX_DAG_ID" in got["env"] and "AIRFLOW_CTX_TRY_NUMBER" in got["env"]
    assert got["redacted"] == "key=***" and got["by_name"] == "***"
    [first] = summary.tasks["helpers"].tries
    assert first.log_path is not None
    log = Path(first.log_path).read_text() if first.log_range is None else read_range(first.log_path, *first.log_range)
    assert "calling the API with ***" in log and "tok-123456" not in log
