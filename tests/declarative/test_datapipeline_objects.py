"""Object types and field families run in-process (``ductwork run FILE.json``) on SQLite and
PostgreSQL: S3PrefixNotEmpty and Exists preconditions, TSV and Custom data formats, a JdbcDatabase
reached by its JDBC connectionString, SqlDataNode with selectQuery and insertQuery, scriptUri,
stdout/stderr files, repeated fields, parent inheritance and the Default object."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from conftest import Cli
from dbfixtures import temporary_database


def jdbc(url: str) -> str:
    """The JDBC form of a test database's URL, as an AWS definition would carry it."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"jdbc:sqlite:{parsed.database}"
    return f"jdbc:postgresql://{parsed.host}:{parsed.port or 5432}/{parsed.database}"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    (tmp_path / "db").mkdir()
    with temporary_database(request.param, tmp_path) as url:
        yield url


def test_formats_preconditions_databases_and_scripts(cli: Cli, tmp_path: Path, database: str) -> None:
    s3 = tmp_path / "s3"
    (s3 / "bucket" / "in" / "part").mkdir(parents=True)
    (s3 / "bucket" / "in" / "part" / "a.tsv").write_text("alpha\t1\nbeta\t2\n")
    (s3 / "bucket" / "scripts").mkdir()
    (s3 / "bucket" / "scripts" / "hello.sh").write_text('echo "script says $1 $2"; echo "to stderr" >&2\n')
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("create table scores (name varchar(20), score integer)"))
    engine.dispose()
    parsed = sa.make_url(database)
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE", "myBucket": "s3://bucket"},
            {"id": "Tsv", "type": "TSV", "column": ["name STRING", "score INT"]},
            {"id": "Pipes", "type": "Custom", "columnSeparator": "|", "recordSeparator": "\\n"},
            {
                "id": "Db",
                "type": "JdbcDatabase",
                "connectionString": jdbc(database),
                "username": parsed.username or "",
                "*password": parsed.password or "",
                "jdbcDriverClass": "org.postgresql.Driver",
            },
            {
                "id": "SomeInput",
                "type": "S3PrefixNotEmpty",
                "s3Prefix": "#{node.directoryPath}/pa",
                "retryDelay": "1 seconds",
                "maximumRetries": "3",
            },
            {"id": "TableThere", "type": "Exists", "retryDelay": "1 seconds", "maximumRetries": "3"},
            {
                "id": "Parts",
                "type": "S3DataNode",
                "directoryPath": "s3://bucket/in",
                "dataFormat": {"ref": "Tsv"},
                "precondition": {"ref": "SomeInput"},
            },
            {
                "id": "Scores",
                "type": "SqlDataNode",
                "database": {"ref": "Db"},
                "table": "scores",
                "insertQuery": "insert into scores (name, score) values (?, ?)",
                "precondition": {"ref": "TableThere"},
                "selectQuery": "select name, score * 10 as score from scores order by name",
            },
            {"id": "Load", "type": "CopyActivity", "input": {"ref": "Parts"}, "output": {"ref": "Scores"}},
            {
                "id": "Export",
                "type": "CopyActivity",
                "input": {"ref": "Scores"},
                "output": {"ref": "Out"},
                "dependsOn": {"ref": "Load"},
            },
            {
                "id": "Out",
                "type": "S3DataNode",
                "filePath": "#{myBucket}/out/scores.txt",
                "dataFormat": {"ref": "Pipes"},
            },
            {
                "id": "ShellBase",
                "type": "ShellCommandActivity",
                "scriptUri": "#{myBucket}/scripts/hello.sh",
                "stdout": "#{myBucket}/logs/#{@id}.out",
            },
            {
                "id": "Script",
                "parent": {"ref": "ShellBase"},
                "type": "ShellCommandActivity",
                "stderr": "#{myBucket}/logs/#{@id}.err",
                "dependsOn": {"ref": "Export"},
            },
        ]
    }
    path = tmp_path / "objects.json"
    text = json.dumps(definition, indent=2)
    # A field given twice in one object is a list, as AWS reads it.
    text = text.replace(
        '"stderr": "#{myBucket}/logs/#{@id}.err",',
        '"stderr": "#{myBucket}/logs/#{@id}.err", "scriptArgument": "one", "scriptArgument": "two",',
    )
    path.write_text(text)
    env = {"DUCTWORK_S3_ROOT": f"file://{s3}"}
    result = cli("run", str(path), "--no-progress", "--json", env=env)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["state"] == "success"
    assert (s3 / "bucket" / "out" / "scores.txt").read_text() == "alpha|10\nbeta|20\n"
    assert (s3 / "bucket" / "logs" / "Script.out").read_text() == "script says one two\n"
    assert (s3 / "bucket" / "logs" / "Script.err").read_text() == "to stderr\n"


def test_a_sql_data_node_with_its_own_connection_string_as_in_the_guides_mysql_copy(
    cli: Cli, tmp_path: Path, database: str
) -> None:
    """The guide's "Copy MySQL Data Using the Command Line" (and its MySqlDataNode example) give
    the database on the data node: connectionString, username, *password, no database object.
    Ductwork refused those fields; the copy runs, reading through the node's own JDBC URL."""
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("create table orders (id integer, customer varchar(20))"))
        conn.execute(sa.text("insert into orders values (1, 'ann'), (2, 'bob, jr')"))
    engine.dispose()
    parsed = sa.make_url(database)
    s3 = tmp_path / "s3"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "timeseries", "failureAndRerunMode": "CASCADE"},
            {"id": "Copy Schedule", "type": "Schedule", "period": "1 Days", "startDateTime": "2024-01-01T00:00:00"},
            {
                "id": "MySqlDataNodeId115",
                "type": "SqlDataNode",
                "schedule": {"ref": "Copy Schedule"},
                "table": "orders",
                "username": parsed.username or "someone",
                "*password": parsed.password or "",
                "connectionString": jdbc(database),
                "selectQuery": "select * from #{table} order by id",
            },
            {
                "id": "CopyActivityId112",
                "type": "CopyActivity",
                "schedule": {"ref": "Copy Schedule"},
                "input": {"ref": "MySqlDataNodeId115"},
                "output": {"ref": "S3DataNodeId114"},
            },
            {
                "id": "S3DataNodeId114",
                "type": "S3DataNode",
                "schedule": {"ref": "Copy Schedule"},
                "filePath": "s3://example-bucket/rds-output/output.csv",
            },
        ]
    }
    path = tmp_path / "rds_to_s3.json"
    path.write_text(json.dumps(definition))
    env = {"DUCTWORK_S3_ROOT": f"file://{s3}"}
    result = cli("run", str(path), "--date", "2024-01-02", "--no-progress", env=env)
    assert result.exit_code == 0, result.output
    assert (s3 / "example-bucket" / "rds-output" / "output.csv").read_text() == '1,ann\n2,"bob, jr"\n'


@pytest.mark.parametrize(
    ("backend", "properties"),
    [
        ("postgres", "?tcpKeepAlive=true&loginTimeout=10&ssl=false&prepareThreshold=0"),
        ("mariadb", "?useSSL=false&serverTimezone=UTC&characterEncoding=UTF-8&connectTimeout=5000"),
    ],
)
def test_jdbc_driver_properties_in_a_connection_string_are_translated_or_dropped(
    cli: Cli, tmp_path: Path, backend: str, properties: str
) -> None:
    """AWS's Redshift samples suggest jdbc:postgresql://endpoint:port/database?tcpKeepAlive=true,
    and MySQL URLs carry useSSL or serverTimezone: those went to the Python driver as they are,
    which refused them ('invalid connection option "tcpKeepAlive"')."""
    (tmp_path / "db").mkdir()
    with temporary_database(backend, tmp_path) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("create table loaded (id integer, name varchar(20))"))
        engine.dispose()
        parsed = sa.make_url(url)
        kind = "postgresql" if backend == "postgres" else "mysql"
        connection = f"jdbc:{kind}://{parsed.host}:{parsed.port}/{parsed.database}{properties}"
        s3 = tmp_path / "s3"
        (s3 / "in").mkdir(parents=True)
        (s3 / "in" / "rows.csv").write_text("1,one\n2,two\n")
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand"},
                {"id": "Rows", "type": "S3DataNode", "filePath": "s3://in/rows.csv"},
                {
                    "id": "Loaded",
                    "type": "SqlDataNode",
                    "table": "loaded",
                    "connectionString": connection,
                    "username": parsed.username or "",
                    "*password": parsed.password or "",
                },
                {"id": "Load", "type": "CopyActivity", "input": {"ref": "Rows"}, "output": {"ref": "Loaded"}},
            ]
        }
        path = tmp_path / "load.json"
        path.write_text(json.dumps(definition))
        result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select id, name from loaded order by id")).all() == [(1, "one"), (2, "two")]
        engine.dispose()


@pytest.mark.parametrize("where", ["connectionString", "jdbcProperties"])
def test_jdbc_user_password_and_current_schema_are_honoured(cli: Cli, tmp_path: Path, where: str) -> None:
    """JDBC URLs carry credentials and PostgreSQL's schema as properties
    (jdbc:postgresql://h/db?user=etl&password=...&currentSchema=staging), in the URL or in
    jdbcProperties: they were dropped, so the script ran as the operating system's user, in
    schema public, and created or read the tables of the wrong schema."""
    (tmp_path / "db").mkdir()
    with temporary_database("postgres", tmp_path) as url:
        parsed = sa.make_url(url)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("create schema staging"))
        engine.dispose()
        properties = [f"user={parsed.username}", f"password={parsed.password or ''}", "currentSchema=staging"]
        address = f"jdbc:postgresql://{parsed.host}:{parsed.port or 5432}/{parsed.database}"
        database: dict[str, Any] = {"id": "Db", "type": "JdbcDatabase"}
        if where == "connectionString":
            database["connectionString"] = address + "?" + "&".join(properties)
        else:
            database.update(connectionString=address, jdbcProperties=properties)
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand"},
                database,
                {
                    "id": "Who",
                    "type": "SqlActivity",
                    "database": {"ref": "Db"},
                    "script": "create table who as select current_user::text as u, current_schema()::text as s",
                },
            ]
        }
        path = tmp_path / "who.json"
        path.write_text(json.dumps(definition))
        result = cli("run", str(path), "--no-progress")
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select u, s from staging.who")).all() == [(parsed.username, "staging")]
        engine.dispose()


def test_a_redshift_data_node_in_schema_public_written_in_capitals(cli: Cli, tmp_path: Path) -> None:
    """AWS's S3TsvFilesToRedshiftTablesIfReady sample gives "schemaName": "PUBLIC": Redshift
    folds it to public, and so does PostgreSQL standing in; the copy said the existing table
    "does not exist"."""
    (tmp_path / "db").mkdir()
    with temporary_database("postgres", tmp_path) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("create table loaded (id integer primary key, name varchar(20))"))
            conn.execute(sa.text("insert into loaded values (1, 'old')"))
        engine.dispose()
        s3 = tmp_path / "s3"
        (s3 / "in").mkdir(parents=True)
        (s3 / "in" / "rows.tsv").write_text("1\tone\n2\ttwo\n")
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand"},
                {"id": "Tsv", "type": "TSV"},
                {"id": "Rows", "type": "S3DataNode", "filePath": "s3://in/rows.tsv", "dataFormat": {"ref": "Tsv"}},
                {"id": "Cluster", "type": "RedshiftDatabase", "connectionString": jdbc(url)},
                {
                    "id": "Loaded",
                    "type": "RedshiftDataNode",
                    "database": {"ref": "Cluster"},
                    "schemaName": "PUBLIC",
                    "tableName": "loaded",
                },
                {
                    "id": "Load",
                    "type": "RedshiftCopyActivity",
                    "insertMode": "OVERWRITE_EXISTING",
                    "input": {"ref": "Rows"},
                    "output": {"ref": "Loaded"},
                },
            ]
        }
        path = tmp_path / "load.json"
        path.write_text(json.dumps(definition))
        env = {"DUCTWORK_S3_ROOT": f"file://{s3}", "DUCTWORK_CONN_CLUSTER": url}
        result = cli("run", str(path), "--no-progress", env=env)
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select id, name from loaded order by id")).all() == [(1, "one"), (2, "two")]
        engine.dispose()


def test_a_sql_data_node_without_a_database_or_connection_string_is_named(cli: Cli, tmp_path: Path) -> None:
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Rows", "type": "SqlDataNode", "table": "orders"},
            {"id": "Use", "type": "ShellCommandActivity", "command": "true", "input": {"ref": "Rows"}},
        ]
    }
    path = tmp_path / "nodb.json"
    path.write_text(json.dumps(definition))
    result = cli("pipelines", "validate", str(path))
    assert result.exit_code == 1
    assert "object 'Rows', field 'database': SqlDataNode needs 'database' or 'connectionString'" in result.output


def test_a_masked_parameter_as_awss_samples_declare_and_use_it(cli: Cli, tmp_path: Path) -> None:
    """AWS's samples (RDStoS3, RedshiftToRDS...) declare "*myRDSPassword" and write
    "#{*myRDSPassword}": Ductwork refused the expression ("expected a value, found '*'"). The
    parameter is given without its star, as AWS's values are."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Use",
                "type": "ShellCommandActivity",
                "command": 'test "$1" = s3cr3t && test "$2" = 8',
                "scriptArgument": ["#{*myPassword}", "#{myN *2}"],
            },
        ],
        "parameters": [{"id": "*myPassword", "type": "String"}, {"id": "myN", "type": "Integer", "default": "4"}],
    }
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(definition))
    assert cli("pipelines", "validate", str(path)).exit_code == 0
    result = cli("run", str(path), "--param", "myPassword=s3cr3t", "--no-progress")
    assert result.exit_code == 0, result.output


def test_activating_the_samples_daily_cron_hello_world_is_not_a_backfill(cli: Cli, tmp_path: Path) -> None:
    """AWS's helloworld sample: cron style, startAt FIRST_ACTIVATION_DATE_TIME, period 1 Day,
    occurrences 1. Its first instance starts at activation, but activating it was refused as
    a schedule that "starts more than a day ago" (the run's logical date is a period earlier)."""
    import datetime as dt

    def definition(start: dict[str, str]) -> str:
        return json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "DefaultSchedule"}},
                    {"id": "DefaultSchedule", "type": "Schedule", "occurrences": "1", "period": "1 Day", **start},
                    {"id": "ShellCommandActivity_HelloWorld", "type": "ShellCommandActivity", "command": "echo hi"},
                ]
            }
        )

    (tmp_path / "hello.json").write_text(definition({"startAt": "FIRST_ACTIVATION_DATE_TIME"}))
    assert cli("pipelines", "put", str(tmp_path / "hello.json")).exit_code == 0
    activated = cli("pipelines", "activate", "hello")
    assert activated.exit_code == 0, activated.output
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    (tmp_path / "old.json").write_text(definition({"startDateTime": old}))
    assert cli("pipelines", "put", str(tmp_path / "old.json")).exit_code == 0
    refused = cli("pipelines", "activate", "old")
    assert refused.exit_code == 2 and "more than a day ago" in refused.output


def test_a_precondition_that_never_holds_stops_its_object(cli: Cli, tmp_path: Path) -> None:
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Empty",
                "type": "S3PrefixNotEmpty",
                "s3Prefix": "s3://bucket/nothing/",
                "retryDelay": "1 seconds",
                "maximumRetries": "1",
            },
            {
                "id": "Data",
                "type": "S3DataNode",
                "directoryPath": "s3://bucket/nothing",
                "precondition": {"ref": "Empty"},
            },
            {"id": "Use", "type": "ShellCommandActivity", "command": "echo never", "input": {"ref": "Data"}},
        ]
    }
    path = tmp_path / "never.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{tmp_path / 's3'}"})
    assert result.exit_code == 1
    assert "Data.Empty" in result.output and "upstream_failed" in result.output


def test_an_array_parameter_gives_one_value_per_item(cli: Cli, tmp_path: Path) -> None:
    """An isArray parameter in a multi-valued field (scriptArgument) is one argument per item,
    from its default, from "values" and from --param; not the text of a Python tuple."""
    out = tmp_path / "args.txt"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Each",
                "type": "ShellCommandActivity",
                "command": f'printf "%s\\n" "$@" > {out}',
                "scriptArgument": ["#{myTables}", "--mode=#{myMode}"],
            },
        ],
        "parameters": [
            {"id": "myTables", "type": "String", "isArray": "true", "default": ["a", "b"]},
            {"id": "myMode", "type": "String", "default": "full"},
        ],
        "values": {"myTables": ["orders", "order items"]},
    }
    path = tmp_path / "arrays.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["orders", "order items", "--mode=full"]
    result = cli("run", str(path), "--no-progress", "--param", 'myTables=["x", "y", "z"]')
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["x", "y", "z", "--mode=full"]
    # `pipelines put --param` takes an array as the name repeated, as AWS's --parameter-values;
    # `run` refused that with no word of the form it takes.
    twice = cli("run", str(path), "--no-progress", "--param", "myTables=x", "--param", "myTables=y")
    assert twice.exit_code == 2
    assert """for a list, give it once: --param 'myTables=["x", "y"]'""" in twice.output


def test_an_array_parameters_run_values_are_checked_like_its_definition_values(cli: Cli, tmp_path: Path) -> None:
    """An isArray Integer parameter with allowedValues refused ``"x"`` in its ``values``, but
    ``run --param 'myDays=["3", "x", 7]'`` (and ``trigger``, which checks from the recorded
    description) ran the command with x and 7: the items' type and allowed values were dropped
    for arrays, where a single-valued parameter's run value is checked."""
    from ductwork.declarative.files import compile_file
    from ductwork.errors import ParameterError
    from ductwork.services.runs import validate_params

    out = tmp_path / "args.txt"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Each",
                "type": "ShellCommandActivity",
                "command": f'echo "$@" > {out}',
                "scriptArgument": "#{myDays}",
            },
        ],
        "parameters": [
            {
                "id": "myDays",
                "type": "Integer",
                "isArray": "true",
                "default": ["1", "2"],
                "allowedValues": ["1", "2", "3"],
            },
            {"id": "myRatios", "type": "Double", "isArray": "true", "optional": "true"},
        ],
    }
    path = tmp_path / "days.json"
    path.write_text(json.dumps(definition))
    refused = cli("run", str(path), "--no-progress", "--param", 'myDays=["3", "x", 7]')
    assert refused.exit_code == 2, refused.output
    assert "parameter 'myDays'" in refused.output and "item 1 ('x')" in refused.output, refused.output
    assert not out.exists()
    ran = cli("run", str(path), "--no-progress", "--param", 'myDays=["3", "1"]')
    assert ran.exit_code == 0, ran.output
    assert out.read_text().split() == ["3", "1"]
    (flow,) = compile_file(path)
    meta = flow.to_graph().meta  # as trigger, the API and the scheduler see it: no user code
    with pytest.raises(ParameterError, match=r"item 0 \(4\) is not one of 1, 2, 3"):
        validate_params(meta, {"myDays": "[4]"})
    with pytest.raises(ParameterError, match=r"item 1 \('half'\)"):
        validate_params(meta, {"myRatios": '["0.5", "half"]'})
    assert validate_params(meta, {"myDays": '["2"]', "myRatios": "[0.5]"}) == {"myDays": (2,), "myRatios": (0.5,)}


def test_describe_and_list_runs_show_the_scheduled_times_the_objects_saw(cli: Cli, tmp_path: Path) -> None:
    """A cron-style instance starts at the beginning of its period, which is when its run's
    interval ends: `pipelines describe` and `list-runs` show the @scheduledStartTime the
    activity was given, not the run's interval start; a timeseries pipeline's are the interval."""
    seen = tmp_path / "seen.txt"
    for kind in ("cron", "timeseries"):
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": kind, "schedule": {"ref": "Daily"}},
                {"id": "Daily", "type": "Schedule", "period": "1 days", "startDateTime": "2024-01-01T00:00:00"},
                {
                    "id": "Say",
                    "type": "ShellCommandActivity",
                    "command": f"echo #{{@scheduledStartTime}}/#{{@scheduledEndTime}} > {seen}",
                },
            ]
        }
        (tmp_path / f"{kind}.json").write_text(json.dumps(definition))
        result = cli("run", str(tmp_path / f"{kind}.json"), "--date", "2024-01-31", "--no-progress")
        assert result.exit_code == 0, result.output
        start, end = (f"{t}+00:00" for t in seen.read_text().strip().split("/"))
        assert (start[:10], end[:10]) == (
            ("2024-02-01", "2024-02-02") if kind == "cron" else ("2024-01-31", "2024-02-01")
        )
        described = json.loads(cli("pipelines", "describe", kind, "--json").output)
        (instance,) = described["objects"][0]["instances"]
        assert (instance["scheduled_start"], instance["scheduled_end"]) == (start, end)
        (run,) = json.loads(cli("pipelines", "list-runs", kind, "--json").output)["runs"]
        assert (run["scheduled_start"], run["scheduled_end"]) == (start, end)


@pytest.mark.parametrize("mode", ["none", "cascade", "CASCADE only on Report"])
def test_describe_shows_what_follows_a_failure_as_aws_does_for_the_failure_and_rerun_mode(
    cli: Cli, tmp_path: Path, mode: str
) -> None:
    """AWS's default failureAndRerunMode, none, leaves the objects after a failed one
    WAITING_ON_DEPENDENCIES (they wait for a re-run); cascade makes them CASCADE_FAILED and the
    preconditions of such an object CANCELED. An object with cascade after one that waits, waits."""
    default = {"id": "Default", "scheduleType": "ondemand"}
    if mode == "cascade":
        default["failureAndRerunMode"] = "cascade"
    definition = {
        "objects": [
            default,
            {"id": "Ready", "type": "ShellCommandPrecondition", "command": "true"},
            {"id": "Extract", "type": "ShellCommandActivity", "command": "exit 3"},
            {
                "id": "Load",
                "type": "ShellCommandActivity",
                "dependsOn": {"ref": "Extract"},
                "precondition": {"ref": "Ready"},
                "command": "true",
            },
            {"id": "Report", "type": "ShellCommandActivity", "dependsOn": {"ref": "Load"}, "command": "true"},
        ]
    }
    if mode != "none":
        definition["objects"][-1]["failureAndRerunMode"] = "CASCADE"
    (tmp_path / "chain.json").write_text(json.dumps(definition))
    assert cli("run", str(tmp_path / "chain.json"), "--no-progress").exit_code == 1
    described = json.loads(cli("pipelines", "describe", "chain", "--json").output)
    statuses = {o["id"]: o["instances"][0]["status"] for o in described["objects"]}
    if mode == "cascade":
        expected = ["FAILED", "CANCELED", "CASCADE_FAILED", "CASCADE_FAILED"]
    else:
        expected = ["FAILED", "WAITING_ON_DEPENDENCIES", "WAITING_ON_DEPENDENCIES", "WAITING_ON_DEPENDENCIES"]
    assert [statuses[t] for t in ("Extract", "Load.Ready", "Load", "Report")] == expected
    text = cli("pipelines", "describe", "chain").output
    assert ("CASCADE_FAILED" in text) == (mode == "cascade")


def test_tasks_render_shows_an_objects_fields_evaluated(cli: Cli, tmp_path: Path) -> None:
    """`ductwork tasks render` of an AWS object printed nothing: it shows its fields with their
    #{...} expressions evaluated for the date and parameters given, secrets masked."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
            {"id": "Daily", "type": "Schedule", "period": "1 days", "startDateTime": "2024-01-01T00:00:00"},
            {
                "id": "Say",
                "type": "ShellCommandActivity",
                "command": "echo #{format(@scheduledStartTime, 'YYYY-MM-dd')} #{myWho}",
                "scriptArgument": ["#{myTables}", "--day=#{day(@scheduledStartTime)}"],
            },
        ],
        "parameters": [
            {"id": "myWho", "default": "world"},
            {"id": "myTables", "isArray": "true", "default": ["a", "b"]},
        ],
    }
    path = tmp_path / "render.json"
    path.write_text(json.dumps(definition))
    result = cli("tasks", "render", str(path), "Say", "2024-01-31", "--param", "myWho=you", "--json")
    assert result.exit_code == 0, result.output
    rendered = json.loads(result.output)
    assert rendered["@scheduledStartTime"] == "2024-02-01T00:00:00"
    assert rendered["command"] == "echo 2024-02-01 you"
    assert rendered["scriptArgument"] == ["a", "b", "--day=1"]


def test_an_optional_parameter_without_a_value_is_empty_text(cli: Cli, tmp_path: Path) -> None:
    """A parameter declared "optional": "true" and given no value validated, then failed every try
    that used it ("parameter 'myOpt' has no value"); it is now empty text."""
    out = tmp_path / "out.txt"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Say", "type": "ShellCommandActivity", "command": f'echo "[#{{myOpt}}]" > {out}'},
        ],
        "parameters": [{"id": "myOpt", "type": "String", "optional": "true"}],
    }
    path = tmp_path / "optional.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "[]\n"
    assert cli("run", str(path), "--no-progress", "--param", "myOpt=given").exit_code == 0
    assert out.read_text() == "[given]\n"


class _Hook(BaseHTTPRequestHandler):
    """An SNS topic's stand-in: keeps every notification posted to it."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sns_topic() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/sns"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["none", "CASCADE"])
def test_a_failed_activity_fails_the_run_even_when_its_on_fail_alarm_was_sent(
    cli: Cli, tmp_path: Path, sns_topic: str, mode: str
) -> None:
    """AWS's samples put an onFail SnsAlarm on the Default object. The alarm being sent does
    not make the failure a success: the run (and `ductwork run`'s exit code) stays failed and
    `pipelines list` says ERROR."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": mode, "onFail": {"ref": "TellOps"}},
            {"id": "Extract", "type": "ShellCommandActivity", "command": "exit 3"},
            {"id": "Load", "type": "ShellCommandActivity", "dependsOn": {"ref": "Extract"}, "command": "true"},
            {
                "id": "TellOps",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:123456789012:ops",
                "subject": "#{node.@id} failed",
                "message": "#{node.errorMessage}",
            },
        ]
    }
    path = tmp_path / "alarmed.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_CONN_OPS": sns_topic})
    assert "Extract failed" in [n["Subject"] for n in _Hook.received]
    assert result.exit_code == 1, result.output
    assert "run manual__" in result.output and ": failed (" in result.output
    (pipeline,) = json.loads(cli("pipelines", "list", "--json").output)["pipelines"]
    assert pipeline["health"] == "ERROR"


def test_the_sns_alarm_reference_example_names_the_nodes_input_and_output(
    cli: Cli, tmp_path: Path, sns_topic: str
) -> None:
    """AWS's SnsAlarm page has "Files were copied from #{node.input} to #{node.output}."; it was
    refused ("'input' is a reference to object 'In': name one of its fields"). A reference read
    as a value is the id of the object it names."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    (s3 / "b" / "in" / "x.csv").write_text("a,1\n")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "In", "type": "S3DataNode", "filePath": "s3://b/in/x.csv"},
            {"id": "Out", "type": "S3DataNode", "filePath": "s3://b/out/x.csv"},
            {
                "id": "Copy",
                "type": "CopyActivity",
                "input": {"ref": "In"},
                "output": {"ref": "Out"},
                "onSuccess": {"ref": "SuccessNotify"},
            },
            {
                "id": "SuccessNotify",
                "name": "SuccessNotify",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:28619EXAMPLE:ExampleTopic",
                "subject": "COPY SUCCESS: #{node.@scheduledStartTime}",
                "message": "Files were copied from #{node.input} to #{node.output}.",
            },
        ]
    }
    path = tmp_path / "notify.json"
    path.write_text(json.dumps(definition))
    env = {"DUCTWORK_S3_ROOT": f"file://{s3}", "DUCTWORK_CONN_EXAMPLETOPIC": sns_topic}
    result = cli("run", str(path), "--no-progress", env=env)
    assert result.exit_code == 0, result.output
    assert [n["Message"] for n in _Hook.received] == ["Files were copied from In to Out."]


def test_an_on_fail_alarm_of_a_timed_out_object_says_failed_and_why(cli: Cli, tmp_path: Path, sns_topic: str) -> None:
    """An object stopped at its attemptTimeout records nothing more than its start: its onFail
    alarm said #{node.@status} RUNNING and an empty #{node.errorMessage}. And #{node.errorId},
    one of AWS's runtime fields beside errorMessage, was refused by validate."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Hang",
                "type": "ShellCommandActivity",
                "command": "sleep 30",
                "attemptTimeout": "1 seconds",
                "maximumRetries": "0",
                "onFail": {"ref": "Tell"},
            },
            {
                "id": "Fails",
                "type": "ShellCommandActivity",
                "command": "exit 4",
                "onFail": {"ref": "Tell"},
            },
            {
                "id": "Tell",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:1:ops",
                "subject": "#{node.@id}",
                "message": "#{node.@status}: #{node.errorMessage} (#{node.errorId})",
            },
        ]
    }
    path = tmp_path / "hang.json"
    path.write_text(json.dumps(definition))
    assert cli("pipelines", "validate", str(path)).exit_code == 0
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_CONN_OPS": sns_topic})
    assert result.exit_code == 1, result.output
    messages = {n["Subject"]: n["Message"] for n in _Hook.received}
    assert messages["Hang"].startswith("FAILED: timed out after 1s (attemptTimeout)")
    assert messages["Fails"] == "FAILED: the command exited with code 4 (TaskExecutionError)"


def test_an_alarm_that_cannot_be_sent_still_fails_the_run(cli: Cli, tmp_path: Path) -> None:
    """The object succeeded but its onSuccess alarm could not be delivered: the run says so."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Work", "type": "ShellCommandActivity", "command": "true", "onSuccess": {"ref": "Tell"}},
            {
                "id": "Tell",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:1:nowhere",
                "subject": "s",
                "message": "m",
            },
        ]
    }
    path = tmp_path / "unsent.json"
    path.write_text(json.dumps(definition))
    assert cli("run", str(path), "--no-progress").exit_code == 1


def test_gzip_compressed_s3_data_is_read_and_written_by_a_copy(cli: Cli, tmp_path: Path) -> None:
    """An S3DataNode's compression gzip (the field AWS documents for copies) was accepted and then
    ignored: a copy of gzip CSV into a table failed with a UnicodeDecodeError. The copy now reads
    gzip input and writes gzip output, and a gzip node copied to a plain one is decompressed."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    (s3 / "b" / "in" / "part-0.csv.gz").write_bytes(gzip.compress(b"ann,1\nbob,2\n"))
    db = tmp_path / "warehouse.db"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Fmt", "type": "CSV", "column": ["name STRING", "n INT"]},
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in", "compression": "gzip"},
            {"id": "Wh", "type": "JdbcDatabase", "connectionString": f"jdbc:sqlite:{db}"},
            {
                "id": "Table",
                "type": "SqlDataNode",
                "database": {"ref": "Wh"},
                "table": "people",
                "createTableSql": "create table if not exists people (name varchar(10), n int)",
                "selectQuery": "select name, n from people order by n",
            },
            {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Table"}},
            {"id": "Zipped", "type": "S3DataNode", "filePath": "s3://b/out/people.csv.gz", "compression": "gzip"},
            {
                "id": "Unload",
                "type": "CopyActivity",
                "dependsOn": {"ref": "Load"},
                "input": {"ref": "Table"},
                "output": {"ref": "Zipped"},
            },
            {"id": "Plain", "type": "S3DataNode", "directoryPath": "s3://b/plain"},
            {"id": "Unzip", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Plain"}},
        ]
    }
    path = tmp_path / "gz.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select name, n from people order by n")).all() == [("ann", 1), ("bob", 2)]
    engine.dispose()
    assert gzip.decompress((s3 / "b" / "out" / "people.csv.gz").read_bytes()) == b"ann,1\nbob,2\n"
    assert (s3 / "b" / "plain" / "part-0.csv").read_text() == "ann,1\nbob,2\n"


def test_stage_given_by_a_parameter_stages(cli: Cli, tmp_path: Path) -> None:
    """``"stage": "#{myStage}"`` was compared as written with 'true', so it never staged."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    (s3 / "b" / "in" / "a.txt").write_text("x\ny\n")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"},
            {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out"},
            {
                "id": "Count",
                "type": "ShellCommandActivity",
                "stage": "#{myStage}",
                "input": {"ref": "In"},
                "output": {"ref": "Out"},
                "command": "cat ${INPUT1_STAGING_DIR}/*.txt | wc -l > ${OUTPUT1_STAGING_DIR}/n.txt",
            },
        ],
        "parameters": [{"id": "myStage", "type": "String", "default": "true"}],
    }
    path = tmp_path / "staged.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    assert (s3 / "b" / "out" / "n.txt").read_text().strip() == "2"


def test_a_run_parameter_used_by_a_field_fixed_at_load_time_is_refused(cli: Cli, tmp_path: Path) -> None:
    """``maximumRetries: #{myRetries}`` is read when the definition is compiled, with the
    parameter's default: `--param myRetries=2` was silently ignored (one try, not three). A value
    the run cannot honour is refused naming the parameter and the field; the definition's own
    value, or another parameter, is still taken."""
    marks = tmp_path / "tries"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Flaky",
                "type": "ShellCommandActivity",
                "maximumRetries": "#{myRetries}",
                "retryDelay": "1 seconds",
                "command": f"echo #{{myTag}} >> {marks}; exit 1",
            },
        ],
        "parameters": [
            {"id": "myRetries", "type": "Integer", "default": "0"},
            {"id": "myTag", "type": "String", "default": "x"},
        ],
    }
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(definition))
    refused = cli("run", str(path), "--no-progress", "--param", "myRetries=2")
    assert refused.exit_code != 0
    assert "myRetries" in refused.output and "'Flaky', field 'maximumRetries'" in refused.output
    assert not marks.exists()
    ran = cli("run", str(path), "--no-progress", "--param", "myRetries=0", "--param", "myTag=y")
    assert ran.exit_code == 1 and marks.read_text() == "y\n"


def test_a_parameter_fixed_at_load_time_is_refused_by_trigger_and_the_api_too(tmp_path: Path) -> None:
    """`ductwork trigger hourly --param myRetries=3` (and the REST API, the trigger form) queued
    the run: only `ductwork run` refused it, so the run got one retry, not three, without a word.
    The check now travels with the flow's recorded parameters; a Default field is one use."""
    from ductwork.declarative.files import compile_file
    from ductwork.errors import ParameterError
    from ductwork.services.runs import validate_params

    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand", "maximumRetries": "#{myRetries}"},
            {"id": "Flaky", "type": "ShellCommandActivity", "command": "exit 1"},
            {"id": "Other", "type": "ShellCommandActivity", "command": "exit 1"},
        ],
        "parameters": [{"id": "myRetries", "type": "Integer", "default": "1"}],
    }
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(definition))
    (flow,) = compile_file(path)
    meta = flow.to_graph().meta
    with pytest.raises(ParameterError) as refused:
        validate_params(meta, {"myRetries": "3"})
    assert "parameter 'myRetries' is used by object 'Default', field 'maximumRetries', read when" in str(refused.value)
    assert validate_params(meta, {"myRetries": "1"}) == {"myRetries": 1}


def test_an_untyped_object_used_as_a_parent_is_a_base_of_fields(cli: Cli, tmp_path: Path) -> None:
    """AWS's guide shows ``parent`` with an object "A" that has no type, its fields included in
    "B": such a base object was refused ("every object needs a 'type'"). It is now a source of
    fields, checked like the Default object, and no task; an untyped object that no object names
    as its parent is still refused."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "ShellBase", "command": "echo #{myGreeting} from #{@id} >> #{myOut}", "maximumRetries": "1"},
            {"id": "First", "type": "ShellCommandActivity", "parent": {"ref": "ShellBase"}, "myGreeting": "hello"},
            {
                "id": "Second",
                "type": "ShellCommandActivity",
                "parent": {"ref": "ShellBase"},
                "myGreeting": "hi",
                "dependsOn": {"ref": "First"},
            },
        ],
        "parameters": [{"id": "myOut", "type": "String", "default": str(tmp_path / "out.txt")}],
    }
    path = tmp_path / "base.json"
    path.write_text(json.dumps(definition))
    data = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert data["valid"], data
    assert data["flows"][0]["tasks"] == ["First", "Second"]
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.txt").read_text() == "hello from First\nhi from Second\n"

    definition["objects"][1]["comand"] = "x"
    definition["objects"].append({"id": "Loose", "command": "echo"})
    path.write_text(json.dumps(definition))
    data = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert [(p["object"], p["field"], p["message"]) for p in data["problems"]] == [
        ("ShellBase", "comand", "unknown field 'comand'. Did you mean one of 'command', 'column', 'commandOptions'?"),
        (
            "Loose",
            "type",
            "every object needs a 'type' (the Default object, and an object used only as a parent, excepted)",
        ),
    ]


def test_describe_names_each_objects_aws_type_actions_included(cli: Cli, tmp_path: Path) -> None:
    """`pipelines describe` labelled actions "(ActionOperator)", an internal class name; they are
    shown by their AWS type, as every other object is."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Daily"}},
            {"id": "Daily", "type": "Schedule", "period": "1 days", "startDateTime": "2024-01-01T00:00:00"},
            {"id": "Ready", "type": "ShellCommandPrecondition", "command": "true"},
            {"id": "Stop", "type": "Terminate"},
            {
                "id": "Tell",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:1:ops",
                "subject": "s",
                "message": "m",
            },
            {
                "id": "Work",
                "type": "ShellCommandActivity",
                "command": "true",
                "precondition": {"ref": "Ready"},
                "onSuccess": {"ref": "Tell"},
                "onLateAction": [{"ref": "Stop"}, {"ref": "Tell"}],
                "lateAfterTimeout": "1 hours",
            },
        ]
    }
    (tmp_path / "typed.json").write_text(json.dumps(definition))
    env = {"DUCTWORK_CONN_OPS": "http://127.0.0.1:9"}
    result = cli("run", str(tmp_path / "typed.json"), "--date", "2024-01-01", "--no-progress", env=env)
    described = json.loads(cli("pipelines", "describe", "typed", "--json").output)
    types = {o["id"]: o["type"] for o in described["objects"]}
    assert types == {
        "Work": "ShellCommandActivity",
        "Work.Ready": "ShellCommandPrecondition",
        "Work.onSuccess.Tell": "SnsAlarm",
        "Work.onLateAction": "Terminate, SnsAlarm",
    }, (types, result.output)
    text = cli("pipelines", "describe", "typed").output
    assert "Work.onSuccess.Tell (SnsAlarm)" in text and "Operator)" not in text


def test_more_script_arguments_than_placeholders_fail_the_sql_activity(cli: Cli, tmp_path: Path) -> None:
    """'select ?' with two scriptArgument values ran, the second ignored: AWS (JDBC) fails such a
    script ('column index out of range'), and a miscounted argument list ran on the wrong values.
    Its rows are not committed."""
    db = tmp_path / "warehouse.db"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Warehouse", "type": "RdsDatabase", "rdsInstanceId": "warehouse", "username": "etl"},
            {
                "id": "Record",
                "type": "SqlActivity",
                "database": {"ref": "Warehouse"},
                "script": "create table days (day text); insert into days values (?)",
                "scriptArgument": ["2024-01-31", "2024-02-01"],
            },
        ]
    }
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_CONN_WAREHOUSE": f"sqlite:///{db}"})
    assert result.exit_code == 1
    assert "the script has 1 '?' placeholder(s) but 2 scriptArgument values" in result.output, result.output
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from days")).scalar_one() == 0  # SQLite keeps its DDL
    engine.dispose()


def test_sql_placeholders_are_read_as_jdbc_reads_them(cli: Cli, tmp_path: Path) -> None:
    """A SqlActivity's '?' is a JDBC placeholder only outside quotes: '?::date' (a PostgreSQL
    cast of an argument) reached the database as ':arg0::date' (a syntax error), a '?' inside a
    literal took an argument ('more placeholders than scriptArgument values') and a ':30' in a
    literal was taken for a bind parameter. The same holds for a data node's insertQuery."""
    (tmp_path / "db").mkdir()
    with temporary_database("postgres", tmp_path) as url:
        parsed = sa.make_url(url)
        s3 = tmp_path / "s3"
        (s3 / "in").mkdir(parents=True)
        (s3 / "in" / "rows.csv").write_text("1\n")
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand"},
                {
                    "id": "Db",
                    "type": "JdbcDatabase",
                    "connectionString": jdbc(url),
                    "username": parsed.username or "",
                    "*password": parsed.password or "",
                },
                {
                    "id": "Script",
                    "type": "SqlActivity",
                    "database": {"ref": "Db"},
                    "script": "create table notes (day date, note text, n integer); "
                    "insert into notes values (?::date, 'is it? yes', 1); "
                    "insert into notes values (?, 'at 10 :30 -- ?', 2) /* not this ? */",
                    "scriptArgument": ["2024-01-31", "2024-02-01"],
                },
                {"id": "Rows", "type": "S3DataNode", "filePath": "s3://in/rows.csv"},
                {
                    "id": "Notes",
                    "type": "SqlDataNode",
                    "database": {"ref": "Db"},
                    "table": "notes",
                    "insertQuery": "insert into #{table} values (null, 'why? :x', ?::integer)",
                },
                {
                    "id": "Load",
                    "type": "CopyActivity",
                    "dependsOn": {"ref": "Script"},
                    "input": {"ref": "Rows"},
                    "output": {"ref": "Notes"},
                },
            ]
        }
        path = tmp_path / "placeholders.json"
        path.write_text(json.dumps(definition))
        result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("select cast(day as text), note, n from notes order by n, day nulls last")
            ).all()
        engine.dispose()
    assert rows == [("2024-01-31", "is it? yes", 1), (None, "why? :x", 1), ("2024-02-01", "at 10 :30 -- ?", 2)]


def test_a_connection_with_a_user_and_no_password_keeps_its_credentials(cli: Cli, tmp_path: Path) -> None:
    """An RdsDatabase written for AWS carries AWS's username and *password; the local stand-in is
    a Ductwork connection named like its rdsInstanceId, here MariaDB's passwordless root. The
    definition's password was added to the connection's user and the server refused it."""
    (tmp_path / "db").mkdir()
    with temporary_database("mariadb", tmp_path) as url:
        parsed = sa.make_url(url)
        if parsed.password:
            pytest.skip("the test server's user has a password")
        definition = {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand"},
                {
                    "id": "Rds",
                    "type": "RdsDatabase",
                    "rdsInstanceId": "orders-db",
                    "username": "admin",
                    "*password": "the-aws-password",
                },
                {
                    "id": "Load",
                    "type": "SqlActivity",
                    "database": {"ref": "Rds"},
                    "script": "create table loaded (n integer); insert into loaded values (1)",
                },
            ]
        }
        path = tmp_path / "rds.json"
        path.write_text(json.dumps(definition))
        connection = url.replace("mysql+pymysql://", "mysql://")
        result = cli("run", str(path), "--no-progress", env={"DUCTWORK_CONN_ORDERS_DB": connection})
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select n from loaded")).scalar_one() == 1
        engine.dispose()


def test_the_apis_and_cloudformations_forms_of_a_definition_run(cli: Cli, tmp_path: Path) -> None:
    """boto3's get_pipeline_definition gives pipelineObjects (fields of key and stringValue or
    refValue), parameterObjects and parameterValues; CloudFormation's AWS::DataPipeline::Pipeline
    writes the same in PascalCase. Both were refused as "not a pipeline"."""
    out = tmp_path / "said.txt"
    api = {
        "pipelineObjects": [
            {"id": "Default", "name": "Default", "fields": [{"key": "scheduleType", "stringValue": "ondemand"}]},
            {
                "id": "Say",
                "name": "Say",
                "fields": [
                    {"key": "type", "stringValue": "ShellCommandActivity"},
                    {"key": "command", "stringValue": f'echo "$@" #{{myGreeting}} > {out}'},
                    {"key": "scriptArgument", "stringValue": "#{myTables}"},
                    {"key": "scriptArgument", "stringValue": "last"},
                    {"key": "dependsOn", "refValue": "First"},
                ],
            },
            {
                "id": "First",
                "name": "First",
                "fields": [
                    {"key": "type", "stringValue": "ShellCommandActivity"},
                    {"key": "command", "stringValue": "true"},
                ],
            },
        ],
        "parameterObjects": [
            {"id": "myGreeting", "attributes": [{"key": "type", "stringValue": "String"}]},
            {
                "id": "myTables",
                "attributes": [{"key": "type", "stringValue": "String"}, {"key": "isArray", "stringValue": "true"}],
            },
        ],
        "parameterValues": [
            {"id": "myTables", "stringValue": "a"},
            {"id": "myTables", "stringValue": "b"},
            {"id": "myGreeting", "stringValue": "hi"},
        ],
    }
    path = tmp_path / "from_api.json"
    path.write_text(json.dumps(api))
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "a b last hi\n"

    def pascal(obj: dict[str, Any]) -> dict[str, Any]:
        fields = [{k[0].upper() + k[1:]: v for k, v in f.items()} for f in obj.get("fields", obj.get("attributes", []))]
        key = "Fields" if "fields" in obj else "Attributes"
        return {"Id": obj["id"], **({"Name": obj["name"]} if "name" in obj else {}), key: fields}

    cloudformation = {
        "Name": "said",
        "Activate": True,
        "PipelineObjects": [pascal(o) for o in api["pipelineObjects"]],
        "ParameterObjects": [pascal(o) for o in api["parameterObjects"]],
        "ParameterValues": [{"Id": v["id"], "StringValue": v["stringValue"]} for v in api["parameterValues"]],
    }
    path = tmp_path / "from_cloudformation.json"
    path.write_text(json.dumps(cloudformation))
    out.unlink()
    assert cli("pipelines", "put", str(path)).exit_code == 0
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "a b last hi\n"


def test_a_whole_cloudformation_template_runs_and_its_problems_have_lines(cli: Cli, tmp_path: Path) -> None:
    """The file a CloudFormation user has is the template (Resources, one AWS::DataPipeline::Pipeline),
    whose Default object AWS's examples write with "type": "Default": it was "not a pipeline", and
    then "unknown type 'Default'"; the Properties' problems had no line."""
    out = tmp_path / "said.txt"
    objects = [
        {"Id": "Default", "Name": "Default", "Fields": [
            {"Key": "type", "StringValue": "Default"}, {"Key": "scheduleType", "StringValue": "ondemand"}]},
        {"Id": "Say", "Name": "Say", "Fields": [
            {"Key": "type", "StringValue": "ShellCommandActivity"},
            {"Key": "command", "StringValue": f"echo #{{myGreeting}} > {out}"}]},
    ]  # fmt: skip
    pipeline = {
        "Type": "AWS::DataPipeline::Pipeline",
        "Properties": {
            "Name": "said",
            "PipelineObjects": objects,
            "ParameterObjects": [{"Id": "myGreeting", "Attributes": [{"Key": "type", "StringValue": "String"}]}],
            "ParameterValues": [{"Id": "myGreeting", "StringValue": "hello"}],
        },
    }
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Pipe": pipeline}}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template, indent=2))
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "hello\n"

    objects[1]["Fields"].append({"Key": "maximumRetries", "StringValue": "x"})
    path.write_text(json.dumps(template, indent=2))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"Id": "Say"' in text)
    data = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert [(p["object"], p["field"], p["line"]) for p in data["problems"]] == [("Say", "maximumRetries", line)]

    template["Resources"]["Again"] = pipeline
    path.write_text(json.dumps(template, indent=2))
    result = cli("pipelines", "validate", str(path))
    assert result.exit_code == 1
    assert "a CloudFormation template with 2 AWS::DataPipeline::Pipeline resources (Pipe, Again)" in result.output


def test_a_stored_cloudformation_template_keeps_its_values_version_and_activation(cli: Cli, tmp_path: Path) -> None:
    """``pipelines put template.json --param myGreeting=cli`` stored the template with the value
    beside it, where the template's reader (its Properties alone) never looked: the run said the
    template's own value, ``validate --param myNope=1`` said valid, and the scheduler's name,
    version and activation time were lost too, so an on-demand activation never started its run
    (SCHEDULED for ever). The API's form (parameterValues) lost ``--param`` values the same way."""
    from ductwork.declarative.files import compile_file
    from ductwork.services import pipelines as service
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import pipelines as repo

    properties = {
        "Name": "said",
        "PipelineObjects": [
            {"Id": "Default", "Name": "Default", "Fields": [{"Key": "scheduleType", "StringValue": "ondemand"}]},
            {"Id": "Say", "Name": "Say", "Fields": [
                {"Key": "type", "StringValue": "ShellCommandActivity"},
                {"Key": "command", "StringValue": "echo #{myGreeting}"}]},
        ],
        "ParameterObjects": [{"Id": "myGreeting", "Attributes": [{"Key": "type", "StringValue": "String"}]}],
        "ParameterValues": [{"Id": "myGreeting", "StringValue": "template"}],
    }  # fmt: skip
    template = {"Resources": {"Pipe": {"Type": "AWS::DataPipeline::Pipeline", "Properties": properties}}}
    api = {
        "pipelineObjects": [
            {
                "id": o["Id"],
                "name": o["Name"],
                "fields": [{k.lower()[0] + k[1:]: v for k, v in f.items()} for f in o["Fields"]],
            }
            for o in properties["PipelineObjects"]
        ],
        "parameterObjects": [{"id": "myGreeting", "attributes": [{"key": "type", "stringValue": "String"}]}],
        "parameterValues": [{"id": "myGreeting", "stringValue": "template"}],
    }
    for name, data in (("template", template), ("api", api)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data, indent=2))
        unknown = cli("pipelines", "validate", str(path), "--param", "myNope=1")
        assert unknown.exit_code == 1 and "'myNope', which is not a parameter" in unknown.output, unknown.output
        put = cli("pipelines", "put", str(path), "--param", "myGreeting=cli")
        assert put.exit_code == 0, put.output
        assert cli("pipelines", "activate", name).exit_code == 0
        engine = create_engine(Settings.load().db_url)
        with read_transaction(engine) as conn:
            version = repo.active_version(conn, name)
        engine.dispose()
        assert version is not None
        stored = tmp_path / "stored" / f"{name}.json"
        stored.parent.mkdir(exist_ok=True)
        stored.write_text(service.materialized(version))
        (flow,) = compile_file(stored)
        graph = flow.to_graph()
        assert graph.flow_id == name and "version:1" in graph.meta.tags, (graph.flow_id, graph.meta.tags)
        assert graph.meta.params["myGreeting"]["default"] == "cli", graph.meta.params


def test_a_preconditions_own_on_fail_alarm_names_the_precondition(cli: Cli, tmp_path: Path, sns_topic: str) -> None:
    """AWS gives preconditions onFail/onSuccess/onLateAction. The flow had the action after the
    precondition's check, but validate refused its #{node.@id}: "'node' is only known in an
    action or a precondition"."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Check",
                "type": "ShellCommandPrecondition",
                "command": "false",
                "maximumRetries": "0",
                "onFail": {"ref": "Tell"},
            },
            {"id": "Work", "type": "ShellCommandActivity", "command": "true", "precondition": {"ref": "Check"}},
            {
                "id": "Tell",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:1:ops",
                "subject": "#{node.@id} #{node.@status}",
                "message": "#{node.errorMessage}",
            },
        ]
    }
    path = tmp_path / "checked.json"
    path.write_text(json.dumps(definition))
    assert cli("pipelines", "validate", str(path)).exit_code == 0
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_CONN_OPS": sns_topic})
    assert result.exit_code == 1, result.output
    (sent,) = _Hook.received
    assert sent["Subject"] == "Check FAILED"
    assert "precondition 'Check' of 'Work' was not met" in sent["Message"]


def _redshift_copy(db: Path, options: list[str], *, table_sql: str, data_format: bool = False) -> dict[str, Any]:
    """A RedshiftCopyActivity from the S3 folder s3://b/in into a SQLite table ``t``."""
    source: dict[str, Any] = {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"}
    if data_format:
        source["dataFormat"] = {"ref": "Fmt"}
    return {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Fmt", "type": "CSV"},
            source,
            {"id": "Wh", "type": "JdbcDatabase", "connectionString": f"jdbc:sqlite:{db}"},
            {"id": "T", "type": "SqlDataNode", "database": {"ref": "Wh"}, "table": "t", "createTableSql": table_sql},
            {
                "id": "Load",
                "type": "RedshiftCopyActivity",
                "insertMode": "APPEND",
                "input": {"ref": "In"},
                "output": {"ref": "T"},
                "commandOptions": options,
            },
        ]
    }


def test_redshift_copy_reads_its_input_as_its_command_options_say(cli: Cli, tmp_path: Path) -> None:
    """AWS's billing template loads gzip CSV with a header row through a RedshiftCopyActivity's
    commandOptions ["GZIP", "CSV", "IGNOREHEADER AS 1"]: they were accepted with no effect, and
    the copy failed with a UnicodeDecodeError (the gzip bytes read as text). They are read as
    Redshift's COPY reads them: compression, CSV quoting, the header, delimiters and NULLs."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    header = b'"Invoice","Item","Cost"\n'
    (s3 / "b" / "in" / "bill.csv.gz").write_bytes(gzip.compress(header + b'"inv1","desc, with comma","0.5"\n'))
    db = tmp_path / "billing.db"
    definition = _redshift_copy(
        db,
        ["GZIP", "CSV", "IGNOREHEADER AS 1"],
        table_sql="create table t (invoice varchar(10), item varchar(30), cost float)",
    )
    path = tmp_path / "billing.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select invoice, item, cost from t")).all() == [("inv1", "desc, with comma", 0.5)]
    engine.dispose()

    # Delimited text (COPY's default, '|' unless DELIMITER says), NULL AS and EMPTYASNULL; the
    # options that only tune a Redshift load (TRUNCATECOLUMNS, DATEFORMAT, MAXERROR) are accepted.
    (s3 / "b" / "in" / "bill.csv.gz").unlink()
    (s3 / "b" / "in" / "part-0.txt").write_text("a;b;c\nx;1;\ny;nil;z\n")
    db2 = tmp_path / "text.db"
    options = [
        "DELIMITER AS ';' IGNOREHEADER 1",
        "NULL AS 'nil'",
        "EMPTYASNULL",
        "TRUNCATECOLUMNS",
        "dateformat 'auto'",
    ]
    definition = _redshift_copy(db2, options, table_sql="create table t (a varchar(10), b int, c varchar(10))")
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{db2}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select a, b, c from t order by a")).all() == [("x", 1, None), ("y", None, "z")]
    engine.dispose()


def test_command_options_that_cannot_be_honoured_are_problems(cli: Cli, tmp_path: Path) -> None:
    """A COPY option that would read the data otherwise (JSON, a misspelt word) is a problem
    naming the object, the field and the option, each one; with a dataFormat on the input the
    options are ignored, as AWS documents, and validate says so."""
    definition = _redshift_copy(
        tmp_path / "x.db", ["JSON 'auto'", "GZIPP", "IGNOREHEADER AS one"], table_sql="create table t (a int)"
    )
    path = tmp_path / "opts.json"
    path.write_text(json.dumps(definition, indent=2))
    result = cli("pipelines", "validate", str(path))
    assert result.exit_code == 1, result.output
    assert "object 'Load', field 'commandOptions': JSON: Ductwork does not read JSON input" in result.output
    assert "object 'Load', field 'commandOptions': 'GZIPP' is not an option of COPY" in result.output
    assert "object 'Load', field 'commandOptions': IGNOREHEADER wants a number of lines, got 'one'" in result.output

    definition = _redshift_copy(tmp_path / "x.db", ["GZIP"], table_sql="create table t (a int)", data_format=True)
    path.write_text(json.dumps(definition, indent=2))
    result = cli("pipelines", "validate", str(path))
    assert result.exit_code == 0, result.output
    assert "object 'Load', field 'commandOptions' (ignored because 'In' has a dataFormat" in result.output


def test_s3_copy_between_data_formats_converts_the_records(cli: Cli, tmp_path: Path) -> None:
    """A CopyActivity from a CSV node to a TSV (or Custom '|') node copied the files unchanged, so
    the TSV node held CSV text; AWS copies files as they are only when both nodes have the same
    data format, and record by record otherwise, as it does from a directory to one file (whose
    files were put beside that file, which was never written)."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    (s3 / "b" / "in" / "part-0.csv").write_text('a,1\n"b,c",2\n')
    (s3 / "b" / "in" / "part-1.csv").write_text("d,3\n")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Csv", "type": "CSV"},
            {"id": "Tsv", "type": "TSV"},
            {"id": "Pipes", "type": "Custom", "columnSeparator": "|"},
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in", "dataFormat": {"ref": "Csv"}},
            {"id": "AsTsv", "type": "S3DataNode", "directoryPath": "s3://b/tsv", "dataFormat": {"ref": "Tsv"}},
            {"id": "AsPipes", "type": "S3DataNode", "filePath": "s3://b/pipes/all.txt", "dataFormat": {"ref": "Pipes"}},
            {"id": "OneFile", "type": "S3DataNode", "filePath": "s3://b/one/all.csv", "dataFormat": {"ref": "Csv"}},
            {"id": "ToTsv", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "AsTsv"}},
            {"id": "ToPipes", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "AsPipes"}},
            {"id": "ToOne", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "OneFile"}},
        ]
    }
    path = tmp_path / "formats.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    assert (s3 / "b" / "tsv" / "part-0.csv").read_text() == "a\t1\nb,c\t2\n"
    assert (s3 / "b" / "tsv" / "part-1.csv").read_text() == "d\t3\n"
    assert (s3 / "b" / "pipes" / "all.txt").read_text() == "a|1\nb,c|2\nd|3\n"
    assert sorted(p.name for p in (s3 / "b" / "one").iterdir()) == ["all.csv"]
    assert (s3 / "b" / "one" / "all.csv").read_text() == 'a,1\n"b,c",2\nd,3\n'


@pytest.mark.parametrize("output", ["s3", "sql"])
def test_a_copy_whose_s3_input_does_not_exist_fails_naming_it(cli: Cli, tmp_path: Path, output: str) -> None:
    """A CopyActivity whose input file or folder was not there (a typo in filePath, a day's file
    not yet written) succeeded, copying nothing: the run was green and the records were lost.
    It fails, as AWS's copy does ('Input path does not exist'), naming the node and the path."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    target: dict[str, Any] = {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out"}
    if output == "sql":
        target = {
            "id": "Out",
            "type": "SqlDataNode",
            "table": "rows",
            "connectionString": f"sqlite:///{tmp_path / 'rows.db'}",
            "createTableSql": "create table if not exists rows (a text, b text)",
        }
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "In", "type": "S3DataNode", "filePath": "s3://b/in/missing.csv"},
            target,
            {"id": "Copy", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Out"}},
        ]
    }
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 1, result.output
    assert "input 'In' (S3DataNode): s3://b/in/missing.csv does not exist" in " ".join(result.output.split())
    assert not (s3 / "b" / "out").exists()


def test_a_row_that_does_not_fit_the_table_is_named(cli: Cli, tmp_path: Path) -> None:
    """A CSV whose second line has a value too many failed with "rows have 2 values but table
    't' takes 2", the first row's count; the message names the row that does not fit."""
    s3 = tmp_path / "s3"
    (s3 / "b" / "in").mkdir(parents=True)
    (s3 / "b" / "in" / "part-0.csv").write_text("a,1\nb,2,extra\nc,3\n")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"},
            {"id": "Db", "type": "JdbcDatabase", "connectionString": f"jdbc:sqlite:{tmp_path / 'w.db'}"},
            {
                "id": "T",
                "type": "SqlDataNode",
                "database": {"ref": "Db"},
                "table": "t",
                "createTableSql": "create table t (a varchar(10), b int)",
            },
            {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
        ]
    }
    path = tmp_path / "ragged.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", "--json", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 1
    assert "row 2 of the input has 3 values ('b', '2', 'extra') but table 't' takes 2 (a, b)" in result.output


def test_a_tsv_with_an_escape_character_keeps_backslashes_tabs_and_newlines(cli: Cli, tmp_path: Path) -> None:
    """A TSV node with escapeChar "\\\\" wrote a value's own backslash as it was, and read it back
    as an escape: a Windows path copied from a table to S3 and back lost its backslash, and a
    value with a newline became two records."""
    s3 = tmp_path / "s3"
    s3.mkdir()
    db = tmp_path / "w.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    values = [("C:\\data\\in", "a\tb"), ("two\nlines", "plain")]
    with engine.begin() as conn:
        conn.execute(sa.text("create table src (p varchar(20), q varchar(20))"))
        conn.execute(sa.text("create table dst (p varchar(20), q varchar(20))"))
        conn.execute(sa.text("insert into src values (:p, :q)"), [{"p": p, "q": q} for p, q in values])
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Tsv", "type": "TSV", "escapeChar": "\\"},
            {"id": "Db", "type": "JdbcDatabase", "connectionString": f"jdbc:sqlite:{db}"},
            {
                "id": "Src",
                "type": "SqlDataNode",
                "database": {"ref": "Db"},
                "table": "src",
                "selectQuery": "select * from src",
            },
            {"id": "Mid", "type": "S3DataNode", "directoryPath": "s3://b/mid", "dataFormat": {"ref": "Tsv"}},
            {"id": "Dst", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": "dst"},
            {"id": "Out", "type": "CopyActivity", "input": {"ref": "Src"}, "output": {"ref": "Mid"}},
            {"id": "Back", "type": "CopyActivity", "input": {"ref": "Mid"}, "output": {"ref": "Dst"}},
        ]
    }
    path = tmp_path / "tsv.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress", env={"DUCTWORK_S3_ROOT": f"file://{s3}"})
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("select p, q from dst")).all()) == sorted(values)
    engine.dispose()


def test_put_over_an_active_version_says_that_version_still_runs(cli: Cli, tmp_path: Path) -> None:
    """``aws datapipeline put-pipeline-definition`` on an active pipeline changes what it runs;
    here the new definition is a version of its own that runs once activated, and ``put`` said
    only 'stored as version 2', so a fix put in place was never run and nothing said why."""
    path = tmp_path / "greet.json"
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Say", "type": "ShellCommandActivity", "command": "echo one"},
        ]
    }
    path.write_text(json.dumps(definition))
    first = cli("pipelines", "put", str(path))
    assert first.exit_code == 0 and "still" not in first.output, first.output
    assert cli("pipelines", "activate", "greet").exit_code == 0
    definition["objects"][1]["command"] = "echo two"
    path.write_text(json.dumps(definition))
    second = cli("pipelines", "put", str(path))
    assert second.exit_code == 0, second.output
    assert "pipeline greet: stored as version 2" in second.output
    assert "version 1 is still the active one: `ductwork pipelines activate greet` runs version 2" in " ".join(
        second.output.split()
    ), second.output
    shown = cli("pipelines", "put", str(path), "--json")
    assert json.loads(shown.output)["active_version"] == 1, shown.output
    assert cli("pipelines", "activate", "greet").exit_code == 0
    third = cli("pipelines", "put", str(path))
    assert "unchanged: already version 2" in third.output and "still" not in third.output, third.output


def test_a_database_url_that_does_not_parse_is_named_without_its_password(cli: Cli, tmp_path: Path) -> None:
    """A connectionString with a mistyped port ('5432x') was quoted whole in the error, its
    password included, in the run's output and the try log that every viewer reads."""
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": "Db",
                "type": "JdbcDatabase",
                "connectionString": "jdbc:postgresql://127.0.0.1:5432x/warehouse?user=etl&password=Hunter2Secret",
            },
            {"id": "Q", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "select 1"},
        ]
    }
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(definition))
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 1, result.output
    assert "Hunter2Secret" not in result.output
    logs = "".join(p.read_text() for p in (tmp_path / "ductwork-home" / "logs" / "typo").rglob("*.log"))
    assert "database 'Db': 'postgresql+psycopg://etl:***@127.0.0.1:5432x/warehouse' is not a database URL" in logs
    assert "Hunter2Secret" not in logs
