"""Mapped task groups (``@task_group`` ... ``.expand``/``.partial().expand``/``.expand_kwargs``)
from a real DAG file, run by ``ductwork run FILE`` and under the scheduler: each task of the
group gets one instance per item, instance ``i`` runs after instance ``i`` of its upstream tasks
in the group and reads their results at the same map index, a failing map index does not stop
the others, and the group's tasks collect their instances' results for what follows."""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from ductwork.cli.main import cli
from ductwork.engine.scheduler import SchedulerOptions
from ductwork.settings import Settings
from ductwork.store.engine import create_engine
from tests.engine.scheduler_thread import scheduler_in_thread

DAG_FILE = Path(__file__).parent / "dags" / "mapped_group_dag.py"


def _env(tmp: Path) -> dict[str, str]:
    return {
        "DUCTWORK_HOME": str(tmp / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp / "flows"),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp / 'ductwork.db'}",
    }


def _results(env: dict[str, str], flow_id: str, run_id: str, task_ids: list[str]) -> dict[str, Any]:
    """Each task's return value, read through the REST API as a user would."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's note about its HTTP client, as in tests/web
        from fastapi.testclient import TestClient

    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from tests.web.conftest import login

    engine = create_engine(env["DUCTWORK_DATABASE_URL"])
    try:
        try:
            accounts.create_user(engine, "viewer", "correct-horse-9", "viewer")
        except Exception:
            pass  # created by an earlier call
        app = create_app(Settings(home=Path(env["DUCTWORK_HOME"]), database_url=env["DUCTWORK_DATABASE_URL"]), engine)
        out: dict[str, Any] = {}
        with TestClient(app) as browser:
            login(browser, "viewer", "correct-horse-9")
            for task_id in task_ids:
                path = f"/api/v1/flows/{flow_id}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}/results"
                found = {r["key"]: r["value"] for r in browser.get(path).json()}
                out[task_id] = found.get("return_value")
        return out
    finally:
        engine.dispose()


def _states(shown: dict[str, Any]) -> dict[str, str]:
    return {task_id: task["state"] for task_id, task in shown["tasks"].items()}


def check_mapped_group(env: dict[str, str], flow_id: str, run_id: str, states: dict[str, str]) -> None:
    assert set(states.values()) == {"success"}
    for group, count in (("grp", 3), ("grp__1", 2)):
        for name in ("expand", "add", "describe", "shout"):
            assert f"{group}.{name}" in states
        for name in ("add", "describe", "shout"):
            assert {t for t in states if t.startswith(f"{group}.{name}[")} == {
                f"{group}.{name}[{i}]" for i in range(count)
            }
    values = _results(
        env,
        flow_id,
        run_id,
        ["grp.add[1]", "grp.describe[2]", "grp.shout[0]", "grp.describe", "from_output", "grp__1.add", "from_kwargs"],
    )
    assert values["grp.add[1]"] == 12  # partial(y=10) with the second item of numbers()
    assert values["grp.describe[2]"] == "got 13@2"  # the same map index's add, and its map_index
    assert values["grp.shout[0]"] == "GOT 11@0"  # a classic operator given a sibling's output
    assert values["grp.describe"] == ["got 11@0", "got 12@1", "got 13@2"]
    assert values["from_output"] == ["got 11@0", "got 12@1", "got 13@2"]
    assert values["grp__1.add"] == [2, 10]  # expand_kwargs([{x: 1, y: 1}, {x: 5, y: 5}])
    assert values["from_kwargs"] == ["got 2@0", "got 10@1"]


def check_failing_index(env: dict[str, str], run_id: str, states: dict[str, str]) -> None:
    assert states["checked.fragile[1]"] == "failed"
    assert states["checked.after[1]"] == "upstream_failed"
    for i in (0, 2):  # the other map indexes ran to the end of the group
        assert states[f"checked.fragile[{i}]"] == "success" and states[f"checked.after[{i}]"] == "success"
    assert states["total"] == "upstream_failed"
    values = _results(env, "mapped_group_fail", run_id, ["checked.after[0]", "checked.after[2]"])
    assert values == {"checked.after[0]": [100, 0], "checked.after[2]": [300, 2]}


def test_ductwork_run_expands_every_task_of_a_mapped_group_per_map_index(tmp_path: Path) -> None:
    env = _env(tmp_path)
    runner = CliRunner()

    def run(flow_id: str) -> Any:
        result = runner.invoke(cli, ["run", "--no-progress", f"{DAG_FILE}:{flow_id}", "--json"], env=env)
        return json.loads(result.output), result.exit_code

    shown, code = run("mapped_group")
    assert code == 0 and shown["state"] == "success", shown
    check_mapped_group(env, "mapped_group", shown["run_id"], _states(shown))

    shown, code = run("mapped_group_fail")
    assert code == 1 and shown["state"] == "failed"
    check_failing_index(env, shown["run_id"], _states(shown))

    shown, code = run("mapped_group_empty")
    assert code == 0 and shown["state"] == "success"
    assert set(_states(shown).values()) == {"skipped"}  # nothing to map over: the group and what follows skip


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("mapped-groups")
    env = _env(tmp)
    (tmp / "flows").mkdir()
    shutil.copy(DAG_FILE, tmp / "flows" / DAG_FILE.name)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the scheduler's worker processes inherit these
    settings = Settings(
        home=tmp / "home", flows_folder=tmp / "flows", database_url=env["DUCTWORK_DATABASE_URL"], parallelism=2
    )
    try:
        with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.2, parse_interval=0.3)):
            yield env
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_mapped_groups_under_the_scheduler(scheduler: dict[str, str]) -> None:
    runner = CliRunner()

    def trigger(flow_id: str, code: int) -> tuple[str, dict[str, str]]:
        for _ in range(100):  # the scheduler may not have parsed the file yet
            result = runner.invoke(cli, ["trigger", flow_id, "--wait", "--timeout", "120", "--json"], env=scheduler)
            if "no flow" not in result.output.lower() and "not found" not in result.output.lower():
                break
            threading.Event().wait(0.3)
        assert result.exit_code == code, result.output
        run_id = json.loads(result.output)["run_id"]
        shown = runner.invoke(cli, ["runs", "show", flow_id, run_id, "--json"], env=scheduler)
        return run_id, _states(json.loads(shown.output))

    run_id, states = trigger("mapped_group", 0)
    check_mapped_group(scheduler, "mapped_group", run_id, states)
    run_id, states = trigger("mapped_group_fail", 1)
    check_failing_index(scheduler, run_id, states)

    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import views

    engine = create_engine(scheduler["DUCTWORK_DATABASE_URL"])
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, "mapped_group_fail", run_id)
            assert record is not None
            grid = json.dumps(views.grid(conn, [record.pk]), default=lambda o: getattr(o, "__dict__", str(o)))
            graph = json.dumps(views.run_graph(conn, record.pk), default=lambda o: getattr(o, "__dict__", str(o)))
    finally:
        engine.dispose()
    for shown in (grid, graph):  # the web UI's grid and graph show every map index of the group's tasks
        assert "checked.fragile[1]" in shown and "checked.after[2]" in shown and "checked.expand" in shown


def test_doctor_points_out_mapped_groups_and_reads_dag_decorator_arguments_as_the_dags() -> None:
    result = CliRunner().invoke(cli, ["doctor", str(DAG_FILE)])
    assert result.exit_code == 0, result.output
    assert "mapped_group_dag.py:42: differs: grp.partial(...): mapped task groups" in result.output
    assert "mapped_group_dag.py:65: differs: checked.expand(...)" in result.output
    assert "start_date" not in result.output  # @dag(start_date=...) is the DAG's, not a task's
