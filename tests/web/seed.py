"""Data for the web tests, written through the store as the scheduler and workers would."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ductwork import BashOperator, ChoiceParameter, EmptyOperator, Flow, IntParameter, TaskGroup
from ductwork.core.events import TryOutcome
from ductwork.core.states import RunState, TaskState
from ductwork.services import accounts
from ductwork.store.engine import transaction
from ductwork.store.records import NewImportError
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import jobs as job_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import results as result_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.serializers import JsonSerializer

S = TaskState
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PASSWORD = "correct-horse-9"


def demo_flow() -> Flow:
    with Flow(
        "demo",
        schedule="@daily",
        start_date="2024-01-01",
        params={
            "n": IntParameter(default=3, description="how many"),
            "mode": ChoiceParameter(["fast", "slow"], default="fast"),
            "label": "x",
        },
        tags=["web", "demo"],
        owner="data-team",
        description="A small flow for the web tests",
    ) as flow:
        with TaskGroup("extract"):
            a = BashOperator(task_id="orders", bash_command="echo orders")
            b = BashOperator(task_id="users", bash_command="echo users")
        load = EmptyOperator(task_id="load")
        report = EmptyOperator(task_id="report")
        [a, b] >> load >> report
    return flow


def other_flow() -> Flow:
    with Flow(
        "nightly_paused", schedule="0 3 * * *", start_date="2024-01-01", tags=["ops"], paused_on_creation=True
    ) as flow:
        EmptyOperator(task_id="only")
    return flow


@dataclass
class Seeded:
    success_run: str
    failed_run: str
    running_run: str
    tokens: dict[str, str]


def _tried(
    engine: Engine, pk: int, task_id: str, state: TaskState, logs: Path, *, at: dt.datetime, error: str | None = None
) -> None:
    log = logs / f"{pk}-{task_id}-1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"hello from {task_id}\nline two\n")
    with transaction(engine) as conn:
        task_repo.try_started(conn, pk, task_id, 1, hostname="worker-1", pid=4242, at=at, log_path=str(log))
        if state != S.RUNNING:
            outcome = TryOutcome(
                state,
                at,
                at + dt.timedelta(seconds=2),
                error=error,
                traceback="Traceback (most recent call last):\nValueError: boom" if error else None,
                rendered={"bash_command": f"echo {task_id}"},
            )
            task_repo.try_finished(conn, pk, task_id, 1, outcome, hostname="worker-1", pid=4242, log_path=str(log))


def seed(engine: Engine, logs: Path) -> Seeded:
    graph = demo_flow().to_graph()
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        flow_repo.upsert_flow(conn, other_flow().to_graph())
        pool_repo.put_pool(conn, "io", 4, "disk and network")
        error_repo.replace_import_errors(
            conn,
            "/flows/broken.py",
            [NewImportError("NameError: name 'x' is not defined", 3, "Traceback...\nNameError")],
        )
        job_repo.start_job(conn, "scheduler", hostname="sched-host", pid=99)
    ids = list(graph.nodes)
    runs = {}
    for i, (name, final) in enumerate([("success", S.SUCCESS), ("failed", S.FAILED), ("running", S.RUNNING)]):
        with transaction(engine) as conn:
            record = run_repo.create_run(
                conn,
                graph,
                run_id=f"{name}__2024-01-0{i + 1}",
                logical_date=T0 + dt.timedelta(days=i),
                params={"n": 3, "mode": "fast", "label": "x"},
                states=dict.fromkeys(ids, S.QUEUED),
                tries=dict.fromkeys(ids, 1),
                state=RunState.RUNNING,
            )
        at = T0 + dt.timedelta(days=i, minutes=1)
        for task_id in ids:
            if final == S.FAILED and task_id == "load":
                _tried(engine, record.pk, task_id, S.FAILED, logs, at=at, error="ValueError: boom")
            elif final == S.FAILED and task_id == "report":
                with transaction(engine) as conn:
                    task_repo.mark_task_instances(conn, record.pk, [task_id], S.FAILED, reason="upstream failed")
            elif final == S.RUNNING and task_id != "extract.orders":
                _tried(engine, record.pk, task_id, S.RUNNING, logs, at=at) if task_id == "extract.users" else None
            else:
                _tried(engine, record.pk, task_id, S.SUCCESS, logs, at=at)
        if final != S.RUNNING:
            with transaction(engine) as conn:
                run_repo.set_run_state(conn, record.pk, RunState(final.value))
        with transaction(engine) as conn:
            result_repo.put_result(
                conn,
                record.pk,
                "extract.orders",
                "return_value",
                JsonSerializer().dumps({"rows": 3}),
                serializer="json",
            )
            # The engine's note of how a (mapped) try ended: not a result to show.
            result_repo.put_result(
                conn, record.pk, "load", "mapped_outcome", JsonSerializer().dumps("success"), serializer="json"
            )
        runs[name] = record.run_id
    tokens = {}
    for role in ("admin", "operator", "viewer"):
        accounts.create_user(engine, role, PASSWORD, role)
        tokens[role] = accounts.issue_token(engine, role, "tests").token
    return Seeded(runs["success"], runs["failed"], runs["running"], tokens)
