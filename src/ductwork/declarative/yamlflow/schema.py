"""The JSON Schema of Ductwork's pipeline files, built from the operators that are installed.

The schema describes the file's top-level keys, typed parameters, defaults and tasks; for each
known operator it lists the arguments that operator accepts (with a JSON type where its
annotation is a simple one), so an editor with a YAML language server completes and checks
them. Operators named by dotted path are allowed and checked when the file is compiled.
``ductwork pipelines schema`` prints it; the REST API serves it at ``/api/v1/pipelines/schema``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from ductwork.core.operators.base import accepted_arguments

SCHEMA_ID = "urn:ductwork:pipeline:1"
FLOW_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
TASK_KEYS = ("operator", "depends_on", "group")
NOT_ARGUMENTS = {"task_id", "flow", "task_group", "kwargs"}
PARAM_TYPES = ("str", "int", "float", "bool", "date", "datetime", "timedelta", "list", "dict", "json", "path")

_SIMPLE = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_CALLABLE = {
    "type": "object",
    "properties": {"callable": {"type": "string", "description": "package.module:function"}},
    "required": ["callable"],
    "additionalProperties": False,
}


def _json_type(annotation: Any) -> dict[str, Any]:
    """A JSON Schema for a parameter annotation written as a string (``str | None``...), or {}."""
    if annotation is inspect.Parameter.empty:
        return {}
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in re.split(r"\|", text) if p.strip()]
    types: list[str] = []
    for part in parts:
        if part == "None":
            types.append("null")
        elif part in _SIMPLE:
            types.append(_SIMPLE[part])
        elif part.startswith(("Mapping", "dict")):
            types.append("object")
        elif part.startswith(("Sequence", "list", "tuple", "Iterable")):
            types.append("array")
        elif part in ("dt.timedelta", "timedelta"):
            types.extend(["number", "string"])
        elif "Callable" in part or part in ("Callback",):
            return {"anyOf": [_CALLABLE, {"type": "array", "items": _CALLABLE}, {"type": "null"}]}
        else:
            return {}
    if "number" in types and "integer" in types:
        types.remove("integer")
    return {"type": sorted(set(types))} if types else {}


def operator_arguments(cls: type) -> dict[str, dict[str, Any]]:
    """The keyword arguments of an operator class (its bases' included) with JSON types."""
    schemas: dict[str, dict[str, Any]] = {}
    names = accepted_arguments(cls) - NOT_ARGUMENTS
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = getattr(init, "__wrapped__", init)
        for name, param in inspect.signature(init).parameters.items():
            if name in names:
                schemas[name] = _json_type(param.annotation)
    return {name: schemas.get(name, {}) for name in sorted(names)}


def _task_schema(operators: dict[str, type]) -> dict[str, Any]:
    base = {
        "operator": {"type": "string", "description": "an operator class name, a plugin name, or package.module:Class"},
        "depends_on": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "group": {"type": "string", "description": "the task group (groups nest with '.')"},
    }
    branches = []
    for name, cls in sorted(operators.items()):
        branches.append(
            {
                "if": {"properties": {"operator": {"const": name}}, "required": ["operator"]},
                "then": {"properties": {**base, **operator_arguments(cls)}, "additionalProperties": False},
            }
        )
    return {"type": "object", "required": ["operator"], "properties": base, "allOf": branches}


def build_schema(operators: dict[str, type] | None = None) -> dict[str, Any]:
    """The schema for the operators given (by default the built-in ones and plugins)."""
    if operators is None:
        from ductwork.declarative.yamlflow import registry

        operators = dict(registry.builtin_operators())
        for name in registry.plugin_names():
            try:
                operators[name] = registry.resolve(name)
            except Exception:  # a broken plugin must not hide the schema of the others
                continue
    param = {
        "type": "object",
        "properties": {
            "type": {"enum": [*PARAM_TYPES, "choice"]},
            "default": {},
            "description": {"type": "string"},
            "required": {"type": "boolean"},
            "choices": {"type": "array"},
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Ductwork pipeline",
        "description": "A Ductwork flow written as data: tasks by operator name, dependencies, schedule, "
        "parameters and defaults.",
        "type": "object",
        "required": ["tasks"],
        "additionalProperties": False,
        "properties": {
            "ductwork": {"const": 1, "description": "the version of this format"},
            "flow": {"type": "string", "pattern": FLOW_ID_PATTERN, "description": "the flow id (default: file name)"},
            "description": {"type": "string"},
            "doc": {"type": "string"},
            "schedule": {"type": ["string", "null"], "description": "cron, @preset, duration (6h) or null"},
            "start_date": {"type": "string"},
            "end_date": {"type": "string"},
            "timezone": {"type": "string"},
            "catchup": {"type": "boolean"},
            "max_active_runs": {"type": "integer", "minimum": 1},
            "max_active_tasks": {"type": ["integer", "null"], "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "owner": {"type": "string"},
            "paused_on_creation": {"type": "boolean"},
            "params": {
                "type": "object",
                "additionalProperties": {"anyOf": [param, {"type": ["string", "number", "boolean", "array", "null"]}]},
            },
            "defaults": {"type": "object", "description": "arguments every task gets unless it sets them"},
            "groups": {
                "type": "object",
                "description": "task groups by id (a task joins one with 'group')",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"tooltip": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "tasks": {"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/task"}},
        },
        "$defs": {"task": _task_schema(operators)},
    }
