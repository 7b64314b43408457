"""The UI's read models (``store.repo.views``) on SQLite, PostgreSQL and MariaDB: they read
through the driver's cursor for speed, so each backend's driver is exercised."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.repo import views

S = TaskState
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def _graph(extra: tuple[str, ...] = ()) -> FlowGraph:
    nodes = {
        "g.a": NodeSpec("g.a", group="g", operator="BashOperator"),
        "g.b": NodeSpec("g.b", ("g.a",), group="g", operator="BashOperator"),
        "Report(day=1)": NodeSpec(
            "Report(day=1)", ("g.b",), kind="class_task", operator="Task", family="Report", resources={"db": 1}
        ),
    }
    for task_id in extra:
        nodes[task_id] = NodeSpec(task_id, ("Report(day=1)",))
    return FlowGraph(FlowMeta("views"), nodes, {"g": {"parent": None, "tooltip": ""}})


def _run(engine: Engine, run_id: str, day: int, states: dict[str, TaskState], extra: tuple[str, ...] = ()) -> int:
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, _graph())
        record = run_repo.create_run(
            conn, _graph(extra), run_id=run_id, logical_date=T0 + dt.timedelta(days=day), states=states
        )
    return record.pk


def test_grid_aligns_runs_on_the_newest_and_adds_older_tasks(db_engine: Engine) -> None:
    old = _run(db_engine, "old", 0, {"g.a": S.SUCCESS, "g.b": S.FAILED, "gone": S.SKIPPED}, extra=("gone",))
    new = _run(db_engine, "new", 1, {"g.a": S.RUNNING})
    with read_transaction(db_engine) as conn:
        grid = views.grid(conn, [new, old])
    assert grid.task_ids == ["g.a", "g.b", "Report(day=1)", "gone"]
    assert grid.groups == ["g", "g", None, None]
    assert grid.codes[new] == "rnn-"
    assert grid.codes[old] == "sfnk"


def test_tasks_only_older_runs_have_come_in_their_runs_order(db_engine: Engine) -> None:
    """A mapped task that had more instances in older runs: its rows read show[0], show[2],
    show[1] in whatever order the database returned them; they follow the order of the newest
    run that has them, older runs' own extras after."""
    many = tuple(f"show[{i}]" for i in range(12))
    oldest = _run(db_engine, "oldest", 0, {}, extra=("zeta", *many[:3]))
    old = _run(db_engine, "old", 1, {}, extra=many)
    new = _run(db_engine, "new", 2, {})
    with read_transaction(db_engine) as conn:
        grid = views.grid(conn, [new, old, oldest])
    assert grid.task_ids == ["g.a", "g.b", "Report(day=1)", *many, "zeta"]
    assert grid.codes[old] == "nnn" + "n" * 12 + "-"


def test_run_graph_states_downstream_and_definition(db_engine: Engine) -> None:
    pk = _run(db_engine, "r", 0, {"g.a": S.SUCCESS})
    with read_transaction(db_engine) as conn:
        view = views.run_graph(conn, pk)
        codes = views.run_codes(conn, pk)
        down = views.downstream_of(conn, pk, "g.b")
        definition = views.task_definition(conn, pk, "Report(day=1)")
        groups = views.run_groups(conn, pk)
        state, revision = views.run_revision(conn, pk)
    assert view.task_ids == ["g.a", "g.b", "Report(day=1)"]
    assert view.upstream == [[], [0], [1]] and view.codes == codes == "snn"
    assert view.operators == ["BashOperator", "BashOperator", "Task"]
    assert down == ["Report(day=1)"]
    assert definition is not None and definition["family"] == "Report" and definition["upstream"] == ["g.b"]
    assert groups == {"g": None} and state == "queued" and revision == 0


def test_run_graph_of_a_fan_out_gives_each_task_its_upstream(db_engine: Engine) -> None:
    pk = _run(db_engine, "fan", 0, {}, extra=("x", "y", "z"))
    with read_transaction(db_engine) as conn:
        view = views.run_graph(conn, pk)
    assert view.task_ids == ["g.a", "g.b", "Report(day=1)", "x", "y", "z"]
    assert view.upstream == [[], [0], [1], [2], [2], [2]]


def test_luigi_families_workers_and_resources(db_engine: Engine) -> None:
    pk = _run(db_engine, "r", 0, {"g.a": S.SUCCESS, "g.b": S.FAILED, "Report(day=1)": S.QUEUED})
    with transaction(db_engine) as conn:
        task_repo.try_started(conn, pk, "Report(day=1)", 0, hostname="h1", pid=7)
    with read_transaction(db_engine) as conn:
        scope = views.scope_runs(conn, since=T0)
        counts = views.family_counts(conn, scope)
        reports, total = views.luigi_tasks(conn, scope, family="Report")
        running, _ = views.luigi_tasks(conn, scope, state="running", search="REPORT")
        page, _ = views.luigi_tasks(conn, scope, limit=1, offset=1)
        workers = views.workers(conn)
        used = views.resource_use(conn)
        recent = views.recent_run_states(conn, ["views", "nothing"])
    assert scope == [pk]
    assert [t.task_id for t in reports] == ["Report(day=1)"] and total == 1
    assert [t.task_id for t in running] == ["Report(day=1)"]
    assert [t.task_id for t in page] == ["g.b"]
    assert counts == {
        "BashOperator": {"pending": 0, "running": 0, "done": 1, "failed": 1, "upstream_failed": 0, "disabled": 0},
        "Report": {"pending": 0, "running": 1, "done": 0, "failed": 0, "upstream_failed": 0, "disabled": 0},
    }
    assert [(w.hostname, w.pid, [t.task_id for t in w.tasks]) for w in workers] == [("h1", 7, ["Report(day=1)"])]
    assert used == {"db": 1}
    assert recent == {"views": [RunState.QUEUED], "nothing": []}


def test_waiting_tasks_of_a_paused_flow_are_disabled(db_engine: Engine) -> None:
    pk = _run(db_engine, "r", 0, {"g.a": S.SUCCESS})
    with transaction(db_engine) as conn:
        flow_repo.set_paused(conn, "views", True)
    with read_transaction(db_engine) as conn:
        tasks, _total = views.luigi_tasks(conn, [pk])
        disabled, total = views.luigi_tasks(conn, [pk], state="disabled")
        pending, _ = views.luigi_tasks(conn, [pk], state="pending")
    assert [t.luigi_state for t in tasks] == ["done", "disabled", "disabled"]
    assert total == 2 and len(disabled) == 2 and pending == []
    with read_transaction(db_engine) as conn:
        assert views.family_counts(conn, [pk])["BashOperator"]["disabled"] == 1


def test_gantt_bars(db_engine: Engine) -> None:
    from ductwork.core.events import TryOutcome

    pk = _run(db_engine, "r", 0, {"g.a": S.QUEUED}, extra=())
    with transaction(db_engine) as conn:
        conn.execute(
            task_repo.ti.update()
            .where(task_repo.ti.c.run_pk == pk, task_repo.ti.c.task_id == "g.a")
            .values(try_number=1)
        )
        task_repo.try_started(conn, pk, "g.a", 1, at=T0)
        task_repo.try_finished(conn, pk, "g.a", 1, TryOutcome(S.SUCCESS, T0, T0 + dt.timedelta(seconds=3)))
    with read_transaction(db_engine) as conn:
        [bar] = views.gantt(conn, pk)
    assert (bar.task_id, bar.try_number, bar.state, bar.start, bar.end) == (
        "g.a",
        1,
        "success",
        T0,
        T0 + dt.timedelta(seconds=3),
    )
