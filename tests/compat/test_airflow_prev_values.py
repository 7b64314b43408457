"""Airflow's ``prev_*`` template values follow the DAG's schedule and its successful runs: an
incremental load written as "since the last success" reads the right window."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from ductwork import Flow
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.core.task_services import TaskServices
from ductwork.engine.local import run_locally
from ductwork.loading import load_file
from ductwork.services.flow_store import SqlFlowStore
from ductwork.store.engine import transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.testing import FrozenClock

DAG = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(dag_id="{dag_id}", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="{schedule}") as dag:
    BashOperator(
        task_id="say",
        bash_command="echo {{{{ prev_ds }}}}/{{{{ prev_data_interval_start_success }}}}/{{{{ prev_execution_date_success }}}}",
    )
"""


def _dag(folder: Path, dag_id: str, schedule: str) -> Flow:
    path = folder / f"{dag_id}.py"
    path.write_text(DAG.format(dag_id=dag_id, schedule=schedule))
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded.flows[0]


def _said(flow: Flow, when: dt.datetime, services: TaskServices | None = None) -> list[str]:
    result = run_locally(flow, logical_date=when, clock=FrozenClock(when), services=services)
    assert result.state == "success", result.task_states
    return str(result.result("say")).split("/")


def test_prev_ds_is_the_schedules_previous_date_not_one_interval_length_back(tmp_path: Path) -> None:
    monthly = _dag(tmp_path, "monthly", "@monthly")
    assert _said(monthly, dt.datetime(2024, 3, 1, tzinfo=dt.UTC))[0] == "2024-02-01"  # it said 2024-01-30
    weekdays = _dag(tmp_path, "weekdays", "0 6 * * 1-5")
    assert _said(weekdays, dt.datetime(2024, 3, 4, 6, tzinfo=dt.UTC))[0] == "2024-03-01"  # Monday's is Friday


def test_prev_success_values_come_from_the_latest_successful_run_before(db_engine: Engine, tmp_path: Path) -> None:
    daily = _dag(tmp_path, "inc", "@daily")
    graph = FlowGraph(FlowMeta("inc", schedule="@daily"), {"say": NodeSpec("say")})
    with transaction(db_engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        for day, state in ((3, RunState.SUCCESS), (4, RunState.FAILED), (9, RunState.SUCCESS)):
            start = dt.datetime(2024, 3, day, tzinfo=dt.UTC)
            run_repo.create_run(
                conn,
                graph,
                run_id=f"r{day}",
                logical_date=start,
                states={"say": TaskState.SUCCESS},
                data_interval=(start, start + dt.timedelta(days=1)),
            )
            record = run_repo.get_run(conn, "inc", f"r{day}")
            assert record is not None
            run_repo.set_run_state(conn, record.pk, state)
    services = TaskServices(store=SqlFlowStore(db_engine))
    said = _said(daily, dt.datetime(2024, 3, 5, tzinfo=dt.UTC), services)
    assert said[1][:10] == said[2][:10] == "2024-03-03"  # not r4: it failed
    assert _said(daily, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), services)[1:] == ["None", "None"]  # none before


PARAMS_DAG = """
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(dag_id="with_params", schedule=None, params={"x": 5}) as dag:
    BashOperator(task_id="say", bash_command="echo {{ params.x }}/{{ params.extra | default('none') }}")
"""


def test_a_runs_conf_overrides_its_params_as_airflow_does_by_default(tmp_path: Path) -> None:
    (tmp_path / "with_params.py").write_text(PARAMS_DAG)
    [flow] = load_file(tmp_path / "with_params.py").flows
    result = run_locally(flow, conf={"x": 9, "extra": "E"})
    assert result.result("say") == "9/E"  # it said 5/none
    assert run_locally(flow).result("say") == "5/none"
