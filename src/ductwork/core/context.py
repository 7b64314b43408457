"""What a task sees while it runs: the run it belongs to, its try, and its results.

``TaskContext`` is both a mapping (``context["ds"]``, as in Airflow) and an object
(``context.ds``); templates render against it. ``TaskInstance`` (``context["ti"]``) is the
try's handle for pushing and pulling results and for the branching decisions that operators
report back to the engine.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import logging
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.frozen import FrozenDict
from ductwork.core.masking import mask_values_under_secret_keys
from ductwork.core.results import MISSING, RETURN_VALUE, ResultBackend


@dataclass(frozen=True)
class RunInfo:
    """The run a try belongs to."""

    flow_id: str
    run_id: str
    logical_date: dt.datetime
    data_interval_start: dt.datetime
    data_interval_end: dt.datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    conf: Mapping[str, Any] = field(default_factory=dict)
    run_type: str = "manual"
    timezone: dt.tzinfo = dt.UTC
    triggered_by: Mapping[str, Any] | None = None
    """What started the run besides a person or the clock: asset events or a message."""

    @property
    def key(self) -> str:
        """Unique among all runs (run ids are unique only within a flow)."""
        return run_key(self.flow_id, self.run_id)


def run_key(flow_id: str, run_id: str) -> str:
    return f"{flow_id}/{run_id}"


@dataclass
class BranchDecision:
    """What a branching or short-circuiting try decided about its downstream tasks."""

    skip: set[str] = field(default_factory=set)
    recursive: bool = False


class TaskInstance:
    """The try's handle: identity, results, and decisions about downstream tasks."""

    def __init__(
        self,
        run: RunInfo,
        task_id: str,
        try_number: int,
        max_tries: int,
        results: ResultBackend,
        downstream: Iterable[str] = (),
    ) -> None:
        self.run = run
        self.task_id = task_id
        self.try_number = try_number
        self.max_tries = max_tries
        self.results = results
        self.downstream_ids = frozenset(downstream)
        self.decision = BranchDecision()
        self.pushed_keys: list[str] = []
        self.cache_check: Any = None
        """For ``cache="content"``: the try's fingerprint check (``engine.caching``), recorded at its end."""
        self.result_serializer: str | None = None
        """The serializer the task asked for (``result_serializer=``); ``None``: the backend's."""

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def flow_id(self) -> str:
        return self.run.flow_id

    def xcom_push(self, key: str, value: Any, *, serializer: str | None = None) -> None:
        """Store a result; ``serializer`` (``"json"``, ``"pickle"``...) overrides the task's choice."""
        chosen = serializer or self.result_serializer
        if chosen is None:
            self.results.push(self.run.key, self.task_id, key, value)
        else:
            self.results.push(self.run.key, self.task_id, key, value, serializer=chosen)
        self.pushed_keys.append(key)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = RETURN_VALUE,
        default: Any = None,
    ) -> Any:
        """One task's value, or a list of values for several task ids (Airflow's contract)."""
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            value = self.results.pull(self.run.key, task_ids, key)
            return default if value is MISSING else value
        out = []
        for task_id in task_ids:
            value = self.results.pull(self.run.key, task_id, key)
            out.append(default if value is MISSING else value)
        return out

    def follow_branches(self, task_ids: Iterable[str]) -> None:
        """Skip every direct downstream task that is not in ``task_ids`` (the engine spares one
        that is also below a followed task: ``Tracker.skip``)."""
        keep = set(task_ids)
        self.decision.skip |= {t for t in self.downstream_ids if t not in keep}

    def skip_downstream(self, *, recursive: bool) -> None:
        """Skip all direct downstream tasks; ``recursive`` skips everything below, ignoring rules."""
        self.decision.skip |= set(self.downstream_ids)
        self.decision.recursive = self.decision.recursive or recursive

    def __repr__(self) -> str:
        return f"<TaskInstance {self.run.flow_id}.{self.task_id} run={self.run.run_id} try={self.try_number}>"


class TaskContext(Mapping[str, Any]):
    """The execution context: a read-only mapping that also allows attribute access."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def with_values(self, **extra: Any) -> TaskContext:
        """A copy with ``extra`` added, of the same class (the Airflow shim's context stays one)."""
        return type(self)({**self._values, **extra})


CONTEXT_NAMES = frozenset(
    {
        # build_context's own
        "flow_id",
        "run_id",
        "run_type",
        "task_id",
        "task",
        "ti",
        "try_number",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "params",
        "conf",
        "log",
        "triggered_by",
        "triggering_asset_events",
        "dag_run",
        # what a try adds (TaskServices.context_values, the executor, PythonOperator)
        "secrets",
        "conn",
        "var",
        "outlet_events",
        "templates_dict",
        # the whole context, by Airflow's convention
        "context",
    }
)
"""The context names a task's function may declare as parameters without a default: the try
passes them by name (``operators.python.call_with_context``), so a ``@task`` call, a
``partial`` or an ``expand`` need not give them. The one list of them: the Airflow shim adds
its own (``compat.airflow._context.AIRFLOW_CONTEXT_NAMES``) to it for DAG files' functions."""


def build_context(
    run: RunInfo,
    ti: TaskInstance,
    task: Any,
    *,
    log: logging.Logger | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TaskContext:
    """The standard context variables, as Airflow names them."""
    ds, ds_nodash, ts, ts_nodash = date_strings(run.logical_date, run.timezone)
    # a "password" in the conf is *** on the run page: in the try's log and rendered fields too
    mask_values_under_secret_keys(run.params)
    mask_values_under_secret_keys(run.conf)
    values: dict[str, Any] = {
        "flow_id": run.flow_id,
        "run_id": run.run_id,
        "run_type": run.run_type,
        "task_id": ti.task_id,
        "task": task,
        "ti": ti,
        "try_number": ti.try_number,
        "logical_date": run.logical_date,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "ds": ds,
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": ts_nodash,
        "params": _Params(_thawed(run.params)),
        "conf": dict(run.conf),
        "log": log or logging.getLogger(f"ductwork.task.{ti.task_id}"),
        "triggered_by": dict(run.triggered_by or {}),
        "triggering_asset_events": _asset_events(run.triggered_by),
        "dag_run": RunView(run),
    }
    if extra:
        values.update(extra)
    return TaskContext(values)


class RunView:
    """``dag_run`` in a flow's context: the run a try belongs to, read as Airflow code reads it
    (``dag_run.conf``, ``dag_run.run_id``...). The README documents ``{{ dag_run.conf }}`` for
    every flow and the Airflow style invites writing it, yet a native flow's template failed with
    "'dag_run' is undefined" and a callable declaring ``dag_run`` got nothing. (Airflow DAG
    files get the shim's fuller ``DagRun`` instead.)"""

    def __init__(self, run: RunInfo) -> None:
        self.flow_id = self.dag_id = run.flow_id
        self.run_id = run.run_id
        self.run_type = run.run_type
        self.conf: dict[str, Any] = dict(run.conf)
        self.logical_date = self.execution_date = run.logical_date
        self.data_interval_start = run.data_interval_start
        self.data_interval_end = run.data_interval_end
        self.external_trigger = run.run_type == "manual"

    def __repr__(self) -> str:
        return f"<RunView {self.flow_id} @ {self.logical_date.isoformat()}: {self.run_id}, {self.run_type}>"


@functools.lru_cache(maxsize=64)
def date_strings(logical_date: dt.datetime, timezone: dt.tzinfo) -> tuple[str, str, str, str]:
    """``ds``, ``ds_nodash``, ``ts``, ``ts_nodash``: the same for every try of a run, so made once.
    All four in the flow's timezone (``ts`` with its offset), so that they agree: in an
    ``Asia/Tokyo`` flow, ``ds`` was the local date and ``ts_nodash`` the UTC one, a day apart.
    (Airflow DAGs get Airflow's UTC values from the shim.)"""
    local = logical_date.astimezone(timezone)
    return (
        local.strftime("%Y-%m-%d"),
        local.strftime("%Y%m%d"),
        local.isoformat(),
        local.strftime("%Y%m%dT%H%M%S"),
    )


class AssetUpdate(dict[str, Any]):
    """One update that started the run: a dict (``event["extra"]``) whose keys are attributes
    too (``event.extra``, ``event.uri``, ``event.flow_id``...), as the outlet side is written
    (``outlet_events[ORDERS].extra``) and as Airflow's ``AssetEvent`` is read."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"an asset update has no {name!r}; it has {', '.join(self)}") from None


class TriggeringAssetEvents(dict[str, list[AssetUpdate]]):
    """The updates that started the run, by asset URI; an ``Asset`` is a key too, as in
    ``outlet_events[ORDERS]``: ``triggering_asset_events[ORDERS]`` raised ``KeyError: Asset(...)``
    for a run that ORDERS had started."""

    def __getitem__(self, key: Any) -> list[AssetUpdate]:
        uri = _uri_of(key)
        try:
            return super().__getitem__(uri)
        except KeyError:
            raise KeyError(
                f"{uri!r} did not start this run; the assets that did: {', '.join(self) or '(none)'}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return super().__contains__(_uri_of(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(_uri_of(key), default)


def _uri_of(key: Any) -> Any:
    """An asset's URI (a plain absolute path as ``file://``, as assets write it)."""
    uri = getattr(key, "uri", key)
    return "file://" + uri if isinstance(uri, str) and uri.startswith("/") else uri


def _asset_events(triggered_by: Mapping[str, Any] | None) -> TriggeringAssetEvents:
    """The asset events that started the run, by asset URI (Airflow's ``triggering_asset_events``)."""
    out = TriggeringAssetEvents()
    for event in (triggered_by or {}).get("asset_events", ()):
        dict.setdefault(out, event["uri"], []).append(AssetUpdate(event))
    return out


def _thawed(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Run parameters as tasks see them: a dict value as a ``dict`` (parameters keep it as a
    read-only ``FrozenDict``, for their identity), so the task may change its copy, and
    ``json.dumps(params["d"])`` and ``{{ params.d | tojson }}`` work as in Airflow."""
    if not any(isinstance(v, FrozenDict | types.MappingProxyType | tuple) for v in params.values()):
        return params
    return {k: _thaw(v) for k, v in params.items()}


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenDict | types.MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(_thaw(v) for v in value)
    return value


class _Params(dict[str, Any]):
    """``params`` with attribute access, so templates may write ``params.n`` or ``params['n']``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_CURRENT: contextvars.ContextVar[TaskContext] = contextvars.ContextVar("ductwork_task_context")


def get_current_context() -> TaskContext:
    """The context of the try running in this thread; for code that cannot take it as an argument."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("get_current_context() called outside a running task") from None


def set_current_context(context: TaskContext) -> contextvars.Token[TaskContext]:
    return _CURRENT.set(context)


def reset_current_context(token: contextvars.Token[TaskContext]) -> None:
    _CURRENT.reset(token)
