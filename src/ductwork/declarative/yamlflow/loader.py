"""Ductwork's pipeline files: a flow written as YAML (or JSON), compiled to the same graph model.

::

    flow: orders                      # the flow id (default: the file's name)
    schedule: "@daily"
    start_date: 2024-01-01
    params:
      limit: {type: int, default: 100}
    defaults: {retries: 2, retry_delay: 30s}
    tasks:
      extract:
        operator: BashOperator
        bash_command: echo {{ ds }}
      load:
        operator: PythonOperator
        python_callable: {callable: mypackage.loaders:load}
        depends_on: extract

A file is checked against the JSON Schema (``schema.build_schema``) and then compiled; every
problem is reported at once with the task, the argument and the line. Durations may be written
``30s``/``5m``/``1h``; a callable is ``{callable: package.module:function}``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ductwork.core.flow import Flow
from ductwork.core.operators.base import BaseOperator, accepted_arguments
from ductwork.core.params import Parameter, from_description, parameter_for
from ductwork.core.task_group import TaskGroup
from ductwork.declarative.problems import PipelineDefinitionError, Problem
from ductwork.declarative.yamlflow import registry
from ductwork.declarative.yamlflow.schema import TASK_KEYS, build_schema
from ductwork.errors import DuctworkError, did_you_mean

STYLE = "yaml"
DURATION_ARGUMENTS = {
    "retry_delay",
    "max_retry_delay",
    "execution_timeout",
    "poke_interval",
    "timeout",
    "max_wait",
    "delta",
}


def _plain(value: Any) -> Any:
    """YAML's dates and times as ISO text, so that the data is what JSON would give."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Lines:
    """The line of each key path of a YAML document, for error messages."""

    def __init__(self, text: str | None) -> None:
        self.root: Any = None
        if text is not None:
            try:
                import yaml

                self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            except Exception:
                self.root = None

    def repeated_keys(self) -> list[tuple[tuple[Any, ...], int, int]]:
        """Each key given twice in one mapping, as (path, line, line of the first): YAML and
        JSON loaders keep the last silently, so a task written twice would vanish."""
        found: list[tuple[tuple[Any, ...], int, int]] = []

        def walk(node: Any, path: tuple[Any, ...]) -> None:
            if node is None:
                return
            if node.id == "mapping":
                first: dict[str, int] = {}
                for key, value in node.value:
                    name = str(key.value)
                    line = key.start_mark.line + 1
                    if name in first:
                        found.append(((*path, name), line, first[name]))
                    else:
                        first[name] = line
                    walk(value, (*path, name))
            elif node.id == "sequence":
                for index, item in enumerate(node.value):
                    walk(item, (*path, index))

        walk(self.root, ())
        return found

    def line(self, path: tuple[Any, ...]) -> int | None:
        node = self.root
        best: int | None = None
        for key in path:
            if node is None:
                break
            best = node.start_mark.line + 1
            if node.id == "mapping":
                match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
                if match is None:
                    return best
                best = match[0].start_mark.line + 1
                node = match[1]
            elif node.id == "sequence" and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                break
        if node is not None and best is None:
            best = node.start_mark.line + 1
        return best


def _problem(message: str, path: tuple[Any, ...], lines: Lines) -> Problem:
    line = lines.line(path)
    if len(path) >= 2 and path[0] == "tasks":
        field = str(path[2]) if len(path) > 2 else None
        return Problem(message, str(path[1]), field, line=line, kind="task")
    if len(path) >= 2 and path[0] == "params":
        return Problem(message, str(path[1]), str(path[2]) if len(path) > 2 else None, line=line, kind="parameter")
    return Problem(message, None, ".".join(str(p) for p in path) or None, line=line)


def _schema_problems(data: Any, lines: Lines) -> list[Problem]:
    import jsonschema

    schema = build_schema()
    validator = jsonschema.Draft202012Validator(schema)
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    hint = did_you_mean(key, allowed)
                    if len(path) == 2 and path[0] == "tasks":
                        owner = str(error.instance.get("operator") or "a task")
                        message = f"unknown argument {key!r} for {owner}.{hint}"
                    elif not path:
                        if not hint and key in _TASK_ARGUMENTS:
                            hint = f" Arguments for every task go under 'defaults' (defaults: {{{key}: ...}})."
                        message = f"unknown key {key!r} at the top level of the file.{hint}"
                    else:
                        message = f"unknown key {key!r} in {'.'.join(str(p) for p in path)}.{hint}"
                    problem = _problem(message, (*path, key), lines)
                    if not path:  # the file's shape is right: go on and check its tasks too
                        problem = Problem(problem.message, None, problem.field, line=problem.line, kind="file")
                    problems.append(problem)
            continue
        if path and path[-1] == "depends_on" and error.validator in ("oneOf", "type"):
            problem = _problem(f"wants a task id or a list of task ids, got {error.instance!r}", path, lines)
            if problem not in problems:  # each operator's branch of the schema says it again
                problems.append(problem)
            continue
        if error.validator == "type" and len(path) == 2 and path[0] == "tasks":
            what = "has nothing under it" if error.instance is None else f"is {error.instance!r}, not a mapping"
            message = (
                f"{what}: a task is a mapping of 'operator' and its arguments, indented under the task id "
                "(check the indentation)"
            )
            problems.append(_problem(message, path, lines))
            continue
        extra = [e for e in error.context or () if e.validator == "additionalProperties"]
        if error.validator == "anyOf" and extra and isinstance(extra[0].instance, dict):  # a parameter's keys
            allowed = set(extra[0].schema.get("properties", {}))
            for key in [k for k in extra[0].instance if k not in allowed]:
                message = (
                    f"unknown key {key!r}.{did_you_mean(key, allowed)} A parameter takes {', '.join(sorted(allowed))}"
                )
                problems.append(_problem(message, (*path, key), lines))
            continue
        if error.validator in ("if", "allOf", "anyOf") and error.context:
            deepest = max(error.context, key=lambda e: len(e.absolute_path))
            problems.append(_problem(deepest.message, tuple(deepest.absolute_path), lines))
            continue
        problems.append(_problem(error.message, path, lines))
    return problems


def _repeated(lines: Lines) -> list[Problem]:
    problems = []
    for path, line, first in lines.repeated_keys():
        message = f"given twice (first at line {first}); the last one would win"
        if len(path) == 2 and path[0] == "tasks":
            problems.append(Problem(message, str(path[1]), None, line=line, kind="task"))
            continue
        problem = _problem(message, path, lines)
        kind = "file" if problem.kind == "object" else problem.kind  # the file's shape is right: go on
        problems.append(Problem(message, problem.object_id, problem.field, line=line, kind=kind))
    return problems


_TASK_ARGUMENTS = accepted_arguments(BaseOperator)
"""Arguments every operator takes (retries, owner, queue...), for the hint on a top-level one."""


def _without_task_prefix(message: str, task_id: str) -> str:
    """An operator's error without its own ``task 'x': `` (the problem names the task)."""
    prefix = f"task {task_id!r}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _parameter(name: str, spec: Any) -> Parameter[Any]:
    if isinstance(spec, dict):
        info = dict(spec)
        info.setdefault("type", "str")
        if "default" in info:
            info.setdefault("required", False)
        else:
            info.setdefault("required", True)
        param = from_description(info)
    else:
        param = parameter_for(None, spec)
    param.name = name
    return param


def _convert(name: str, value: Any) -> Any:
    """An argument as the operator wants it: ``{callable: path}`` imported, durations in seconds."""
    if isinstance(value, dict) and set(value) == {"callable"}:
        return registry.import_path(str(value["callable"]), what="callable")
    if isinstance(value, list) and value and all(isinstance(v, dict) and set(v) == {"callable"} for v in value):
        return [_convert(name, v) for v in value]
    if name in DURATION_ARGUMENTS and isinstance(value, str):
        from ductwork.core.params import parse_duration

        try:
            return parse_duration(value).total_seconds()
        except ValueError as exc:
            raise DuctworkError(str(exc)) from None
    return value


def compile_data(data: Any, *, source: str, flow_id: str, text: str | None = None) -> Flow:
    """Check and compile a pipeline file's data; raises ``PipelineDefinitionError`` listing every
    problem (schema, operators, arguments, dependencies, cycles)."""
    from ductwork.declarative.datapipeline.build import PipelineFlow

    lines = Lines(text)
    data = _plain(data)
    problems = _schema_problems(data, lines)
    # A task with a schema problem is still compiled without the arguments named (an unknown
    # argument must not hide a bad retry_delay beside it); one whose problem is the task itself
    # (not a mapping, no operator) is not.
    broken = {p.object_id for p in problems if p.kind == "task" and p.field in (None, "operator")}
    problems.extend(_repeated(lines))
    refused: dict[str, set[str]] = {}
    for p in problems:
        if p.kind == "task" and p.object_id is not None and p.field is not None:
            refused.setdefault(p.object_id, set()).add(p.field)
    if any(p.kind == "object" for p in problems) or not isinstance(data.get("tasks"), dict):
        raise PipelineDefinitionError(source, problems)  # the file's shape is wrong: nothing more to check
    folder = str(Path(source).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # callables of flow files beside this one import by file name
    params: dict[str, Parameter[Any]] = {}
    for name, spec in (data.get("params") or {}).items():
        if any(p.kind == "parameter" and p.object_id == name for p in problems):
            continue
        try:
            params[name] = _parameter(name, spec)
        except (DuctworkError, ValueError, TypeError) as exc:
            problems.append(_problem(str(exc), ("params", name), lines))
    defaults: dict[str, Any] = {}
    for name, value in (data.get("defaults") or {}).items():
        try:
            defaults[name] = _convert(name, value)
        except DuctworkError as exc:
            problems.append(_problem(str(exc), ("defaults", name), lines))
    try:
        flow = PipelineFlow(
            str(data.get("flow") or flow_id),
            style=STYLE,
            description=str(data.get("description", "")),
            doc=str(data.get("doc", "")),
            schedule=data.get("schedule"),
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            timezone=str(data.get("timezone", "UTC")),
            catchup=bool(data.get("catchup", False)),
            max_active_runs=int(data.get("max_active_runs", 16)),
            max_active_tasks=data.get("max_active_tasks"),
            tags=list(data.get("tags", [])),
            owner=str(data.get("owner", "")),
            paused_on_creation=bool(data.get("paused_on_creation", False)),
            default_args=defaults,
            params=params,
        )
    except DuctworkError as exc:
        # the top-level key the error is about (start_date, end_date, timezone...), else the schedule
        named = {k: str(exc).find(f"{k} ") for k in data if k not in ("flow", "tasks", "description", "doc")}
        key = min((k for k, at in named.items() if at >= 0), key=named.__getitem__, default="schedule")
        problems.append(Problem(str(exc), field=key, line=lines.line((key,))))
        raise PipelineDefinitionError(source, problems) from None
    tasks: dict[str, Any] = {}
    groups: dict[str, TaskGroup] = {}
    with flow:
        for task_id, spec in data["tasks"].items():
            if task_id in broken:
                continue
            kwargs: dict[str, Any] = {}
            left_out = set(refused.get(task_id, ()))
            for key, value in spec.items():
                if key in TASK_KEYS or key in left_out:
                    continue
                try:
                    kwargs[key] = _convert(key, value)
                except DuctworkError as exc:
                    problems.append(_problem(str(exc), ("tasks", task_id, key), lines))
                    left_out.add(key)
            try:
                cls = registry.resolve(str(spec["operator"]))
                group = _group(flow, groups, spec.get("group"), data.get("groups") or {})
                short = (
                    task_id[len(group.group_id) + 1 :]
                    if group and task_id.startswith(group.group_id + ".")
                    else task_id
                )
                tasks[task_id] = (
                    cls(task_id=short, task_group=group, **kwargs) if group else cls(task_id=task_id, **kwargs)
                )
            except DuctworkError as exc:
                message = _without_task_prefix(str(exc), task_id)
                if any(f"'{key}'" in message or message.startswith(f"{key} ") for key in left_out):
                    continue  # about an argument left out, whose own problem is already listed
                inherited = [n for n in defaults if n not in spec and message.startswith(f"{n} ")]
                problem = _problem(message, ("defaults", inherited[0]) if inherited else ("tasks", task_id), lines)
                if problem not in problems:  # a bad default is one problem, not one per task
                    problems.append(problem)
    by_id = {op.task_id: key for key, op in tasks.items()}
    for task_id, spec in data["tasks"].items():
        if not isinstance(spec, dict):
            continue  # not a mapping (``a:`` with nothing under it, a list): the schema said so
        ups = spec.get("depends_on", [])
        ups = [ups] if isinstance(ups, str) else [u for u in ups if isinstance(u, str)] if isinstance(ups, list) else []
        for up in ups:
            key = up if up in data["tasks"] else by_id.get(up)
            if key is None:
                hint = did_you_mean(up, [*data["tasks"], *by_id])
                problems.append(
                    _problem(f"depends on {up!r}, which is not a task.{hint}", ("tasks", task_id, "depends_on"), lines)
                )
            elif task_id in tasks and key in tasks:
                try:
                    tasks[task_id].add_upstream(tasks[key])
                except DuctworkError as exc:  # itself: a problem of this file, among the others
                    problems.append(_problem(str(exc), ("tasks", task_id, "depends_on"), lines))
    try:  # cycles among the tasks that were built, whatever else is wrong
        flow.to_graph()
    except DuctworkError as exc:
        path = getattr(exc, "path", None)
        if path:
            problems.append(_problem(str(exc), ("tasks", path[-1], "depends_on"), lines))
        else:
            unused = [n for n in defaults if f"default_args key {n!r}" in str(exc)]
            problems.append(_problem(str(exc), ("defaults", unused[0]), lines) if unused else Problem(str(exc)))
    if problems:
        raise PipelineDefinitionError(source, problems)
    return flow


def _group(flow: Flow, groups: dict[str, TaskGroup], name: Any, specs: Mapping[str, Any]) -> TaskGroup | None:
    """The (nested) task group ``a.b``, created on first use."""
    if not name:
        return None
    parent: TaskGroup | None = None
    path: list[str] = []
    for part in str(name).split("."):
        path.append(part)
        key = ".".join(path)
        group = groups.get(key)
        if group is None:
            tooltip = str((specs.get(key) or {}).get("tooltip", ""))
            group = groups[key] = TaskGroup(part, flow=flow, parent_group=parent, tooltip=tooltip)
        parent = group
    return parent


def is_pipeline_data(data: Any) -> bool:
    return isinstance(data, Mapping) and "tasks" in data and "objects" not in data
