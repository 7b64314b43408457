"""``ductwork run FILE`` compiles the flow's graph once: the graph validated on loading is the
one the run records and runs (a 5,000-task flow's graph costs tens of milliseconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ductwork.core.flow import Flow
from ductwork.loading import load_flow_and_graph
from tests.conftest import Cli

FLOW = """
from ductwork import Flow, PythonOperator, task


def work():
    return 1


with Flow("ops") as ops:
    a = PythonOperator(task_id="a", python_callable=work)
    b = PythonOperator(task_id="b", python_callable=work, retries=2)
    a >> b


@task
def one() -> int:
    return 1


@task
def add(x: int) -> int:
    return x + 1


from ductwork import flow


@flow(flow_id="decorated")
def decorated() -> None:
    add(one())
"""


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = Flow.to_graph

    def counting(self: Flow):  # type: ignore[no-untyped-def]
        seen.append(self.flow_id)
        return original(self)

    monkeypatch.setattr(Flow, "to_graph", counting)
    return seen


@pytest.mark.parametrize("flow_id", ["ops", "decorated"])
def test_a_run_compiles_its_flow_once(cli: Cli, tmp_path: Path, compiles: list[str], flow_id: str) -> None:
    (tmp_path / "two.py").write_text(FLOW)
    result = cli("run", f"two.py:{flow_id}", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    assert compiles.count(flow_id) == 1
    assert json.loads(result.output)["counts"] == {"success": 2}


def test_the_loaded_graph_is_the_flows_graph(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(FLOW)
    for flow_id in ("ops", "decorated"):
        flow, graph = load_flow_and_graph(f"{tmp_path / 'two.py'}:{flow_id}", tmp_path)
        assert graph is not None
        assert graph.to_json() == flow.to_graph().to_json()
        assert graph.version_hash() == flow.to_graph().version_hash()


def test_the_recorded_run_has_its_code_and_its_tasks_settings(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(FLOW)
    result = cli("run", "two.py:ops", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tasks"]["b"]["tries"][0]["state"] == "success"
    shown = cli("runs", "list", "ops", "--json")
    assert shown.exit_code == 0, shown.output
    (run,) = json.loads(shown.output)["runs"]
    assert run["state"] == "success"
    assert set(run["code"]["files"]) == {"two.py"}  # fingerprinted from the graph compiled on loading
