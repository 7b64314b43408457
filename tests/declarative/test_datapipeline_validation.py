"""Bad AWS Data Pipeline definitions: every problem named by object id, field and (for
expressions) position, all at once, through ``ductwork pipelines validate`` and in the flows
folder's import errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli
from ductwork.declarative.files import compile_file


def definition(*objects: dict[str, Any], **extra: Any) -> str:
    base = [
        {
            "id": "Default",
            "scheduleType": "ondemand",
            "failureAndRerunMode": "CASCADE",
            "role": "DataPipelineDefaultRole",
            "resourceRole": "DataPipelineDefaultResourceRole",
        },
    ]
    return json.dumps({"objects": [*base, *objects], **extra}, indent=2)


def problems(cli: Cli, tmp_path: Path, text: str) -> list[dict[str, Any]]:
    path = tmp_path / "pipeline.json"
    path.write_text(text)
    result = cli("pipelines", "validate", str(path), "--json")
    data = json.loads(result.output)
    assert result.exit_code == (0 if data["valid"] else 1)
    return data.get("problems", [])


SHELL = {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hello"}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (
            [{**SHELL, "dependsOn": {"ref": "Nowhere"}}],
            {"object": "Hello", "field": "dependsOn", "message": "reference to a missing object 'Nowhere'."},
        ),
        (
            [{**SHELL, "maximumRetries": "three"}],
            {"object": "Hello", "field": "maximumRetries", "message": "wants an Integer, got 'three'"},
        ),
        (
            [{**SHELL, "retryDelay": "soon"}],
            {"object": "Hello", "field": "retryDelay"},
        ),
        (
            [{**SHELL, "input": "s3://bucket/key"}],
            {
                "object": "Hello",
                "field": "input",
                "message": 'wants a reference {"ref": "ObjectId"}, got the text \'s3://bucket/key\'',
            },
        ),
        (
            [{**SHELL, "command": {"ref": "Default"}}],
            {"object": "Hello", "field": "command", "message": "wants a String, got a reference to 'Default'"},
        ),
        (
            [SHELL, {"id": "Other", "type": "ShellComandActivity", "command": "x"}],
            {"object": "Other", "field": "type"},
        ),
        (
            [SHELL, {"id": "Hive", "type": "HiveActivity", "hiveScript": "select 1"}],
            {"object": "Hive", "field": "type"},
        ),
        (
            [{**SHELL, "command": "echo #{format(@scheduledStartTime, 'YYYY-MM-dd'}"}],
            {
                "object": "Hello",
                "field": "command",
                "position": 48,
                "message": "expected ',' or ')', found the end of the expression",
            },
        ),
        (
            [{**SHELL, "command": "echo #{myMissing}"}],
            {"object": "Hello", "field": "command", "position": 8},
        ),
        (
            [{**SHELL, "comand": "echo"}],
            {
                "object": "Hello",
                "field": "comand",
                "message": "unknown field 'comand' for ShellCommandActivity. Did you mean 'command'?",
            },
        ),
        (
            [{**SHELL, "@status": "FINISHED"}],
            {"object": "Hello", "field": "@status"},
        ),
        (
            [{"id": "Hello", "type": "ShellCommandActivity"}],
            {"object": "Hello", "field": "command", "message": "ShellCommandActivity needs 'command' or 'scriptUri'"},
        ),
        (
            [{**SHELL, "maxActiveInstances": "0"}],
            {
                "object": "Hello",
                "field": "maxActiveInstances",
                "message": "maxActiveInstances must be 1 or more: with fewer no instance could run",
            },
        ),
        (
            [{**SHELL, "maxActiveInstances": "-1"}],
            {
                "object": "Hello",
                "field": "maxActiveInstances",
                "message": "maxActiveInstances must be 1 or more: with fewer no instance could run",
            },
        ),
        (
            [{**SHELL, "stage": "maybe"}],
            {"object": "Hello", "field": "stage", "message": "wants a Boolean (true or false), got 'maybe'"},
        ),
        (
            [{"id": "Data", "type": "S3DataNode", "directoryPath": "s3://b/in", "compression": "zip"}],
            {"object": "Data", "field": "compression", "message": "wants one of none, gzip, got 'zip'"},
        ),
        (
            [
                {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"},
                {"id": "Db", "type": "RedshiftDatabase", "clusterId": "c", "username": "u", "*password": "p"},
                {"id": "Out", "type": "RedshiftDataNode", "database": {"ref": "Db"}, "tableName": "t"},
                {
                    "id": "Load",
                    "type": "RedshiftCopyActivity",
                    "input": {"ref": "In"},
                    "output": {"ref": "Out"},
                    "insertMode": "UPSERT",
                },
            ],
            {
                "object": "Load",
                "field": "insertMode",
                "message": "wants one of KEEP_EXISTING, OVERWRITE_EXISTING, TRUNCATE, APPEND, got 'UPSERT'",
            },
        ),
        (
            [{**SHELL, "onFail": {"ref": "Hello"}}],
            {
                "object": "Hello",
                "field": "onFail",
                "message": "refers to 'Hello', an activity (ShellCommandActivity); it wants an action",
            },
        ),
    ],
)
def test_each_kind_of_bad_input_names_object_and_field(
    cli: Cli, tmp_path: Path, objects: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    found = problems(cli, tmp_path, definition(*objects))
    assert any(all(p.get(k) == v for k, v in expected.items()) for p in found), found


def test_a_dependency_cycle_is_named_with_its_path(cli: Cli, tmp_path: Path) -> None:
    found = problems(
        cli,
        tmp_path,
        definition(
            {**SHELL, "id": "A", "dependsOn": {"ref": "C"}},
            {**SHELL, "id": "B", "dependsOn": {"ref": "A"}},
            {**SHELL, "id": "C", "dependsOn": [{"ref": "B"}]},
        ),
    )
    cycles = [p for p in found if "dependency cycle" in p["message"]]
    assert len(cycles) == 1 and cycles[0]["field"] == "dependsOn"
    assert cycles[0]["message"] in (
        "dependency cycle: A -> C -> B -> A",
        "dependency cycle: B -> A -> C -> B",
        "dependency cycle: C -> B -> A -> C",
    )


def test_every_problem_is_listed_at_once_with_its_line(cli: Cli, tmp_path: Path) -> None:
    text = definition(
        {**SHELL, "maximumRetries": "x"},
        {**SHELL, "id": "Two", "dependsOn": {"ref": "Gone"}},
        {**SHELL, "id": "Three", "command": "echo #{1 +}"},
    )
    found = problems(cli, tmp_path, text)
    assert {(p["object"], p["field"]) for p in found} == {
        ("Hello", "maximumRetries"),
        ("Two", "dependsOn"),
        ("Three", "command"),
    }
    lines = text.splitlines()
    for p in found:
        assert f'"id": "{p["object"]}"' in lines[p["line"] - 1]
    human = cli("pipelines", "validate", str(tmp_path / "pipeline.json"))
    assert human.exit_code == 1
    assert "object 'Three', field 'command', position 11: expected a value" in human.output


def test_invalid_json_names_the_line(cli: Cli, tmp_path: Path) -> None:
    found = problems(cli, tmp_path, '{"objects": [\n  {"id": "A",\n}')
    assert found[0]["line"] == 3 and "not valid JSON" in found[0]["message"]


def test_parameters_are_typed_and_checked(cli: Cli, tmp_path: Path) -> None:
    found = problems(
        cli,
        tmp_path,
        definition(
            {**SHELL, "command": "echo #{myCount}"},
            parameters=[{"id": "myCount", "type": "Integer", "default": "ten"}, {"id": "bad", "type": "String"}],
            values={"myOther": "x"},
        ),
    )
    assert {(p["object"], p["field"]) for p in found} >= {("myCount", "default"), ("bad", "id"), ("myOther", "values")}


def test_a_bad_file_in_the_flows_folder_is_an_import_error_and_the_rest_load(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "good.json").write_text(definition(SHELL))
    broken = definition({**SHELL, "dependsOn": {"ref": "Nowhere"}})
    (flows / "broken.json").write_text(broken)
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if '"id": "Hello"' in text)
    (flows / "plain.py").write_text(
        "from ductwork import Flow, EmptyOperator\nwith Flow('plain') as f:\n    EmptyOperator(task_id='t')\n"
    )
    result = cli("flows", "list", "--json", env={"DUCTWORK_FLOWS_FOLDER": str(flows)})
    data = json.loads(result.output)
    assert {f["flow_id"]: f["style"] for f in data["flows"]} == {"good": "aws-datapipeline", "plain": "flow"}
    assert [(Path(e["file"]).name, e["line"]) for e in data["errors"]] == [("broken.json", line)]
    assert "object 'Hello', field 'dependsOn': reference to a missing object 'Nowhere'" in data["errors"][0]["error"]


def test_the_seed_000_definition_validates(cli: Cli) -> None:
    """Seed 000's definition (CSV format, Redshift database and data node), with its createTableSql
    completed and the objects the slide leaves out (from the same AWS guide example)."""
    root = Path(__file__).resolve().parents[2]
    result = cli(
        "pipelines", "validate", str(root / "examples" / "_declarative" / "seed000_copy_to_redshift.json"), "--json"
    )
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["valid"], data
    assert data["flows"][0]["tasks"] == ["S3DataNodeId1", "RedshiftCopyActivityId1", "RedshiftDataNodeId1"]
    assert "object 'RedshiftCopyActivityId1', field 'runsOn': accepted, has no effect in Ductwork" in data["ignored"]


def test_refused_types_say_why(cli: Cli, tmp_path: Path) -> None:
    found = problems(
        cli,
        tmp_path,
        definition(
            SHELL,
            {"id": "Emr", "type": "EmrActivity", "step": "x"},
            {"id": "Ddb", "type": "DynamoDBDataNode", "tableName": "t"},
        ),
    )
    messages = {p["object"]: p["message"] for p in found}
    assert "Amazon EMR" in messages["Emr"] and "DynamoDB is not supported" in messages["Ddb"]


def test_actions_and_preconditions_are_checked_where_they_are_used(cli: Cli, tmp_path: Path) -> None:
    found = problems(
        cli,
        tmp_path,
        definition(
            {**SHELL, "onFail": {"ref": "Stop"}, "onLateAction": {"ref": "Stop"}, "precondition": {"ref": "There"}},
            {"id": "Stop", "type": "Terminate"},
            {"id": "There", "type": "Exists"},
            {
                "id": "Alarm",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:x:1:t",
                "subject": "s",
                "message": "#{node.@scheduledStartTime.formatt('YYYY')}",
            },
        ),
    )
    got = {(p["object"], p["field"]): p["message"] for p in found}
    assert "Terminate acts only as an onLateAction" in got[("Hello", "onFail")]
    assert "onLateAction needs lateAfterTimeout" in got[("Hello", "onLateAction")]
    assert "is not a data node" in got[("Hello", "precondition")]
    assert "unknown function 'formatt'" in got[("Alarm", "message")]


def test_run_of_a_definition_with_several_problems_says_how_many_more(cli: Cli, tmp_path: Path) -> None:
    """`ductwork run FILE` stops at the first problem; it says how many more there are and
    where to see them all."""
    path = tmp_path / "several.json"
    path.write_text(
        definition(
            {"id": "A", "type": "ShellCommandActivity", "command": "echo a", "dependsOn": {"ref": "Missing"}},
            {"id": "B", "type": "ShellCommandActivity", "comand": "echo b"},
        )
    )
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code != 0
    assert "object 'A', field 'dependsOn': reference to a missing object 'Missing'." in result.output
    assert f"(and 2 more problems: `ductwork pipelines validate {path}` lists them all)" in result.output
    path.write_text(definition({"id": "A", "type": "ShellCommandActivity", "comand": "echo a"}, SHELL))
    result = cli("run", str(path), "--no-progress")
    assert "(and 1 more problem: " in result.output


def test_every_command_naming_a_definition_with_several_problems_says_how_many_more(cli: Cli, tmp_path: Path) -> None:
    # `run` said "(and 1 more problem: ...)"; `flows show` and `trigger`, which find the file
    # through the flow index, gave the first problem alone.
    path = tmp_path / "several.json"
    path.write_text(definition({"id": "A", "type": "ShellCommandActivity", "comand": "echo a"}, SHELL))
    for command in (["run", str(path), "--no-progress"], ["flows", "show", str(path)], ["trigger", str(path)]):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert f"(and 1 more problem: `ductwork pipelines validate {path}` lists them all)" in result.output, command


def test_the_default_objects_roles_and_log_uri_are_said_to_have_no_effect(cli: Cli, tmp_path: Path) -> None:
    """AWS's own templates put role, resourceRole and pipelineLogUri on the Default object:
    `validate` lists them as accepted without effect, as it does for the same fields elsewhere."""
    path = tmp_path / "pipeline.json"
    text = json.loads(definition(SHELL))
    text["objects"][0]["pipelineLogUri"] = "s3://logs/"
    path.write_text(json.dumps(text))
    data = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert data["valid"], data
    for name in ("role", "resourceRole", "pipelineLogUri"):
        assert f"object 'Default', field '{name}': accepted, has no effect in Ductwork" in data["ignored"]
    assert not any("scheduleType" in note or "failureAndRerunMode" in note for note in data["ignored"])


def test_a_duplicate_id_is_reported_at_the_duplicate(cli: Cli, tmp_path: Path) -> None:
    text = definition(
        SHELL, {"id": "Other", "type": "ShellCommandActivity", "command": "echo"}, dict(SHELL), dict(SHELL)
    )
    lines = [i for i, line in enumerate(text.splitlines(), 1) if '"id": "Hello"' in line]
    assert len(lines) == 3
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"], p["line"], p["message"]) for p in found] == [
        ("Hello", "id", lines[1], f"duplicate object id (the first is at line {lines[0]})"),
        ("Hello", "id", lines[2], f"duplicate object id (the first is at line {lines[0]})"),
    ]


def test_parameter_problems_name_the_parameter_and_an_inherited_field_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """A bad parameter is named as a parameter, at its line; a bad field of the Default object is
    reported once, not once per object that inherits it."""
    text = json.dumps(
        {
            "objects": [
                {"id": "Default", "scheduleType": "ondemand", "maximumRetries": "many"},
                {"id": "One", "type": "ShellCommandActivity", "command": "echo 1"},
                {"id": "Two", "type": "ShellCommandActivity", "command": "echo 2"},
                {"id": "Three", "type": "ShellCommandActivity", "command": "echo 3"},
            ],
            "parameters": [{"id": "myCount", "type": "Integer", "default": "x"}, {"id": "bucket", "type": "String"}],
            "values": {"myCnt": "3"},
        },
        indent=2,
    )
    lines = {
        name: next(i for i, t in enumerate(text.splitlines(), 1) if f'"{name}"' in t) for name in ("myCount", "bucket")
    }
    path = tmp_path / "pipeline.json"
    path.write_text(text)
    result = cli("pipelines", "validate", str(path))
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert out.count("field 'maximumRetries': wants an Integer, got 'many'") == 1
    assert f"line {lines['myCount']}: parameter 'myCount', field 'default': value 'x' does not fit" in out
    assert f"line {lines['bucket']}: parameter 'bucket', field 'id': a parameter id must start with 'my'" in out
    assert "parameter 'myCnt', field 'values': a value is given for 'myCnt', which is not a parameter." in out


def test_an_array_parameter_in_a_single_valued_field_is_refused(cli: Cli, tmp_path: Path) -> None:
    """An isArray parameter expands to one text per item: in scriptArgument that is one argument
    each, but in command it made a garbled command line; validation says so, whatever the
    default's length."""
    text = definition(
        {"id": "Each", "type": "ShellCommandActivity", "command": "load #{myTables}"},
        {"id": "Args", "type": "ShellCommandActivity", "command": "load", "scriptArgument": "#{myTables}"},
        parameters=[{"id": "myTables", "type": "String", "isArray": "true", "default": ["only"]}],
    )
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"]) for p in found] == [("Each", "command")]
    assert "takes a single value, but a list (an isArray parameter)" in found[0]["message"]


def test_a_reference_to_an_object_without_a_type_is_refused(cli: Cli, tmp_path: Path) -> None:
    """onFail naming the Default object validated, then failed at run time as an SnsAlarm with
    no topic."""
    found = problems(
        cli,
        tmp_path,
        definition({**SHELL, "onFail": {"ref": "Default"}, "precondition": {"ref": "Default"}}),
    )
    assert {(p["object"], p["field"], p["message"]) for p in found} == {
        ("Hello", "onFail", "refers to 'Default', which has no type; it wants an action"),
        ("Hello", "precondition", "refers to 'Default', which has no type; it wants a precondition"),
    }


@pytest.mark.parametrize(
    ("written", "shown"),
    [(["ShellCommandActivity"], "the list ['ShellCommandActivity']"), ({"ref": "B"}, "a reference to 'B'")],
)
def test_a_type_that_is_not_one_name_says_so(cli: Cli, tmp_path: Path, written: Any, shown: str) -> None:
    """A type given as a list or a reference was reported as a missing type."""
    found = problems(cli, tmp_path, definition(SHELL, {"id": "A", "type": written, "command": "echo"}))
    assert (found[0]["object"], found[0]["field"]) == ("A", "type")
    assert found[0]["message"] == f"type must be one type name, such as 'ShellCommandActivity', not {shown}"


def test_a_parameter_value_that_is_an_object_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A value given as a JSON object was accepted and spliced into commands as a Python dict."""
    found = problems(
        cli,
        tmp_path,
        definition(
            {**SHELL, "command": "echo #{myX} #{myY}"},
            parameters=[{"id": "myX"}, {"id": "myY", "default": [["a"]]}],
            values={"myX": {"a": 1}},
        ),
    )
    assert [(p["object"], p["field"], p["message"]) for p in found] == [
        ("myX", "values", "a value is text or a list of texts, not {'a': 1}"),
        ("myY", "default", "a value is text or a list of texts, not [['a']]"),
    ]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-02-01T00:00:00", "occurrences": "3"},
            "occurrences",
            "give occurrences or endDateTime, not both",
        ),
        (
            {"startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-01T00:00:00"},
            "endDateTime",
            "endDateTime must be after the start",
        ),
        # a wrong start is one problem, not also "occurrences with startAt ... needs activation"
        ({"startDateTime": "makeDat(2024,1,1)", "occurrences": "2"}, "startDateTime", "Did you mean one of 'makeDate'"),
        ({"startDateTime": "2024-13-01", "occurrences": "2"}, "startDateTime", "wants a DateTime"),
    ],
)
def test_a_schedules_start_and_end_are_checked_as_aws_checks_them(
    cli: Cli, tmp_path: Path, fields: dict[str, str], field: str, message: str
) -> None:
    """AWS refuses occurrences with endDateTime, and an end that is not after the start."""
    text = json.dumps(
        {
            "objects": [
                {"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Daily"}},
                {"id": "Daily", "type": "Schedule", "period": "1 days", **fields},
                SHELL,
            ]
        }
    )
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"]) for p in found] == [("Daily", field)], found
    assert message in found[0]["message"]


def test_put_names_the_files_own_lines(cli: Cli, tmp_path: Path) -> None:
    """`pipelines put` checked the text it stores, re-written with Ductwork's own key: its
    problems named that text's lines (line 8 for a one-line file), not the file's."""
    path = tmp_path / "oneline.json"
    path.write_text(
        json.dumps({"objects": [{"id": "Default", "scheduleType": "ondemand"}, {**SHELL, "command": "#{myNope}"}]})
    )
    result = cli("pipelines", "put", str(path))
    assert result.exit_code == 2
    assert "line 1: object 'Hello', field 'command'" in result.output, result.output


def test_a_duplicate_id_does_not_hide_the_other_problems(cli: Cli, tmp_path: Path) -> None:
    """`validate` stopped at a duplicate object id (or an object without one): the definition's
    other problems came only after that was fixed, where the README promises every problem at
    once."""
    text = definition(
        SHELL,
        dict(SHELL),
        {"type": "ShellCommandActivity", "command": "echo no id"},
        {"id": "Typo", "type": "ShellCommandActivity", "comand": "echo"},
        {**SHELL, "id": "Late", "dependsOn": {"ref": "Nowhere"}},
    )
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"]) for p in found] == [
        ("Hello", "id"),
        (None, "id"),
        ("Typo", "comand"),
        ("Typo", "command"),
        ("Late", "dependsOn"),
    ]


def test_a_value_that_is_not_a_field_value_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """A command written as a JSON object is reported as such, not also as a missing command."""
    found = problems(cli, tmp_path, definition({**SHELL, "command": {"text": "echo"}}, {**SHELL, "id": "Two"}))
    assert [(p["object"], p["field"], p["message"]) for p in found] == [
        ("Hello", "command", 'an object value must be a reference {"ref": "ObjectId"}')
    ]


def test_every_expression_error_of_a_field_is_reported(cli: Cli, tmp_path: Path) -> None:
    """Only the first bad expression of a field was reported: fixing it revealed the next one."""
    command = "#{myUndeclared} #{@scheduledStartTme} #{formatt(@scheduledStartTime, 'YYYY')} #{myOk}"
    text = definition(
        {**SHELL, "command": command, "scriptArgument": ["#{1 +}", "#{nothing} #{more}"]},
        parameters=[{"id": "myOk", "type": "String", "default": "x"}],
    )
    found = problems(cli, tmp_path, text)
    got = [(p["field"], p["position"], p["message"].split(".")[0].split(";")[0]) for p in found]
    assert got == [
        ("command", 3, "'myUndeclared' is not a field of 'Hello' nor a parameter"),
        ("command", 19, "unknown runtime field '@scheduledStartTme'"),
        ("command", 41, "unknown function 'formatt'"),
        ("scriptArgument", 6, "expected a value, found the end of the expression"),
        ("scriptArgument", 3, "'nothing' is not a field of 'Hello' nor a parameter"),
        ("scriptArgument", 14, "'more' is not a field of 'Hello' nor a parameter"),
    ], found


def test_a_bad_field_used_by_another_is_reported_where_the_other_refers_to_it(cli: Cli, tmp_path: Path) -> None:
    """`command` using `#{myDir}`, whose own expression is bad, was reported as "field 'command',
    position 9: 'myMissing' is not a field": the position and the name were myDir's, not anything
    in the command. It names the field it uses, at the reference's own position."""
    text = definition({**SHELL, "myDir": "/data/#{myMissing}", "command": "echo #{myDir} and more"})
    found = problems(cli, tmp_path, text)
    assert [(p["field"], p["position"], p["message"]) for p in found] == [
        ("command", 8, "field 'myDir' of 'Hello', position 9: 'myMissing' is not a field of 'Hello' nor a parameter."),
        ("myDir", 9, "'myMissing' is not a field of 'Hello' nor a parameter."),
    ]


def test_validate_says_ondemand_and_what_only_an_activation_runs(cli: Cli, tmp_path: Path) -> None:
    """validate said 'schedule None' for an on-demand pipeline (the web UI says 'On demand'), and
    said 'valid' for AWS's helloworld sample (startAt FIRST_ACTIVATION_DATE_TIME, occurrences 1)
    with nothing more, though `ductwork run` and the flows folder refuse it."""
    on_demand = tmp_path / "now.json"
    on_demand.write_text(
        json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "ondemand"},
                    {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"},
                ]
            }
        )
    )
    result = cli("pipelines", "validate", str(on_demand))
    assert result.exit_code == 0 and "schedule ondemand, 1 tasks" in result.output, result.output
    as_json = json.loads(cli("pipelines", "validate", str(on_demand), "--json").output)
    assert as_json["flows"][0]["schedule"] == "ondemand", as_json  # was the text "None"
    hello = tmp_path / "hello.json"
    hello.write_text(
        json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "DefaultSchedule"}},
                    {
                        "id": "DefaultSchedule",
                        "type": "Schedule",
                        "occurrences": "1",
                        "period": "1 Day",
                        "startAt": "FIRST_ACTIVATION_DATE_TIME",
                    },
                    {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"},
                ]
            }
        )
    )
    result = cli("pipelines", "validate", str(hello))
    assert result.exit_code == 0, result.output
    assert "`ductwork run` and the flows folder refuse it (use `pipelines put` and `activate`): " in result.output
    assert "object 'DefaultSchedule', field 'occurrences'" in result.output


def test_a_parameter_value_that_does_not_fit_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """A value that does not fit its parameter's type was said, and then again at every field
    using the parameter ('parameter myCount has no value (give it with --param ...)')."""
    found = problems(
        cli,
        tmp_path,
        definition(
            {**SHELL, "command": "echo #{myCount}", "scriptArgument": ["#{myCount}", "#{myName}"]},
            parameters=[
                {"id": "myCount", "type": "Integer", "default": "1"},
                {"id": "myName", "type": "String", "default": "x", "allowedValues": ["a", "b"]},
            ],
            values={"myCount": "ten"},
        ),
    )
    assert [(p["object"], p["field"]) for p in found] == [("myCount", "values"), ("myName", "default")], found


def test_a_bad_value_of_a_parameter_read_at_load_time_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """`pipelines put p.json --param myRetries=x` said the value did not fit, and then that
    Default's maximumRetries '#{myRetries}' had no value for it ('give it with --param')."""
    found = problems(
        cli,
        tmp_path,
        json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "ondemand", "maximumRetries": "#{myRetries}"},
                    {**SHELL, "retryDelay": "#{myDelay}"},
                ],
                "parameters": [
                    {"id": "myRetries", "type": "Integer", "default": "1"},
                    {"id": "myDelay", "type": "String"},
                ],
                "values": {"myRetries": "x"},
            }
        ),
    )
    assert [(p["object"], p["field"]) for p in found] == [("myRetries", "values"), ("Hello", "retryDelay")], found
    assert "parameter 'myDelay' has no value" in found[1]["message"]


@pytest.mark.parametrize(
    ("period", "start", "shown"),
    [
        ("1 month", "2024-01-01T00:00:00", "every 1 month (@monthly)"),
        ("1 months", "2024-01-15T06:30:00", "every 1 month (30 6 15 * *)"),
        ("3 months", "2024-02-15T06:00:00", "every 3 months (0 6 15 2-12/3 *)"),
        ("1 year", "2024-01-01T00:00:00", "every 1 year (@yearly)"),
    ],
)
def test_a_schedule_in_months_shows_its_period(cli: Cli, tmp_path: Path, period: str, start: str, shown: str) -> None:
    """A "1 month" Schedule was shown as '0 0 1 1,2,3,4,5,6,7,8,9,10,11,12 *' by validate and
    flows list: the period a user wrote, and the shortest cron text (a preset if one fits)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    text = json.dumps(
        {
            "objects": [
                {"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Every"}},
                {"id": "Every", "type": "Schedule", "period": period, "startDateTime": start},
                SHELL,
            ]
        }
    )
    (flows / "monthly.json").write_text(text)
    result = cli("pipelines", "validate", str(flows / "monthly.json"))
    assert result.exit_code == 0, result.output
    assert f"schedule {shown}, 1 tasks" in result.output
    (flow,) = compile_file(flows / "monthly.json")  # what flows list and the web UI show
    assert flow.schedule.text == shown.split("(")[1].rstrip(")")


def test_worker_group_is_ignored_with_runs_on_and_late_after_timeout_on_demand(cli: Cli, tmp_path: Path) -> None:
    """AWS ignores workerGroup on an object that has runsOn, and lateAfterTimeout on an ondemand
    pipeline. Ductwork queued the runsOn object's task on the workerGroup anyway (no worker of
    that group may exist: it waited for ever), and dropped the lateness without a word."""
    path = tmp_path / "pipeline.json"
    path.write_text(
        json.dumps(
            {
                "objects": [
                    {
                        "id": "Default",
                        "scheduleType": "ondemand",
                        "workerGroup": "wg-etl",
                        "lateAfterTimeout": "1 hours",
                    },
                    {"id": "Ec2", "type": "Ec2Resource", "instanceType": "t1.micro"},
                    {**SHELL, "runsOn": {"ref": "Ec2"}},
                    {"id": "Local", "type": "ShellCommandActivity", "command": "true", "dependsOn": {"ref": "Hello"}},
                ]
            }
        )
    )
    data = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert data["valid"], data
    assert "object 'Hello', field 'workerGroup': ignored because the object has runsOn" in "\n".join(data["ignored"])
    late = [n for n in data["ignored"] if "lateAfterTimeout" in n]
    assert late == [
        "object 'Default', field 'lateAfterTimeout': has no effect on an ondemand pipeline: as in AWS, an object "
        "is late (and its onLateAction acts) only after a scheduled start"
    ]
    (flow,) = compile_file(path)
    assert {t.task_id: t.queue for t in flow.tasks.values()} == {"Hello": "default", "Local": "wg-etl"}


def test_a_bad_expression_in_a_default_field_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """AWS's oracle-backup sample without its parameters file: Default's pipelineLogUri
    '#{myPipelineLogUri}' was said once for Default and again for every object inheriting it
    ("... is not a field of 'S3'", "... of 'BackupTable'"), all on Default's line."""
    found = problems(
        cli,
        tmp_path,
        json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "ondemand", "pipelineLogUri": "#{myPipelineLogUri}"},
                    SHELL,
                    {"id": "Other", "type": "ShellCommandActivity", "command": "#{myCommand}"},
                    {"id": "Third", "type": "ShellCommandActivity", "command": "true"},
                ]
            }
        ),
    )
    assert [(p["object"], p["field"], p["message"].split(" nor")[0]) for p in found] == [
        ("Default", "pipelineLogUri", "'myPipelineLogUri' is not a field of 'Default'"),
        ("Other", "command", "'myCommand' is not a field of 'Other'"),
    ]


def test_put_names_no_line_past_the_file_for_a_value_given_with_values(cli: Cli, tmp_path: Path) -> None:
    """AWS's oracle-backup sample stored with its parameters and values files: a blank Integer
    value was said at 'definition.json: line 103' of a 69-line file (a line of the text with the
    parameters merged in). It now has no line and says where such values come from."""
    path = tmp_path / "definition.json"
    path.write_text(definition({**SHELL, "command": "echo #{myPort}"}))
    params = tmp_path / "parameters.json"
    params.write_text(json.dumps({"parameters": [{"id": "myPort", "type": "Integer"}]}))
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"values": {"myPort": ""}}))
    result = cli("pipelines", "put", str(path), "--parameters", str(params), "--values", str(values))
    assert result.exit_code != 0
    lines = len(path.read_text().splitlines())
    assert "  - parameter 'myPort', field 'values': value '' does not fit" in result.output, result.output
    assert "(given with --parameters, --values or --param)" in result.output
    assert not any(f"line {n}:" in result.output for n in range(lines + 1, lines + 20)), result.output


def test_an_object_whose_id_is_a_task_id_keeps_it(tmp_path: Path) -> None:
    """ "My Activity" (a space: its task is My_Activity) listed before "My_Activity" took that task
    id, and the object written My_Activity ran as My_Activity_2: a failure of My_Activity_2 named
    neither object."""
    path = tmp_path / "ids.json"
    path.write_text(
        definition(
            {"id": "My Activity", "type": "ShellCommandActivity", "command": "true"},
            {
                "id": "My_Activity",
                "type": "ShellCommandActivity",
                "command": "true",
                "dependsOn": {"ref": "My Activity"},
            },
        )
    )
    (flow,) = compile_file(path)
    assert [(t.task_id, t.object_id) for t in flow.tasks.values()] == [  # type: ignore[attr-defined]
        ("My_Activity_2", "My Activity"),
        ("My_Activity", "My_Activity"),
    ]


def test_validate_takes_parameter_objects_and_values_as_put_does(cli: Cli, tmp_path: Path) -> None:
    """AWS's samples keep parameters in their own files (oracle-backup: definition.json,
    parameters.json, values.json); validate took only the definition, so every #{myXxx} was
    'not a field ... nor a parameter' and the values could not be checked before a put."""
    path = tmp_path / "definition.json"
    path.write_text(definition({**SHELL, "command": "echo #{myPort}", "maximumRetries": "#{myRetries}"}))
    params = tmp_path / "parameters.json"
    params.write_text(
        json.dumps({"parameters": [{"id": "myPort", "type": "Integer"}, {"id": "myRetries", "type": "Integer"}]})
    )
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"values": {"myPort": "", "myRetries": "2"}}))
    alone = json.loads(cli("pipelines", "validate", str(path), "--json").output)
    assert sorted(p["field"] for p in alone["problems"]) == ["command", "maximumRetries"]
    given = ["--parameters", str(params), "--values", str(values)]
    result = cli("pipelines", "validate", str(path), *given, "--json")
    data = json.loads(result.output)
    assert result.exit_code == 1 and [(p["object"], p["field"], p["line"]) for p in data["problems"]] == [
        ("myPort", "values", None)
    ], data
    assert data["problems"][0]["message"].endswith("(given with --parameters, --values or --param)")
    result = cli("pipelines", "validate", str(path), *given, "--param", "myPort=5432")
    assert result.exit_code == 0 and "valid; flow definition" in result.output, result.output


def test_put_takes_an_array_as_run_does_a_json_list_or_the_name_repeated(cli: Cli, tmp_path: Path) -> None:
    """`run --param myTables=a --param myTables=b` says to give a list once, as JSON; `pipelines
    put --param 'myTables=["a", "b"]'` then stored ONE item, the text '["a", "b"]', and the run
    was given that text as a single argument. For an isArray parameter a JSON list is its items
    there too (AWS's repeated name still works); any other parameter keeps the text as it is."""
    from ductwork.declarative.files import compile_file
    from ductwork.services import pipelines as service
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import pipelines as repo

    path = tmp_path / "tables.json"
    path.write_text(
        json.dumps(
            {
                "objects": [
                    {"id": "Default", "scheduleType": "ondemand"},
                    {"id": "Each", "type": "ShellCommandActivity", "command": "echo", "scriptArgument": "#{myTables}"},
                ],
                "parameters": [
                    {"id": "myTables", "type": "String", "isArray": "true", "default": "a"},
                    {"id": "myNote", "type": "String", "default": "n"},
                ],
            }
        )
    )
    engine = create_engine(Settings.load().db_url)
    for given, tables in (
        (["--param", 'myTables=["orders", "order items"]'], '["orders","order items"]'),
        (["--param", "myTables=orders", "--param", "myTables=order items"], '["orders","order items"]'),
        (["--param", 'myTables=["only"]', "--param", 'myNote=["kept", "as text"]'], '["only"]'),
    ):
        assert cli("pipelines", "validate", str(path), *given).exit_code == 0
        put = cli("pipelines", "put", str(path), *given)
        assert put.exit_code == 0, put.output
        with read_transaction(engine) as conn:
            version = repo.latest_version(conn, "tables")
        assert version is not None
        stored = tmp_path / "stored" / "tables.json"
        stored.parent.mkdir(exist_ok=True)
        stored.write_text(service.materialized(version))
        (flow,) = compile_file(stored)
        params = flow.to_graph().meta.params
        assert params["myTables"]["default"] == tables, (given, params)
    assert params["myNote"]["default"] == '["kept", "as text"]'
    engine.dispose()


@pytest.mark.parametrize("given", [(), ("--param", "myPort=5432")])
def test_a_definition_cut_short_is_the_files_problem_not_the_parameters(
    cli: Cli, tmp_path: Path, given: tuple[str, ...]
) -> None:
    """A JSON file that ends early fails at the line after its last: validate said it without a
    line and "(given with --parameters, --values or --param)" when no parameter was given, and
    with a --param it ended with status 2 instead of listing the problem (exit 1)."""
    path = tmp_path / "definition.json"
    path.write_text('{"objects": [\n')
    result = cli("pipelines", "validate", str(path), *given, "--json")
    assert result.exit_code == 1, result.output
    problems = json.loads(result.output)["problems"]
    assert [(p["line"], p["message"]) for p in problems] == [
        (2, "not valid JSON: Expecting value (line 2, column 1)")
    ], problems


def test_a_field_of_a_parameter_says_the_parameter_is_a_value(cli: Cli, tmp_path: Path) -> None:
    """`#{myBucket.path}` said "'myBucket' is not a field of 'Hello' nor a parameter. Did you mean
    'myBucket'?", suggesting the very name written; it says the parameter has no fields."""
    text = definition(
        {**SHELL, "command": "echo #{myBucket.path}"},
        parameters=[{"id": "myBucket", "type": "String", "default": "s3://b"}],
    )
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"], p["message"]) for p in found] == [
        ("Hello", "command", "parameter 'myBucket' is a value, not an object, so it has no field 'path'")
    ]


def test_a_second_schedule_is_named_where_an_object_refers_to_it(cli: Cli, tmp_path: Path) -> None:
    """With the Default object on one Schedule and one activity on another, the problem named
    the Schedule object and its 'schedule' field (which it has not), at its line; it names the
    activity that refers to the odd schedule, at the activity's line."""
    text = json.dumps(
        {
            "objects": [
                {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
                {"id": "Daily", "type": "Schedule", "period": "1 days", "startDateTime": "2024-01-01T00:00:00"},
                {"id": "Hourly", "type": "Schedule", "period": "1 hours", "startDateTime": "2024-01-01T00:00:00"},
                {**SHELL},
                {**SHELL, "id": "Other"},
                {**SHELL, "id": "Odd", "schedule": {"ref": "Hourly"}},
            ]
        },
        indent=2,
    )
    found = problems(cli, tmp_path, text)
    assert [(p["object"], p["field"], p["line"]) for p in found] == [
        ("Odd", "schedule", text.count("\n", 0, text.index('"Odd"')) + 1)
    ]
    assert "uses 2 (Daily by Hello, Other; Hourly by Odd)" in found[0]["message"]


def test_an_object_or_parameter_without_an_id_is_named_at_its_line(cli: Cli, tmp_path: Path) -> None:
    """An object (or parameter) with no id had no line, "objects[3]: every object needs a
    non-empty string 'id'", in a file where nothing else says which one is the fourth."""
    text = (
        '{"parameters": [{"id": "myA", "type": "String"},\n'
        '   {"type": "String"}],\n'
        ' "objects": [\n'
        '  {"id": "Default", "scheduleType": "ondemand", "myNote": "[a, {b}] \\" ]"},\n'
        '  "oops",\n'
        '  {"type": "ShellCommandActivity",\n'
        '   "command": "x"},\n'
        '  {"id": "Hello", "type": "ShellCommandActivity", "command": "echo #{myA}"}\n'
        " ]}\n"
    )
    found = problems(cli, tmp_path, text)
    assert [(p["line"], p["message"]) for p in found] == [
        (5, "objects[1] is not a JSON object"),
        (6, "objects[2]: every object needs a non-empty string 'id'"),
        (2, "parameters[1] needs a string 'id'"),
    ], found


def test_a_null_field_value_says_null(cli: Cli, tmp_path: Path) -> None:
    """`"scriptUri": null` was "unsupported value None", Python's word for what JSON calls null."""
    found = problems(cli, tmp_path, definition({**SHELL, "scriptUri": None}))
    assert [(p["object"], p["field"], p["message"]) for p in found] == [
        ("Hello", "scriptUri", "null is not a field value: write a string, or leave the field out")
    ]


def test_run_names_every_parameter_without_a_value_at_once(cli: Cli, tmp_path: Path) -> None:
    """AWS's templates declare their parameters without defaults (the billing template has seven):
    `ductwork run` refused the first alone, and the next try the second, one at a time."""
    text = definition(
        {**SHELL, "command": "echo #{myIn} #{myOut} #{myKeep}"},
        parameters=[
            {"id": "myIn", "type": "AWS::S3::ObjectKey"},
            {"id": "myOut", "type": "String"},
            {"id": "myKeep", "type": "String", "default": "yes"},
        ],
    )
    path = tmp_path / "two.json"
    path.write_text(text)
    result = cli("run", str(path), "--no-progress")
    assert result.exit_code == 2
    assert (
        "missing required parameters 'myIn' (str), 'myOut' (str); give them with --param myIn=VALUE --param myOut=VALUE"
        in result.output
    )
    result = cli("run", str(path), "--no-progress", "--param", "myIn=s3://b")
    assert result.exit_code == 2
    assert "missing required parameter 'myOut' (str); give it with --param myOut=VALUE" in result.output


def test_a_copy_without_output_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """A CopyActivity with no output was two problems on the same field: "CopyActivity needs
    'output'" and "a CopyActivity copies from one data node to one; output names 0"."""
    node = {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"}
    found = problems(cli, tmp_path, definition(node, {"id": "Copy", "type": "CopyActivity", "input": {"ref": "In"}}))
    assert [(p["object"], p["field"], p["message"]) for p in found] == [
        ("Copy", "output", "CopyActivity needs 'output'")
    ]
