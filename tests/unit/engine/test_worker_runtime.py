"""A worker process keeps a flow file imported between tries, and imports it again when it
changed: at the first try of each run at the latest, so a run triggered right after an edit
(a deploy script copying a file, then triggering) runs the edited code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.engine.executors.runtime import FlowFileRuntime, RunSetup

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("edited") as flow:
    PythonOperator(task_id="t", python_callable=lambda: "{version}")
"""


def _run(run_id: str, file: Path) -> RunSetup:
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return RunSetup(RunInfo("edited", run_id, at, at, at), flow_file=str(file))


def _version(runtime: FlowFileRuntime, run: RunSetup) -> str:
    operator = runtime.resolve(NodeSpec("t"), run)
    return str(operator.python_callable())  # type: ignore[attr-defined]


def test_a_new_run_sees_the_file_as_edited_a_moment_ago(tmp_path: Path) -> None:
    file = tmp_path / "edited.py"
    file.write_text(FLOW.format(version="v1"))
    runtime = FlowFileRuntime()
    first = _run("first", file)
    assert _version(runtime, first) == "v1"
    file.write_text(FLOW.format(version="v2"))  # same size, within the same second
    assert _version(runtime, _run("second", file)) == "v2"
    file.write_text(FLOW.format(version="v3"))
    assert _version(runtime, _run("third", file)) == "v3"


CLASSES = """
from ductwork import Task

class Versioned(Task):
    VERSION = "{version}"

    def run(self):
        pass
"""


def test_a_class_task_module_edited_between_runs_is_imported_again(tmp_path: Path) -> None:
    """Class tasks (Luigi style) come from their module, not the flow file's flows: an edit
    reaches the next run as it does for operators (it ran the first import's code for ever)."""
    from ductwork.core.class_flow import compile_tasks
    from ductwork.loading import import_file

    file = tmp_path / "versioned_tasks.py"
    file.write_text(CLASSES.format(version="v1"))
    module = import_file(str(file))
    nodes, _ = compile_tasks([module.Versioned()])
    (node,) = nodes.values()
    runtime = FlowFileRuntime()

    def version(run_id: str) -> str:
        runner = runtime.resolve(node, _run(run_id, file))
        return str(type(runner.task).VERSION)  # type: ignore[attr-defined]

    assert version("first") == "v1"
    file.write_text(CLASSES.format(version="v2"))
    assert version("second") == "v2"


FROM_OUTSIDE = """
import os
from ductwork import Flow, PythonOperator

with Flow("edited") as flow:
    for name in os.environ["DUCTWORK_TEST_STEPS"].split(","):
        PythonOperator(task_id=name, python_callable=lambda name=name: name)
"""


def test_a_task_made_from_what_the_file_reads_at_import_is_found_after_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow file whose tasks come from outside it (an Airflow Variable, the environment, a
    database), unedited: the scheduler's parse after the change planned a new task, and a warm
    worker, holding the file as first imported, failed it as "removed from the file after this
    run started". The file is imported again before a task is said removed."""
    from ductwork.errors import TaskRemovedError

    file = tmp_path / "edited.py"
    file.write_text(FROM_OUTSIDE)
    monkeypatch.setenv("DUCTWORK_TEST_STEPS", "a,b")
    runtime = FlowFileRuntime()
    run = _run("same", file)
    assert runtime.resolve(NodeSpec("a"), run).python_callable() == "a"  # type: ignore[attr-defined]
    monkeypatch.setenv("DUCTWORK_TEST_STEPS", "a,b,c")
    assert runtime.resolve(NodeSpec("c"), run).python_callable() == "c"  # type: ignore[attr-defined]
    with pytest.raises(TaskRemovedError, match="It was removed from"):
        runtime.resolve(NodeSpec("gone"), run)
