"""A Python flow written out as a Ductwork pipeline file (``ductwork flows export FLOW --format yaml``).

Any flow of operators whose classes and callables can be imported by dotted path can be
written as data. Each task is written with its operator's name and the arguments that differ
from their defaults, read back from the operator's attributes. The export is then compiled
again and its graph compared with the flow's: a flow that would not come back the same (an
argument an operator does not keep, a lambda, a value that is not data) is refused with the
task and argument that stand in the way, instead of being written wrong.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ductwork.core.flow import Flow
from ductwork.core.operators.base import BaseOperator, accepted_arguments
from ductwork.declarative.yamlflow import registry
from ductwork.errors import DuctworkError

_SKIP = {"task_id", "flow", "task_group", "kwargs"}
_GRAPH_NOISE = ("fileloc", "style")


class ExportError(DuctworkError):
    """A flow that cannot be written as data; says which task and argument."""


def _defaults(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = getattr(init, "__wrapped__", init)
        for name, param in inspect.signature(init).parameters.items():
            if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD) and name != "self":
                out[name] = param.default
    return out


def _data(value: Any, where: str) -> Any:
    """A value as YAML data, or ``ExportError``."""
    if isinstance(value, enum.Enum):  # TriggerRule and other str enums: their value
        return _data(value.value, where)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_data(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _data(v, where) for k, v in value.items()}
    if callable(value):
        path = registry.dotted_name(value)
        if path is None:
            raise ExportError(
                f"{where} is {getattr(value, '__qualname__', repr(value))}, which cannot be imported by a dotted "
                "path (a lambda or a nested function); make it a module-level function"
            )
        return {"callable": path}
    raise ExportError(f"{where} is a {type(value).__name__}, which is not data (text, numbers, lists, mappings)")


_EMPTY: tuple[Any, ...] = (None, [], (), {})


def _same(a: Any, b: Any) -> bool:
    """Whether an attribute still has its parameter's default (an empty list kept for None too)."""
    if b is inspect.Parameter.empty:
        return False
    if a == b:
        return True
    return a in _EMPTY and b in _EMPTY


def task_data(op: BaseOperator) -> dict[str, Any]:
    """One task as data: operator name, group, upstream ids, non-default arguments."""
    cls = type(op)
    where = f"task {op.task_id!r}"
    try:
        entry: dict[str, Any] = {"operator": registry.operator_name(cls)}
    except DuctworkError as exc:
        raise ExportError(f"{where}: {exc}") from None
    if op.task_group is not None:
        entry["group"] = op.task_group.group_id
    if op.upstream_task_ids:
        entry["depends_on"] = list(op.upstream_task_ids)
    defaults = _defaults(cls)
    for name in sorted(accepted_arguments(cls) - _SKIP):
        if not hasattr(op, name):
            continue
        value = getattr(op, name)
        if _same(value, defaults.get(name, inspect.Parameter.empty)):
            continue
        entry[name] = _data(value, f"{where}, argument {name!r}")
    return entry


def flow_data(flow: Flow) -> dict[str, Any]:
    """A flow as the data of a Ductwork pipeline file."""
    if getattr(flow, "style", "flow") != "flow" and getattr(flow, "style", "") != "yaml":
        raise ExportError(f"flow {flow.flow_id!r} is a {flow.style} flow; only flows of operators can be exported")
    meta = flow.meta()
    data: dict[str, Any] = {"ductwork": 1, "flow": flow.flow_id}
    if meta.description:
        data["description"] = meta.description
    if flow.doc:
        data["doc"] = flow.doc
    data["schedule"] = None if meta.schedule == "None" else meta.schedule
    for key in ("start_date", "end_date"):
        value = getattr(meta, key)
        if value:
            data[key] = value
    if meta.timezone != "UTC":
        data["timezone"] = meta.timezone
    if meta.catchup:
        data["catchup"] = True
    if meta.max_active_runs != 16:
        data["max_active_runs"] = meta.max_active_runs
    if meta.max_active_tasks is not None:
        data["max_active_tasks"] = meta.max_active_tasks
    if meta.tags:
        data["tags"] = list(meta.tags)
    if meta.owner:
        data["owner"] = meta.owner
    if meta.paused_on_creation:
        data["paused_on_creation"] = True
    if flow.on_success_callback or flow.on_failure_callback or flow.on_failure_email:
        raise ExportError(f"flow {flow.flow_id!r} has flow-level callbacks, which this format does not carry")
    if meta.params:
        data["params"] = {name: _param(info) for name, info in meta.params.items()}
    tooltips = {gid: g.tooltip for gid, g in flow.groups.items() if g.tooltip}
    if tooltips:
        data["groups"] = {gid: {"tooltip": tip} for gid, tip in tooltips.items()}
    data["tasks"] = {task_id: task_data(op) for task_id, op in flow.tasks.items()}
    return data


def _param(info: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": info.get("type", "str")}
    for key in ("default", "description", "choices"):
        if info.get(key) not in (None, ""):
            out[key] = info[key]
    if "default" in info and info["default"] is None and not info.get("required"):
        out["default"] = None
    return out


def _comparable(graph: Any) -> dict[str, Any]:
    # A callable of a flow file is known by the file's module name once imported by the loader
    # (ductwork_flows_<hash>_<stem>) and by the file's stem from a pipeline file: the same function.
    data = json.loads(re.sub(r"ductwork_flows_[0-9a-f]{8}_", "", graph.to_json()))
    for key in _GRAPH_NOISE:
        data["meta"].pop(key, None)
    return dict(data)


def export_yaml(flow: Flow, *, source: str = "<export>") -> str:
    """The flow as YAML text, checked to compile back to the same graph."""
    import yaml

    from ductwork.declarative.yamlflow.loader import compile_data

    data = flow_data(flow)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    back = compile_data(yaml.safe_load(text), source=source, flow_id=flow.flow_id, text=text)
    original, copied = _comparable(flow.to_graph()), _comparable(back.to_graph())
    if original != copied:
        raise ExportError(f"flow {flow.flow_id!r} cannot be exported as data: {_difference(original, copied)}")
    return text


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    if a["groups"] != b["groups"]:
        return "its task groups would differ"
    if a["meta"] != b["meta"]:
        keys = [k for k in a["meta"] if a["meta"].get(k) != b["meta"].get(k)]
        return f"its {', '.join(keys)} would differ"
    nodes_a = {n["task_id"]: n for n in a["nodes"]}
    nodes_b = {n["task_id"]: n for n in b["nodes"]}
    for task_id, node in nodes_a.items():
        other = nodes_b.get(task_id, {})
        if node != other:
            keys = sorted(k for k in {*node, *other} if node.get(k) != other.get(k))
            return f"task {task_id!r} would differ in {', '.join(keys)} (its operator does not keep them as data)"
    return "the graphs differ"
