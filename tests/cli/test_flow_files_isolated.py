"""The CLI imports flow files in a child process (issue 9, items 8 and 17): a file that ends
the interpreter or hangs at import is an import error naming it, with a non-zero exit, instead
of ending or hanging the command; and with no scheduler running, ``trigger`` and ``backfill``
use the file as it is now, not as it was last parsed."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

from ductwork_process import ductwork_process
from tests.conftest import Cli

GOOD = textwrap.dedent(
    """
    from ductwork import flow, task

    @task
    def a():
        return 1

    @flow(schedule="@daily", start_date="2024-01-01")
    def good():
        a()
    """
)
EXITS = "import os\nos._exit(0)\n"
HANGS = textwrap.dedent(
    """
    import subprocess, time
    from pathlib import Path
    child = subprocess.Popen(["sleep", "600"])
    (Path(__file__).parent.parent / "hang.pid").write_text(str(child.pid))
    time.sleep(600)
    """
)


def _ductwork(tmp: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {"DUCTWORK_HOME": str(tmp / "home"), "DUCTWORK_PARSE_TIMEOUT": "3"}
    return ductwork_process(*args, env=env, cwd=tmp, timeout=timeout)


def _folder(tmp: Path, **files: str) -> None:
    (tmp / "flows").mkdir()
    for name, source in files.items():
        (tmp / "flows" / f"{name}.py").write_text(source)


def test_a_file_that_exits_the_interpreter_is_an_import_error(tmp_path: Path) -> None:
    _folder(tmp_path, good=GOOD, exits=EXITS)
    listed = _ductwork(tmp_path, "flows", "list", "--json")
    assert listed.returncode == 1, listed.stdout + listed.stderr
    data = json.loads(listed.stdout)
    assert [f["flow_id"] for f in data["flows"]] == ["good"]
    [error] = data["errors"]
    assert error["file"] == "flows/exits.py" and "os._exit()" in error["error"]
    assert error["line"] == 2  # the line that calls it
    table = _ductwork(tmp_path, "flows", "list")
    assert table.returncode == 1 and "exits.py" in table.stdout and "good" in table.stdout

    ran = _ductwork(tmp_path, "run", "good", "--no-progress", "--json")  # only good.py is imported here
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["tasks"]["a"]["state"] == "success"
    for command in (["run", "flows/exits.py"], ["trigger", "flows/exits.py"], ["flows", "show", "flows/exits.py"]):
        refused = _ductwork(tmp_path, *command)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert "exits.py" in refused.stderr and "os._exit()" in refused.stderr
    triggered = _ductwork(tmp_path, "trigger", "good", "--json")
    assert triggered.returncode == 0 and json.loads(triggered.stdout)["state"] == "queued"


def test_a_file_that_hangs_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    _folder(tmp_path, good=GOOD, hangs=HANGS)
    started = time.monotonic()
    listed = _ductwork(tmp_path, "flows", "list", "--json")
    assert listed.returncode == 1, listed.stdout + listed.stderr
    data = json.loads(listed.stdout)
    assert [f["flow_id"] for f in data["flows"]] == ["good"]
    [error] = data["errors"]
    assert error["file"] == "flows/hangs.py" and "longer than 3s" in error["error"]
    assert time.monotonic() - started < 60
    pid = int((tmp_path / "hang.pid").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the process the hanging file started was left running"
    (tmp_path / "hang.pid").unlink()
    refused = _ductwork(tmp_path, "run", "flows/hangs.py")  # imported in the command's own process
    assert refused.returncode == 2 and "longer than 3s" in refused.stderr
    assert "hangs.py" in refused.stderr
    _gone(int((tmp_path / "hang.pid").read_text()))


def _gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the process the hanging file started was left running"


EXITS_UNDER_EXCEPT = textwrap.dedent(
    """
    import os
    from ductwork import Task

    class Report(Task):
        def run(self):
            pass

    try:
        os._exit(0)
    except Exception:
        pass
    """
)


def test_run_and_build_import_the_file_once_and_still_refuse_one_that_exits(tmp_path: Path) -> None:
    """``run FILE`` and ``build --module`` import the file in their own process (once, no
    parsing child): an ``os._exit()`` at import, even under ``except Exception``, is an import
    error naming the file and line, with status 2, not a silent exit 0."""
    _folder(tmp_path, good=GOOD, exits=EXITS_UNDER_EXCEPT)
    for command in (["run", "flows/exits.py"], ["build", "--module", "flows/exits.py", "Report"]):
        refused = _ductwork(tmp_path, *command)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert "flows/exits.py" in refused.stderr and "os._exit()" in refused.stderr, refused.stderr
        assert ":10" in refused.stderr or "line 10" in refused.stderr, refused.stderr  # the line that exits
    ran = _ductwork(tmp_path, "run", "flows/good.py", "--no-progress", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["tasks"]["a"]["state"] == "success"
    assert not (tmp_path / "home" / "cache").exists() or not any((tmp_path / "home" / "cache").rglob("*.json"))


DAILY = textwrap.dedent(
    """
    from ductwork import flow, task

    @task
    def extract():
        return 1

    @flow(schedule="@daily", start_date="2024-01-01")
    def sales():
        extract()
    """
)
WEEKLY_WITH_LOAD = textwrap.dedent(
    """
    from ductwork import flow, task

    @task
    def extract():
        return 1

    @task
    def load(x):
        return x

    @flow(schedule="@weekly", start_date="2024-01-01")
    def sales():
        load(extract())
    """
)


def _tasks_of(cli: Cli, run_id: str) -> set[str]:
    shown = cli("runs", "show", "sales", run_id, "--json")
    assert shown.exit_code == 0, shown.output
    return set(json.loads(shown.output)["tasks"])


def test_trigger_and_backfill_use_the_file_as_it_is_now(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    source = tmp_path / "flows" / "sales.py"
    source.write_text(DAILY)
    first = cli("trigger", "sales", "--run-id", "first", "--json")
    assert first.exit_code == 0, first.output
    assert _tasks_of(cli, "first") == {"extract"}
    dry = json.loads(
        cli("backfill", "sales", "--start", "2024-01-01", "--end", "2024-01-14", "--dry-run", "--json").output
    )
    assert len(dry) == 14  # daily

    source.write_text(WEEKLY_WITH_LOAD)  # no scheduler runs to notice
    second = cli("trigger", "sales", "--run-id", "second", "--json")
    assert second.exit_code == 0, second.output
    assert _tasks_of(cli, "second") == {"extract", "load"}
    dry = json.loads(
        cli("backfill", "sales", "--start", "2024-01-01", "--end", "2024-01-14", "--dry-run", "--json").output
    )
    assert len(dry) == 2 and all(set(p["tasks"]) == {"extract", "load"} for p in dry)  # weekly, with load
    shown = json.loads(cli("flows", "show", "sales", "--json").output)
    assert {n["task_id"] for n in shown["nodes"]} == {"extract", "load"}

    source.write_text("def broken(:\n")  # broken now: refuse rather than use the old one
    broken = cli("trigger", "sales")
    assert broken.exit_code == 2 and "sales.py" in broken.output and "SyntaxError" in broken.output

    source.unlink()  # deleted: its runs stay recorded, but nothing could run a new one
    for args in (("trigger", "sales"), ("backfill", "sales", "--start", "2024-01-01", "--end", "2024-01-03")):
        gone = cli(*args)
        assert gone.exit_code == 2 and "no longer exists" in gone.output and "sales.py" in gone.output, gone.output
    assert _tasks_of(cli, "second") == {"extract", "load"}


COUNTED = textwrap.dedent(
    """
    from pathlib import Path
    from ductwork import EmptyOperator, Flow
    import helpers

    with (Path(__file__).parent.parent / "imports.txt").open("a") as out:
        out.write("x")
    with Flow("counted", schedule=helpers.SCHEDULE) as counted:
        EmptyOperator(task_id="t")
    """
)


def test_unchanged_files_are_not_imported_again(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "counted.py").write_text(COUNTED)
    (tmp_path / "flows" / "helpers.py").write_text('SCHEDULE = "@daily"\n')
    imports = tmp_path / "imports.txt"

    def listed() -> dict[str, str]:
        result = cli("flows", "list", "--json")
        assert result.exit_code == 0, result.output
        return {f["flow_id"]: f["schedule"] for f in json.loads(result.output)["flows"]}

    assert listed()["counted"] == "@daily"
    first = imports.read_text()
    assert listed()["counted"] == "@daily"
    assert cli("flows", "show", "counted").exit_code == 0
    assert imports.read_text() == first, "an unchanged file was imported again"
    (tmp_path / "flows" / "helpers.py").write_text('SCHEDULE = "@hourly"\n')  # a module it imports changed
    assert listed()["counted"] == "@hourly"
    assert len(imports.read_text()) > len(first)


def test_a_file_that_failed_to_import_is_tried_again(cli: Cli, tmp_path: Path) -> None:
    """An import error may come from outside the file (a package not installed yet, a module
    its import looked for): once that is fixed, the next command sees the flow, not the old error."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text(
        "import late_helper\nfrom ductwork import EmptyOperator, Flow\n\n"
        "with Flow('report', schedule=late_helper.SCHEDULE) as report:\n    EmptyOperator(task_id='t')\n"
    )
    first = cli("flows", "list", "--json")
    assert first.exit_code == 1
    [error] = json.loads(first.output)["errors"]
    assert "late_helper" in error["error"]

    (tmp_path / "flows" / "late_helper.py").write_text('SCHEDULE = "@daily"\n')  # now installed
    second = cli("flows", "list", "--json")
    assert second.exit_code == 0, second.output
    assert {f["flow_id"]: f["schedule"] for f in json.loads(second.output)["flows"]} == {"report": "@daily"}


def test_an_airflow_variable_in_the_environment_is_read_again_when_it_changes(cli: Cli, tmp_path: Path) -> None:
    """A DAG file that builds its tasks from ``Variable.get`` at import: a changed
    ``AIRFLOW_VAR_*`` (as ``DUCTWORK_VAR_*``) is seen by the next command, not the old tasks."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "tables.py").write_text(
        textwrap.dedent(
            """
            import pendulum
            from airflow import DAG
            from airflow.models import Variable
            from airflow.operators.bash import BashOperator

            with DAG("tables", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
                for t in Variable.get("tables", deserialize_json=True, default_var=["t0"]):
                    BashOperator(task_id=f"load_{t}", bash_command="echo")
            """
        )
    )

    def tasks(**env: str) -> set[str]:
        shown = cli("flows", "show", "tables", "--json", env=env)
        assert shown.exit_code == 0, shown.output
        return {n["task_id"] for n in json.loads(shown.output)["nodes"]}

    assert tasks() == {"load_t0"}
    assert tasks(AIRFLOW_VAR_TABLES='["a", "b"]') == {"load_a", "load_b"}


FROM_A_VARIABLE = textwrap.dedent(
    """
    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.empty import EmptyOperator

    with DAG("per_region", schedule=None) as dag:
        for region in Variable.get("regions", default_var="eu").split(","):
            EmptyOperator(task_id=f"load_{region}")
    """
)


def test_a_flow_made_from_a_variable_is_listed_with_the_variables_value_now(tmp_path: Path) -> None:
    """`flows list` remembered the tasks of a file made from a variable's value, and went on
    showing them after the variable changed (the parse was kept while the file did not change)."""
    _folder(tmp_path, per_region=FROM_A_VARIABLE)

    def tasks() -> int:
        listed = _ductwork(tmp_path, "flows", "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        [shown] = json.loads(listed.stdout)["flows"]
        return int(shown["tasks"])

    assert tasks() == 1
    assert _ductwork(tmp_path, "variables", "set", "regions", "eu,us,apac").returncode == 0
    assert tasks() == 3


def test_a_file_whose_name_is_not_utf8_is_an_import_error_saying_so(tmp_path: Path) -> None:
    """A file named in Latin-1 (`w\\xe9ird.py`, copied from an old machine) was an import error
    reading "UnicodeEncodeError: 'utf-8' codec can't encode character '\\udce9' ... surrogates
    not allowed"; it now says what is wrong with it, and the other files still load."""
    _folder(tmp_path, good=GOOD)
    (tmp_path / "flows").joinpath(os.fsdecode(b"w\xe9ird.py")).write_text(GOOD.replace("def good", "def weird"))
    listed = _ductwork(tmp_path, "flows", "list", "--json")
    assert listed.returncode == 1, listed.stderr
    found = json.loads(listed.stdout)
    assert [f["flow_id"] for f in found["flows"]] == ["good"]
    (error,) = found["errors"]
    assert error["error"] == "the file's name is not valid UTF-8 (made with another encoding?): rename it", error


def test_a_folder_whose_name_is_not_utf8_is_named_not_the_file(tmp_path: Path) -> None:
    """A project in a folder named in Latin-1 (`K\\xf6ln/flows/good.py`) had every file
    reported as "the file's name is not valid UTF-8: rename it": renaming good.py changed
    nothing. The error names the folder to rename."""
    project = tmp_path / os.fsdecode(b"K\xf6ln")
    project.mkdir()
    _folder(project, good=GOOD)
    listed = _ductwork(project, "flows", "list", "--json")
    assert listed.returncode == 1, listed.stderr
    (error,) = json.loads(listed.stdout)["errors"]
    assert error["error"] == (
        "the folder 'K\\xf6ln' in the file's path is not valid UTF-8 (made with another encoding?): rename it"
    ), error
