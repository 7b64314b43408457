"""A mapped task's instances are listed under their task in the CLI's tables (`ductwork run`'s
summary, `runs show`), as the web UI lists them: they came after every other task."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import Cli

FLOW = """
    from ductwork import flow, task

    @task
    def numbers():
        return list(range(11))

    @task
    def double(x):
        return 2 * x

    @task
    def total(xs):
        return sum(xs)

    @flow(flow_id="mapped")
    def mapped():
        total(double.expand(x=numbers()))
"""


def _rows(output: str) -> list[str]:
    """The task column of a table's rows."""
    return [line.split("│")[1].strip() for line in output.splitlines() if line.startswith("│")]


def test_mapped_instances_are_listed_under_their_task(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mapped.py").write_text(textwrap.dedent(FLOW))
    expected = ["numbers", "double", *(f"double[{i}]" for i in range(11)), "total"]  # [2] before [10]
    ran = cli("run", "mapped.py")
    assert ran.exit_code == 0, ran.output
    assert _rows(ran.output) == expected
    listed = cli("runs", "list", "mapped", "--json")
    run_id = json.loads(listed.output)["runs"][0]["run_id"]
    shown = cli("runs", "show", "mapped", run_id)
    assert shown.exit_code == 0, shown.output
    assert _rows(shown.output) == expected
