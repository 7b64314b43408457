"""A run records the code it was created from, and two runs can be compared.

A scheduler parses a flows folder that is a git repository; a run is triggered; then the body
of a callable changes (in a helper module the flow imports, so the graph and its version hash
stay the same) and a second run is triggered. The two runs record different code hashes, the
same commit marked as changed since, and the diff (API, CLI, UI) names the changed file; a
change to the graph shows as tasks and edges added.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from tests.engine.scheduler_thread import scheduler_in_thread

FLOW = """
    from ductwork import Flow, PythonOperator
    from helpers import compute

    with Flow("coded", schedule=None) as coded:
        PythonOperator(task_id="compute", python_callable=compute){extra}
"""
HELPER = """
    def compute():
        return {value}
"""


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[SchedulerService, Settings, Path]]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "coded.py").write_text(textwrap.dedent(FLOW.format(extra="")))
    (flows / "helpers.py").write_text(textwrap.dedent(HELPER.format(value=1)))
    _git(flows, "init", "-q")
    _git(flows, "add", ".")
    _git(flows, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'd.db'}", parallelism=1
    )
    with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.1, parse_interval=0.2)) as service:
        yield service, settings, flows


def _code_of_flow(service: SchedulerService) -> Any:
    with read_transaction(service.engine) as conn:
        from ductwork.store.tables import flows

        return conn.execute(flows.select().where(flows.c.flow_id == "coded")).first()


def _run(service: SchedulerService, run_id: str) -> Any:
    with read_transaction(service.engine) as conn:
        return run_repo.get_run(conn, "coded", run_id)


def test_runs_record_their_code_and_can_be_compared(scheduler: tuple[SchedulerService, Settings, Path]) -> None:
    from fastapi.testclient import TestClient

    from ductwork.api.app import create_app
    from ductwork.cli.main import cli
    from ductwork.services import accounts

    service, settings, flows = scheduler
    commit = _git(flows, "rev-parse", "HEAD")
    _wait(lambda: (row := _code_of_flow(service)) is not None and row.code is not None, "the flow's code")
    first = run_service.trigger(service.engine, "coded", run_id="first")
    assert first.code is not None and first.code["git"] == {"commit": commit, "dirty": False}
    assert sorted(first.code["files"]) == ["coded.py", "helpers.py"]

    before = _code_of_flow(service)
    (flows / "helpers.py").write_text(textwrap.dedent(HELPER.format(value=2)))  # a new body, the same graph
    _wait(lambda: _code_of_flow(service).code["hash"] != before.code["hash"], "the changed helper to be parsed")
    second = run_service.trigger(service.engine, "coded", run_id="second")
    assert second.version_hash == first.version_hash, "the graph did not change"
    assert second.code["hash"] != first.code["hash"] and second.code["git"] == {"commit": commit, "dirty": True}
    _wait(lambda: _run(service, "second").state.value == "success", "the second run")

    # The API, for a viewer.
    accounts.create_user(service.engine, "reader", "reader-password-1", "viewer")
    token = accounts.issue_token(service.engine, "reader", "t").token
    api = TestClient(create_app(settings, service.engine))
    headers = {"Authorization": f"Bearer {token}"}
    shown = api.get("/api/v1/flows/coded/runs/second", headers=headers).json()
    assert shown["code"]["hash"] == second.code["hash"]
    diff = api.get("/api/v1/flows/coded/runs/first/diff", params={"other": "second"}, headers=headers).json()
    assert (diff["same_graph"], diff["same_code"], diff["files_changed"]) == (True, False, ["helpers.py"])
    assert (
        "has no run 'third'"
        in api.get("/api/v1/flows/coded/runs/first/diff", params={"other": "third"}, headers=headers).json()["detail"]
    )

    # A change to the graph: a second task, downstream of the first.
    (flows / "coded.py").write_text(
        textwrap.dedent(FLOW.format(extra=" >> PythonOperator(task_id='report', python_callable=compute, retries=2)"))
    )
    _wait(lambda: "report" in _graph_tasks(service), "the new graph to be parsed")
    run_service.trigger(service.engine, "coded", run_id="third")
    runner = CliRunner()
    env = {"DUCTWORK_DATABASE_URL": settings.db_url, "DUCTWORK_HOME": str(settings.home)}
    out = runner.invoke(cli, ["runs", "diff", "coded", "second", "third", "--json"], env=env)
    assert out.exit_code == 0, out.output
    found = json.loads(out.output)
    assert found["added"] == ["report"] and found["edges_added"] == [["compute", "report"]]
    assert found["files_changed"] == ["coded.py"] and not found["same_graph"]
    text = runner.invoke(cli, ["runs", "diff", "coded", "second", "third"], env=env).output
    assert "+ task report" in text and "+ edge compute >> report" in text and "~ file coded.py" in text

    # The UI: the run page shows the code, the compare page the differences.
    page = _logged_in(api, "reader", "reader-password-1")
    graph = page.get("/flows/coded/runs/second/graph")
    assert second.code["hash"] in graph.text and "files changed since" in graph.text
    compare = page.get("/flows/coded/runs/third/diff", params={"other": "second"})
    assert compare.status_code == 200 and 'data-kind="removed">- task report' in compare.text
    assert "~ coded.py" in compare.text


def _graph_tasks(service: SchedulerService) -> set[str]:
    with read_transaction(service.engine) as conn:
        graph = flow_repo.get_flow_graph(conn, "coded")
    return set(graph.nodes) if graph is not None else set()


def _logged_in(client: Any, username: str, password: str) -> Any:
    from tests.web.conftest import login

    login(client, username, password)
    return client


def test_a_run_triggered_right_after_an_edit_records_the_code_on_disk(tmp_path: Path) -> None:
    """No scheduler has parsed the edit yet (a deploy script copies a file, then triggers):
    the run records the hashes of the files as they are now, not as last parsed, and a run
    after no change records the same code as the flow."""
    from ductwork.engine.code_info import file_hash, flow_code
    from ductwork.loading import load_file
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, transaction

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "coded.py").write_text(textwrap.dedent(FLOW.format(extra="")))
    (flows / "helpers.py").write_text(textwrap.dedent(HELPER.format(value=1)))
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate.upgrade(engine)
    (flow,) = load_file(flows / "coded.py").flows
    recorded = flow_code(flow, base=flows, git=False)
    with transaction(engine) as conn:
        flow_repo.record_flow(conn, flow.to_graph(), fileloc=str(flows / "coded.py"), code=recorded)
    unchanged = run_service.trigger(engine, "coded", run_id="unchanged")
    assert unchanged.code == recorded

    (flows / "helpers.py").write_text(textwrap.dedent(HELPER.format(value=2)))
    edited = run_service.trigger(engine, "coded", run_id="edited")
    assert edited.code is not None
    assert edited.code["files"] == {
        "coded.py": recorded["files"]["coded.py"],
        "helpers.py": file_hash(flows / "helpers.py"),
    }
    assert edited.code["hash"] != recorded["hash"]
    engine.dispose()
