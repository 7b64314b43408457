"""Airflow's cross-DAG operators (``TriggerDagRunOperator``, ``ExternalTaskSensor``) under the
shim, against a real metadata database: in-process with a store lent through ``TaskServices``,
as tests/integrations/test_flow_operators.py runs Ductwork's own, and under the scheduler."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ductwork import Flow
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine.local import run_locally
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.loading import load_file
from ductwork.services import runs as run_service
from ductwork.services.flow_store import SqlFlowStore
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.testing import FrozenClock

DAY = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)

CONTROLLER = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

with DAG(dag_id="controller", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
    kick = TriggerDagRunOperator(task_id="kick", trigger_dag_id="target", trigger_run_id="fixed", {options})
    said = BashOperator(task_id="said", bash_command="echo {{{{ ti.xcom_pull(task_ids='kick', key='trigger_run_id') }}}}")
    kick >> said
"""


def _controller(folder: Path, **options: object) -> Flow:
    path = folder / f"controller_{'_'.join(options) or 'plain'}.py"
    path.write_text(CONTROLLER.format(options=", ".join(f"{k}={v!r}" for k, v in options.items())))
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    [flow] = loaded.flows
    return flow


@pytest.fixture
def finished_target(db_engine: Engine) -> TaskServices:
    """A flow ``target`` whose run ``fixed`` has ended (success)."""
    graph = FlowGraph(FlowMeta("target", params={}), {"only": NodeSpec("only")})
    with transaction(db_engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        run_repo.create_run(conn, graph, run_id="fixed", logical_date=DAY, states={"only": TaskState.SUCCESS})
        record = run_repo.get_run(conn, "target", "fixed")
        assert record is not None
        run_repo.set_run_state(conn, record.pk, RunState.SUCCESS)
    return TaskServices(store=SqlFlowStore(db_engine))


def _target(services: TaskServices) -> tuple[str, dict[str, str]]:
    engine = services.store.engine  # type: ignore[union-attr]
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, "target", "fixed")
        assert record is not None
        return record.state.value, {t: s.value for t, s in task_repo.task_states(conn, record.pk).items()}


def test_reset_dag_run_clears_the_existing_run_so_that_it_runs_again(
    finished_target: TaskServices, tmp_path: Path
) -> None:
    result = run_locally(_controller(tmp_path, reset_dag_run=True), clock=FrozenClock(DAY), services=finished_target)
    assert result.state.value == "success", result["kick"].tries[-1].error
    assert _target(finished_target) == ("queued", {"only": "none"})
    assert "exists already: clearing it" in result.logs[("kick", 1)]


def test_an_existing_run_is_kept_without_reset_and_skips_the_task_with_skip_when_already_exists(
    finished_target: TaskServices, tmp_path: Path
) -> None:
    kept = run_locally(
        _controller(
            tmp_path,
        ),
        clock=FrozenClock(DAY),
        services=finished_target,
    )
    assert kept.state.value == "success" and _target(finished_target) == ("success", {"only": "success"})
    skipped = run_locally(
        _controller(tmp_path, skip_when_already_exists=True), clock=FrozenClock(DAY), services=finished_target
    )
    assert skipped.task_states["kick"].value == "skipped"
    assert _target(finished_target) == ("success", {"only": "success"})


def test_the_triggered_run_id_is_pushed_as_trigger_run_id(finished_target: TaskServices, tmp_path: Path) -> None:
    result = run_locally(
        _controller(
            tmp_path,
        ),
        clock=FrozenClock(DAY),
        services=finished_target,
    )
    assert result.result("kick", "trigger_run_id") == "fixed"
    assert "fixed" in result.logs[("said", 1)]


def test_the_triggered_runs_logical_date_is_pushed_under_airflows_keys(
    finished_target: TaskServices, tmp_path: Path
) -> None:
    """An ``ExternalTaskSensor`` after the trigger finds the run through
    ``xcom_pull(task_ids=..., key="trigger_execution_date_iso")``: it was None."""
    result = run_locally(_controller(tmp_path), clock=FrozenClock(DAY), services=finished_target)
    assert result.result("kick", "trigger_execution_date_iso") == "2024-03-10T00:00:00+00:00"
    assert result.result("kick", "trigger_logical_date_iso") == "2024-03-10T00:00:00+00:00"


RESET_AND_WAIT = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

with DAG(dag_id="controller", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="target", trigger_run_id="fixed",
                          conf={{"v": "{{{{ dag_run.conf.get('v', 'default') }}}}"}},
                          reset_dag_run=True, wait_for_completion=True, poke_interval=0.2)

with DAG(dag_id="target", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag2:
    BashOperator(task_id="append", bash_command='echo "{{{{ dag_run.conf.v }}}}" >> {out}')
"""


def _until_ended(service: SchedulerService, flow_id: str, run_id: str, deadline: float) -> str:
    state = ""
    while time.monotonic() < deadline:
        service.turn()
        state = run_service.get_run(service.engine, flow_id, run_id).state.value
        if state in ("success", "failed"):
            break
    return state


def test_reset_dag_run_with_wait_for_completion_waits_for_the_run_again_under_the_scheduler(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    out = tmp_path / "appended.txt"
    (flows / "trig.py").write_text(RESET_AND_WAIT.format(out=out))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", parallelism=3
    )
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.05, parse_interval=0.05))
    service.start()
    try:
        deadline = time.monotonic() + 120
        known: set[str] = set()
        while time.monotonic() < deadline and len(known) < 2:
            service.turn()
            with read_transaction(service.engine) as conn:
                known = {f.flow_id for f in flow_repo.list_flows(conn)}
        run_service.trigger(service.engine, "controller", run_id="c1", conf={"v": "first"})
        assert _until_ended(service, "controller", "c1", deadline) == "success"
        run_service.trigger(service.engine, "controller", run_id="c2", conf={"v": "second"})
        assert _until_ended(service, "controller", "c2", deadline) == "success"
        # the second controller run cleared the target's run and waited for it to run again
        # (with the conf it had: Airflow 2 clears the run, it does not replace its conf)
        assert out.read_text().split() == ["first", "first"]
        assert run_service.get_run(service.engine, "target", "fixed").state.value == "success"
    finally:
        service.shutdown()


CHILD = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.sensors.external_task import ExternalTaskSensor

with DAG(dag_id="child", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
    wait = ExternalTaskSensor(task_id="wait", external_dag_id="parent", external_task_id="maybe",
                              timeout=60, poke_interval=10, {options})
    after = BashOperator(task_id="after", bash_command="echo after")
    wait >> after
"""


def _child(folder: Path, **options: object) -> Flow:
    path = folder / f"child_{'_'.join(options)}.py"
    path.write_text(CHILD.format(options=", ".join(f"{k}={v!r}" for k, v in options.items())))
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    [flow] = loaded.flows
    return flow


def _parent_run(engine: Engine, state: TaskState) -> TaskServices:
    graph = FlowGraph(FlowMeta("parent"), {"maybe": NodeSpec("maybe")})
    with transaction(engine) as conn:
        run_repo.create_run(conn, graph, run_id="p1", logical_date=DAY, states={"maybe": state})
    return TaskServices(store=SqlFlowStore(engine))


STATES = {"allowed_states": ["success"], "skipped_states": ["skipped"], "failed_states": ["failed"]}


@pytest.mark.parametrize(
    ("parent", "options", "expected"),
    [
        (TaskState.SKIPPED, STATES, {"wait": "skipped", "after": "skipped"}),
        (TaskState.SUCCESS, STATES, {"wait": "success", "after": "success"}),
        (TaskState.FAILED, STATES, {"wait": "failed", "after": "upstream_failed"}),
        (TaskState.FAILED, {**STATES, "soft_fail": True}, {"wait": "skipped", "after": "skipped"}),
    ],
)
def test_external_task_sensor_skipped_allowed_and_failed_states(
    db_engine: Engine, tmp_path: Path, parent: TaskState, options: dict[str, object], expected: dict[str, str]
) -> None:
    services = _parent_run(db_engine, parent)
    result = run_locally(_child(tmp_path, **options), logical_date=DAY, clock=FrozenClock(DAY), services=services)
    assert {t: s.value for t, s in result.task_states.items()} == expected
    if parent == TaskState.SKIPPED:
        assert "is skipped, one of skipped_states" in result.logs[("wait", 1)]


def test_a_state_in_two_lists_is_refused_when_the_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "child.py"
    path.write_text(CHILD.format(options="skipped_states=['skipped'], failed_states=['skipped']"))
    [error] = load_file(path).errors
    assert "states both skipped and failed: skipped" in str(error)


GROUP_CHILD = """
import pendulum
from airflow import DAG
from airflow.sensors.external_task import ExternalTaskSensor

with DAG(dag_id="child", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
    ExternalTaskSensor(task_id="ids", external_dag_id="parent", external_task_ids=["maybe", "other"],
                       timeout=60, poke_interval=10)
    ExternalTaskSensor(task_id="group", external_dag_id="parent", external_task_group_id="load",
                       failed_states=["failed"], timeout=60, poke_interval=10)
"""


def test_external_task_sensor_watches_several_tasks_and_a_task_group(db_engine: Engine, tmp_path: Path) -> None:
    graph = FlowGraph(FlowMeta("parent"), {t: NodeSpec(t) for t in ("maybe", "other", "load.a", "load.b")})
    states = {"maybe": TaskState.SUCCESS, "other": TaskState.SUCCESS, "load.a": TaskState.SUCCESS}
    with transaction(db_engine) as conn:
        run_repo.create_run(conn, graph, run_id="p1", logical_date=DAY, states={**states, "load.b": TaskState.FAILED})
    path = tmp_path / "child.py"
    path.write_text(GROUP_CHILD)
    [flow] = load_file(path).flows
    services = TaskServices(store=SqlFlowStore(db_engine))
    result = run_locally(flow, logical_date=DAY, clock=FrozenClock(DAY), services=services)
    assert {t: s.value for t, s in result.task_states.items()} == {"ids": "success", "group": "failed"}
    assert "'load.b' (failed)" in (result["group"].tries[-1].error or "")


EXISTENCE_CHILD = """
import pendulum
from airflow import DAG
from airflow.sensors.external_task import ExternalTaskSensor

with DAG(dag_id="child", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
    ExternalTaskSensor(task_id="dag_typo", external_dag_id="parnet", external_task_id="maybe",
                       check_existence=True, timeout=60, poke_interval=10)
    ExternalTaskSensor(task_id="task_typo", external_dag_id="parent", external_task_id="mabye",
                       check_existence=True, timeout=60, poke_interval=10)
    ExternalTaskSensor(task_id="exists", external_dag_id="parent", external_task_id="maybe",
                       check_existence=True, timeout=60, poke_interval=10)
"""


def test_check_existence_fails_at_once_on_a_dag_or_task_that_does_not_exist(db_engine: Engine, tmp_path: Path) -> None:
    """``check_existence=True`` was accepted and ignored: a misspelt DAG or task id was waited
    for until the sensor's timeout (7 days by default) instead of failing the first poke."""
    graph = FlowGraph(FlowMeta("parent"), {"maybe": NodeSpec("maybe")})
    with transaction(db_engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        run_repo.create_run(conn, graph, run_id="p1", logical_date=DAY, states={"maybe": TaskState.SUCCESS})
    path = tmp_path / "child.py"
    path.write_text(EXISTENCE_CHILD)
    [flow] = load_file(path).flows
    services = TaskServices(store=SqlFlowStore(db_engine))
    result = run_locally(flow, logical_date=DAY, clock=FrozenClock(DAY), services=services)
    assert {t: s.value for t, s in result.task_states.items()} == {
        "dag_typo": "failed",
        "task_typo": "failed",
        "exists": "success",
    }
    assert "The external DAG parnet does not exist" in (result["dag_typo"].tries[-1].error or "")
    assert "Did you mean 'parent'?" in (result["dag_typo"].tries[-1].error or "")
    error = result["task_typo"].tries[-1].error or ""
    assert "The external task mabye in DAG parent does not exist. Did you mean 'maybe'?" in error


PARAMETRISED_CONTROLLER = """
import pendulum
from airflow import DAG
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

with DAG(dag_id="controller", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
         params={"tables": ["orders"], "mode": "full"}) as dag:
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="target", trigger_run_id="fresh",
                          conf={"day": "{{ ds }}"})
"""


def test_the_triggering_dags_params_are_not_given_to_the_triggered_run(
    finished_target: TaskServices, tmp_path: Path
) -> None:
    """The operator passed its own DAG's ``params`` as the triggered run's parameters, and the
    trigger failed: "flow 'target': unknown parameter 'tables'". Airflow gives it only ``conf``."""
    path = tmp_path / "controller.py"
    path.write_text(PARAMETRISED_CONTROLLER)
    [flow] = load_file(path).flows
    result = run_locally(flow, clock=FrozenClock(DAY), services=finished_target)
    assert result.state.value == "success", result["kick"].tries[-1].error
    engine = finished_target.store.engine  # type: ignore[union-attr]
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, "target", "fresh")
    assert record is not None
    assert record.conf == {"day": "2024-03-10"}
    assert record.params == {}
