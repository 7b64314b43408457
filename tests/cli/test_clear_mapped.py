"""Clearing a mapped task clears its instances too (Airflow's clear of a mapped task)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import Cli

FLOW = textwrap.dedent(
    """
    from ductwork import flow, task

    @task
    def items():
        return [1, 2, 3]

    @task
    def sq(x):
        if x == 2:
            raise ValueError("boom")
        return x * x

    @task
    def gather(values):
        return sum(values)

    @flow(schedule=None)
    def mapped():
        gather(sq.expand(x=items()))
    """
)


def _states(cli: Cli, run_id: str) -> dict[str, str]:
    lines = cli("tasks", "state", "mapped", run_id).output.splitlines()
    return {line.split(":")[0]: line.split(": ")[1].split(" ")[0] for line in lines if ": " in line}


def test_clearing_a_mapped_task_clears_every_instance_of_it(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mapped.py").write_text(FLOW)
    ran = json.loads(cli("run", "mapped.py", "--json").output)
    run_id = ran["run_id"]
    assert _states(cli, run_id)["sq[1]"] == "failed"
    cleared = json.loads(cli("tasks", "clear", "mapped", run_id, "sq", "--downstream", "--json").output)
    assert sorted(cleared["cleared"]) == ["gather", "sq", "sq[0]", "sq[1]", "sq[2]"]
    states = _states(cli, run_id)
    assert {t: states[t] for t in ("sq[0]", "sq[1]", "sq[2]", "sq", "gather")} == dict.fromkeys(
        ("sq[0]", "sq[1]", "sq[2]", "sq", "gather"), "none"
    )
    assert states["items"] == "success"
    one = json.loads(cli("tasks", "clear", "mapped", run_id, "sq[1]", "--json").output)
    assert one["cleared"] == ["sq[1]"]  # one instance alone, as Airflow's clear of a map index
