"""What ``ductwork run`` prints at its end: every task of a small run; of a larger one, the tasks
that did not succeed, and how to see the rest."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli

FLOW = """
from ductwork import Flow, PythonOperator


def work(i):
    if i in FAIL:
        raise ValueError(f"task {{i}} broke")


FAIL = {fail}

with Flow("summary") as flow:
    for i in range({n}):
        PythonOperator(task_id=f"t{{i}}", python_callable=work, op_args=[i])
"""


def _run(cli: Cli, tmp_path: Path, n: int, fail: set[int]) -> str:
    (tmp_path / "summary.py").write_text(FLOW.format(n=n, fail=fail or "set()"))
    result = cli("run", "summary.py", "--no-progress")
    assert result.exit_code == (1 if fail else 0), result.output
    return result.output


def _rows(output: str) -> set[str]:
    return {line.split()[1] for line in output.splitlines() if line.startswith("│ t")}


def test_a_small_run_lists_every_task(cli: Cli, tmp_path: Path) -> None:
    output = _run(cli, tmp_path, 5, set())
    assert _rows(output) == {f"t{i}" for i in range(5)}
    assert "not shown" not in output


def test_a_larger_run_lists_the_tasks_that_did_not_succeed_and_says_how_to_see_the_rest(
    cli: Cli, tmp_path: Path
) -> None:
    output = _run(cli, tmp_path, 40, {3, 17})
    assert _rows(output) == {"t3", "t17"}
    assert "38 successful tasks not shown" in " ".join(output.split())
    assert "ductwork runs show summary manual__" in " ".join(output.split())


def test_run_exits_by_the_run_state_not_by_a_handled_failed_task(cli: Cli, tmp_path: Path) -> None:
    """A failed task followed by an all_done clean-up leaves a successful run: exit 0, like
    `trigger --wait`; a failed run exits 1."""
    (tmp_path / "cleanup.py").write_text(
        "from ductwork import BashOperator, EmptyOperator, Flow\n"
        "with Flow('handled') as f:\n"
        "    BashOperator(task_id='fail', bash_command='exit 1') >> "
        "EmptyOperator(task_id='cleanup', trigger_rule='all_done')\n"
        "with Flow('unhandled') as g:\n"
        "    BashOperator(task_id='fail', bash_command='exit 1') >> EmptyOperator(task_id='after')\n"
    )
    handled = cli("run", "cleanup.py:handled", "--json")
    assert json.loads(handled.stdout)["state"] == "success"
    assert handled.exit_code == 0, handled.output
    unhandled = cli("run", "cleanup.py:unhandled", "--json")
    assert json.loads(unhandled.stdout)["state"] == "failed"
    assert unhandled.exit_code == 1


def test_a_rescheduled_sensor_is_one_try_however_many_times_it_poked(cli: Cli, tmp_path: Path) -> None:
    """A sensor in reschedule mode comes back for each poke, but its pokes are one try (the tries
    table and `ductwork runs show` say try 1): the summary's "tries" column said 3."""
    (tmp_path / "pokes.py").write_text(
        "from pathlib import Path\n"
        "from ductwork import BaseSensorOperator, Flow\n"
        f"COUNT = Path({str(tmp_path / 'pokes.txt')!r})\n"
        "class Third(BaseSensorOperator):\n"
        "    def poke(self, context):\n"
        "        n = int(COUNT.read_text()) + 1 if COUNT.exists() else 1\n"
        "        COUNT.write_text(str(n))\n"
        "        return n >= 3\n"
        "with Flow('pokes') as f:\n"
        "    Third(task_id='wait', mode='reschedule', poke_interval=0.01, timeout=60)\n"
    )
    result = cli("run", "pokes.py", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pokes.txt").read_text() == "3"
    summary_row = next(line for line in result.output.splitlines() if line.startswith("│ wait"))
    assert [cell.strip() for cell in summary_row.split("│")[1:4]] == ["wait", "success", "1"]
