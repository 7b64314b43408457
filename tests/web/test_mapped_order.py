"""A mapped task's instances are listed right under their task, in the grid and a run's task
list: they came after every other task (the order they were added to the run in), so ``t[0]``
sat under an unrelated task at the bottom of the grid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Cli

FLOW = """
from ductwork import flow, task


@task
def numbers() -> list[int]:
    return list(range(11))


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def after() -> None:
    pass


@flow
def mapped() -> None:
    total(double.expand(x=numbers())) >> after()
"""

EXPECTED = ["numbers", "double", *(f"double[{i}]" for i in range(11)), "total", "after"]


@pytest.fixture
def api(cli: Cli, tmp_path: Path) -> Iterator[Any]:
    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    (tmp_path / "mapped.py").write_text(FLOW)
    done = cli("run", "mapped.py:mapped")
    assert done.exit_code == 0, done.output
    settings = Settings.load()
    engine = create_engine(settings.db_url)
    accounts.create_user(engine, "ann", "a-long-password", role="viewer")
    token = accounts.issue_token(engine, "ann", "tests").token
    with TestClient(create_app(settings, engine)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    engine.dispose()


def test_the_grid_lists_a_mapped_tasks_instances_under_it_by_map_index(api: Any) -> None:
    grid = api.get("/api/v1/flows/mapped/grid").json()
    assert grid["task_ids"] == EXPECTED
    states = dict(zip(grid["task_ids"], grid["runs"][0]["states"], strict=True))
    assert {grid["codes"][c] for c in states.values()} == {"success"}
    assert len(grid["groups"]) == len(EXPECTED)


def test_a_runs_task_list_puts_the_instances_under_their_task(api: Any) -> None:
    run_id = quote(api.get("/api/v1/flows/mapped/runs").json()["items"][0]["run_id"], safe="")
    listed = api.get(f"/api/v1/flows/mapped/runs/{run_id}/tasks").json()
    assert [t["task_id"] for t in listed] == EXPECTED
    page = api.get(f"/api/v1/flows/mapped/runs/{run_id}/tasks?limit=3&offset=1").json()
    assert [t["task_id"] for t in page] == ["double", "double[0]", "double[1]"]
