"""``cache="content"`` follows the code a task really runs: a change in a helper module re-runs
the task even when the flows live in a folder named ``ductwork`` (``/opt/ductwork/flows``), and
a change in a module that helper imports, or in a module-level constant the task reads, re-runs
it too. Each command is a separate ``ductwork run`` process, as a user runs them; what ran is
counted from the files the tasks write."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from ductwork_process import ductwork_process

FLOW = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import flow, task
    from helper import factor

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    LIMIT = 5

    def executed(name, value):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{name} {value}\\n")

    @task
    def scaled():
        value = factor()
        executed("scaled", value)
        return value

    @task
    def limited():
        value = LIMIT * 2
        executed("limited", value)
        return value

    @flow(schedule=None, cache="content")
    def code_changes():
        scaled()
        limited()
    """
)


class Project:
    def __init__(self, tmp: Path) -> None:
        self.marks = tmp / "marks"
        self.flows = tmp / "opt" / "ductwork" / "flows"
        self.marks.mkdir()
        self.flows.mkdir(parents=True)
        (self.flows / "code_changes.py").write_text(FLOW)
        (self.flows / "helper.py").write_text("import base\n\ndef factor():\n    return base.BASE + 1\n")
        (self.flows / "base.py").write_text("BASE = 100\n")
        self.tmp = tmp
        self.env = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_TEST_MARKS": str(self.marks),
        }

    def run(self) -> list[str]:
        """What the tasks that executed in this run wrote."""
        log = self.marks / "executed.log"
        before = len(log.read_text().splitlines()) if log.exists() else 0
        done = ductwork_process("run", "code_changes", "--no-progress", "--json", env=self.env, cwd=self.tmp)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["state"] == "success"
        return sorted(log.read_text().splitlines()[before:]) if log.exists() else []

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.flows / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        stamp = path.stat().st_mtime_ns + 1_000_000_000  # a new mtime even within one tick
        os.utime(path, ns=(stamp, stamp))
        for cached in (self.flows / "__pycache__").glob(f"{path.stem}.*.pyc"):
            cached.unlink()


def test_a_helper_module_in_a_folder_named_ductwork_is_the_users_code(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run() == ["limited 10", "scaled 101"]
    assert project.run() == []
    project.edit("helper.py", "+ 1", "+ 2")
    assert project.run() == ["scaled 102"]


def test_a_change_in_a_module_the_helper_imports_runs_the_task_again(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run() == ["limited 10", "scaled 101"]
    project.edit("base.py", "BASE = 100", "BASE = 200")
    assert project.run() == ["scaled 201"]
    assert project.run() == []


def test_a_change_of_a_module_level_constant_the_task_reads_runs_it_again(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run() == ["limited 10", "scaled 101"]
    project.edit("code_changes.py", "LIMIT = 5", "LIMIT = 6")
    assert project.run() == ["limited 12"]
    assert project.run() == []


HELPERS = textwrap.dedent(
    """
    import functools
    import os
    from pathlib import Path
    from ductwork import flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    OFFSET = 1
    LIMIT = 5

    def executed(name, value):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{name} {value}\\n")

    def logged(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return func(*args, **kwargs)
        return wrapper

    @logged
    def shift(x):
        return x + OFFSET

    def cut(limit=LIMIT):
        return limit * 2

    @task
    def shifted():
        value = shift(10)
        executed("shifted", value)
        return value

    @task
    def limited():
        value = cut()
        executed("limited", value)
        return value

    @flow(schedule=None, cache="content")
    def code_changes():
        shifted()
        limited()
    """
)


def test_constants_read_by_a_decorated_helper_or_a_default_argument_run_the_task_again(tmp_path: Path) -> None:
    """``OFFSET`` read in a decorated helper's body, and ``LIMIT`` as a helper's default argument
    (``def cut(limit=LIMIT)``), were not part of the task's code: changed, the task was "up to
    date" and its stale result reused."""
    project = Project(tmp_path)
    (project.flows / "code_changes.py").write_text(HELPERS)
    assert project.run() == ["limited 10", "shifted 11"]
    assert project.run() == []
    project.edit("code_changes.py", "OFFSET = 1", "OFFSET = 2")
    assert project.run() == ["shifted 12"]
    project.edit("code_changes.py", "LIMIT = 5", "LIMIT = 7")
    assert project.run() == ["limited 14"]
    assert project.run() == []


UNREADABLE_INPUT = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import Asset, flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    @task(inlets=[Asset("nosuchstore://lake/orders")])
    def count_orders():
        with (MARKS / "executed.log").open("a") as fh:
            fh.write("count_orders\\n")
        return 1

    @flow(schedule=None, cache="content")
    def unreadable_input():
        count_orders()
    """
)


def test_an_input_whose_version_cannot_be_read_runs_the_task_every_time(tmp_path: Path) -> None:
    """Its version was the same "unreadable: ..." text each time, which matched itself: a task
    whose input really changed, but which this host cannot read, stayed "up to date" for ever."""
    project = Project(tmp_path)
    (project.flows / "unreadable_input.py").write_text(UNREADABLE_INPUT)
    log = project.marks / "executed.log"
    for expected in (1, 2):
        done = ductwork_process("run", "unreadable_input", "--no-progress", env=project.env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert log.read_text().splitlines().count("count_orders") == expected
    why = ductwork_process("why", "unreadable_input", "count_orders", env=project.env, cwd=tmp_path)
    assert "could not be read, so it may have changed" in why.stdout + why.stderr, why.stdout + why.stderr
