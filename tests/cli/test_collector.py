"""Ductwork's own processes collect garbage less often (``ductwork.gc_tuning``); a user's process
that runs a flow through the Python API keeps its collector as it was."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from ductwork import Flow, PythonOperator
from ductwork.gc_tuning import OLDER, YOUNGEST
from ductwork.testing import run_flow
from ductwork_process import ductwork_process

REPORT = """
import gc
import json
from pathlib import Path

from ductwork import Flow, PythonOperator


def report():
    Path(__file__).with_name("collector.json").write_text(json.dumps(gc.get_threshold()))


with Flow("collector") as flow:
    PythonOperator(task_id="report", python_callable=report)
"""


def _ductwork(tmp_path: Path, *args: str, **env: str) -> str:
    """The real entry point in a process of its own (the collector is set there)."""
    done = ductwork_process(*args, env={"DUCTWORK_HOME": str(tmp_path / "home"), **env}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_run_of_the_ductwork_command_collects_less_often(tmp_path: Path) -> None:
    (tmp_path / "collector.py").write_text(REPORT)
    _ductwork(tmp_path, "run", "collector.py", "--no-progress")
    assert json.loads((tmp_path / "collector.json").read_text()) == [YOUNGEST, OLDER, OLDER]


def test_a_flow_run_from_python_leaves_the_host_collector_alone() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    with Flow("host") as flow:
        PythonOperator(task_id="look", python_callable=lambda: seen.append(gc.get_threshold()))
    assert run_flow(flow).state == "success"
    assert seen == [before] and gc.get_threshold() == before


def test_the_child_that_reads_flow_files_collects_less_often(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "collector.py").write_text(
        "import gc, json\nfrom pathlib import Path\n"
        "Path(__file__).with_name('collector.json').write_text(json.dumps(gc.get_threshold()))\n" + REPORT
    )
    assert "collector" in _ductwork(tmp_path, "flows", "list", DUCTWORK_FLOWS_FOLDER=str(flows))
    assert json.loads((flows / "collector.json").read_text()) == [YOUNGEST, OLDER, OLDER]
