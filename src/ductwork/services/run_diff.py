"""What changed between two runs of a flow: their recorded graphs (tasks added, removed and
changed, edges, the flow's settings) and the code they ran (files and git commits).

Both sides come from what each run recorded when it was created (ADR 0001, 0002), so the
answer stays true however the flow's code changed since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ductwork.core.graph import FlowGraph
from ductwork.errors import ParameterError
from ductwork.services import runs as run_service
from ductwork.store.engine import read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import runs as run_repo

_IGNORED = frozenset({"task_id", "upstream"})
"""Node fields compared elsewhere (identity and edges)."""
_META_IGNORED = frozenset({"fileloc"})


@dataclass(frozen=True)
class TaskChange:
    task_id: str
    fields: dict[str, tuple[Any, Any]]
    """Field name to (value in the first run, value in the second)."""


@dataclass(frozen=True)
class RunDiff:
    flow_id: str
    first: RunRecord
    second: RunRecord
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[TaskChange] = field(default_factory=list)
    edges_added: list[tuple[str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str]] = field(default_factory=list)
    flow_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)

    @property
    def same_graph(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.edges_added or self.edges_removed or self.flow_changes
        )

    @property
    def same_code(self) -> bool:
        return _code_hash(self.first) == _code_hash(self.second) and _code_hash(self.first) is not None


def _code_hash(record: RunRecord) -> str | None:
    code = record.code or {}
    value = code.get("hash")
    return str(value) if value else None


def _edges(graph: FlowGraph) -> set[tuple[str, str]]:
    return {(up, node.task_id) for node in graph.nodes.values() for up in node.upstream}


def _fields(node: Any) -> dict[str, Any]:
    return {k: v for k, v in node.to_dict().items() if k not in _IGNORED}


def diff_graphs(first: FlowGraph, second: FlowGraph) -> dict[str, Any]:
    """The graph part of a diff, in graph order (the second run's order for added tasks)."""
    a, b = first.nodes, second.nodes
    changed = []
    for task_id in a:
        if task_id in b:
            old, new = _fields(a[task_id]), _fields(b[task_id])
            delta = {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}
            if delta:
                changed.append(TaskChange(task_id, delta))
    meta_a, meta_b = first.meta.to_dict(), second.meta.to_dict()
    flow_changes = {
        k: (meta_a.get(k), meta_b.get(k))
        for k in sorted(meta_a.keys() | meta_b.keys())
        if k not in _META_IGNORED and meta_a.get(k) != meta_b.get(k)
    }
    ea, eb = _edges(first), _edges(second)
    return {
        "added": [t for t in b if t not in a],
        "removed": [t for t in a if t not in b],
        "changed": changed,
        "edges_added": sorted(eb - ea),
        "edges_removed": sorted(ea - eb),
        "flow_changes": flow_changes,
    }


def _files(record: RunRecord) -> Mapping[str, str]:
    files = (record.code or {}).get("files") or {}
    return {str(k): str(v) for k, v in files.items()}


def diff_runs(engine: Engine, flow_id: str, first_id: str, second_id: str) -> RunDiff:
    """What changed from run ``first_id`` to run ``second_id`` of ``flow_id``. A run compared
    with itself is refused (``ParameterError``): the answer "the same graph, the same code" read
    as two runs that matched, where the second run id was a slip (the page's ``other=``, the
    CLI's arguments pasted twice)."""
    first = run_service.get_run(engine, flow_id, first_id)
    second = run_service.get_run(engine, flow_id, second_id)
    if first.pk == second.pk:
        raise ParameterError(
            f"run {first_id!r} of flow {flow_id!r} cannot be compared with itself: name another run of the flow"
        )
    with read_transaction(engine) as conn:
        graph_a = run_repo.load_run_graph(conn, first.pk).graph
        graph_b = run_repo.load_run_graph(conn, second.pk).graph
    files_a, files_b = _files(first), _files(second)
    return RunDiff(
        flow_id,
        first,
        second,
        **diff_graphs(graph_a, graph_b),
        files_added=sorted(files_b.keys() - files_a.keys()),
        files_removed=sorted(files_a.keys() - files_b.keys()),
        files_changed=sorted(k for k in files_a.keys() & files_b.keys() if files_a[k] != files_b[k]),
    )
