"""What the CLI prints of recorded data is that data, whatever characters it holds.

Rich took square brackets in a task's error, a variable, a pool's description or a run id for
markup: ``[/x]`` ended ``ductwork run``, ``runs show``, ``variables list`` and ``audit list``
(for as long as the audit entry was kept) with a ``MarkupError`` traceback, and ``r[red]x`` was
listed as ``rx``. A run's table, narrower than its title, also broke the run id over two lines.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import Cli

BRACKETS_FLOW = textwrap.dedent(
    """
    from ductwork import EmptyOperator, Flow, PythonOperator

    def boom():
        raise ValueError("bad value [/x] in [bold]column[/bold]")

    with Flow("brackets", schedule=None) as f:
        PythonOperator(task_id="a", python_callable=boom)
        EmptyOperator(task_id="b")
    """
)
ERROR = "ValueError: bad value [/x] in [bold]column[/bold]"


def _only_run(cli: Cli, flow_id: str) -> str:
    (run,) = json.loads(cli("runs", "list", flow_id, "--json").output)["runs"]
    run_id: str = run["run_id"]
    return run_id


def test_a_task_error_with_brackets_is_shown_as_written(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(BRACKETS_FLOW)
    ran = cli("run", "flow.py:brackets", "--no-progress")
    assert ran.exit_code == 1, ran.output  # the run failed; the command did not crash
    assert ERROR in ran.output, ran.output
    run_id = _only_run(cli, "brackets")
    shown = cli("runs", "show", "brackets", run_id)
    assert shown.exit_code == 0 and ERROR in shown.output, shown.output
    state = cli("tasks", "state", "brackets", run_id)
    assert ERROR in state.output and "a: " in state.output, state.output
    tested = cli("tasks", "test", "flow.py:brackets", "a")
    assert tested.exit_code == 1 and f"a: failed ({ERROR})" in tested.output, tested.output


def test_values_with_brackets_are_listed_as_they_are(cli: Cli) -> None:
    assert cli("variables", "set", "path", "a[/b]c").exit_code == 0
    assert cli("variables", "set", "styled", "[red]x[/red]").exit_code == 0
    assert cli("pools", "set", "p", "2", "--description", "slots [/y]").exit_code == 0
    listed = cli("variables", "list")
    assert "a[/b]c" in listed.output and "[red]x[/red]" in listed.output, listed.output
    assert "slots [/y]" in cli("pools", "list").output
    audit = cli("audit", "list")
    assert audit.exit_code == 0 and "variable.set" in audit.output, audit.output


def test_a_run_id_is_listed_and_titled_whole(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "one.py").write_text(
        'from ductwork import EmptyOperator, Flow\nwith Flow("one") as f:\n    EmptyOperator(task_id="a")\n'
    )
    assert cli("trigger", "one", "--run-id", "r[red]x").exit_code == 0
    assert "r[red]x" in cli("runs", "list").output
    assert "one r[red]x [queued]" in cli("runs", "show", "one", "r[red]x").output
    assert cli("run", "one", "--no-progress").exit_code == 0
    (run,) = [r for r in json.loads(cli("runs", "list", "--json").output)["runs"] if r["state"] == "success"]
    # a one-task run's table is narrower than its title: the title kept the id on one line
    assert f"one {run['run_id']} [success]" in cli("runs", "show", "one", run["run_id"]).output


def test_an_import_error_is_one_line_when_piped(cli: Cli, tmp_path: Path) -> None:
    """Piped, `flows list` cut an import error at 160 columns ("... Did you" / "mean ..."), so a
    grep for its file or its message missed half of it."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "long.py").write_text(
        "from ductwork import BashOperator, Flow\n"
        'with Flow("long_flow_name_" + "x" * 60) as f:\n'
        '    BashOperator(task_id="a", bash_comand="echo")\n'
    )
    listed = cli("flows", "list")
    assert listed.exit_code == 1
    (line,) = [line for line in listed.output.splitlines() if "import error" in line]
    assert len(line) > 160 and line.endswith("Did you mean 'bash_command'?"), listed.output
