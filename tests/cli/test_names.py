"""Names users type that other places use as keys follow one rule: Airflow's for task ids.

A task ``my task`` or ``x/y`` ran (``x/y``'s log in a subfolder, its page URL another
resource's, ``t[1]`` read as instance 1 of a mapped ``t``), and ``ductwork variables set 'my
var'`` or ``connections add 'a/b'`` stored names no template, environment variable or URL could
name. New ones are refused, naming the file and line, or the name to write instead; records
stored before the rule are still read, set again and deleted.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ductwork_process import ductwork_process

RULE = "use letters, digits, '_', '.' and '-' (not starting with '-')"


@pytest.mark.parametrize(
    ("kind", "args", "shown", "instead"),
    [
        ("variable", ("variables", "set", "my var", "1"), "'my var'", "'my_var'"),
        ("variable", ("variables", "set", "x{{y}}", "1"), "'x{{y}}'", "'x_y_'"),
        ("variable", ("variables", "set", "--", "-x", "1"), "'-x'", "'x'"),
        ("connection", ("connections", "add", "a/b", "http://h"), "'a/b'", "'a_b'"),
        ("connection", ("connections", "add", "my conn", "--conn-type", "http"), "'my conn'", "'my_conn'"),
    ],
)
def test_a_new_variable_or_connection_name_outside_the_rule_is_refused(
    cli: Cli, kind: str, args: tuple[str, ...], shown: str, instead: str
) -> None:
    said = cli(*args)
    assert said.exit_code == 2, said.output
    assert f"{kind} name {shown}: {RULE}" in said.output and f"write {instead}" in said.output, said.output
    listed = cli("variables" if kind == "variable" else "connections", "list", "--json")
    assert listed.exit_code == 0 and listed.output.strip() == "[]", listed.output


def test_names_airflow_takes_are_taken(cli: Cli) -> None:
    assert cli("variables", "set", "etl.batch-size_2", "10").exit_code == 0
    assert cli("connections", "add", "warehouse.eu-1", "http://h").exit_code == 0


def test_a_name_stored_before_the_rule_is_still_read_set_and_deleted(cli: Cli, tmp_path: Path) -> None:
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.repo import variables as var_repo

    assert cli("variables", "set", "seed", "0").exit_code == 0  # makes the home's database
    engine = create_engine(f"sqlite:///{tmp_path / 'ductwork-home' / 'ductwork.db'}")
    ensure_schema(engine)
    with transaction(engine) as conn:
        var_repo.set_variable(conn, "old key", "1", is_encrypted=False, description="")
    engine.dispose()
    assert cli("variables", "set", "old key", "2").exit_code == 0
    assert cli("variables", "get", "old key").output.strip() == "2"
    assert cli("variables", "delete", "old key").exit_code == 0
    assert "old key" not in cli("variables", "list").output


@pytest.mark.parametrize(
    ("line", "where", "said"),
    [
        ('EmptyOperator(task_id="my task")', 4, "EmptyOperator: invalid task_id 'my task'"),
        ('EmptyOperator(task_id="x/y")', 4, "EmptyOperator: invalid task_id 'x/y'"),
        ('EmptyOperator(task_id="t[1]")', 4, "EmptyOperator: invalid task_id 't[1]'"),
        ('task(lambda: 1, task_id="a b")()', 4, "invalid task_id 'a b'"),
        ('TaskGroup("my group").__enter__()', 4, "invalid task group id 'my group'"),
    ],
)
def test_a_task_id_outside_the_rule_is_an_import_error_naming_file_and_line(
    cli: Cli, tmp_path: Path, line: str, where: int, said: str
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bad.py").write_text(
        textwrap.dedent(
            f"""\
            from ductwork import EmptyOperator, Flow, TaskGroup, task

            with Flow("bad", schedule=None) as f:
                {line}
            """
        )
    )
    listed = ductwork_process("flows", "list", env={}, cwd=tmp_path)  # flow files load in a child process
    assert listed.returncode == 1, listed.stdout + listed.stderr
    shown = " ".join((listed.stdout + listed.stderr).split())
    assert f"bad.py:{where}:" in shown and said in shown and RULE in shown, shown
    ran = cli("run", "flows/bad.py:bad", "--no-progress")
    assert ran.exit_code == 2 and said in ran.output, ran.output


def test_setting_a_new_value_keeps_the_description(cli: Cli) -> None:
    """``variables set region us`` (or ``connections add`` of a new URI) without --description
    erased the description stored with it, where ``pools set`` keeps a pool's."""
    assert cli("variables", "set", "region", "eu", "--description", "the AWS region").exit_code == 0
    assert cli("variables", "set", "region", "us").exit_code == 0
    (row,) = json.loads(cli("variables", "list", "--json").output)
    assert (row["value"], row["description"]) == ("us", "the AWS region")
    assert cli("variables", "set", "region", "us", "--description", "").exit_code == 0  # cleared when asked
    assert json.loads(cli("variables", "list", "--json").output)[0]["description"] == ""
    assert cli("connections", "add", "api", "http://h1", "--description", "the API").exit_code == 0
    assert cli("connections", "add", "api", "http://h2").exit_code == 0
    shown = json.loads(cli("connections", "get", "api", "--json").output)
    assert (shown["host"], shown["description"]) == ("h2", "the API")


@pytest.mark.parametrize(
    ("args", "what", "listing"),
    [
        (("users", "create", "bob\nx", "--generate"), "user name 'bob\\nx'", ("users", "list", "--json")),
        (("pools", "set", "etl\tnight", "3"), "pool name 'etl\\tnight'", ("pools", "list", "--json")),
        (("pools", "set", "etl\x1b[31m", "3"), "pool name 'etl\\x1b[31m'", ("pools", "list", "--json")),
        (("users", "create", "ann\u2028x", "--generate"), "user name 'ann\\u2028x'", ("users", "list", "--json")),
    ],
)
def test_a_new_name_with_a_control_character_is_refused(
    cli: Cli, args: tuple[str, ...], what: str, listing: tuple[str, ...]
) -> None:
    """``users create $'bob\\nx'`` was stored: ``users list`` then showed a user ``bob`` and
    another ``x`` without a role, and an ESC in a pool name coloured the terminal."""
    said = cli(*args)
    assert said.exit_code == 2, said.output
    assert f"{what}: it may not hold control characters" in said.output, said.output
    stored = [row.get("username", row.get("name")) for row in json.loads(cli(*listing).stdout)]
    assert not any("\n" in s or "\t" in s or "\x1b" in s or "\u2028" in s for s in stored), stored


def test_a_run_id_with_a_control_character_is_refused(cli: Cli, tmp_path: Path) -> None:
    """``trigger etl --run-id $'a\\nb'`` queued a run listed over two rows, whose log folder's
    name held the newline."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from ductwork import EmptyOperator, Flow\n\n"
        'with Flow("etl", schedule=None, start_date="2024-01-01"):\n'
        '    EmptyOperator(task_id="a")\n'
    )
    said = cli("trigger", "etl", "--run-id", "a\nb")
    assert said.exit_code == 2, said.output
    assert "run id 'a\\nb': it may not hold control characters such as '\\n'" in said.output, said.output
    assert json.loads(cli("runs", "list", "etl", "--json").stdout)["runs"] == []
    spaced = cli("trigger", "etl", "--run-id", "by hand 1")  # Airflow would refuse the spaces; kept as it was
    assert spaced.exit_code == 0, spaced.output


@pytest.mark.parametrize(
    ("run_id", "said"),
    [
        (" ", "run id ' ': it needs a character other than spaces"),
        ("nightly ", "run id 'nightly ': has spaces before or after it, which are not trimmed"),
        (" nightly", "write 'nightly'"),
        # `runs show etl -x` then said "No such option '-x'"
        ("-x", "run id '-x': it may not start with '-', which the commands that name a run"),
    ],
)
def test_a_run_id_of_spaces_with_spaces_around_it_or_a_leading_dash_is_refused(
    cli: Cli, tmp_path: Path, run_id: str, said: str
) -> None:
    """``trigger etl --run-id ' '`` queued a run listed with no id; 'nightly ' was another run
    than the 'nightly' typed to find it."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from ductwork import EmptyOperator, Flow\n\n"
        'with Flow("etl", schedule=None, start_date="2024-01-01"):\n'
        '    EmptyOperator(task_id="a")\n'
    )
    result = cli("trigger", "etl", "--run-id", run_id)
    assert result.exit_code == 2, result.output
    assert said in result.output, result.output
    assert json.loads(cli("runs", "list", "etl", "--json").stdout)["runs"] == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("trigger", "etl", "--run-id", "fix\u00a0june"),
            "run id 'fix\\xa0june': it holds U+00A0 (NO-BREAK SPACE), which looks like a space but is not "
            "what anyone types to name it; write 'fix june'",
        ),
        (
            ("trigger", "etl", "--run-id", "fix\u200bjuly"),
            "run id 'fix\\u200bjuly': it holds U+200B (ZERO WIDTH SPACE), which is invisible",
        ),
        (("pools", "set", "big\u200b", "2"), "pool name 'big\\u200b': it holds U+200B"),
        (("users", "create", "\u202eadmin", "--generate"), "user name '\\u202eadmin': it holds U+202E"),
    ],
)
def test_a_name_or_run_id_with_an_invisible_or_look_alike_character_is_refused(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    """Pasted from a chat or a document: ``pools set 'big\\u200b' 2`` made a pool listed as
    ``big`` that a task's ``pool="big"`` did not name, and ``trigger --run-id 'fix\\u00a0june'``
    a run listed as ``fix june`` that ``runs show etl 'fix june'`` said did not exist."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from ductwork import EmptyOperator, Flow\n\n"
        'with Flow("etl", schedule=None, start_date="2024-01-01"):\n'
        '    EmptyOperator(task_id="a")\n'
    )
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()), result.output
    assert json.loads(cli("runs", "list", "etl", "--json").stdout)["runs"] == []
    assert [p["name"] for p in json.loads(cli("pools", "list", "--json").stdout)] == ["default_pool"]
    assert json.loads(cli("users", "list", "--json").stdout) == []


@pytest.mark.parametrize("prefix", ["scheduled__", "backfill__", "event__", "asset_triggered__", "dataset_triggered__"])
def test_a_manual_run_may_not_take_an_id_the_scheduler_or_a_backfill_makes(
    cli: Cli, tmp_path: Path, prefix: str
) -> None:
    """``trigger etl --run-id scheduled__2024-09-01T00:00:00+00:00 --date 2024-09-02`` was
    queued: the schedule's run of 2024-09-01 then found its id taken and was passed over for
    ever. Airflow refuses these ids to manual runs too."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from ductwork import EmptyOperator, Flow\n\n"
        'with Flow("etl", schedule="@daily", start_date="2024-01-01"):\n'
        '    EmptyOperator(task_id="a")\n'
    )
    run_id = f"{prefix}2024-09-01T00:00:00+00:00"
    result = cli("trigger", "etl", "--run-id", run_id, "--date", "2024-09-02")
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"run id '{run_id}': ids starting with '{prefix}' are the ones" in said, said
    assert "choose another, such as 'manual__2024-09-01T00:00:00+00:00'" in said, said
    assert json.loads(cli("runs", "list", "etl", "--json").stdout)["runs"] == []
    assert cli("trigger", "etl", "--run-id", f"fix_{prefix}1", "--date", "2024-09-02").exit_code == 0
