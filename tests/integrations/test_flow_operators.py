"""Cross-flow operators against a real metadata database (SQLite, PostgreSQL, MariaDB), run
in-process with a store lent through ``TaskServices``; and the ``on_failure_email`` flow option
against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ductwork import Flow, PythonOperator
from ductwork.core.context import RunInfo
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.results import MemoryResults
from ductwork.core.states import RunState, TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine.execution import execute_try
from ductwork.engine.local import run_locally
from ductwork.engine.logcapture import TrySink
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.errors import DefinitionError
from ductwork.integrations.flows import ExternalTaskSensor, TriggerFlowOperator
from ductwork.services import runs as run_service
from ductwork.services.flow_store import SqlFlowStore
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.testing import FrozenClock, run_flow
from tests.integrations.test_email import Mailbox, _free_port, _start

DAY = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)


def _upstream_run(engine: Engine, when: dt.datetime, states: dict[str, TaskState], run_id: str = "up1") -> None:
    graph = FlowGraph(FlowMeta("upstream"), {t: NodeSpec(t) for t in states})
    with transaction(engine) as conn:
        run_repo.create_run(conn, graph, run_id=run_id, logical_date=when, states=states)


def _services(engine: Engine) -> TaskServices:
    return TaskServices(store=SqlFlowStore(engine))


def _sensor_flow(**kwargs: object) -> Flow:
    with Flow("downstream") as f:
        ExternalTaskSensor(task_id="wait", external_flow_id="upstream", poke_interval=10, timeout=60, **kwargs)
    return f


def test_sensor_waits_for_the_task_of_the_same_logical_date(db_engine: Engine) -> None:
    _upstream_run(db_engine, DAY, {"extract": TaskState.SUCCESS, "load": TaskState.RUNNING})
    _upstream_run(db_engine, DAY - dt.timedelta(days=1), {"load": TaskState.SUCCESS}, run_id="up0")
    services = _services(db_engine)
    done = run_locally(
        _sensor_flow(external_task_id="extract"), logical_date=DAY, clock=FrozenClock(DAY), services=services
    )
    assert done.state.value == "success", done["wait"].tries[-1].error
    running = run_locally(
        _sensor_flow(external_task_id="load"), logical_date=DAY, clock=FrozenClock(DAY), services=services
    )
    assert running.state.value == "failed" and "timed out after 60.0s and 7 poke(s)" in (
        running["wait"].tries[-1].error or ""
    )
    yesterday = _sensor_flow(external_task_id="load", execution_delta=dt.timedelta(days=1))
    assert run_locally(yesterday, logical_date=DAY, clock=FrozenClock(DAY), services=services).state.value == "success"
    by_function = _sensor_flow(external_task_id="load", execution_date_fn=lambda d: d - dt.timedelta(days=1))
    assert (
        run_locally(by_function, logical_date=DAY, clock=FrozenClock(DAY), services=services).state.value == "success"
    )


def test_sensor_fails_on_failed_states_and_watches_whole_runs(db_engine: Engine) -> None:
    _upstream_run(db_engine, DAY, {"extract": TaskState.FAILED})
    services = _services(db_engine)
    failed = run_locally(
        _sensor_flow(external_task_id="extract"), logical_date=DAY, clock=FrozenClock(DAY), services=services
    )
    error = failed["wait"].tries[-1].error or ""
    assert failed.state.value == "failed" and "task 'extract' of flow 'upstream'" in error and "is failed" in error
    with transaction(db_engine) as conn:
        record = run_repo.get_run(conn, "upstream", "up1")
        assert record is not None
        run_repo.set_run_state(conn, record.pk, RunState.SUCCESS)
    whole = run_locally(_sensor_flow(), logical_date=DAY, clock=FrozenClock(DAY), services=services)
    assert whole.state.value == "success"


def _sensor_state(engine: Engine, **kwargs: object) -> tuple[str, str]:
    done = run_locally(_sensor_flow(**kwargs), logical_date=DAY, clock=FrozenClock(DAY), services=_services(engine))
    return done["wait"].state.value, done["wait"].tries[-1].error or ""


def test_sensor_watches_several_tasks_as_airflow_counts_them(db_engine: Engine) -> None:
    S = TaskState
    _upstream_run(db_engine, DAY, {"a": S.SUCCESS, "b": S.SUCCESS, "c": S.RUNNING, "d": S.FAILED, "e": S.SKIPPED})
    assert _sensor_state(db_engine, external_task_ids=["a", "b"]) == ("success", "")
    waiting, error = _sensor_state(db_engine, external_task_ids=["a", "c"])
    assert waiting == "failed" and "timed out" in error  # c never ended within the timeout
    failed, error = _sensor_state(db_engine, external_task_ids=["a", "c", "d"])
    assert failed == "failed" and "'d' (failed)" in error and "tasks 'a', 'c', 'd' of flow 'upstream'" in error
    assert _sensor_state(db_engine, external_task_ids=["a", "e"], skipped_states=["skipped"])[0] == "skipped"
    assert _sensor_state(db_engine, external_task_ids=["a", "d"], soft_fail=True)[0] == "skipped"
    with transaction(db_engine) as conn:
        record = run_repo.get_run(conn, "upstream", "up1")
        assert record is not None
        run_repo.set_run_state(conn, record.pk, RunState.FAILED)
    gone, error = _sensor_state(db_engine, external_task_ids=["a", "zz"])
    assert gone == "failed" and "has no task 'zz'" in error


def test_sensor_watches_a_task_group(db_engine: Engine) -> None:
    S = TaskState
    _upstream_run(db_engine, DAY, {"load.a": S.SUCCESS, "load.b": S.SUCCESS, "loader": S.FAILED, "report": S.RUNNING})
    assert _sensor_state(db_engine, external_task_group_id="load") == ("success", "")
    _upstream_run(db_engine, DAY - dt.timedelta(days=1), {"load.a": S.SUCCESS, "load.b": S.UPSTREAM_FAILED}, "up0")
    failed, error = _sensor_state(db_engine, external_task_group_id="load", execution_delta=dt.timedelta(days=1))
    assert failed == "failed" and "'load.b' (upstream_failed)" in error
    missing, error = _sensor_state(db_engine, external_task_group_id="extract")
    assert missing == "failed" and "timed out" in error  # the run goes on: the group may still come


def test_sensor_reschedule_mode_frees_the_slot_while_the_run_is_missing(db_engine: Engine) -> None:
    sensor = ExternalTaskSensor(
        task_id="wait", external_flow_id="upstream", external_task_id="t", mode="reschedule", poke_interval=30
    )
    run = RunInfo("downstream", "r1", DAY, DAY, DAY + dt.timedelta(days=1))
    clock = FrozenClock(DAY)
    outcome = execute_try(
        sensor,
        node=sensor.to_node(),
        run=run,
        try_number=1,
        results=MemoryResults(),
        downstream=(),
        clock=clock,
        sink=TrySink(None),
        services=_services(db_engine),
    )
    assert outcome.state == TaskState.UP_FOR_RESCHEDULE and outcome.next_try_at == DAY + dt.timedelta(seconds=30)


def test_without_a_store_the_error_says_how_to_run_it() -> None:
    result = run_flow(_sensor_flow(external_task_id="x"))
    error = result["wait"].tries[-1].error or ""
    assert "needs the metadata database" in error and "ductwork scheduler" in error


def test_sensor_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="not both"):
        ExternalTaskSensor(
            task_id="s",
            external_flow_id="u",
            execution_delta=dt.timedelta(1),
            execution_date_fn=lambda d: d,
        )
    with pytest.raises(DefinitionError, match="both allowed and failed"):
        ExternalTaskSensor(task_id="s", external_flow_id="u", allowed_states=["failed"])
    with pytest.raises(DefinitionError, match="not both"):
        ExternalTaskSensor(task_id="s", external_flow_id="u", external_task_id="a", external_task_ids=["b", "c"])
    with pytest.raises(DefinitionError, match="alone"):
        ExternalTaskSensor(task_id="s", external_flow_id="u", external_task_ids=["b", "c"], external_task_group_id="g")
    with pytest.raises(DefinitionError, match="list of task ids"):
        ExternalTaskSensor(task_id="s", external_flow_id="u", external_task_ids="abc")
    one = ExternalTaskSensor(task_id="s", external_flow_id="u", external_task_ids=["a"])
    assert one.external_task_id == "a" and one.external_task_ids == []


@pytest.fixture
def target_flow(db_engine: Engine) -> Engine:
    graph = FlowGraph(FlowMeta("target", params={}), {"only": NodeSpec("only")})
    with transaction(db_engine) as conn:
        flow_repo.upsert_flow(conn, graph)
    return db_engine


def _trigger_flow(**kwargs: object) -> Flow:
    with Flow("controller") as f:
        TriggerFlowOperator(task_id="kick", trigger_flow_id="target", poke_interval=5, **kwargs)
    return f


def test_trigger_queues_a_run_once(target_flow: Engine) -> None:
    services = _services(target_flow)
    flow = _trigger_flow(conf={"day": "{{ ds }}"}, logical_date="{{ logical_date }}")
    first = run_locally(flow, logical_date=DAY, clock=FrozenClock(DAY), services=services, run_id="c1")
    assert first.state.value == "success", first["kick"].tries[-1].error
    run_id = first.result("kick")
    assert run_id == "triggered__controller__c1"
    with read_transaction(target_flow) as conn:
        record = run_repo.get_run(conn, "target", run_id)
    assert record is not None and record.state == RunState.QUEUED
    assert dict(record.conf) == {"day": "2024-03-10"} and record.logical_date == DAY
    assert "controller.kick" in (record.note or "")
    again = run_locally(flow, logical_date=DAY, clock=FrozenClock(DAY), services=services, run_id="c1")
    assert again.state.value == "success" and "exists already" in again.logs[("kick", 1)]
    with read_transaction(target_flow) as conn:
        assert run_repo.list_runs(conn, flow_id="target").total == 1


@pytest.mark.parametrize(("ended", "expected"), [(RunState.SUCCESS, "success"), (RunState.FAILED, "failed")])
def test_trigger_waits_for_completion(target_flow: Engine, ended: RunState, expected: str) -> None:
    services = _services(target_flow)
    services.store.trigger("target", run_id="triggered__controller__c2")  # type: ignore[union-attr]
    with transaction(target_flow) as conn:
        record = run_repo.get_run(conn, "target", "triggered__controller__c2")
        assert record is not None
        run_repo.set_run_state(conn, record.pk, ended)
    flow = _trigger_flow(wait_for_completion=True)
    result = run_locally(flow, logical_date=DAY, clock=FrozenClock(DAY), services=services, run_id="c2")
    assert result.state.value == expected
    if expected == "failed":
        assert "triggered run triggered__controller__c2 of flow 'target' is failed" in (
            result["kick"].tries[-1].error or ""
        )


def test_trigger_unknown_flow_is_named(db_engine: Engine) -> None:
    with Flow("controller") as f:
        TriggerFlowOperator(task_id="kick", trigger_flow_id="nope")
    result = run_locally(f, clock=FrozenClock(DAY), services=_services(db_engine))
    error = result["kick"].tries[-1].error or ""
    assert "no flow 'nope' in the database" in error
    # `ductwork run` of a file defining both flows records only the one it runs: say how the
    # other gets into the database
    assert "a `ductwork scheduler` whose flows folder holds 'nope' registers it" in error


# --- failure e-mail as a flow option --------------------------------------------------------------
@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    box = Mailbox(_free_port())
    controller = _start(box)
    monkeypatch.setenv("DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{box.port}?sender=alerts%40example.com")
    yield box
    controller.stop()


def test_on_failure_email_is_sent_once_when_a_task_fails_for_good(mailbox: Mailbox) -> None:
    def broken() -> None:
        raise ValueError("the input file is empty")

    with Flow("nightly", on_failure_email=["oncall@example.com", "lead@example.com"]) as f:
        PythonOperator(task_id="ok", python_callable=lambda: 1)
        PythonOperator(task_id="broken", python_callable=broken, retries=1, retry_delay=1)
    result = run_flow(f, logical_date="2024-03-10")
    assert result.state == "failed" and len(result["broken"].tries) == 2
    assert len(mailbox.messages) == 1
    recipients, message = mailbox.messages[0]
    assert sorted(recipients) == ["lead@example.com", "oncall@example.com"]
    assert message["Subject"] == "[ductwork] nightly.broken failed" and message["From"] == "alerts@example.com"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "the input file is empty" in html.get_content()
    assert "failure e-mail sent to oncall@example.com" in result.logs[("broken", 2)]


def test_on_failure_email_problem_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{_free_port()}")
    with Flow("nightly", on_failure_email=["oncall@example.com"]) as f:
        PythonOperator(task_id="broken", python_callable=lambda: 1 / 0)
    result = run_flow(f)
    assert result.state == "failed" and "ZeroDivisionError" in (result["broken"].tries[-1].error or "")
    assert "could not send the failure e-mail" in result.logs[("broken", 1)]


# --- through the scheduler: the worker runtime lends the store ----------------------------------------
CROSS_FLOWS = textwrap.dedent(
    """
    from ductwork import Flow, PythonOperator
    from ductwork.integrations.flows import ExternalTaskSensor, TriggerFlowOperator

    with Flow("upstream", schedule=None) as upstream:
        PythonOperator(task_id="load", python_callable=lambda: "loaded")

    with Flow("downstream", schedule=None) as downstream:
        ExternalTaskSensor(
            task_id="wait_for_load", external_flow_id="upstream", external_task_id="load",
            mode="reschedule", poke_interval=0.2, timeout=60,
        )

    with Flow("controller", schedule=None) as controller:
        TriggerFlowOperator(
            task_id="run_upstream", trigger_flow_id="upstream", logical_date="{{ logical_date }}",
            wait_for_completion=True, poke_interval=0.2,
        )
    """
)


def test_cross_flow_operators_under_the_scheduler(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "cross.py").write_text(CROSS_FLOWS)
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", parallelism=3
    )
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.05, parse_interval=0.05))
    service.start()
    try:
        deadline = time.monotonic() + 90
        known: set[str] = set()
        while time.monotonic() < deadline and len(known) < 3:
            service.turn()
            with read_transaction(service.engine) as conn:
                known = {f.flow_id for f in flow_repo.list_flows(conn)}
        run_service.trigger(service.engine, "downstream", run_id="d1", logical_date=DAY)
        run_service.trigger(service.engine, "controller", run_id="c1", logical_date=DAY)
        ends = ("success", "failed")
        while time.monotonic() < deadline:
            service.turn()
            states = [
                run_service.get_run(service.engine, f, r).state.value
                for f, r in (("downstream", "d1"), ("controller", "c1"))
            ]
            if all(s in ends for s in states):
                break
        assert states == ["success", "success"]
        triggered = run_service.get_run(service.engine, "upstream", "triggered__controller__c1")
        assert triggered.state.value == "success" and triggered.logical_date == DAY
    finally:
        service.shutdown()


def test_a_recorded_ductwork_run_lends_the_sensor_the_metadata_database(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "etl.py").write_text(
        textwrap.dedent("""
        from ductwork import Flow, PythonOperator
        with Flow("etl", schedule="@daily") as etl:
            PythonOperator(task_id="load", python_callable=lambda: None)
        """)
    )
    (tmp_path / "report.py").write_text(
        textwrap.dedent("""
        from ductwork import Flow
        from ductwork.integrations.flows import ExternalTaskSensor
        with Flow("report", schedule="@daily") as report:
            ExternalTaskSensor(task_id="wait", external_flow_id="etl", external_task_id="load",
                               poke_interval=0.1, timeout=1)
        """)
    )
    assert cli("run", "report.py", "--date", "2024-03-10").exit_code == 1  # etl has not run: the wait times out
    assert cli("run", "etl.py", "--date", "2024-03-10").exit_code == 0
    assert cli("run", "report.py", "--date", "2024-03-10").exit_code == 0
    tested = cli("tasks", "test", "report.py", "wait", "2024-03-10")
    assert tested.exit_code == 0 and "run manual__2024-03-10" in tested.output  # as `airflow tasks test`
    unrecorded = cli("run", "report.py", "--date", "2024-03-10", "--no-record", "--json")
    assert unrecorded.exit_code == 1 and "--no-record" in unrecorded.output
