"""``cache="content"`` on mapped tasks: each instance is fingerprinted as the function it runs
with its own item. A change in the mapped function's code re-runs every instance (it reused
the old results: wrong data downstream), a changed item re-runs its instance only, and a run
parameter the function does not take re-runs none of them. The same for a mapped task group.
Each command is a ``ductwork run`` process, as a user runs them; what ran is counted from the
files the tasks write."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.ductwork_process import ductwork_process

FLOW = textwrap.dedent(
    """
    import json
    import os
    from pathlib import Path
    from airflow.decorators import task_group  # the Airflow name: Ductwork's own API has TaskGroup
    from ductwork import flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    ITEMS = json.loads(os.environ["DUCTWORK_TEST_ITEMS"])

    def executed(name):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(name + "\\n")

    @task
    def items():
        return ITEMS

    @task
    def scale(x):
        executed(f"scale {x}")
        return x * FACTOR

    @task
    def total(values):
        executed("total")
        (MARKS / "total.txt").write_text(str(sum(values)))
        return sum(values)

    @task
    def shifted(x):
        executed(f"shifted {x}")
        return x + 1000

    @task_group
    def per_item(x):
        return shifted(x)

    @flow(schedule=None, cache="content")
    def mapped_cache(unrelated: int = 0):
        numbers = items()
        total(scale.expand(x=numbers))
        per_item.expand(x=numbers)
    """
)


class Project:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.flows = tmp / "flows"
        self.flows.mkdir()
        self.set_factor(2)
        self.env = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_TEST_MARKS": str(self.marks),
            "DUCTWORK_TEST_ITEMS": "[1, 2, 3]",
        }

    def set_factor(self, factor: int) -> None:
        (self.flows / "mapped_cache.py").write_text(FLOW.replace("x * FACTOR", f"x * {factor}"))

    def run(self, *args: str) -> list[str]:
        """What the tasks that executed in this run wrote, sorted."""
        log = self.marks / "executed.log"
        before = len(log.read_text().splitlines()) if log.exists() else 0
        done = ductwork_process("run", "mapped_cache", "--no-progress", "--json", *args, env=self.env, cwd=self.tmp)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["state"] == "success"
        lines = log.read_text().splitlines() if log.exists() else []
        return sorted(lines[before:])

    def total(self) -> int:
        return int((self.marks / "total.txt").read_text())


def test_a_change_in_the_mapped_function_re_runs_every_instance_and_what_follows(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.run()
    assert project.total() == 12
    assert project.run() == []
    project.set_factor(3)
    assert project.run() == ["scale 1", "scale 2", "scale 3", "total"]
    assert project.total() == 18


def test_a_changed_item_re_runs_its_instance_only(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.run()
    project.env["DUCTWORK_TEST_ITEMS"] = "[1, 2, 5]"
    assert project.run() == ["scale 5", "shifted 5", "total"]
    assert project.total() == 16


def test_a_parameter_the_mapped_function_does_not_take_re_runs_no_instance(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.run()
    assert project.run("--param", "unrelated=7") == []
    assert project.total() == 12
