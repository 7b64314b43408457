"""The REST API's deletions and dry runs: deleting a run, cleaning old runs, and the dry runs
of mark, cancel and pool deletion. This module gets its own seeded database (``web_env`` is
per module), so it may delete what it likes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from tests.web.conftest import Api
from tests.web.seed import Seeded


def _run(flow: str, run_id: str) -> str:
    return f"/flows/{flow}/runs/{quote(run_id, safe='')}"


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def test_delete_a_run_with_a_dry_run_first(
    operator: Api, viewer: Api, seeded: Seeded, web_env: tuple[Engine, Seeded, Path]
) -> None:
    logs = web_env[2] / "logs"
    before = sorted(p.name for p in logs.iterdir())
    path = _run("demo", seeded.failed_run)
    assert "needs operator" in error_of(viewer.delete(path), 403)
    assert "only finished runs can be deleted" in error_of(operator.delete(_run("demo", seeded.running_run)), 409)
    preview = operator.delete(path, params={"dry_run": "true"}).json()
    assert (preview["dry_run"], preview["runs"], preview["task_instances"], preview["tries"]) == (True, 1, 4, 3)
    assert preview["results"] == 2 and preview["log_files"] == 3 and preview["events"] > 0
    assert preview["sample"] == [
        {
            "flow_id": "demo",
            "run_id": seeded.failed_run,
            "state": "failed",
            "end_date": preview["sample"][0]["end_date"],
        }
    ]
    assert viewer.get(path).status_code == 200
    done = operator.delete(path).json()
    assert {k: done[k] for k in ("dry_run", "runs", "tries", "log_files")} == {
        "dry_run": False,
        "runs": 1,
        "tries": 3,
        "log_files": 3,
    }
    assert "has no run" in error_of(viewer.get(path), 404)
    assert len(before) - len(list(logs.iterdir())) == 3
    assert "has no run" in error_of(operator.delete(path, params={"dry_run": "true"}), 404)


def test_clean_old_runs_is_for_admins_and_keeps_the_latest(
    admin: Api, operator: Api, viewer: Api, seeded: Seeded
) -> None:
    time.sleep(1.1)  # the seeded runs ended at least a second ago
    body = {"older_than": "1s", "dry_run": True}
    assert "needs admin" in error_of(operator.post("/db/clean", json=body), 403)
    assert "expected an age with a unit" in error_of(admin.post("/db/clean", json={"older_than": "30"}), 422)
    # six minutes or six months? Refused rather than read as minutes (it deleted nearly everything)
    assert "could be minutes or months" in error_of(admin.post("/db/clean", json={"older_than": "6m"}), 422)
    for huge in ("99999999999d", "99999999h"):  # were 500s (overflowing the cut-off date)
        too_old = {"older_than": huge, "dry_run": True}
        assert "at most 1000 years" in error_of(admin.post("/db/clean", json=too_old), 422)
    assert "no flow 'demx'" in error_of(admin.post("/db/clean", json={"older_than": "1d", "flow_id": "demx"}), 404)
    preview = admin.post("/db/clean", json=body).json()
    assert preview["dry_run"] and seeded.running_run not in [r["run_id"] for r in preview["sample"]]
    assert preview["runs"] == len(preview["sample"]) >= 1
    done = admin.post("/db/clean", json={"older_than": "1s"}).json()
    assert done["runs"] == preview["runs"] and not done["dry_run"]
    left = [r["run_id"] for r in viewer.get("/flows/demo/runs").json()["items"]]
    assert left == [seeded.running_run]


def test_mark_cancel_and_pool_deletion_dry_runs(admin: Api, operator: Api, viewer: Api, seeded: Seeded) -> None:
    path = _run("demo", seeded.running_run)
    before = viewer.get(path + "/tasks").json()
    mark = {"task_ids": ["extract.orders"], "state": "failed", "downstream": True, "dry_run": True}
    preview = operator.post(path + "/tasks/mark", json=mark).json()
    assert preview == {"task_ids": ["extract.orders", "load", "report"], "dry_run": True}
    assert viewer.get(path + "/tasks").json() == before
    bad = {**mark, "task_ids": ["nope"]}
    assert "has no task 'nope'" in error_of(operator.post(path + "/tasks/mark", json=bad), 404)

    cancel = operator.post(path + "/cancel", params={"dry_run": "true"}).json()
    assert cancel["dry_run"] and cancel["state"] == "running"
    assert set(cancel["task_ids"]) == {t["task_id"] for t in before if t["state"] not in ("success", "failed")}
    assert viewer.get(path).json()["state"] == "running"

    preview_pool = admin.delete("/pools/io", params={"dry_run": "true"})
    assert preview_pool.status_code == 200
    assert preview_pool.json() == {
        "name": "io",
        "slots": 4,
        "running_slots": 0,
        "queued_slots": 0,
        "waiting_tasks": 0,
        "dry_run": True,
    }
    assert viewer.get("/pools/io").status_code == 200
    assert "cannot be deleted" in error_of(admin.delete("/pools/default_pool", params={"dry_run": "true"}), 409)
    assert admin.delete("/pools/io").status_code == 204
    assert viewer.get("/pools/io").status_code == 404


def test_clearing_a_marker_through_the_api_lists_and_clears_the_other_flows_tasks(
    operator: Api, viewer: Api, engine: Engine
) -> None:
    import datetime as dt

    from ductwork.core.graph import EXTERNAL_MARKER, FlowGraph, FlowMeta, NodeSpec
    from ductwork.core.states import TaskState
    from ductwork.store.engine import transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    day = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    marker = {"flow": "mk_child", "task": "wait", "date": "{{ logical_date.isoformat() }}", "depth": 10}
    parent = FlowGraph(
        FlowMeta("mk_parent"),
        {"load": NodeSpec("load"), "mark": NodeSpec("mark", ("load",), extra={EXTERNAL_MARKER: marker})},
    )
    child = FlowGraph(
        FlowMeta("mk_child"), {"wait": NodeSpec("wait"), "use": NodeSpec("use", ("wait",)), "other": NodeSpec("other")}
    )
    with transaction(engine) as conn:
        for graph in (parent, child):
            run_repo.create_run(
                conn, graph, run_id="r1", logical_date=day, states=dict.fromkeys(graph.nodes, TaskState.SUCCESS)
            )
    path = _run("mk_parent", "r1") + "/tasks/clear"
    assert "needs operator" in error_of(viewer.post(path, json={"task_ids": ["mark"]}), 403)
    preview = operator.post(path, json={"task_ids": ["mark"], "dry_run": True}).json()
    assert preview["task_ids"] == ["mark"]
    assert preview["other_runs"] == [{"flow_id": "mk_child", "run_id": "r1", "task_ids": ["wait", "use"]}]
    done = operator.post(path, json={"task_ids": ["mark"]}).json()
    assert done["other_runs"] == preview["other_runs"] and done["dry_run"] is False
    with transaction(engine) as conn:
        record = run_repo.get_run(conn, "mk_child", "r1")
        assert record is not None
        states = {t: s.value for t, s in task_repo.task_states(conn, record.pk).items()}
    assert states == {"wait": "none", "use": "none", "other": "success"}


def test_a_cancelled_run_says_why_in_its_states_and_its_unrun_tasks_say_why_they_never_ran(
    operator: Api, viewer: Api, engine: Engine
) -> None:
    """A task the cancel skipped before it ran showed "try 0 of 1" over an empty tries table, and
    the run header's "cancelled" appeared only on a reload: the task says why it is skipped
    (``state_reason``), and the states a live page polls say why the run ended (``reason``)."""
    import datetime as dt

    from ductwork.core.states import RunState, TaskState
    from ductwork.store.engine import transaction
    from ductwork.store.repo import runs as run_repo
    from tests.web.seed import T0, demo_flow

    graph = demo_flow().to_graph()
    with transaction(engine) as conn:
        run_repo.create_run(
            conn,
            graph,
            run_id="cancelled_early",
            logical_date=T0 + dt.timedelta(days=40),
            states=dict.fromkeys(graph.nodes, TaskState.NONE),
            state=RunState.RUNNING,
        )
    path = _run("demo", "cancelled_early")
    assert viewer.get(path + "/states").json()["reason"] == ""
    assert viewer.get(path + "/tasks/report").json()["state_reason"] == ""
    assert operator.post(path + "/cancel").status_code == 200
    states = viewer.get(path + "/states").json()
    assert (states["state"], states["reason"]) == ("failed", "cancelled from the web")
    report = viewer.get(path + "/tasks/report").json()
    assert (report["state"], report["try_number"], report["state_reason"]) == ("skipped", 0, "cancelled from the web")
    why = viewer.get(path + "/tasks/report/why").json()
    assert (why["decision"], why["text"]) == ("not_run", "did not run: it ended skipped (cancelled from the web)")
