"""A shimmed Airflow DAG file and a Luigi module under the scheduler and in the web UI, like any
flow: scheduled runs with catchup, a trigger with a validated parameter, clearing a failed task,
mapped instances in the grid and graph, doc_md on the flow's page."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ductwork.cli.main import cli
from ductwork.engine.scheduler import SchedulerOptions
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction
from tests.engine.scheduler_thread import scheduler_in_thread

FLOWS = Path(__file__).parent / "sched_flows"


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'ductwork.db'}"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(tmp / "flows"),
            "DUCTWORK_DATABASE_URL": self.url,
            "SHIM_TEST_MARKS": str(tmp / "marks"),
        }

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str, exit_codes: tuple[int, ...] = (0,)) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code in exit_codes, result.output
        return json.loads(result.output)

    def wait(self, what: str, check: Any, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("shim-scheduler")
    e = Env(tmp)
    shutil.copytree(FLOWS, tmp / "flows")
    (tmp / "marks").mkdir()
    old = {k: os.environ.get(k) for k in e.vars}
    os.environ.update(e.vars)  # the scheduler's worker processes inherit these
    settings = Settings(home=tmp / "home", flows_folder=tmp / "flows", database_url=e.url, parallelism=2)
    try:
        with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.2, parse_interval=0.5)):
            yield e
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _runs(env: Env, flow_id: str) -> list[dict[str, Any]]:
    result = env.cli("runs", "list", flow_id, "--json")
    return json.loads(result.output)["runs"] if result.exit_code == 0 else []


def test_catchup_creates_the_missed_daily_runs_and_they_succeed(env: Env) -> None:
    runs = env.wait(
        "three scheduled runs",
        lambda: (
            [r for r in _runs(env, "af_sched") if r["run_type"] == "scheduled"]
            if len([r for r in _runs(env, "af_sched") if r["state"] == "success"]) >= 3
            else None
        ),
    )
    assert len(runs) == 3
    shown = env.json("runs", "show", "af_sched", runs[0]["run_id"])
    assert {t for t in shown["tasks"] if t.startswith("double[")} == {"double[0]", "double[1]", "double[2]"}
    assert all(t["state"] == "success" for t in shown["tasks"].values())


def test_trigger_validates_params_then_clear_reruns_a_failed_task(env: Env) -> None:
    bad = env.cli("trigger", "af_sched", "--param", "n=0")
    assert bad.exit_code == 2 and "parameter 'n'" in bad.output and "minimum" in bad.output
    run = env.json("trigger", "af_sched", "--param", "n=7", "--wait", "--timeout", "90", exit_codes=(1,))
    assert run["state"] == "failed"
    cleared = env.json("tasks", "clear", "af_sched", run["run_id"], "fragile")
    assert cleared["cleared"] == ["fragile"]
    env.wait(
        "the cleared run to succeed", lambda: env.json("runs", "show", "af_sched", run["run_id"])["state"] == "success"
    )
    log = env.cli("tasks", "logs", "af_sched", run["run_id"], "hello")
    assert "hello 7" in log.output


def test_a_luigi_module_scheduled_with_flow_from_task(env: Env) -> None:
    run = env.json("trigger", "luigi_total", "--param", "upto=4", "--wait", "--timeout", "90")
    assert run["state"] == "success"
    assert (env.tmp / "marks" / "total-4.txt").read_text() == "14"
    tasks = env.json("runs", "show", "luigi_total", run["run_id"])["tasks"]
    assert any(t.startswith("Total_4_") for t in tasks) and sum(t.startswith("Part_") for t in tasks) == 4


def test_a_watcher_task_reads_its_runs_task_instances_as_they_ended(env: Env) -> None:
    """``dag_run.get_task_instances()`` gave an empty list (and ``get_task_instance`` None,
    ``start_date`` None), so a last task that fails the run when a task failed passed, and a
    DAG failure callback listing the failed tasks listed none. A task reads the recorded states
    once the record has caught up with its try (the scheduler writes them in batches, and
    starts a task before the batch with its upstream tasks' ends is written)."""
    run = env.json("trigger", "af_watcher", "--wait", "--timeout", "90", exit_codes=(1,))
    tasks = env.json("runs", "show", "af_watcher", run["run_id"])["tasks"]
    assert tasks["watcher"]["state"] == "failed"
    seen = json.loads((env.tmp / "marks" / f"watcher-{run['run_id'][-8:]}.json").read_text())
    assert seen == {
        "seen": {
            "works[-1]": "success",
            "breaks[-1]": "failed",
            "double[0]": "success",
            "double[1]": "success",
            "watcher[-1]": "running",
        },
        "failed": ["breaks"],
        "breaks": "failed",
        "missing": None,
        "started": True,
    }
    alert = env.tmp / "marks" / f"alert-{run['run_id'][-8:]}.json"
    env.wait("the DAG's failure callback", alert.exists)
    assert json.loads(alert.read_text()) == ["breaks", "watcher"]


def test_xcom_get_one_reads_an_earlier_runs_value_from_the_database(env: Env) -> None:
    """``airflow.models.XCom`` did not exist in the shim; under the scheduler its class methods
    read another run's values where the scheduler keeps them, and ``None`` for a missing run."""
    first = env.json("trigger", "af_xcom", "--wait", "--timeout", "90")
    assert first["state"] == "success"
    second = env.json(
        "trigger", "af_xcom", "--conf", json.dumps({"src_run": first["run_id"]}), "--wait", "--timeout", "90"
    )
    assert second["state"] == "success"
    seen = json.loads((env.tmp / "marks" / f"xcom-{second['run_id'][-8:]}.json").read_text())
    assert seen == {"value": f"made in {first['run_id']}", "keys": ["return_value", "rows"], "nowhere": None}


def test_a_timed_out_tasks_failure_callback_gets_airflow_task_timeout(env: Env) -> None:
    """The callback of a try stopped at its execution_timeout got a TaskExecutionError, so
    ``isinstance(context["exception"], AirflowTaskTimeout)`` (how alert callbacks tell a hang
    from a failure) was false."""
    run = env.json("trigger", "af_timeout", "--wait", "--timeout", "90", exit_codes=(1,))
    marks = env.tmp / "marks" / f"timeout-{run['run_id'][-8:]}.json"
    env.wait("the task's failure callback", marks.exists)
    assert json.loads(marks.read_text()) == {"timeout": True, "message": "timed out after 1s"}


def test_web_ui_shows_doc_md_and_mapped_instances_in_grid_and_graph(env: Env) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's note about its HTTP client, as in tests/web
        from fastapi.testclient import TestClient

    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import views
    from tests.web.conftest import login

    engine = create_engine(env.url)
    accounts.create_user(engine, "viewer", "correct-horse-9", "viewer")
    app = create_app(Settings(home=env.tmp / "home", database_url=env.url), engine)
    with TestClient(app) as browser:
        login(browser, "viewer", "correct-horse-9")
        page = browser.get("/flows/af_sched/grid").text
        assert "Documentation" in page and "A <strong>shimmed</strong> DAG." in page  # rendered as Markdown
    with read_transaction(engine) as conn:
        latest = run_repo.list_runs(conn, flow_id="af_sched", limit=1).items[0]
        grid = views.grid(conn, [latest.pk])
        graph = views.run_graph(conn, latest.pk)
    grid_ids = json.dumps(grid, default=lambda o: getattr(o, "__dict__", str(o)))
    assert "double[2]" in grid_ids
    graph_ids = json.dumps(graph, default=lambda o: getattr(o, "__dict__", str(o)))
    assert "double[0]" in graph_ids and "fragile" in graph_ids
    engine.dispose()
