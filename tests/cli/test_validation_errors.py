"""Every validation error reaches the user through the CLI as one clear message (exit status 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import Cli

HEADER = "from ductwork import Flow, EmptyOperator, PythonOperator, BashOperator, IntParameter\n"

CASES = {
    "cycle": (
        """
        with Flow("cyclic") as f:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> b >> c >> a
        """,
        "cyclic",
        [],
        ["flow 'cyclic': dependency cycle:", "a -> b -> c -> a"],
    ),
    "duplicate": (
        """
        with Flow("dup") as f:
            EmptyOperator(task_id="load")
            EmptyOperator(task_id="load")
        """,
        "dup",
        [],
        ["flow.py:6:", "duplicate task id 'load' (first defined at", "flow.py:5"],
    ),
    "not_a_task": (
        """
        with Flow("deps") as f:
            a = EmptyOperator(task_id="a")
            a >> "b"
        """,
        "deps",
        [],
        ["flow.py:6:", "task 'a'", "cannot depend on 'b' (str)"],
    ),
    "unknown_argument": (
        """
        with Flow("args") as f:
            PythonOperator(task_id="p", pyton_callable=print)
        """,
        "args",
        [],
        [
            "flow.py:5:",
            "PythonOperator(task_id='p'): unknown argument 'pyton_callable'",
            "Did you mean 'python_callable'",
        ],
    ),
    "unknown_flow_argument": (  # was "TypeError: Flow.__init__() got an unexpected keyword argument"
        """
        with Flow("misspelt", shedule="@daily") as f:
            EmptyOperator(task_id="a")
        """,
        "misspelt",
        [],
        ["flow.py:4:", "flow 'misspelt': unknown argument 'shedule'. Did you mean 'schedule'?"],
    ),
    "unknown_flow_decorator_argument": (
        """
        from ductwork import flow, task

        @flow(schedul="@daily")
        def decorated():
            EmptyOperator(task_id="a")
        """,
        "decorated",
        [],
        ["flow.py:6:", "flow 'decorated': unknown argument 'schedul'. Did you mean 'schedule'?"],
    ),
    "bad_schedule": (
        """
        with Flow("sched", schedule="0 25 * * *") as f:
            EmptyOperator(task_id="a")
        """,
        "sched",
        [],
        ["flow.py:4:", "flow 'sched': invalid schedule '0 25 * * *'"],
    ),
    "missing_param": (
        """
        with Flow("params", params={"limit": IntParameter(description="rows")}) as f:
            EmptyOperator(task_id="a")
        """,
        "params",
        [],
        ["flow 'params': missing required parameter 'limit' (int)", "--param limit=VALUE"],
    ),
    "wrong_type": (
        """
        with Flow("typed", params={"limit": 10}) as f:
            EmptyOperator(task_id="a")
        """,
        "typed",
        ["--param", "limit=ten"],
        ["flow 'typed': parameter 'limit' wants int, got 'ten'"],
    ),
    "import_error": (
        """
        import json
        rows = json.loads("{not json")
        """,
        "anything",
        [],
        ["flow.py:5:", "failed to import flow file", "JSONDecodeError"],
    ),
    "syntax_error": (
        """
        with Flow("broken") as f
            EmptyOperator(task_id="a")
        """,
        "broken",
        [],
        ["flow.py:4:", "SyntaxError"],
    ),
    "duration_too_large": (  # was an OverflowError traceback
        """
        import datetime
        with Flow("waits", params={"d": datetime.timedelta(hours=1)}) as f:
            EmptyOperator(task_id="a")
        """,
        "waits",
        ["--param", "d=inf"],
        ["flow 'waits': parameter 'd' wants timedelta, got 'inf'", "too large for a duration"],
    ),
    "unknown_timezone": (  # the message named neither the flow nor where
        """
        with Flow("tz", schedule="@daily", timezone="Europe/Madird") as f:
            EmptyOperator(task_id="a")
        """,
        "tz",
        [],
        ["flow.py:4:", "flow 'tz': unknown timezone 'Europe/Madird'", "Did you mean one of 'Europe/Madrid'"],
    ),
    "timezone_not_text": (  # was "AttributeError: 'int' object has no attribute 'upper'"
        """
        with Flow("tz_number", timezone=2) as f:
            EmptyOperator(task_id="a")
        """,
        "tz_number",
        [],
        ["flow.py:4:", "flow 'tz_number': unknown timezone 2 (use an IANA name such as Europe/Madrid)"],
    ),
    "nan_param": (  # `trigger` and the API refused it; `run` recorded `NaN` in the run's JSON
        """
        with Flow("ratio", params={"f": 1.0}) as f:
            EmptyOperator(task_id="a")
        """,
        "ratio",
        ["--param", "f=nan"],
        ["flow 'ratio': parameter 'f' is nan: give a finite number"],
    ),
    "nan_conf": (  # recorded as `NaN`, which the API then showed as null
        """
        with Flow("conf") as f:
            EmptyOperator(task_id="a")
        """,
        "conf",
        ["--conf", '{"x": NaN}'],
        ["--conf: NaN is not a JSON number: give a finite number"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_error_through_cli(cli: Cli, tmp_path: Path, case: str) -> None:
    source, flow_id, extra, fragments = CASES[case]
    (tmp_path / "flow.py").write_text(HEADER + "\n" + textwrap.dedent(source))
    result = cli("run", f"flow.py:{flow_id}", *extra)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("Error: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    print(f"{case}: {message}")


def test_unknown_flow_suggests_the_closest(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        HEADER + 'with Flow("daily_sales") as f:\n    EmptyOperator(task_id="a")\n'
    )
    result = cli("run", "daily_sale")
    assert result.exit_code == 2
    assert "no flow 'daily_sale' in the flows folder" in result.output
    assert "Did you mean 'daily_sales'" in result.output


def test_unknown_flow_names_the_files_that_failed_to_load(cli: Cli, tmp_path: Path) -> None:
    """A flow file broken by an edit hid its flow: "no flow 'tmpl' ... 1 file(s) failed to load"
    named neither the file nor the line, though the user ran the flow of that very file."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(HEADER + 'with Flow("etl") as f:\n    EmptyOperator(task_id="a")\n')
    (tmp_path / "flows" / "tmpl.py").write_text(HEADER + 'with Flow("tmpl") as f:\n    EmptyOperator(task_id="a"\n')
    for command in (("run", "tmpl"), ("flows", "show", "tmpl"), ("flows", "export", "tmpl")):
        result = cli(*command)
        assert result.exit_code == 2, command
        assert "no flow 'tmpl' in the flows folder" in result.output, command
        assert "flows/tmpl.py:" in result.output and "SyntaxError" in result.output, (command, result.output)


def test_export_of_a_flow_id_without_a_flows_folder_says_so(cli: Cli, tmp_path: Path) -> None:
    """`flows export ID` with no ./flows said "flow file 'flows' does not exist", as if the
    folder were a file; it says what `run` and `flows show` say."""
    result = cli("flows", "export", "daily_counts_py")
    assert result.exit_code == 2
    assert "no flow 'daily_counts_py' in the flows folder 'flows'" in result.output, result.output


def test_bad_param_syntax(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(HEADER + 'with Flow("f", params={"n": 1}) as f:\n    EmptyOperator(task_id="a")\n')
    result = cli("run", "f.py:f", "--param", "n")
    assert result.exit_code == 2 and "--param 'n': expected NAME=VALUE" in result.output
    twice = cli("run", "f.py:f", "-p", "n=5", "-p", "n=6")  # which was meant? (the last was kept)
    assert twice.exit_code == 2 and "--param 'n' is given twice, as '5' and '6'" in twice.output
    assert cli("run", "f.py:f", "-p", "n=5", "-p", "n=5").exit_code == 0


def test_a_flows_folder_that_is_a_file_is_named_as_such(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text("")
    listed = cli("flows", "list", env={"DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows.py")})
    assert "flows.py is a file, not a folder" in listed.output


def test_flows_list_reports_import_errors_and_keeps_good_flows(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "good.py").write_text(HEADER + 'with Flow("good") as f:\n    EmptyOperator(task_id="a")\n')
    (folder / "bad.py").write_text("import nonexistent_module_xyz\n")
    result = cli("flows", "list", "--json")
    import json

    data = json.loads(result.output)
    assert [f["flow_id"] for f in data["flows"]] == ["good"]
    assert data["errors"][0]["line"] == 1
    assert "No module named 'nonexistent_module_xyz'" in data["errors"][0]["error"]
    assert data["errors"][0]["file"].endswith("bad.py")


def test_an_optional_flow_argument_is_given_none_as_null(cli: Cli, tmp_path: Path) -> None:
    # `--param limit=...` had no way to say None for `limit: int | None`: every text was an int or an error.
    (tmp_path / "opt.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from typing import Optional
            from ductwork import flow, task

            @task
            def show(limit, other):
                Path("seen.txt").write_text(f"limit={limit!r} other={other!r}")

            @flow
            def opt(limit: int | None = 3, other: Optional[int] = None):
                show(limit, other)
            """
        )
    )
    result = cli("run", "opt.py:opt", "--param", "limit=null", "--param", "other=null", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seen.txt").read_text() == "limit=None other=None"
    wrong = cli("run", "opt.py:opt", "--param", "limit=None")
    assert wrong.exit_code == 2
    assert "parameter 'limit' wants int or null, got 'None'" in wrong.output
    shown = cli("flows", "show", "opt.py:opt")
    assert "int or null" in shown.output


DATE_COMMANDS = {
    "run": ("run", "f", "--date", "{}"),
    "trigger": ("trigger", "f", "--date", "{}"),
    "backfill": ("backfill", "f", "--start", "{}", "--end", "{}"),
    "tasks test": ("tasks", "test", "f", "a", "{}"),
    "tasks render": ("tasks", "render", "f", "a", "{}"),
    "audit list": ("audit", "list", "--since", "{}"),
}


@pytest.mark.parametrize("command", sorted(DATE_COMMANDS))
@pytest.mark.parametrize("when", ["9999-12-31", "0001-01-01", "9999-12-31T23:00-05:00"])
def test_a_date_no_schedule_can_compute_with_is_refused_by_every_command(
    cli: Cli, tmp_path: Path, command: str, when: str
) -> None:
    """`run --date 9999-12-31`, `backfill`, `tasks test`, `tasks render` and `audit list --since`
    ended in an OverflowError traceback (`trigger` too for a date with an offset), and `run --date
    0001-01-01` recorded a run that `trigger` refuses: one date reader says the same everywhere."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(
        HEADER + 'with Flow("f", schedule="@daily", start_date="2024-01-01") as f:\n    EmptyOperator(task_id="a")\n'
    )
    result = cli(*(arg.format(when) for arg in DATE_COMMANDS[command]))
    assert result.exit_code == 2, result.output
    assert "the year must be between 1900 and 9000" in result.output and when in result.output
    assert "Traceback" not in result.output


def test_a_logical_date_whose_utc_is_past_year_9999_is_refused_not_an_overflow() -> None:
    """What `TriggerFlowOperator` and the services pass is checked the same way."""
    import datetime as dt

    from ductwork.errors import ParameterError
    from ductwork.services.runs import check_logical_date

    with pytest.raises(ParameterError, match="the year must be between 1900 and 9000"):
        check_logical_date(dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))))


def test_trigger_refuses_a_conf_holding_nan_or_infinity_as_the_api_does(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(HEADER + 'with Flow("f") as f:\n    EmptyOperator(task_id="a")\n')
    for conf, says in (
        ('{"x": NaN}', "NaN is not a JSON number"),
        ('{"x": [1, -Infinity]}', "-Infinity is not a JSON number"),
        ('{"x": 1e400}', "1e400 is too large for a number"),
    ):
        result = cli("trigger", "f", "--conf", conf)
        assert result.exit_code == 2, result.output
        assert f"--conf: {says}: give a finite number" in result.output
    assert "0 in all" in cli("runs", "list", "f").output or "no runs" in cli("runs", "list", "f").output.lower()


def test_build_of_a_module_names_the_users_line_of_a_bad_parameter_default(cli: Cli, tmp_path: Path) -> None:
    """`build --module reports` of a module whose `IntParameter(default="x")` is invalid was
    reported at ductwork/core/params.py:83, where the check raised, not at the module's line."""
    (tmp_path / "badparams.py").write_text(
        "from ductwork import IntParameter, Task\n\nclass Count(Task):\n    n = IntParameter(default='x')\n"
    )
    for module in ("badparams", "badparams.py"):
        result = cli("build", "--module", module, "Count")
        assert result.exit_code == 2, result.output
        assert "badparams.py:4: failed to import flow file: IntParameter(default='x'): the default is invalid" in (
            result.output
        ), result.output


def test_build_of_a_module_whose_own_import_is_missing_names_the_file_and_line(cli: Cli, tmp_path: Path) -> None:
    """`build --module reports` of a module that imports a missing package said `reports:3`:
    the module's name, not its file, and, when a helper module's import failed, the helper's
    line as if it were the module's. The file and line where the import failed are named."""
    (tmp_path / "reports.py").write_text("from ductwork import Task\n\nimport helpers\n")
    (tmp_path / "helpers.py").write_text("import os\n\n\nimport pyarrow_not_installed\n")
    result = cli("build", "--module", "reports", "Count")
    assert result.exit_code == 2, result.output
    assert "helpers.py:4: failed to import flow file: ModuleNotFoundError: No module named " in result.output, (
        result.output
    )
    assert "reports:" not in result.output, result.output


def test_a_parameter_a_run_cannot_record_is_named_not_a_traceback(cli: Cli, tmp_path: Path) -> None:
    """``Flow(params={"out": Path("/data")})`` or ``def f(out: Path = ...)`` ended ``ductwork run``
    and ``trigger`` with a SQLAlchemy ``StatementError`` traceback: the run's parameters are
    recorded as JSON, which has no form for a ``Path``."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "paths.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            from ductwork import EmptyOperator, Flow

            with Flow("paths", schedule=None, params={"out": Path("/data")}) as f:
                EmptyOperator(task_id="a")
            """
        )
    )
    for command in (("run", "paths"), ("trigger", "paths")):
        said = cli(*command)
        assert said.exit_code == 2, said.output
        assert said.output.startswith("Error: flow 'paths': parameter 'out' is PosixPath('/data')"), said.output
        assert "declare it as text (str, '/data')" in said.output, said.output
    assert cli("run", "paths", "--no-record").exit_code == 0  # nothing recorded: it runs as before


@pytest.mark.parametrize("argument", ["catchup", "paused_on_creation"])
def test_a_yes_no_flow_argument_given_as_text_is_refused(cli: Cli, tmp_path: Path, argument: str) -> None:
    """``catchup="False"`` is a non-empty text: it meant True, and the scheduler created every
    missed run since start_date."""
    (tmp_path / "flow.py").write_text(
        HEADER + f'with Flow("yes_no", schedule="@daily", start_date="2024-01-01", {argument}="False") as f:\n'
        '    EmptyOperator(task_id="a")\n'
    )
    said = cli("run", "flow.py:yes_no")
    assert said.exit_code == 2, said.output
    assert (
        "flow.py:2:" in said.output and f"flow 'yes_no': {argument} must be True or False, got 'False'" in said.output
    )


@pytest.mark.parametrize("argument", ["depends_on_past", "do_xcom_push", "retry_exponential_backoff"])
def test_a_yes_no_task_argument_given_as_text_is_refused(cli: Cli, tmp_path: Path, argument: str) -> None:
    """``default_args={"depends_on_past": "False"}`` meant True: the task waited on its past runs."""
    (tmp_path / "flow.py").write_text(
        HEADER + f'with Flow("yes_no", default_args={{"{argument}": "False"}}) as f:\n    EmptyOperator(task_id="a")\n'
    )
    said = cli("run", "flow.py:yes_no")
    assert said.exit_code == 2, said.output
    assert "flow.py:3:" in said.output and f"task 'a': {argument} must be True or False, got 'False'" in said.output


def test_a_cycle_names_the_line_of_each_of_its_edges(cli: Cli, tmp_path: Path) -> None:
    """The error named only the flow's line: in a file of a hundred ``>>`` nothing said which
    one closed the cycle. An edge written in another module (a helper that wires tasks) is
    named with its file."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "wiring.py").write_text("def close(x, y):\n    x >> y\n")
    (tmp_path / "flows" / "loop.py").write_text(
        HEADER
        + textwrap.dedent(
            """
            import sys
            sys.path.insert(0, __file__.rsplit("/", 1)[0])
            from wiring import close

            with Flow("loop") as f:
                a = EmptyOperator(task_id="a")
                b = EmptyOperator(task_id="b")
                c = EmptyOperator(task_id="c")
                a >> b
                b >> c
                close(c, a)
            """
        )
    )
    result = cli("run", "flows/loop.py:loop")  # in this process (flows list parses in a child)
    assert result.exit_code == 2, result.output
    wiring = str(tmp_path / "flows" / "wiring.py")
    assert (
        f"dependency cycle: a -> b -> c -> a (written a >> b at line 11, b >> c at line 12, c >> a at {wiring}:2)"
        in " ".join(result.output.split())
    ), result.output
