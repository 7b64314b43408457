"""Incremental recomputation on the executing side: fingerprint a try, reuse an earlier one.

For a task with ``cache="content"``, ``check`` computes the try's fingerprint
(``core.versioning``) and asks the cache store for the latest successful try with the same key.
When there is one and its results can still be read, the try pushes those results as its own
and ends successfully without running its code ("up to date"). Either way the try is recorded
with what was decided and, when it ran, what changed since the task's last successful try, which
is what ``ductwork why`` and the task page show.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.context import TaskContext, TaskInstance
from ductwork.core.graph import NodeSpec
from ductwork.core.mapping import MappedGroupArgument
from ductwork.core.results import MISSING, RETURN_VALUE, ResultBackend
from ductwork.core.versioning import (
    CacheEntry,
    CacheStore,
    Change,
    Fingerprint,
    class_code_parts,
    code_parts,
    compare,
    value_hash,
)
from ductwork.core.xcom_arg import ParamRef, XComArg
from ductwork.engine.asset_versions import UNREADABLE

log = logging.getLogger("ductwork.task")

REUSED = "reused"
RAN = "ran"


@dataclass
class CacheCheck:
    fingerprint: Fingerprint
    match: CacheEntry | None = None
    previous: CacheEntry | None = None
    changes: list[Change] = field(default_factory=list)

    def explain(self) -> str:
        if self.match is not None:
            return f"up to date: code, parameters and inputs match run {self.match.run_id}"
        if self.previous is None:
            return "no earlier successful try to compare with: running"
        changed = "; ".join(c.describe() for c in self.changes) or "the fingerprint changed"
        return f"running: {changed} (since run {self.previous.run_id})"


def check(
    executable: Any, node: NodeSpec, context: TaskContext, store: CacheStore, *, original: Any = None
) -> CacheCheck:
    """``executable`` as rendered for this try; ``original``, the definition (where references to
    other tasks' outputs and to run parameters are still references, which names them)."""
    fingerprint = compute_fingerprint(executable, node, context, original=original)
    ti: TaskInstance = context["ti"]
    # An input whose version could not be read (a store without credentials here) may have
    # changed: the same "unreadable" text twice matched, and the task stayed "up to date" for ever.
    unreadable = sorted(k for k, v in fingerprint.inputs.items() if isinstance(v, str) and v.startswith(UNREADABLE))
    match = None if unreadable else store.find(ti.flow_id, node.task_id, cache_key=fingerprint.key)
    result = CacheCheck(fingerprint, match=match)
    if match is None:
        result.previous = store.find(ti.flow_id, node.task_id)
        if unreadable:
            result.changes = [Change("inputs", key, "could not be read, so it may have changed") for key in unreadable]
        elif result.previous is not None:
            result.changes = compare(fingerprint, result.previous.fingerprint)
    return result


def missing_outlet(outlets: Iterable[Any]) -> str | None:
    """The URI of the first asset the task writes that is gone (deleted since the try that
    matched wrote it): reusing that try would leave it missing, so the task runs."""
    from ductwork.core.assets import Asset
    from ductwork.engine.asset_versions import MISSING as GONE
    from ductwork.engine.asset_versions import asset_version

    for outlet in outlets:
        if isinstance(outlet, Asset) and asset_version(outlet) == GONE:
            return outlet.uri
    return None


def reuse(found: CacheCheck, ti: TaskInstance, results: ResultBackend) -> bool:
    """Push the matched try's results as this try's; False when any of them is gone."""
    match = found.match
    assert match is not None
    old_key = f"{ti.flow_id}/{match.run_id}"
    values = {}
    for key in match.result_keys:
        try:
            value = results.pull(old_key, ti.task_id, key)
        except Exception as exc:  # stored with a serializer not configured here, or unreadable
            log.warning("cannot reuse %s's result %r of run %s (%s): the task runs", ti.task_id, key, old_key, exc)
            return False
        if value is MISSING:
            return False
        values[key] = value
    for key, value in values.items():
        ti.xcom_push(key, value)
    return True


def record(store: CacheStore, found: CacheCheck, ti: TaskInstance, *, status: str, succeeded: bool) -> None:
    """Keep the try's fingerprint; a failure to record is logged, never fails the try."""
    entry = CacheEntry(
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=ti.try_number,
        fingerprint=found.fingerprint,
        status=status,
        succeeded=succeeded,
        result_keys=tuple(dict.fromkeys(ti.pushed_keys)),
        matched_run_id=found.match.run_id if status == REUSED and found.match else None,
        changes=tuple(c.to_dict() for c in found.changes),
    )
    try:
        store.record(ti.run.key, entry)
    except Exception:
        log.exception("could not record the fingerprint of %s", ti.task_id)


# --- the fingerprint -----------------------------------------------------------------------------
def _arguments(executable: Any) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = list(enumerate(getattr(executable, "op_args", ()) or ()))
    return out + list((getattr(executable, "op_kwargs", None) or {}).items())


def compute_fingerprint(executable: Any, node: NodeSpec, context: TaskContext, *, original: Any = None) -> Fingerprint:
    ti: TaskInstance = context["ti"]
    run_params: Mapping[str, Any] = context["params"]
    params: dict[str, str] = {}
    inputs: dict[str, str] = {}
    covered: set[str] = set()
    built = getattr(executable, "built_operator", None)
    if built is not None:  # a mapped instance: the operator it runs, with its own item
        covered.update(executable.mapped_sources)
        executable = original = built
    func = getattr(executable, "python_callable", None)
    task = getattr(executable, "task", None)
    if func is not None:
        code = code_parts(func)
        rendered = dict(_arguments(executable))
        for name, value in _arguments(original if original is not None else executable):
            refs = list(_refs(value))
            for ref in refs:
                if isinstance(ref, ParamRef):
                    params[f"param:{ref.name}"] = value_hash(run_params.get(ref.name))
                elif isinstance(ref, MappedGroupArgument):  # this instance's item of the group's list
                    params[f"arg:{name}"] = value_hash(ref.resolve(context))
                else:
                    task_id = ref.operator.task_id
                    label = task_id if ref.key == RETURN_VALUE else f"{task_id}[{ref.key}]"
                    inputs[f"task:{label}"] = value_hash(ti.xcom_pull(task_id, key=ref.key))
                    covered.add(task_id)
            if not refs:
                params[f"arg:{name}"] = value_hash(rendered.get(name, value))
        if _reads_all_params(func):
            params.update({f"param:{k}": value_hash(v) for k, v in run_params.items()})
        for name in _context_read(func, rendered, context):
            part = inputs if name in CONTEXT_EVENTS else params
            part[f"context:{name}"] = value_hash(_canonical(context[name]))
    elif task is not None:  # a class task: its significant parameters are its identity
        code = class_code_parts(type(task))
        params.update({f"param:{k}": value_hash(v) for k, v in node.params.items()})
        inputs.update(_target_versions(task))
    else:
        fields = {name: getattr(executable, name, None) for name in getattr(executable, "template_fields", ())}
        code = {f"code:{type(executable).__qualname__}": value_hash([repr(type(executable)), _plain(fields)])}
        params.update({f"param:{k}": value_hash(v) for k, v in run_params.items()})
    for upstream in node.upstream:
        if upstream not in covered:
            inputs[f"task:{upstream}"] = value_hash(ti.xcom_pull(upstream))
    inlets = list(getattr(executable, "inlets", ()) or ())
    if inlets:
        from ductwork.engine.asset_versions import asset_version

        for asset in inlets:
            inputs[f"asset:{asset.uri}"] = asset_version(asset)
    return Fingerprint(code, params, inputs)


CONTEXT_DATES = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "logical_date",
        "execution_date",
        "data_interval_start",
        "data_interval_end",
        "prev_ds",
        "next_ds",
        "prev_ds_nodash",
        "next_ds_nodash",
        "yesterday_ds",
        "tomorrow_ds",
        "yesterday_ds_nodash",
        "tomorrow_ds_nodash",
        "prev_execution_date",
        "next_execution_date",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
        "prev_start_date_success",
        "conf",
    }
)
"""Context values that decide what a task computes (its dates, the run's ``conf``): a callable
that takes one is not the same work on another value. Who runs it (``run_id``, ``ti``, the
try) is not in its fingerprint: a new run of the same work reuses the result."""
CONTEXT_EVENTS = frozenset({"triggering_asset_events", "triggering_dataset_events", "triggered_by"})
"""What started the run (asset events, a message): the data a consumer task processes."""


def _context_read(func: Any, given: Mapping[Any, Any], context: TaskContext) -> list[str]:
    """The date and event values of the context the callable receives (by name, or all of them
    through ``**kwargs`` or ``context``), as ``call_with_context`` passes them."""
    wanted = CONTEXT_DATES | CONTEXT_EVENTS
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return []
    if any(p.kind == p.VAR_KEYWORD or p.name == "context" for p in parameters):
        names = set(wanted)
    else:
        names = {p.name for p in parameters if p.name in wanted and p.kind != p.VAR_POSITIONAL}
    positional = {p.name for p in parameters[: sum(1 for k in given if isinstance(k, int))]}
    return sorted(n for n in names if n in context and n not in given and n not in positional)


def _canonical(value: Any) -> Any:
    """Dates as ISO text, so that a value hashes the same in every process."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _refs(value: Any) -> Iterable[XComArg | ParamRef]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, XComArg | ParamRef):
            yield item
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())


def _reads_all_params(func: Any) -> bool:
    """A callable that takes ``params``, ``context`` or ``**kwargs`` may read any parameter."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind == p.VAR_KEYWORD or p.name in ("params", "context", "conf") for p in parameters)


def _plain(value: Any) -> Any:
    """Templated fields as data to hash (references to other tasks' outputs by their template)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, XComArg | ParamRef) else repr(value)


def _target_versions(task: Any) -> dict[str, str]:
    """The versions of a class task's inputs (the outputs of what it requires) that are files."""
    from pathlib import Path

    from ductwork.core.task import flatten
    from ductwork.engine.asset_versions import path_version

    out: dict[str, str] = {}
    try:
        targets = flatten(task.input())
    except Exception:
        return out
    for target in targets:
        path = getattr(target, "path", None)
        if isinstance(path, str | Path):
            out[f"target:{path}"] = path_version(Path(path))
    return out
