"""The one graph model that every authoring style compiles to.

A ``FlowGraph`` is plain data: nodes (``NodeSpec``) with their upstream ids and the policy the
engine needs (trigger rule, retries, priority, pool), plus the flow's metadata. It serializes to
JSON and back without loss, which is what lets the scheduler and the web UI work from a recorded
graph without importing user code (ADR 0001). Validation lives here too, so the same checks
apply to class tasks, operator flows and decorated functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ductwork.core.trigger_rules import TriggerRule
from ductwork.errors import CycleError, InvalidDependencyError

CLASS_TASK = "class_task"
OPERATOR = "operator"
EXTERNAL_MARKER = "external_marker"
"""``extra`` of an ``ExternalTaskMarker``'s node: the flow, task, logical-date template and depth
that a clear of it reaches too (``services.external_clear``)."""
MAPPED_TASK = "mapped_task"
"""``extra`` of a mapped task's instance ``t[i]``: the id of ``t``, the task that collects the
instances. Downstream trigger rules count the instances, one by one, where ``t`` stands."""
RUNS_NOTHING = "runs_nothing"
"""``extra`` flag of a node whose try has nothing to do (an ``EmptyOperator`` without callbacks
or assets): the engine records it as succeeded when it is ready, without a worker (Airflow's
behaviour for ``EmptyOperator``)."""


DEFAULT_POOL = "default_pool"
"""The pool of a task that names none (unlimited unless ``ductwork pools set`` sizes it)."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One task of a graph, as the engine sees it."""

    task_id: str
    upstream: tuple[str, ...] = ()
    kind: str = OPERATOR
    operator: str = "EmptyOperator"
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    retries: int = 0
    retry_delay: float = 300.0
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    priority_weight: int = 1
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    resources: Mapping[str, int] = field(default_factory=dict)
    queue: str = "default"
    """The worker queue its tries go to (remote executors: workers started with ``--queues``)."""
    executor_config: Mapping[str, Any] = field(default_factory=dict)
    """Executor-specific settings of its tries (Kubernetes: pod template, namespace, image,
    resources, node selector); plain JSON data."""
    group: str | None = None
    depends_on_past: bool = False
    owner: str = ""
    doc: str = ""
    family: str | None = None
    module: str | None = None
    params: Mapping[str, str | None] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    cascade_rerun: bool = False
    """Clearing this task also clears the downstream tasks that did not run because it failed
    (AWS Data Pipeline's re-run of an object re-runs its cascade-failed consumers)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, leaving out fields at their defaults.

        A shallow walk rather than ``dataclasses.asdict`` (which deep-copies every value): this
        runs once per node whenever a graph is serialized, 10,000 times for a large run.
        """
        data: dict[str, Any] = {"task_id": self.task_id}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if value == _NODE_DEFAULTS[name]:
                continue
            if name == "upstream":
                value = list(value)
            elif name == "trigger_rule":
                value = value.value
            elif isinstance(value, Mapping):
                value = dict(value)
            data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeSpec:
        """The node from ``to_dict``'s plain data; keys it does not know are ignored. Runs once
        per node whenever a graph is read back (100,000 times for a large run), so the field
        names are looked up once for the module, not per call."""
        values = {k: v for k, v in data.items() if k in _KNOWN_FIELDS}
        values["upstream"] = tuple(values.get("upstream", ()))
        values["trigger_rule"] = TriggerRule(values.get("trigger_rule", TriggerRule.ALL_SUCCESS))
        return cls(**values)


_NODE_DEFAULTS: dict[str, Any] = {f.name: getattr(NodeSpec("_"), f.name) for f in fields(NodeSpec)}
_FIELD_NAMES = tuple(f.name for f in fields(NodeSpec) if f.name != "task_id")
_KNOWN_FIELDS = frozenset(f.name for f in fields(NodeSpec))


@dataclass(frozen=True, slots=True)
class FlowMeta:
    """What the scheduler and the UI need to know about a flow besides its tasks."""

    flow_id: str
    description: str = ""
    schedule: str = "None"
    timezone: str = "UTC"
    start_date: str | None = None
    end_date: str | None = None
    catchup: bool = False
    max_active_runs: int = 16
    max_active_tasks: int | None = None
    tags: tuple[str, ...] = ()
    owner: str = ""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fileloc: str | None = None
    style: str = "flow"
    paused_on_creation: bool = False
    default_retries: int = 0
    on_failure_email: tuple[str, ...] = ()
    doc: str = ""
    """The flow's documentation (Airflow's ``doc_md``), shown on its page as written."""
    callbacks: tuple[str, ...] = ()
    """Which flow-level callbacks the flow has ("success", "failure"): the scheduler only starts a
    process to call them when there is something to call."""
    assets: Mapping[str, Any] | None = None
    """The asset condition the flow is scheduled on (``core.assets``), as plain data."""
    triggers: tuple[Mapping[str, Any], ...] = ()
    """Message sources that start runs (``core.triggers``), as plain data."""
    run_timeout: float | None = None
    """Seconds a run may take from its start (Airflow's ``dagrun_timeout``): past it the scheduler
    fails the run, stops its tries and leaves the tasks not started skipped."""
    params_in_conf: bool = False
    """An Airflow DAG with params: Airflow's trigger puts the params in ``dag_run.conf`` and checks
    a conf against them, so a triggered run's conf holds every param (``services.runs``)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["on_failure_email"] = list(self.on_failure_email)
        data["callbacks"] = list(self.callbacks)
        # Left out when unset, so the graphs (and version hashes) of flows without them stay as they were.
        for name in ("assets", "triggers", "run_timeout", "params_in_conf"):
            if not data[name]:
                del data[name]
            elif name == "triggers":
                data[name] = [dict(t) for t in self.triggers]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowMeta:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tags"] = tuple(values.get("tags", ()))
        values["on_failure_email"] = tuple(values.get("on_failure_email", ()))
        values["callbacks"] = tuple(values.get("callbacks", ()))
        values["triggers"] = tuple(values.get("triggers", ()))
        return cls(**values)


@dataclass(frozen=True)
class FlowGraph:
    """A validated, serializable graph: nodes in a topological order, plus flow metadata."""

    meta: FlowMeta
    nodes: Mapping[str, NodeSpec]
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def flow_id(self) -> str:
        return self.meta.flow_id

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self.nodes.values())

    def downstream_map(self) -> dict[str, list[str]]:
        return downstream_of(self.nodes)

    def roots(self) -> list[str]:
        return [n.task_id for n in self.nodes.values() if not n.upstream]

    def leaves(self) -> list[str]:
        down = self.downstream_map()
        return [task_id for task_id in self.nodes if not down[task_id]]

    def upstream_closure(self, task_ids: Iterable[str]) -> set[str]:
        return _closure(task_ids, {k: list(n.upstream) for k, n in self.nodes.items()})

    def downstream_closure(self, task_ids: Iterable[str]) -> set[str]:
        return _closure(task_ids, self.downstream_map())

    def with_nodes(self, extra: Iterable[NodeSpec]) -> FlowGraph:
        """A new graph with nodes added or replaced (dynamic dependencies), validated."""
        nodes = dict(self.nodes)
        for node in extra:
            nodes[node.task_id] = node
        return FlowGraph(self.meta, topological(nodes, where=self.flow_id), self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta.to_dict(),
            "nodes": [node.to_dict() for node in self.nodes.values()],
            "groups": {k: dict(v) for k, v in self.groups.items()},
        }

    def node_dicts(self) -> Sequence[Mapping[str, Any]]:
        """Every node's ``to_dict()``, in order, worked out once per graph: recording a flow and
        creating a run of it both serialize every node. Shared and read-only: unlike
        ``to_dict``'s, these must not be changed."""
        cached: Sequence[Mapping[str, Any]] | None = self.__dict__.get("_node_dicts")
        if cached is None:
            cached = tuple(node.to_dict() for node in self.nodes.values())
            object.__setattr__(self, "_node_dicts", cached)
        return cached

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowGraph:
        nodes = {n["task_id"]: NodeSpec.from_dict(n) for n in data["nodes"]}
        return cls(FlowMeta.from_dict(data["meta"]), nodes, data.get("groups", {}))

    def to_json(self, data: Mapping[str, Any] | None = None) -> str:
        """``data``: what ``to_dict()`` returned already, if the caller has it."""
        return json.dumps(self.to_dict() if data is None else data, sort_keys=True, separators=(",", ":"), default=str)

    def version_hash(self, data: Mapping[str, Any] | None = None) -> str:
        """Changes whenever anything the engine or UI reads from the graph changes.

        Worked out once per graph: recording a run asks for it twice (the flow's version and the
        run's), and serializing a 100,000-task graph takes a good part of a second. A graph is
        never changed in place (``with_nodes`` returns a new one). ``data``: ``to_dict()``'s
        result, when the caller made it for its own use (the flow's record stores it)."""
        cached: str | None = self.__dict__.get("_version_hash")
        if cached is None:
            cached = hashlib.sha256(self.to_json(data).encode()).hexdigest()[:16]
            object.__setattr__(self, "_version_hash", cached)
        return cached


def downstream_of(nodes: Mapping[str, NodeSpec]) -> dict[str, list[str]]:
    down: dict[str, list[str]] = {task_id: [] for task_id in nodes}
    for node in nodes.values():
        for up in node.upstream:
            if up in down:
                down[up].append(node.task_id)
    return down


def _closure(start: Iterable[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        current = stack.pop()
        for nxt in edges.get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def check_dependencies(nodes: Mapping[str, NodeSpec], *, where: str = "") -> None:
    """Every upstream id must name a node of the graph."""
    prefix = f"{where}: " if where else ""
    for node in nodes.values():
        for up in node.upstream:
            if up not in nodes:
                raise InvalidDependencyError(
                    f"{prefix}task {node.task_id!r} depends on {up!r}, which is not a task of this flow"
                )


def find_cycle(nodes: Mapping[str, NodeSpec]) -> list[str] | None:
    """A cycle as a path whose first node is repeated at the end, or None.

    Iterative depth-first search, so graphs of any depth are safe.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(nodes, white)
    for root in nodes:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        iters = [iter(nodes[root].upstream)]
        colour[root] = grey
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                iters.pop()
                continue
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                cycle = [*path[path.index(nxt) :], nxt]
                return list(reversed(cycle))
            if colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                iters.append(iter(nodes[nxt].upstream))
    return None


def topological(nodes: Mapping[str, NodeSpec], *, where: str = "") -> dict[str, NodeSpec]:
    """Nodes reordered so that every node comes after its upstream; validates the graph.

    Kahn's algorithm, stable with respect to the given order; raises ``InvalidDependencyError``
    or ``CycleError`` (with the cycle's path) when the graph is not a DAG.
    """
    check_dependencies(nodes, where=where)
    indegree = {task_id: len(set(node.upstream)) for task_id, node in nodes.items()}
    down = downstream_of(nodes)
    ready = [task_id for task_id, deg in indegree.items() if deg == 0]
    ordered: dict[str, NodeSpec] = {}
    i = 0
    while i < len(ready):
        task_id = ready[i]
        i += 1
        ordered[task_id] = nodes[task_id]
        for nxt in dict.fromkeys(down[task_id]):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(ordered) != len(nodes):
        cycle = find_cycle(nodes) or [t for t in nodes if t not in ordered]
        raise CycleError(cycle, where)
    return ordered


def with_upstream(node: NodeSpec, upstream: Iterable[str]) -> NodeSpec:
    return replace(node, upstream=tuple(dict.fromkeys(upstream)))
