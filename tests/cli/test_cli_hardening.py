"""What a user of the CLI relies on (issue 9): a progress bar that moves, pools honoured by
``ductwork run``, dry runs that show what they say, help that names real commands."""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ductwork_process import process_env
from tests.conftest import Cli

SLOW_FLOW = textwrap.dedent(
    """
    import time
    from ductwork import flow, task

    @task
    def step(i: int) -> int:
        time.sleep(0.08)
        return i

    @flow
    def slow():
        for i in range(24):
            step.override(task_id=f"s{i}")(i)
    """
)


def _in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[bytes, float, int]:
    """Run a command with a pseudo-terminal as its stdout and stderr; (output, seconds, status)."""
    master, slave = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        chunks.append(data)
    status = process.wait(timeout=120)
    os.close(master)
    return b"".join(chunks), time.monotonic() - started, status


def test_the_progress_bar_moves_and_redraws_at_a_sane_rate(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "slow.py").write_text(SLOW_FLOW)
    env = process_env({"TERM": "xterm-256color", "COLUMNS": "120", "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")})
    output, seconds, status = _in_terminal(
        [sys.executable, "-m", "ductwork.cli", "run", "slow", "--no-record", "--workers", "1"], tmp_path, env
    )
    text = output.decode("utf-8", "replace")
    assert status == 0, text[-2000:]
    counts = [int(n) for n in re.findall(r"(\d+)/24", text)]
    assert any(0 < n < 24 for n in counts), f"the bar never showed progress: {sorted(set(counts))}"
    assert len(set(counts)) >= 3, f"the bar moved too rarely: {sorted(set(counts))}"
    # about four redraws a second (and a few at start and end), not one per write or per event
    assert len(counts) <= 10 + 8 * seconds, f"{len(counts)} redraws in {seconds:.1f}s ({len(output)} bytes)"
    assert len(output) < 200_000


POOL_FLOW = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from ductwork import flow, task

    @task(pool="warehouse")
    def load(i: int) -> None:
        out = Path(__file__).parent.parent / "spans"
        out.mkdir(exist_ok=True)
        start = time.time()
        time.sleep(0.3)
        (out / f"{i}.txt").write_text(f"{start} {time.time()}")

    @flow
    def pooled():
        for i in range(3):
            load.override(task_id=f"load{i}")(i)
    """
)


def _overlaps(folder: Path) -> int:
    spans = sorted(tuple(map(float, p.read_text().split())) for p in folder.glob("*.txt"))
    assert len(spans) == 3
    return sum(1 for (_, end), (start, _) in itertools.pairwise(spans) if start < end)


def test_run_honours_the_pools_set_in_the_database(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pooled.py").write_text(POOL_FLOW)
    assert cli("pools", "set", "warehouse", "1").exit_code == 0
    result = cli("run", "pooled", "--workers", "3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert _overlaps(tmp_path / "spans") == 0, "tasks of a one-slot pool ran at the same time"
    assert "warehouse" in result.output and "1 slot" in result.output  # it says which pools applied


def test_run_says_when_it_cannot_apply_the_databases_pools(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pooled.py").write_text(POOL_FLOW)
    broken = {"DUCTWORK_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
    result = cli("run", "pooled", "--workers", "3", "--no-progress", "--no-record", env=broken)
    assert result.exit_code == 0, result.output
    assert "pools" in result.output and "not applied" in result.output


def test_the_scheduler_says_that_the_settings_files_pools_are_not_its_own(tmp_path: Path) -> None:
    """``[pools]`` of ``ductwork.toml`` limits ``ductwork run``; the scheduler reads only the
    database's pools, so the same file left its tasks without a limit and its log saying the pool
    "does not exist". It says so as it starts, with the command that makes the pool its own."""
    import signal

    from ductwork_process import scheduler_process

    (tmp_path / "flows").mkdir()
    (tmp_path / "ductwork.toml").write_text("[pools]\nwarehouse = 1\n")
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_METRICS_PORT": "0",
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        deadline = time.monotonic() + 60
        while "scheduler started" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert scheduler.poll() is None, log.read_text()
            time.sleep(0.1)
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    text = log.read_text()
    (note,) = [line for line in text.splitlines() if "[pools]" in line]
    assert "(warehouse = 1) limits `ductwork run` and `build` only" in note, text
    assert "ductwork pools set warehouse 1" in note


BACKFILL_FLOW = textwrap.dedent(
    """
    from ductwork import flow, task

    @task
    def work() -> None:
        pass

    @flow(schedule="@daily", start_date="2024-01-01")
    def daily():
        work()
    """
)


def test_backfill_dry_run_shows_existing_runs_by_their_ids(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "daily.py").write_text(BACKFILL_FLOW)
    made = cli("trigger", "daily", "--date", "2024-01-02", "--run-id", "by_hand", "--json")
    assert made.exit_code == 0, made.output
    dry = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "by_hand  [exists, skipped]" in dry.output
    assert "backfill__2024-01-02" not in dry.output  # an id that run does not have
    assert "backfill__2024-01-01T00:00:00+00:00  [1 tasks]" in dry.output
    planned = json.loads(
        cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--dry-run", "--json").output
    )
    assert [(p["run_id"], p["exists"]) for p in planned] == [
        ("backfill__2024-01-01T00:00:00+00:00", False),
        ("by_hand", True),
        ("backfill__2024-01-03T00:00:00+00:00", False),
    ]


def test_backfill_says_how_many_dates_already_had_a_run(cli: Cli, tmp_path: Path) -> None:
    """The dry run said "3 already exist"; the backfill itself said only "queued 0 backfill run(s)"."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "daily.py").write_text(BACKFILL_FLOW)
    assert cli("trigger", "daily", "--date", "2024-01-02", "--run-id", "by_hand").exit_code == 0
    done = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03")
    assert done.exit_code == 0, done.output
    assert "queued 2 backfill run(s) of daily; 1 date(s) of the range already had a run" in done.output
    again = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03")
    assert "queued 0 backfill run(s) of daily; 3 date(s) of the range already had a run" in again.output


def test_help_names_each_option_once_and_real_commands(cli: Cli) -> None:
    scheduler_help = cli("scheduler", "--help").output
    assert scheduler_help.count("--worker-mode") == 1
    for group in ("connections", "variables", "users", "pools", "runs", "tasks", "flows", "tokens"):
        shown = cli(group, "--help").output
        summary = shown.split("Options:")[0]
        commands = set(re.findall(r"^  ([a-z][a-z-]*)\s", shown.split("Commands:")[1], re.M))
        verbs = re.findall(r"\b(add|list|show|get|set|delete|create|cancel|clear|mark)\b", summary)
        missing = [v for v in verbs if v not in commands]
        assert not missing, f"`ductwork {group} --help` offers {missing}, which are not its commands {sorted(commands)}"


def test_an_unreachable_database_server_is_one_line_for_every_command(cli: Cli, tmp_path: Path) -> None:
    """Not a SQLAlchemy traceback: the same line `ductwork db check` gives."""
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/x"
    for args in (("runs", "list"), ("variables", "list"), ("pools", "set", "p", "3")):
        result = cli(*args, env={"DUCTWORK_DATABASE_URL": url})
        assert result.exit_code == 2, (args, result.output)
        assert "cannot connect to the postgresql server at 127.0.0.1:1" in result.output
        assert "Traceback" not in result.output and "secret" not in result.output


def _same_id(letter: str) -> str:
    return (
        "from ductwork import Flow, PythonOperator\n"
        "with Flow('same', schedule=None) as same:\n"
        f"    PythonOperator(task_id='{letter}', python_callable=lambda: print('{letter}'))\n"
    )


def test_a_flow_id_one_file_defines_twice_is_taken_from_neither_with_one_error(cli: Cli, tmp_path: Path) -> None:
    """The first definition was listed and run without a word at `run`, while `flows list`
    printed the same "duplicate flow id" error twice: as for two files, neither is taken."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "twice.py").write_text(_same_id("a") + _same_id("b").split("\n", 1)[1].replace("as same", "as again"))
    listed = cli("flows", "list")
    assert listed.exit_code == 1, listed.output
    said = " ".join(listed.output.split())  # as one line, however the terminal wrapped it
    assert said.count("import error") == 1, listed.output
    assert (
        "flows/twice.py:4: failed to import flow file: flow id 'same' is defined twice in this file (lines 2 and 4)"
        in said
    )
    assert "│ same" not in listed.output
    ran = cli("run", "same")
    assert ran.exit_code == 2 and "defined twice in this file" in ran.output, ran.output
    assert cli("flows", "list", "--json").exit_code == 1


def test_a_flow_id_two_files_define_is_taken_from_neither_as_the_scheduler_does(cli: Cli, tmp_path: Path) -> None:
    """ "The first file wins" would let a new file (a.py sorts first) silently replace a flow's code."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "b.py").write_text(_same_id("b"))
    (flows / "a.py").write_text(_same_id("a"))
    listed = cli("flows", "list")
    assert "flows/a.py:2" in listed.output and "flows/b.py:2" in listed.output
    assert "also defined in flows/b.py" in listed.output and "also defined in flows/a.py" in listed.output
    ran = cli("run", "same", "--no-progress")
    assert ran.exit_code == 2
    assert "neither definition is taken" in ran.output and "flows/a.py:same" in ran.output
    chosen = cli("run", "flows/b.py:same", "--no-progress")
    assert chosen.exit_code == 0, chosen.output
    assert "│ b " in chosen.output and "│ a " not in chosen.output  # b.py's task ran


LONG_NAMED = """
import luigi


class TheDailyAggregationOfCustomerTransactionsByRegionAndProductCategoryWithAVeryLongDescriptiveNameThatKeepsGoingForAWhileLonger(luigi.Task):
    task_namespace = "com.example.analytics.pipelines.finance.daily.aggregations.customers.by_region.and_more.and_more.and_more"
    region = luigi.Parameter(default="north-america-east-coast-region-with-a-long-name")

    def output(self):
        return luigi.LocalTarget("out.txt")

    def run(self):
        with self.output().open("w") as out:
            out.write("x")
"""


def test_a_task_id_longer_than_the_database_keeps_is_one_clear_error(cli: Cli, tmp_path: Path) -> None:
    """PostgreSQL and MariaDB answered with a 118-line SQL traceback; SQLite kept it silently."""
    (tmp_path / "long_named.py").write_text(LONG_NAMED)
    family = (
        "com.example.analytics.pipelines.finance.daily.aggregations.customers.by_region.and_more.and_more.and_more."
        "TheDailyAggregationOfCustomerTransactionsByRegionAndProductCategoryWithAVeryLongDescriptiveName"
        "ThatKeepsGoingForAWhileLonger"
    )
    result = cli("build", "--module", "long_named", family)
    assert result.exit_code != 0, result.output
    assert "characters long" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.txt").exists()


def test_a_read_only_database_is_one_line_for_a_command_that_writes(cli: Cli, tmp_path: Path) -> None:
    """`ductwork trigger` (and others) answered with a traceback ending in "attempt to write a
    readonly database"."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "quick.py").write_text(_same_id("a").replace("'same'", "'quick'"))
    writable = tmp_path / "ro.db"
    assert cli("db", "init", env={"DUCTWORK_DATABASE_URL": f"sqlite:///{writable}"}).exit_code == 0
    read_only = {"DUCTWORK_DATABASE_URL": f"sqlite:///file:{writable}?mode=ro&uri=true"}
    result = cli("trigger", "quick", env=read_only)
    assert result.exit_code == 2
    assert "cannot be written" in result.output and "Traceback" not in result.output


def _without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose Python cannot import ``modules``, as on a host where the extra
    that brings them was not installed."""
    site = tmp_path / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    import ductwork

    paths = [str(site), str(Path(ductwork.__file__).resolve().parents[1])]  # the ductwork under test
    return {"PYTHONPATH": os.pathsep.join(paths), "DUCTWORK_HOME": str(tmp_path / "home")}


def test_a_command_whose_extra_is_not_installed_names_the_extra(tmp_path: Path) -> None:
    # `pip install 'ductwork[postgres,celery,s3]'` (the deployment guide's line) then
    # `ductwork webserver` was a traceback ending in "No module named 'fastapi'".
    from tests.ductwork_process import ductwork_process

    for command in (["webserver", "--port", "18399"], ["standalone", "--port", "18399"]):
        done = ductwork_process(*command, env=_without(tmp_path / command[0], "fastapi"), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "'fastapi', which is not installed: pip install 'ductwork[web]'" in done.stderr


def test_a_flows_own_missing_import_is_not_blamed_on_an_extra(tmp_path: Path) -> None:
    from tests.ductwork_process import ductwork_process

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "uses_celery.py").write_text(
        "import celery\nfrom ductwork import flow, task\n\n@task\ndef t():\n    return 1\n\n@flow\ndef f():\n    t()\n"
    )
    env = {**_without(tmp_path, "celery"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")}
    done = ductwork_process("run", str(tmp_path / "flows" / "uses_celery.py"), env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "pip install 'ductwork[celery]'" not in done.stderr + done.stdout
    assert "celery" in done.stderr + done.stdout


def test_a_misspelt_log_level_is_one_line_naming_the_levels(tmp_path: Path) -> None:
    """`ductwork worker --log-level verbose` (and scheduler, triggerer, webserver, standalone)
    was a traceback from the logging module or uvicorn; a level in capitals still works."""
    from ductwork.cli.options import LOG_LEVEL
    from tests.ductwork_process import ductwork_process

    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    for command in ("scheduler", "triggerer", "worker", "webserver", "standalone"):
        done = ductwork_process(command, "--log-level", "verbose", env=env, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert "Traceback" not in done.stderr, command
        assert "Invalid value for '--log-level': 'verbose' is not one of 'debug', 'info'" in done.stderr, command
    assert LOG_LEVEL.convert("WARNING", None, None) == "warning"


def test_a_pool_variable_or_connection_name_the_api_cannot_address_is_refused(cli: Cli) -> None:
    """`pools set '' 3`, `variables set ' ' v`, `connections add '' URI` and a 300-character
    pool name were stored: listed everywhere, but no API path, page or `delete` could name them
    again (the API takes 1 to 250 characters, not blank)."""
    long = "p" * 251
    for args, kind, why in (
        (("pools", "set", "", "3"), "pool", "needs a character other than spaces"),
        (("pools", "set", long, "3"), "pool", "1 to 250 characters"),
        (("variables", "set", " ", "v"), "variable", "needs a character other than spaces"),
        (("connections", "add", "", "http://x"), "connection", "needs a character other than spaces"),
        (("connections", "add", long, "http://x"), "connection", "1 to 250 characters"),
        # As pools: 'region ' is not the 'region' a template reads (the web form trimmed it silently).
        (("variables", "set", "region ", "eu"), "variable", "not part of the key a task reads; write 'region'"),
        (("connections", "add", " db", "http://x"), "connection", "not part of the conn_id a task names; write 'db'"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"Error: {kind} name" in result.output and why in result.output, result.output
    assert json.loads(cli("variables", "list", "--json").output) == []
    assert json.loads(cli("pools", "list", "--json").output) == [
        p for p in json.loads(cli("pools", "list", "--json").output) if p["name"] == "default_pool"
    ]
    assert cli("variables", "list", "--json").output.strip() in ("[]", "{}")


def test_a_connections_extra_holding_nan_is_refused_as_the_api_refuses_it(cli: Cli) -> None:
    result = cli("connections", "add", "api", "http://x", "--extra", '{"timeout": NaN}')
    assert result.exit_code == 2, result.output
    assert "NaN is not a JSON number" in result.output


def test_no_color_leaves_error_messages_uncoloured_in_a_terminal(tmp_path: Path) -> None:
    """NO_COLOR (no-color.org) turned Rich's colours off, but the errors click prints (`Error:
    ...` in red) kept theirs, in a terminal where the user had asked for none."""
    (tmp_path / "flows").mkdir()
    args = [sys.executable, "-m", "ductwork.cli", "run", "nowhere"]
    base = {"TERM": "xterm-256color", "COLUMNS": "120", "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")}
    coloured, _, status = _in_terminal(args, tmp_path, process_env(base))
    assert status == 2 and b"\x1b[31mError: no flow 'nowhere'" in coloured, coloured  # red, as asked
    plain, _, status = _in_terminal(args, tmp_path, process_env({**base, "NO_COLOR": "1"}))
    assert status == 2 and b"Error: no flow 'nowhere'" in plain, plain
    assert b"\x1b[" not in plain, plain


def test_a_negative_pool_size_is_refused_as_a_value(cli: Cli) -> None:
    """`pools set p -1` said "No such option: -1", as if the number were a misspelt option."""
    result = cli("pools", "set", "p", "-1")
    assert result.exit_code == 2
    assert "No such option" not in result.output
    assert "'SLOTS'" in result.output and "-1 is not in the range x>=0" in result.output, result.output


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--poll-interval", "nan", "expected a number of seconds, got nan"),
        ("--poll-interval", "inf", "at most 31536000 seconds (a year), got inf"),
        ("--start-wait", "nan", "expected a number of seconds, got nan"),
        ("--start-wait", "1e12", "at most 31536000 seconds (a year), got 1e+12"),
    ],
)
def test_a_scheduler_wait_that_is_no_number_of_seconds_is_refused(
    cli: Cli, tmp_path: Path, option: str, value: str, says: str
) -> None:
    """`ductwork scheduler --poll-interval nan` started, and never looked at the database again:
    every run stayed queued, nothing said. `--start-wait nan` waited forever for a database that
    was down, not 10 s. Both are refused before the scheduler starts, as `trigger --timeout nan` is."""
    result = cli("scheduler", option, value, env={"DUCTWORK_HOME": str(tmp_path / "home")})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output and says in result.output, result.output
    assert not (tmp_path / "home").exists()  # refused before anything was opened


HUGE = "100000000000000000000"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("runs", "list", "--offset", HUGE), "Invalid value for '--offset'"),
        (("pools", "set", "big", HUGE), f"pool 'big': slots must be from 0 to 1,000,000, got {HUGE}"),
        (("tokens", "create", "dana", "--expires-in-days", "99999999"), "Invalid value for '--expires-in-days'"),
        (("pipelines", "activate", "p", "--version", HUGE), "Invalid value for '--version'"),
        (("triggers", "dead-letters", "show", HUGE), "Invalid value for 'LETTER_ID'"),
        (("triggers", "dead-letters", "replay", HUGE), "Invalid value for 'LETTER_IDS...'"),
        (("triggers", "dead-letters", "drop", HUGE), "Invalid value for '[LETTER_IDS]...'"),
    ],
)
def test_a_number_past_what_the_database_holds_is_refused_not_a_traceback(
    cli: Cli, args: tuple[str, ...], said: str
) -> None:
    """Each ended in ``OverflowError: Python int too large to convert to SQLite INTEGER`` (or
    ``date value out of range`` for a token's expiry), a traceback."""
    assert cli("users", "create", "dana", "--generate").exit_code == 0
    result = cli(*args)  # a traceback raises here
    assert result.exit_code == 2 and said in result.output, result.output


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (("offset", "-5"), "-5"),
        (("offset", "-0.25", "--description", "shift"), "-0.25"),
        (("--description", "shift", "offset", "-1e3"), "-1e3"),
        (("offset", "--", "-7"), "-7"),
    ],
)
def test_variables_set_takes_a_negative_number_as_its_value(cli: Cli, args: tuple[str, ...], value: str) -> None:
    """``variables set offset -5`` said "No such option '-5'" (Airflow's CLI takes it)."""
    result = cli("variables", "set", *args)
    assert result.exit_code == 0, result.output
    assert cli("variables", "get", "offset").output.strip() == value


def test_variables_set_still_refuses_a_misspelt_option_and_a_name_typed_as_a_number(cli: Cli) -> None:
    typo = cli("variables", "set", "offset", "--descripton", "x")
    assert typo.exit_code == 2 and "No such option '--descripton'" in typo.output, typo.output
    swapped = cli("variables", "set", "-5", "x")  # not set as x = -5
    assert swapped.exit_code == 2 and "No such option '-5'" in swapped.output, swapped.output
    assert cli("variables", "list", "--json").output.strip() == "[]"
