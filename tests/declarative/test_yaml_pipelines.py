"""Ductwork's pipeline files: YAML tasks by operator name, checked against the published JSON
Schema with every problem named by task, argument and line; run in-process; and the export of
Python flows, which loads back to the same graph."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import jsonschema
import pytest

from conftest import Cli
from ductwork.declarative.files import compile_file
from ductwork.declarative.problems import PipelineDefinitionError
from ductwork.declarative.yamlflow.export import ExportError, export_yaml
from ductwork.loading import load_flow
from ductwork.testing import run_flow

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
flow: orders
description: daily orders
schedule: "@daily"
start_date: 2024-01-01
params:
  limit: {type: int, default: 100}
  region: eu
defaults:
  retries: 1
  retry_delay: 5s
groups:
  quality: {tooltip: checks before the load}
tasks:
  extract:
    operator: BashOperator
    bash_command: "echo extract {{ params.limit }} {{ params.region }}"
  check:
    operator: PythonOperator
    group: quality
    python_callable: {callable: "operator:truth"}
    op_args: [1]
  load:
    operator: EmptyOperator
    depends_on: [extract, quality.check]
    trigger_rule: none_failed
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_yaml_pipeline_compiles_to_the_same_model_and_runs(tmp_path: Path) -> None:
    flow = compile_file(write(tmp_path, "orders.yaml", GOOD))[0]
    graph = flow.to_graph()
    assert graph.meta.style == "yaml" and graph.meta.schedule == "@daily"
    assert list(graph.nodes) == ["extract", "quality.check", "load"]
    assert graph.nodes["load"].upstream == ("extract", "quality.check")
    assert graph.nodes["load"].trigger_rule.value == "none_failed"
    assert graph.nodes["extract"].retries == 1 and graph.nodes["extract"].retry_delay == 5.0
    assert graph.groups["quality"]["tooltip"] == "checks before the load"
    result = run_flow(flow, params={"limit": 7})
    assert result.state == "success"
    assert result.result("extract") == "extract 7 eu"
    assert result.result("quality.check") is True


def test_every_problem_names_task_argument_and_line(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        flow: bad
        tasks:
          extract:
            operator: BashOperater
            bash_command: echo
          load:
            operator: BashOperator
            bash_comand: echo
            retries: three
            depends_on: [extract, nowhere]
          a:
            operator: EmptyOperator
            depends_on: b
          b:
            operator: EmptyOperator
            depends_on: a
          py:
            operator: PythonOperator
            python_callable: {callable: "os.path:nothere"}
        """,
    )
    result = cli("pipelines", "validate", str(path), "--json")
    assert result.exit_code == 1
    found = {(p["object"], p["field"], p["line"]): p["message"] for p in json.loads(result.output)["problems"]}
    assert "Did you mean 'bash_command'?" in found[("load", "bash_comand", 8)]
    assert "'three' is not of type 'integer'" in found[("load", "retries", 9)]
    assert "unknown operator 'BashOperater'. Did you mean" in found[("extract", None, 3)]
    assert "depends on 'nowhere', which is not a task" in found[("load", "depends_on", 10)]
    assert "dependency cycle: a -> b -> a" in found[("a", "depends_on", 13)]
    assert "'os.path' has no 'nothere'" in found[("py", "python_callable", 19)]
    human = cli("pipelines", "validate", str(path))
    assert "line 8: task 'load', field 'bash_comand': unknown argument 'bash_comand'" in human.output


def test_an_unknown_argument_does_not_hide_the_tasks_other_problems(cli: Cli, tmp_path: Path) -> None:
    """A task with an unknown argument was left out of the later checks: its bad retry_delay,
    unimportable callable or out-of-range pool_slots showed only once the name was fixed. An
    argument refused by the schema is not reported twice (as missing) either."""
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        flow: bad
        tasks:
          extract:
            operator: BashOperator
            bash_command: echo
            retires: 3
            retry_delay: soon
            pool_slots: 0
          load:
            operator: BashOperator
            bash_command: 3
          check:
            operator: PythonOperator
            python_callable: {callable: "os.path:nothere"}
            colour: red
        """,
    )
    result = cli("pipelines", "validate", str(path), "--json")
    assert result.exit_code == 1
    found = {(p["object"], p["field"], p["line"]): p["message"] for p in json.loads(result.output)["problems"]}
    assert set(found) == {
        ("extract", "retires", 6),
        ("extract", "retry_delay", 7),
        ("extract", None, 3),
        ("load", "bash_command", 11),
        ("check", "python_callable", 14),
        ("check", "colour", 15),
    }, found
    assert "expected seconds, a duration like 1h30m" in found[("extract", "retry_delay", 7)]
    assert found[("extract", None, 3)] == "pool_slots must be at least 1, got 0"


def test_top_level_keys_and_defaults_are_named_at_their_line(tmp_path: Path) -> None:
    """An unknown top-level key (Airflow's habit: retries beside the tasks) says where it goes and
    does not hide the tasks' problems; a bad or unused default is reported at its line in
    'defaults', once, not at each task that inherits it."""
    path = write(
        tmp_path,
        "keys.yaml",
        """\
        flow: keys
        retries: 2
        tasks:
          a:
            operator: BashOperater
            bash_command: echo a
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    found = {(p.field, p.line): p.message for p in info.value.problems}
    assert found[("retries", 2)] == (
        "unknown key 'retries' at the top level of the file. Arguments for every task go under 'defaults' "
        "(defaults: {retries: ...})."
    )
    assert "unknown operator 'BashOperater'" in found[(None, 4)]
    path = write(
        tmp_path,
        "defaults.yaml",
        """\
        flow: defaults
        defaults:
          retries: three
        tasks:
          a: {operator: EmptyOperator}
          b: {operator: EmptyOperator}
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    (problem,) = info.value.problems
    assert (problem.object_id, problem.field, problem.line) == (None, "defaults.retries", 3)
    assert problem.message == "retries must be a whole number, got 'three'"
    path = write(
        tmp_path,
        "unused.yaml",
        """\
        flow: unused
        defaults:
          owner: data
          retry_delai: 5s
        tasks:
          a: {operator: EmptyOperator}
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("defaults.retry_delai", 4)
    assert "default_args key 'retry_delai' is not an argument of any of its tasks" in problem.message


@pytest.mark.parametrize(
    ("head", "field", "line", "message"),
    [
        ('schedule: "@daily"\nstart_date: someday\n', "start_date", 2, "start_date 'someday' is not an ISO date"),
        (
            "start_date: 2024-01-01\nend_date: 2023-01-01\n",
            "end_date",
            2,
            "end_date 2023-01-01T00:00:00+00:00 is before",
        ),
        ("timezone: Mars/Olympus\n", "timezone", 1, "unknown timezone 'Mars/Olympus'"),
        ('schedule: "every day"\n', "schedule", 1, "invalid schedule 'every day'"),
    ],
)
def test_a_bad_flow_setting_is_named_at_its_own_line(
    tmp_path: Path, head: str, field: str, line: int, message: str
) -> None:
    """A bad start_date, end_date or timezone was reported at the schedule's line."""
    path = tmp_path / "setting.yaml"
    path.write_text(f"{head}tasks:\n  a: {{operator: EmptyOperator}}\n")
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == (field, line)
    assert message in problem.message


def test_a_task_that_is_not_a_mapping_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A task id with nothing under it (an indentation slip) or a list, and a depends_on that is a
    number, crashed `pipelines validate` with a traceback (AttributeError, TypeError)."""
    path = write(
        tmp_path,
        "shapes.yaml",
        """\
        flow: shapes
        tasks:
          a:
          operator: EmptyOperator
          b: [1, 2]
          c: {operator: EmptyOperator, depends_on: 5}
          d: {operator: EmptyOperator, depends_on: [c, 5]}
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    found = [(p.object_id, p.field, p.line, p.message) for p in info.value.problems]
    hint = "a task is a mapping of 'operator' and its arguments, indented under the task id (check the indentation)"
    assert found == [
        ("a", None, 3, f"has nothing under it: {hint}"),
        ("b", None, 5, f"is [1, 2], not a mapping: {hint}"),
        ("c", "depends_on", 6, "wants a task id or a list of task ids, got 5"),
        ("d", "depends_on", 7, "wants a task id or a list of task ids, got ['c', 5]"),
        ("operator", None, 4, f"is 'EmptyOperator', not a mapping: {hint}"),
    ]


def test_a_misspelt_parameter_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    """jsonschema's "Additional properties are not allowed ('defualt' was unexpected)" was shown
    as it is for a parameter; it is an unknown key, at its line, with the keys a parameter takes."""
    path = write(
        tmp_path,
        "params.yaml",
        """\
        flow: params
        params:
          region: eu
          limit:
            type: int
            defualt: 5
        tasks:
          a: {operator: EmptyOperator}
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    (problem,) = info.value.problems
    assert (problem.kind, problem.object_id, problem.field, problem.line) == ("parameter", "limit", "defualt", 6)
    assert problem.message.startswith("unknown key 'defualt'. Did you mean 'default'? A parameter takes choices,")


def test_a_broken_yaml_file_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(write(tmp_path, "broken.yml", "tasks:\n  a: [1, 2\n  b: 3\n"))
    assert info.value.problems[0].line == 3 and "not valid YAML" in info.value.problems[0].message
    assert "\n  - line 3: not valid YAML" in str(info.value)  # what `pipelines put` prints


def test_a_date_that_does_not_exist_names_its_line(tmp_path: Path) -> None:
    """PyYAML reads 2024-13-01 as a date and fails deep inside: a problem at its line instead."""
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(write(tmp_path, "dated.yml", "flow_id: dated\nschedule: '@daily'\nstart_date: 2024-13-01\n"))
    (problem,) = info.value.problems
    assert problem.line == 3 and "'2024-13-01' is not a date: month must be in 1..12" in problem.message


def test_the_schema_is_valid_and_describes_each_operators_arguments(cli: Cli) -> None:
    result = cli("pipelines", "schema")
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    branches = {b["if"]["properties"]["operator"]["const"]: b["then"] for b in schema["$defs"]["task"]["allOf"]}
    assert {"BashOperator", "PythonOperator", "SqlOperator", "FileSensor", "HttpOperator"} <= set(branches)
    bash = branches["BashOperator"]["properties"]
    assert bash["bash_command"] == {"type": ["string"]} and bash["retries"] == {"type": ["integer", "null"]}
    assert branches["BashOperator"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("example", "flow_id"), [("four_step_pipeline.py", "four_step_pipeline"), ("branching.py", "branching")]
)
def test_export_of_a_python_flow_loads_back_to_the_same_graph(
    cli: Cli, tmp_path: Path, example: str, flow_id: str
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "examples" / example, flows / example)
    if (ROOT / "examples" / "data").is_dir():
        shutil.copytree(ROOT / "examples" / "data", flows / "data")
    out = tmp_path / "exported" / f"{flow_id}.yaml"
    out.parent.mkdir()
    result = cli("flows", "export", str(flows / example), "--format", "yaml", "-o", str(out))
    assert result.exit_code == 0, result.output
    shutil.move(str(out), flows / f"{flow_id}_copy.yaml")
    original = load_flow(f"{flows / example}:{flow_id}", flows).to_graph().to_dict()
    copied = compile_file(flows / f"{flow_id}_copy.yaml")[0].to_graph().to_dict()
    for graph in (original, copied):
        graph["meta"].pop("fileloc")
        graph["meta"].pop("style")
    assert [n["task_id"] for n in copied["nodes"]] == [n["task_id"] for n in original["nodes"]]
    assert _module_names_as_files(copied) == _module_names_as_files(original)


def _module_names_as_files(graph: dict[str, object]) -> object:
    """A flow file's callables are shown with the loader's module name (ductwork_flows_<hash>_<stem>)
    in one graph and the file's own name in the other: the same functions."""
    return json.loads(re.sub(r"ductwork_flows_[0-9a-f]{8}_", "", json.dumps(graph)))


def test_export_refuses_what_is_not_data_and_says_where(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lambdas.py",
        """\
        from ductwork import Flow, PythonOperator
        with Flow("lambdas") as f:
            PythonOperator(task_id="inline", python_callable=lambda: 1)
        """,
    )
    flow = load_flow(str(path), tmp_path)
    with pytest.raises(ExportError) as info:
        export_yaml(flow)
    assert "task 'inline', argument 'python_callable' is <lambda>" in str(info.value)


def test_yaml_files_in_the_flows_folder_are_listed_and_their_errors_reported(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows, "orders.yaml", GOOD)
    write(flows, "broken.yaml", "flow: broken\ntasks:\n  a:\n    operator: Nope\n")
    write(flows, "notes.json", '{"just": "data"}')
    data = json.loads(cli("flows", "list", "--json", env={"DUCTWORK_FLOWS_FOLDER": str(flows)}).output)
    assert [(f["flow_id"], f["style"]) for f in data["flows"]] == [("orders", "yaml")]
    errors = {Path(e["file"]).name: e for e in data["errors"]}
    assert errors["broken.yaml"]["line"] == 3 and "unknown operator 'Nope'" in errors["broken.yaml"]["error"]
    assert "not a pipeline" in errors["notes.json"]["error"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_key_written_twice_is_a_problem_not_the_last_one_silently(tmp_path: Path, suffix: str) -> None:
    """A task id or an argument given twice validated, and the last one silently replaced the
    first: a whole task could vanish. Each repeat is named at its line with the first one's."""
    text = """\
    flow: twice
    tasks:
      a:
        operator: BashOperator
        bash_command: echo first
      b:
        operator: BashOperator
        bash_command: echo b
        retries: 1
        retries: 3
      a:
        operator: BashOperator
        bash_command: echo second
    """
    if suffix == ".json":
        text = """\
        {"flow": "twice", "tasks": {
          "a": {"operator": "BashOperator", "bash_command": "echo first"},
          "b": {"operator": "BashOperator", "bash_command": "echo b",
                "retries": 1, "retries": 3},
          "a": {"operator": "BashOperator", "bash_command": "echo second"}}}
        """
    path = write(tmp_path, f"twice{suffix}", text)
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    found = [(p.object_id, p.field, p.line, p.message) for p in info.value.problems]
    if suffix == ".yaml":
        assert found == [
            ("b", "retries", 10, "given twice (first at line 9); the last one would win"),
            ("a", None, 11, "given twice (first at line 3); the last one would win"),
        ]
    else:
        assert found == [
            ("b", "retries", 4, "given twice (first at line 4); the last one would win"),
            ("a", None, 5, "given twice (first at line 2); the last one would win"),
        ]


def test_a_task_that_depends_on_itself_is_a_problem_at_its_line(tmp_path: Path) -> None:
    """``depends_on: [a]`` under task a stopped the file with "failed to import flow file: task
    'a' cannot depend on itself", without a line and hiding the other problems."""
    path = write(
        tmp_path,
        "self.yaml",
        """\
        flow: self
        tasks:
          a:
            operator: EmptyOperator
            depends_on: [a]
          b:
            operator: EmptyOperator
            depends_on: nowhere
        """,
    )
    with pytest.raises(PipelineDefinitionError) as info:
        compile_file(path)
    found = [(p.object_id, p.field, p.line) for p in info.value.problems]
    assert found == [("a", "depends_on", 5), ("b", "depends_on", 8)]
    assert "cannot depend on itself" in info.value.problems[0].message
