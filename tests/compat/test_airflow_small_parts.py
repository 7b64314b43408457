"""Small parts of Airflow 2's API that DAG files rely on: ``default_args`` params, the default
owner, ``TaskGroup.roots``/``.leaves``, Airflow 1.10's module names and ``airflow.macros``, enum
``Param`` errors, and ``ExternalTaskMarker``'s clear across DAGs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ductwork.engine.local import run_locally
from ductwork.engine.packed_logs import read_range
from ductwork.errors import ParameterError
from ductwork.loading import load_file
from tests.compat.dag_files import load_dag
from tests.conftest import Cli

DEFAULTS = """
    import pendulum
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.task_group import TaskGroup

    default_args = {"params": {"p_from_default": "D"}, "retries": 0}
    with DAG("defaults", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             default_args=default_args, params={"dp": 1, "choice": Param("a", enum=["a", "b"])}) as dag:
        BashOperator(task_id="own_params", params={"tp": "T"},
                     bash_command="echo {{ params.dp }} {{ params.p_from_default }} {{ params.tp }}")
        BashOperator(task_id="no_params", bash_command="echo {{ params.p_from_default }}")
        BashOperator(task_id="overrides", params={"p_from_default": "mine"},
                     bash_command="echo {{ params.p_from_default }}")
        BashOperator(task_id="named_owner", owner="ana", bash_command="echo")
        with TaskGroup("grp", default_args={"params": {"from_group": "G"}}) as grp:
            first = BashOperator(task_id="first", bash_command="echo {{ params.from_group }}")
            middle_a = EmptyOperator(task_id="middle_a")
            middle_b = EmptyOperator(task_id="middle_b")
            last = EmptyOperator(task_id="last")
            first >> [middle_a, middle_b] >> last
"""


def test_default_args_params_are_merged_under_the_tasks_own(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, DEFAULTS))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("own_params") == "1 D T"
    assert summary.result("no_params") == "D"
    assert summary.result("overrides") == "mine"
    assert summary.result("grp.first") == "G"


def test_owner_defaults_to_airflow_and_task_groups_have_roots_and_leaves(tmp_path: Path) -> None:
    flow = load_dag(tmp_path, DEFAULTS)
    assert flow.tasks["own_params"].owner == "airflow"
    assert flow.tasks["named_owner"].owner == "ana"
    group: Any = flow.groups["grp"]  # airflow.utils.task_group.TaskGroup
    assert [t.task_id for t in group.roots] == ["grp.first"]
    assert [t.task_id for t in group.leaves] == ["grp.last"]
    assert [t.task_id for t in group.get_leaves()] == ["grp.last"]


def test_an_enum_param_error_names_the_allowed_values(tmp_path: Path) -> None:
    flow = load_dag(tmp_path, DEFAULTS)
    with pytest.raises(ParameterError, match=r"parameter 'choice' wants one of \"a\", \"b\", got 'c'"):
        flow.resolve_params({"choice": "c"})


LEGACY = """
    import pendulum
    from airflow import DAG, macros
    from airflow.macros import ds_add, ds_format
    from airflow.operators.bash_operator import BashOperator
    from airflow.operators.dummy_operator import DummyOperator
    from airflow.operators.python_operator import BranchPythonOperator, PythonOperator

    def shifted(ds=None):
        return [ds_add(ds, 7), ds_format(ds, "%Y-%m-%d", "%d/%m/%Y"),
                str(macros.datetime(2024, 1, 1) + macros.timedelta(days=1))]

    with DAG("legacy", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        PythonOperator(task_id="shifted", python_callable=shifted) >> DummyOperator(task_id="done")
        BashOperator(task_id="bash", bash_command="echo {{ macros.ds_add(ds, -1) }}")
        BranchPythonOperator(task_id="branch", python_callable=lambda: "done")
"""


def test_airflow_1_10_module_names_and_airflow_macros_import(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, LEGACY), logical_date=dt.date(2024, 3, 1))
    assert summary.result("shifted") == ["2024-03-08", "01/03/2024", "2024-01-02 00:00:00"]
    assert summary.result("bash") == "2024-02-29"


MARKED = {
    "parent": """
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator
        from airflow.sensors.external_task import ExternalTaskMarker

        with DAG("parent", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily", catchup=False):
            BashOperator(task_id="load", bash_command="echo load") >> ExternalTaskMarker(
                task_id="mark", external_dag_id="child", external_task_id="wait", recursion_depth={depth}
            )
    """,
    "child": """
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator
        from airflow.sensors.external_task import ExternalTaskMarker

        with DAG("child", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily", catchup=False):
            wait = BashOperator(task_id="wait", bash_command="echo wait")
            wait >> BashOperator(task_id="use", bash_command="echo use") >> ExternalTaskMarker(
                task_id="onward", external_dag_id="{onward}", external_task_id="{onward_task}", execution_date="{{{{ ds }}}}"
            )
            BashOperator(task_id="unrelated", bash_command="echo unrelated")
    """,
    "grandchild": """
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator

        with DAG("grandchild", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily", catchup=False):
            BashOperator(task_id="g", bash_command="echo g") >> BashOperator(task_id="g2", bash_command="echo g2")
            BashOperator(task_id="g0", bash_command="echo g0")
    """,
}
MARKED_RUN = "manual__2024-03-10T00:00:00+00:00"


def _marked_runs(cli, tmp_path: Path, *, onward: str = "grandchild", depth: int = 10) -> None:  # type: ignore[no-untyped-def]
    for name, text in MARKED.items():
        task = "g" if onward == "grandchild" else "load"
        body = text.format(depth=depth, onward=onward, onward_task=task)
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        assert cli("run", f"{name}.py", "--date", "2024-03-10").exit_code == 0


def _states(cli, flow: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    lines = cli("tasks", "state", flow, MARKED_RUN).output.splitlines()
    return {line.split(":")[0]: line.split(": ")[1].split(" ")[0] for line in lines if ": " in line}


def test_clearing_an_external_task_marker_clears_the_other_dags_task_and_its_downstream(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _marked_runs(cli, tmp_path)
    dry = cli("tasks", "clear", "parent", MARKED_RUN, "mark", "--dry-run")
    assert f"would clear 3 task(s) of child {MARKED_RUN} (ExternalTaskMarker): wait, use, onward" in dry.output
    assert f"would clear 2 task(s) of grandchild {MARKED_RUN} (ExternalTaskMarker): g, g2" in dry.output
    assert set(_states(cli, "child").values()) == {"success"}  # a dry run changes nothing
    cleared = json.loads(cli("tasks", "clear", "parent", MARKED_RUN, "load", "--downstream", "--json").output)
    assert cleared["cleared"] == ["load", "mark"]
    assert [(o["flow_id"], o["cleared"]) for o in cleared["other_runs"]] == [
        ("child", ["wait", "use", "onward"]),
        ("grandchild", ["g", "g2"]),  # through the child's marker, whose date is "{{ ds }}"
    ]
    assert _states(cli, "child") == {"wait": "none", "use": "none", "onward": "none", "unrelated": "success"}
    assert _states(cli, "grandchild") == {"g": "none", "g2": "none", "g0": "success"}
    listed = cli("runs", "list", "--json").output
    assert {(r["flow_id"], r["state"]) for r in json.loads(listed)["runs"]} >= {
        ("child", "queued"),
        ("grandchild", "queued"),
    }


def test_markers_past_their_recursion_depth_clear_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _marked_runs(cli, tmp_path, onward="parent", depth=1)  # parent -> child -> parent: a cycle
    result = cli("tasks", "clear", "parent", MARKED_RUN, "mark")
    assert (
        result.exit_code != 0
        and "maximum recursion depth 1" in result.output
        and "nothing was cleared" in result.output
    )
    assert set(_states(cli, "parent").values()) == {"success"} and set(_states(cli, "child").values()) == {"success"}


def test_airflows_paused_at_creation_setting_is_honoured_when_the_environment_carries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import DAG

    assert DAG("plain", schedule=None).paused_on_creation is False
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    assert DAG("paused", schedule=None).paused_on_creation is True
    assert DAG("explicit", schedule=None, is_paused_upon_creation=False).paused_on_creation is False


CALLBACK_DAG = """
import json
import subprocess
import sys
from pathlib import Path

from airflow import DAG
from airflow.operators.bash import BashOperator

OUT = Path(__file__).with_name("callback.json")


def told(context):
    OUT.write_text(json.dumps({
        "dag_id": context["dag"].dag_id,
        "state": context["dag_run"].state,
        "conf": context["dag_run"].conf,
        "reason": context["reason"],
        "ds": context["ds"],
    }))


with DAG("told", schedule=None, on_failure_callback=told) as dag:
    BashOperator(task_id="breaks", bash_command="exit 1")
"""


def test_a_dags_failure_callback_gets_dag_run_and_reason_as_in_airflow(tmp_path: Path) -> None:
    """It got no dag_run (KeyError, swallowed) nor reason."""
    import json

    (tmp_path / "told.py").write_text(CALLBACK_DAG)
    [flow] = load_file(tmp_path / "told.py").flows
    run_locally(flow, logical_date=dt.datetime(2024, 5, 1, tzinfo=dt.UTC), conf={"k": 1})
    said = json.loads((tmp_path / "callback.json").read_text())
    assert said == {"dag_id": "told", "state": "failed", "conf": {"k": 1}, "reason": "task_failure", "ds": "2024-05-01"}


NO_RECORD_WATCHER = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    def watch(dag_run=None):
        return [ti.task_id for ti in dag_run.get_task_instances() if ti.state == "failed"]

    with DAG("unrecorded", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        BashOperator(task_id="breaks", bash_command="exit 1") >> PythonOperator(
            task_id="watcher", python_callable=watch, trigger_rule="all_done"
        )
"""


def test_task_instances_of_a_run_that_records_nothing_are_an_error_not_an_empty_list(tmp_path: Path) -> None:
    """With no metadata database (run_locally, `ductwork run --no-record`), get_task_instances()
    returned [] and a watcher task saw no failure; it says it has nothing to read."""
    summary = run_locally(load_dag(tmp_path, NO_RECORD_WATCHER))
    watcher = summary.tasks["watcher"]
    assert watcher.state.value == "failed"
    error = watcher.tries[-1].error or ""
    assert "dag_run.get_task_instances()" in error and "metadata database" in error


STATE_CALLBACKS = """
    import json
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    SEEN = []

    def notify(context):
        ti = context["ti"]
        SEEN.append([ti.task_id, ti.try_number, ti.state, context["task_instance"].state])
        with open({out!r}, "w") as fh:
            json.dump(SEEN, fh)

    with DAG("states", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             default_args={{"on_failure_callback": notify, "on_retry_callback": notify,
                           "on_success_callback": notify, "on_execute_callback": [notify]}}) as dag:
        BashOperator(task_id="breaks", bash_command="exit 1", retries=1, retry_delay=0)
        BashOperator(task_id="works", bash_command="echo fine")
"""


def test_a_callback_shared_by_success_retry_and_failure_sees_the_state_the_try_ended_in(tmp_path: Path) -> None:
    """Airflow sets the task instance's state before calling the callbacks; ``ti.state`` was
    ``running`` in all of them."""
    out = tmp_path / "seen.json"
    run_locally(load_dag(tmp_path, STATE_CALLBACKS.format(out=str(out))))
    seen = sorted(json.loads(out.read_text()))
    assert seen == [
        ["breaks", 1, "running", "running"],
        ["breaks", 1, "up_for_retry", "up_for_retry"],
        ["breaks", 2, "failed", "failed"],
        ["breaks", 2, "running", "running"],
        ["works", 1, "running", "running"],
        ["works", 1, "success", "success"],
    ]


DAG_CALLBACK_READS_TASKS = """
    import json
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    def alert(context):
        failed = [ti.task_id for ti in context["dag_run"].get_task_instances(state="failed")]
        with open({out!r}, "w") as fh:
            json.dump(failed, fh)

    with DAG("alerting", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             on_failure_callback=alert) as dag:
        BashOperator(task_id="breaks", bash_command="exit 1")
        BashOperator(task_id="works", bash_command="echo fine")
"""


def test_a_dags_failure_callback_lists_the_runs_failed_task_instances(tmp_path: Path) -> None:
    """A DAG callback that lists the failed tasks (``dag_run.get_task_instances()``) got an
    empty list; the run `ductwork run` (run_locally) just ended is read from its summary."""
    out = tmp_path / "failed.json"
    run_locally(load_dag(tmp_path, DAG_CALLBACK_READS_TASKS.format(out=str(out))))
    assert json.loads(out.read_text()) == ["breaks"]


DAG_CALLBACK_READS_TI = """
    import json
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    def alert(context):
        ti = context["task_instance"]
        with open({out!r}, "w") as fh:
            json.dump([context["reason"], ti.task_id, ti.state, context["ti"].log_url], fh)

    with DAG("alerting_ti", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             on_failure_callback=alert, on_success_callback=alert) as dag:
        BashOperator(task_id="breaks", bash_command="exit {{{{ params.code }}}}", params={{"code": 1}})
        BashOperator(task_id="works", bash_command="echo fine")
"""


def test_a_dags_callback_gets_a_task_instance_as_in_airflow(tmp_path: Path) -> None:
    """Airflow builds a DAG callback's context from a task instance of the run; an alert that
    read ``context["task_instance"].task_id`` or ``.log_url`` raised KeyError and sent nothing."""
    out = tmp_path / "ti.json"
    run_locally(load_dag(tmp_path, DAG_CALLBACK_READS_TI.format(out=str(out))))
    reason, task_id, state, url = json.loads(out.read_text())
    assert (reason, task_id, state) == ("task_failure", "breaks", "failed")
    assert url.startswith("http://localhost:8080/flows/alerting_ti/runs/") and url.endswith("/tasks/breaks")


CONF_READER = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

    with DAG("conf_reader", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"limit": 5}):
        @task
        def names(dag_run=None):
            return dag_run.conf.get("names", [])

        names()
        BashOperator(task_id="echo", bash_command="echo {{ dag_run.conf.get('region', 'none') }} {{ params.limit }}")
"""


def test_run_gives_the_dag_run_conf_of_conf_option(cli: Cli, tmp_path: Path) -> None:
    """``ductwork run --conf`` is ``airflow dags test -c``: the run's ``dag_run.conf`` (which, as
    Airflow's default, also overrides its params); a conf that is not a JSON object is refused."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "conf_reader.py").write_text(textwrap.dedent(CONF_READER))
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    ran = cli(
        "run",
        "conf_reader",
        "--no-record",
        "--json",
        "--conf",
        '{"names": ["a", "b"], "region": "eu", "limit": 9}',
        env=env,
    )
    assert ran.exit_code == 0, ran.output
    tasks = json.loads(ran.output)["tasks"]
    assert tasks["names"]["state"] == tasks["echo"]["state"] == "success"
    log = Path(tasks["echo"]["tries"][0]["log"]).read_text()
    assert "eu 9" in log

    refused = cli("run", "conf_reader", "--no-record", "--conf", "[1, 2]", env=env)
    assert refused.exit_code == 2 and "--conf: expected a JSON object" in refused.output


LOGGING = """
    import logging
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.hooks.base import BaseHook
    from airflow.models.baseoperator import BaseOperator
    from airflow.sensors.base import BaseSensorOperator
    from airflow.utils.log.logging_mixin import LoggingMixin

    class Client(LoggingMixin):
        def call(self):
            self.log.info("client called")

    class ApiHook(BaseHook):
        def fetch(self):
            self.log.info("hook fetched")
            Client().call()

    class ExportOperator(BaseOperator):
        template_fields = ("target",)

        def __init__(self, target, **kwargs):
            super().__init__(**kwargs)
            self.target = target

        def execute(self, context):
            self.log.info("exporting to %s", self.target)
            ApiHook().fetch()
            return self.target

    class ReadySensor(BaseSensorOperator):
        def poke(self, context):
            self.log.info("poking once")
            return True

    with DAG("logging_dag", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        @task
        def report():
            logging.getLogger("airflow.task").info("report written")
            return {"rows": 3}

        @task(show_return_value_in_logs=False)
        def secret():
            return "not for the log"

        ReadySensor(task_id="ready", poke_interval=1) >> ExportOperator(task_id="export", target="s3://b/{{ ds_nodash }}") >> report() >> secret()
"""


def test_operators_hooks_and_sensors_log_through_self_log_into_the_try_log(tmp_path: Path) -> None:
    """``self.log.info(...)`` in a custom operator, sensor, hook or ``LoggingMixin`` class, and
    Airflow's ``airflow.task`` logger, reach the try's log, as in Airflow (``self.log`` of an
    operator raised AttributeError, and INFO lines of hooks were dropped)."""
    summary = run_locally(load_dag(tmp_path, LOGGING), logical_date=dt.date(2024, 3, 1), log_dir=tmp_path / "logs")
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("export") == "s3://b/20240301"

    def log_of(task_id: str) -> str:
        [first] = summary.tasks[task_id].tries
        assert first.log_path is not None
        if first.log_range is None:
            return Path(first.log_path).read_text()
        return read_range(first.log_path, *first.log_range)

    export = log_of("export")
    assert "airflow.task.operators." in export and "ExportOperator: exporting to s3://b/20240301" in export
    assert "ApiHook: hook fetched" in export and "Client: client called" in export
    assert "ReadySensor: poking once" in log_of("ready")
    assert "airflow.task: report written" in log_of("report")
    # a @task logs its return value as PythonOperator does (it said nothing), unless told not to
    assert "Done. Returned value was: {'rows': 3}" in log_of("report")
    assert "Returned value" not in log_of("secret")


MODULE_PATHS = """
    import pendulum
    from airflow import DAG, Dataset
    from airflow.hooks.base_hook import BaseHook
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.operators.branch import BaseBranchOperator
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import Context, TriggerRule
    from airflow.sensors.external_task_sensor import ExternalTaskSensor
    from airflow.utils.decorators import apply_defaults
    from airflow.utils.types import DagRunType

    class ByRunType(BaseBranchOperator):
        @apply_defaults
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

        def choose_branch(self, context: Context):
            dag_run: DagRun = context["dag_run"]
            return "by_hand" if dag_run.run_type == DagRunType.MANUAL else "on_schedule"

    def describe(**kwargs):
        ti: TaskInstance = kwargs["ti"]
        return [ti.task_id, kwargs["dag_run"].run_type, str(DagRunType.SCHEDULED)]

    with DAG("module_paths", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        wait = TimeDeltaSensor(task_id="wait", delta=pendulum.duration(seconds=0))
        branch = ByRunType(task_id="branch")
        by_hand = PythonOperator(task_id="by_hand", python_callable=describe, outlets=[Dataset("s3://b/k")])
        on_schedule = BashOperator(task_id="on_schedule", bash_command="echo scheduled")
        end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        wait >> branch >> [by_hand, on_schedule] >> end
"""


def test_airflow_3_standard_provider_paths_and_other_common_module_names(tmp_path: Path) -> None:
    """DAG files import the standard operators from ``airflow.providers.standard`` (Airflow 3 and
    the 2.10 provider), type hints from ``airflow.models.dagrun``/``taskinstance``, ``DagRunType``,
    ``BaseBranchOperator`` and Airflow 1.10's names: each import failed with ModuleNotFoundError."""
    summary = run_locally(load_dag(tmp_path, MODULE_PATHS), logical_date=dt.date(2024, 3, 1))
    states = {t: s.state.value for t, s in summary.tasks.items()}
    assert states == {
        "wait": "success",
        "branch": "success",
        "by_hand": "success",
        "on_schedule": "skipped",
        "end": "success",
    }
    assert summary.result("by_hand") == ["by_hand", "manual", "scheduled"]


def test_a_provider_the_shim_lacks_is_named_with_what_to_use_instead(tmp_path: Path) -> None:
    path = tmp_path / "pg_dag.py"
    path.write_text("from airflow.providers.postgres.hooks.postgres import PostgresHook\n")
    [error] = load_file(path).errors
    assert "airflow.providers.postgres" in str(error) and "only the standard provider" in str(error)
    assert "ductwork.integrations" in str(error) and "sql" in str(error)


TASK_PARAMS = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

    with DAG("task_params", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"limit": 1, "region": "eu"}):
        BashOperator(task_id="own", bash_command="echo {{ params.limit }} {{ params.region }}", params={"limit": 5})
        BashOperator(task_id="dags", bash_command="echo {{ params.limit }} {{ params.region }}")

        @task(params={"extra": "x"})
        def seen(params=None, task=None):
            return [dict(params), dict(task.params)]

        seen()
"""


def test_a_tasks_own_params_override_the_dags_and_a_runs_values_override_both(tmp_path: Path) -> None:
    """As Airflow merges them: DAG params, then the task's ``params=`` (it got the DAG's value),
    then the values the run was given; ``task.params`` holds the first two (it was missing)."""
    flow = load_dag(tmp_path, TASK_PARAMS)
    summary = run_locally(flow)
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("own") == "5 eu"
    assert summary.result("dags") == "1 eu"
    context_params, task_params = summary.result("seen")
    assert context_params == task_params == {"limit": 1, "region": "eu", "extra": "x"}

    given = run_locally(flow, params={"limit": 7, "region": "us"})
    assert given.result("own") == "7 us"
    assert given.result("dags") == "7 us"


TESTED = """
    import os
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

    @task(task_id="py")
    def py(params, test_mode=None, task=None, dag_run=None):
        print(f"test_mode={test_mode} foo={task.params['foo']} miff={params['miff']} conf={dag_run.conf}")

    with DAG("tested", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        py(params={"miff": "agg"}) >> BashOperator(
            task_id="sh", bash_command="echo foo=$FOO", env={"FOO": "{{ params.foo }}"}
        )
"""


def test_tasks_test_is_in_test_mode_and_takes_airflows_task_params_and_a_conf(cli: Cli, tmp_path: Path) -> None:
    """``airflow tasks test DAG TASK DATE -t '{"foo": "bar"}'`` (Airflow's
    example_passing_params_via_test_command): the task sees ``test_mode`` true and the params
    given to it; ``ductwork tasks test`` had no ``-t`` and ``test_mode`` was always false."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "tested.py").write_text(textwrap.dedent(TESTED))
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    py = cli("tasks", "test", "tested", "py", "2024-03-01", "-t", '{"foo": "bar"}', "--conf", '{"k": 1}', env=env)
    assert py.exit_code == 0, py.output
    assert "test_mode=True foo=bar miff=agg conf={'k': 1}" in py.output
    sh = cli("tasks", "test", "tested", "sh", "2024-03-01", "--task-params", '{"foo": "baz"}', env=env)
    assert sh.exit_code == 0, sh.output
    assert "foo=baz" in sh.output

    refused = cli("tasks", "test", "tested", "sh", "-t", "[1]", env=env)
    assert refused.exit_code == 2 and "--task-params: expected a JSON object" in refused.output


DAG_ATTRIBUTES = """
    import os
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    with DAG("dag_attributes", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily") as dag:
        with open(os.path.join(dag.folder, "query.sql")) as fh:
            query = fh.read().strip()
        BashOperator(
            task_id="show",
            bash_command="echo " + query + " {{ dag.schedule_interval }} {{ ti.operator }} {{ task.task_type }}",
        )
"""


def test_dag_and_task_attributes_airflow_dag_files_read(tmp_path: Path) -> None:
    """``dag.folder`` (to find files beside the DAG file), ``dag.schedule_interval``,
    ``ti.operator`` and ``task.task_type`` raised AttributeError (the file or the try failed)."""
    (tmp_path / "query.sql").write_text("select_1\n")
    flow: Any = load_dag(tmp_path, DAG_ATTRIBUTES)
    assert flow.schedule_interval == "@daily" and flow.full_filepath == str(tmp_path / "dag_file.py")
    summary = run_locally(flow, logical_date=dt.date(2024, 3, 1))
    assert summary.result("show") == "select_1 @daily BashOperator BashOperator"


RENDER_TEMPLATE = """
    import pendulum
    from airflow.decorators import task
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.dag import DAG
    from airflow.operators.python import get_current_context

    class QueryOperator(BaseOperator):
        template_ext = (".sql",)

        def __init__(self, query_file, **kwargs):
            super().__init__(**kwargs)
            self.query_file = query_file

        def execute(self, context):
            return self.render_template(self.query_file, context)

    with DAG("render_template", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily",
             params={"other": "from_dag"}):
        QueryOperator(task_id="query", query_file="q.sql")

        @task
        def inline():
            context = get_current_context()
            return context["task"].render_template(["{{ ds }}", {"p": "{{ params.other }}"}], context)

        inline()
"""


def test_render_template_renders_strings_structures_and_template_files(tmp_path: Path) -> None:
    """``self.render_template(...)`` in an operator's execute and ``context["task"].render_template``
    (Airflow 3's tutorial_taskflow_templates) raised AttributeError."""
    (tmp_path / "q.sql").write_text("select * from t where day = '{{ ds }}'\n")
    summary = run_locally(load_dag(tmp_path, RENDER_TEMPLATE), logical_date=dt.date(2024, 3, 1))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("query") == "select * from t where day = '2024-03-01'\n"
    assert summary.result("inline") == ["2024-03-01", {"p": "from_dag"}]


BASH_DECORATOR = """
    import pendulum
    from airflow.sdk import dag, task

    @dag(schedule=None, start_date=pendulum.datetime(2023, 1, 1, tz="UTC"), params={"who": "", "where": "/"})
    def bash_decorated():
        @task.bash
        def run_me(times: int, task_instance_key_str: str) -> str:
            return f"echo {task_instance_key_str} x{times}"

        for i in range(2):
            run_me.override(task_id=f"runme_{i}")(times=i)

        @task.bash(env={"BASE_DIR": "{{ dag_run.logical_date.strftime('%Y/%m/%d') }}", "WHO": "{{ params.who }}"},
                   append_env=True, cwd="{{ params.where }}")
        def in_dir() -> str:
            return 'echo "$BASE_DIR $WHO $(pwd) ${PATH:+has_path}"'

        @task
        def keyed(ds_nodash, dag_run, prev_ds):
            return [ds_nodash, dag_run.dag_id, prev_ds]

        in_dir()
        keyed()

    bash_decorated()
"""


def test_task_functions_take_airflows_context_names_and_bash_env_is_templated(tmp_path: Path) -> None:
    """Airflow 3's example_bash_decorator: ``def run_me(times, task_instance_key_str)`` called
    with ``times`` only failed the whole file ('missing argument(s) task_instance_key_str'),
    ``@task.bash(env=...)`` was refused ('unknown argument env'), and its env was not rendered."""
    flow = load_dag(tmp_path, BASH_DECORATOR)
    summary = run_locally(flow, logical_date=dt.date(2024, 3, 5), params={"who": "ana", "where": str(tmp_path)})
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("runme_0") == "bash_decorated__runme_0__20240305 x0"
    assert summary.result("runme_1") == "bash_decorated__runme_1__20240305 x1"
    assert summary.result("in_dir") == f"2024/03/05 ana {tmp_path} has_path"
    assert summary.result("keyed") == ["20240305", "bash_decorated", None]


PYTHON_SENSOR = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.sensors.python import PythonSensor

    def ready(limit, templates_dict):
        return limit > 1 and templates_dict["day"] == "2024-03-01"

    with DAG("python_sensor", start_date=pendulum.datetime(2024, 1, 1), schedule=None):
        @task
        def limit():
            return 5

        PythonSensor(
            task_id="wait",
            python_callable=ready,
            op_kwargs={"limit": limit()},
            templates_dict={"day": "{{ ds }}"},
            poke_interval=0.1,
            timeout=5,
        )
"""


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ('python_callable="ready"', "python_callable must be callable, got 'ready'"),
        ('python_callable=lambda: True, op_args="abc"', "op_args takes a list of positional arguments, got str"),
    ],
)
def test_a_python_sensor_is_called_and_checked_as_a_python_operator_is(
    tmp_path: Path, arguments: str, says: str
) -> None:
    # PythonSensor had its own copy of PythonOperator's callable handling without the checks:
    # a name given for the function, or a text as op_args, failed in every poke until the timeout.
    summary = run_locally(load_dag(tmp_path, PYTHON_SENSOR), logical_date=dt.date(2024, 3, 1))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    path = tmp_path / "bad_sensor.py"
    path.write_text(
        "import pendulum\nfrom airflow import DAG\nfrom airflow.sensors.python import PythonSensor\n"
        "with DAG('bad_sensor', start_date=pendulum.datetime(2024, 1, 1), schedule=None):\n"
        f"    PythonSensor(task_id='wait', {arguments}, timeout=1)\n"
    )
    [error] = load_file(path).errors
    assert f"PythonSensor(task_id='wait'): {says}" in str(error)


TASK_SENSOR = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.sensors.base import PokeReturnValue

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def task_sensor():
        @task
        def limit():
            return 5

        @task.sensor(poke_interval=0.1, timeout=5)
        def wait(n, ds):
            return PokeReturnValue(is_done=n > 1, xcom_value=f"{n} {ds}")

        @task
        def after(value):
            return value

        after(wait(limit()))

    task_sensor()
"""


def test_a_task_sensor_pokes_with_an_upstream_value_and_the_context(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, TASK_SENSOR), logical_date=dt.date(2024, 3, 1))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("after") == "5 2024-03-01"


MAPPED_TASK_SENSOR = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.sensors.base import PokeReturnValue

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def mapped_sensor():
        @task.sensor(poke_interval=0.1, timeout=5, mode="reschedule")
        def wait_for(name, ti=None):
            return PokeReturnValue(is_done=ti.map_index == 0 or name == "b", xcom_value=name.upper())

        @task.sensor(poke_interval=0.1, timeout=0.5, soft_fail=True)
        def never(name):
            return False

        @task
        def after(values):
            return list(values)

        after(wait_for.expand(name=["a", "b"]))
        never.partial().expand(name=["x"])
        wait_for.override(task_id="renamed", timeout=3)(name="b")

    mapped_sensor()
"""


def test_a_mapped_task_sensor_pokes_with_its_sensor_arguments(tmp_path: Path) -> None:
    """``@task.sensor(poke_interval=...)`` mapped with ``expand`` (or renamed with ``override``)
    is a sensor in each instance: its instances failed with 'unknown argument poke_interval', and
    one without sensor arguments ran its poke once as a plain task (False was a success)."""
    summary = run_locally(load_dag(tmp_path, MAPPED_TASK_SENSOR), logical_date=dt.date(2024, 3, 1))
    states = {t: s.state.value for t, s in summary.tasks.items()}
    assert states["wait_for[0]"] == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert states["wait_for[1]"] == "success"
    assert summary.result("after") == ["A", "B"]
    assert states["never[0]"] == "skipped"  # timed out, soft_fail
    assert states["renamed"] == "success"


ALERT_CALLBACK = """
    import json
    from datetime import timedelta
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

    def alert(context):
        # the usual Slack / e-mail alert of a company's DAG files
        ti = context.get("task_instance")
        with open({out!r}, "a") as fh:
            fh.write(json.dumps({{
                "task": ti.task_id, "state": ti.state, "log_url": ti.log_url, "key": list(ti.key), "pool": ti.pool,
                "queue": ti.queue, "priority_weight": ti.priority_weight,
                "duration": ti.duration, "ended_after_start": ti.end_date >= ti.start_date,
            }}) + "\\n")

    with DAG("alerts", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             default_args={{"on_failure_callback": alert}}) as dag:
        BashOperator(task_id="breaks", bash_command="exit 1", pool="etl", priority_weight=3)

        @task(on_failure_callback=alert)
        def each(n):
            raise ValueError(n)

        each.expand(n=[7])
"""


def test_failure_callbacks_read_the_task_instance_attributes_alerts_use(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``ti.log_url`` (in nearly every Slack alert callback), ``ti.key``, ``ti.duration``... were
    missing: the callback raised AttributeError and no alert went out. A mapped instance's
    callbacks were not told the state its try ended in."""
    monkeypatch.setenv("AIRFLOW__WEBSERVER__BASE_URL", "https://airflow.example.com/")
    out = tmp_path / "alerts.jsonl"
    run_locally(load_dag(tmp_path, ALERT_CALLBACK.format(out=str(out))))
    seen = {row["task"]: row for row in map(json.loads, out.read_text().splitlines())}
    breaks = seen["breaks"]
    assert breaks["log_url"].startswith("https://airflow.example.com/flows/alerts/runs/manual__")
    assert breaks["log_url"].endswith("/tasks/breaks") and "+" not in breaks["log_url"]
    assert breaks["key"][:2] == ["alerts", "breaks"] and breaks["key"][3:] == [1, -1]
    assert (breaks["pool"], breaks["queue"], breaks["priority_weight"]) == ("etl", "default", 3)
    assert breaks["duration"] >= 0 and breaks["ended_after_start"]
    instance = seen["each[0]"]  # a mapped instance's callback saw ti.state "running" too
    assert instance["state"] == breaks["state"] == "failed"
    assert instance["key"][1] == "each" and instance["key"][4] == 0
    assert instance["log_url"].endswith("/tasks/each%5B0%5D")


BASH_ENVIRONMENT = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    CTX = 'echo "$AIRFLOW_CTX_DAG_ID|$AIRFLOW_CTX_TASK_ID|$AIRFLOW_CTX_DAG_RUN_ID|$AIRFLOW_CTX_TRY_NUMBER|'
    CTX += '$AIRFLOW_CTX_EXECUTION_DATE|$AIRFLOW_CTX_DAG_OWNER|$AIRFLOW_CTX_DAG_EMAIL|$MINE"'

    with DAG("bash_env", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             default_args={{"owner": "bi", "email": ["a@example.com", "b@example.com"]}}) as dag:
        BashOperator(task_id="inherits", bash_command=CTX)
        BashOperator(task_id="own_env", bash_command=CTX, env={{"MINE": "1"}})
        BashOperator.partial(task_id="mapped", bash_command=CTX).expand(env=[{{"MINE": "2"}}])
        BashOperator(task_id="where", bash_command="pwd; touch left-behind")
        BashOperator(task_id="given_cwd", bash_command="pwd", cwd={cwd!r})
"""


def test_bash_commands_get_airflow_context_variables_and_a_temporary_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Airflow gives a BashOperator's command ``AIRFLOW_CTX_*`` variables (even with ``env=``)
    and runs it in a temporary folder of its own when no ``cwd`` is given: scripts reading
    ``$AIRFLOW_CTX_DAG_RUN_ID`` got nothing, and files they wrote were left in the worker's folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    summary = run_locally(
        load_dag(tmp_path, BASH_ENVIRONMENT.format(cwd=str(tmp_path))), logical_date=dt.date(2024, 3, 1)
    )
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    run_id = summary.run_id
    date = "2024-03-01T00:00:00+00:00"
    emails = "a@example.com,b@example.com"
    assert summary.result("inherits") == f"bash_env|inherits|{run_id}|1|{date}|bi|{emails}|"
    assert summary.result("own_env") == f"bash_env|own_env|{run_id}|1|{date}|bi|{emails}|1"
    assert summary.result("mapped") == [f"bash_env|mapped|{run_id}|1|{date}|bi|{emails}|2"]
    where = summary.result("where")
    assert Path(where).name.startswith("airflowtmp") and not Path(where).exists()
    assert list(work.iterdir()) == []
    assert summary.result("given_cwd") == str(tmp_path)


ISINSTANCE = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import BaseOperator, DagRun as ModelsDagRun, TaskInstance as ModelsTaskInstance
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.sensors.python import PythonSensor

    with DAG("isinstance_checks", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        BashOperator(task_id="bash", bash_command="echo")
        EmptyOperator(task_id="empty")
        PythonSensor(task_id="sensor", python_callable=lambda: True)

        @task
        def check(ti=None, dag_run=None):
            return {
                "operators": {t.task_id: isinstance(t, BaseOperator) for t in dag.task_dict.values()},
                "ti": [isinstance(ti, TaskInstance), isinstance(ti, ModelsTaskInstance)],
                "dag_run": [isinstance(dag_run, DagRun), isinstance(dag_run, ModelsDagRun)],
            }

        check()
"""


def test_isinstance_checks_of_dag_files_hold(tmp_path: Path) -> None:
    """``isinstance(task, BaseOperator)`` was false for the shim's own operators (BashOperator...),
    and ``isinstance(ti, TaskInstance)``/``isinstance(dag_run, DagRun)`` for the try's objects:
    DAG integrity tests and helpers that walk ``dag.tasks`` passed them over."""
    summary = run_locally(load_dag(tmp_path, ISINSTANCE))
    assert summary.result("check") == {
        "operators": {"bash": True, "empty": True, "sensor": True, "check": True},
        "ti": [True, True],
        "dag_run": [True, True],
    }


def test_dag_integrity_tests_load_the_folder_with_dagbag(tmp_path: Path) -> None:
    """``from airflow.models import DagBag`` failed: the DAG integrity test most repositories
    have (every file imports, every DAG has tags...) could not run."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "good.py").write_text(
        textwrap.dedent(
            """
            import pendulum
            from airflow import DAG
            from airflow.operators.empty import EmptyOperator

            with DAG("good", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, tags=["x"]):
                EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
            """
        )
    )
    (dags / "broken.py").write_text("from airflow import DAG\nraise ValueError('no such table')\n")
    code = textwrap.dedent(
        f"""
        import json
        from airflow.models import DagBag
        bag = DagBag(dag_folder={str(dags)!r}, include_examples=False)
        good = bag.get_dag("good")
        print(json.dumps([bag.dag_ids, bag.size(), list(good.tags), len(good.tasks),
                          {{k.rsplit("/", 1)[1]: "no such table" in v for k, v in bag.import_errors.items()}},
                          bag.get_dag("missing")]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["good"], 1, ["x"], 2, {"broken.py": True}, None]


def test_dagbag_holds_the_dags_of_a_folder_that_also_has_native_flows(tmp_path: Path) -> None:
    """A folder moved one file at a time holds ``Flow``s too: the bag gave them as DAGs, and the
    integrity test iterating it failed on them (``'Flow' object has no attribute 'timezone'``;
    ``dag.tasks`` a dict of ids)."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "old.py").write_text(
        textwrap.dedent(
            """
            import pendulum
            from airflow import DAG
            from airflow.operators.empty import EmptyOperator

            with DAG("old", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, tags=["x"]):
                EmptyOperator(task_id="a")
            """
        )
    )
    (dags / "moved.py").write_text(
        "from ductwork import EmptyOperator, Flow\nwith Flow('moved'):\n    EmptyOperator(task_id='a')\n"
    )
    (dags / "moved_broken.py").write_text("from ductwork import Flow\nraise ValueError('half moved')\n")
    code = textwrap.dedent(
        f"""
        import json
        from airflow.models import DagBag
        bag = DagBag(dag_folder={str(dags)!r}, include_examples=False)
        checked = {{dag_id: [str(dag.timezone), [t.task_id for t in dag.tasks]] for dag_id, dag in bag.dags.items()}}
        one = [d.dag_id for d in bag.process_file({str(dags / "moved.py")!r})]
        print(json.dumps([checked, sorted(k.rsplit("/", 1)[1] for k in bag.import_errors), one, bag.dag_ids]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"old": ["UTC", ["a"]]}, ["moved_broken.py"], [], ["old"]]


def test_upstream_task_ids_equal_a_set_as_in_airflow(tmp_path: Path) -> None:
    """A DAG test's ``assert dag.get_task("load").upstream_task_ids == {"extract"}`` failed:
    the ids were a dict (Airflow's are a set)."""
    dag: Any = load_dag(tmp_path, DEFAULTS)
    assert dag.get_task("grp.last").upstream_task_ids == {"grp.middle_a", "grp.middle_b"}
    assert dag.get_task("grp.first").downstream_task_ids == frozenset({"grp.middle_b", "grp.middle_a"})
    assert dag.get_task("grp.first").downstream_task_ids != {"grp.middle_a"}
    assert list(dag.get_task("grp.first").downstream_task_ids) == ["grp.middle_a", "grp.middle_b"]


GROUP_BRANCH = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator
    from airflow.utils.task_group import TaskGroup

    with DAG("group_branch", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        with TaskGroup("load"):
            pick = BranchPythonOperator(task_id="pick", python_callable=lambda: "full")
            pick >> [EmptyOperator(task_id="full"), EmptyOperator(task_id="incremental")]
"""


def test_a_branch_that_names_a_grouped_task_without_its_prefix_is_told_the_full_id(tmp_path: Path) -> None:
    """Airflow refuses the id without the group's prefix too; the error now says which id was meant."""
    summary = run_locally(load_dag(tmp_path, GROUP_BRANCH))
    error = summary["load.pick"].tries[-1].error
    assert "chose 'full', which is not a task of this DAG" in error
    assert "'load.full'" in error
