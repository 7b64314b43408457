"""The task context as Airflow documents it (its templates reference), built from Ductwork's.

Ductwork's context already uses Airflow's names for what both have (``ds``, ``ti``, ``params``,
``logical_date``...); this adds the rest for shimmed operators only: ``pendulum`` dates in UTC
(Airflow's ``ds`` and ``ts`` are UTC), ``dag``, ``dag_run``, ``task_instance`` (a view of the
try with ``dag_id``, ``map_index`` and Airflow's ``xcom_pull`` arguments),
``task_instance_key_str``, the deprecated ``prev_ds``/``next_ds``/``yesterday_ds``/``tomorrow_ds``
family, ``macros`` with Airflow's module list, ``test_mode``, ``expanded_ti_count``, and the
events that started an asset-triggered run as ``triggering_dataset_events`` (2.x, keyed by URI)
and ``triggering_asset_events`` (3.x, keyed by asset), and ``inlet_events`` (each inlet's recorded
events).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ductwork.compat.airflow._assets import InletEvents, TriggeringEvents
from ductwork.core.context import TaskContext
from ductwork.core.results import RETURN_VALUE
from ductwork.core.templating import MACROS

from ._dag_run import DagRunView, to_pendulum  # relative: airflow.models.dagrun's DagRun under the shim
from .exceptions import AirflowException

_MISSING: Any = object()


def _ds(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d")


class TaskInstanceKey(NamedTuple):
    """``ti.key``: Airflow's identity of a try (``airflow.models.taskinstancekey``)."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int = 1
    map_index: int = -1


def _base_task_id(task_id: str) -> str:
    """A mapped instance's task id without its ``[i]`` (its map index is the key's own field)."""
    return task_id.rsplit("[", 1)[0] if task_id.endswith("]") else task_id


class TaskInstanceView:
    """``ti`` / ``task_instance``: the try's handle with Airflow's extra attributes."""

    def __init__(self, ti: Any, *, dag_id: str, map_index: int, task: Any, logical_date: Any, dag_run: Any) -> None:
        self.__dict__["_ti"] = ti
        self.dag_id = dag_id
        self.map_index = map_index
        self.task = task
        self.logical_date = logical_date
        self.execution_date = logical_date
        self.dag_run = dag_run
        self.state = "running"
        self.hostname = __import__("socket").gethostname()
        self.operator = type(task).__name__
        self.start_date = to_pendulum(dt.datetime.now(dt.UTC))
        self.end_date: Any = None
        """Set when the try has ended, before its success, retry or failure callbacks run."""
        self.pool = getattr(task, "pool", None) or "default_pool"
        self.pool_slots = int(getattr(task, "pool_slots", 1) or 1)
        self.queue = getattr(task, "queue", None) or "default"
        self.priority_weight = int(getattr(task, "priority_weight", 1) or 1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_ti"], name)

    @property
    def duration(self) -> float | None:
        """Seconds from the try's start to its end; ``None`` while it runs, as in Airflow."""
        return None if self.end_date is None else (self.end_date - self.start_date).total_seconds()

    @property
    def key(self) -> TaskInstanceKey:
        ti = self.__dict__["_ti"]
        return TaskInstanceKey(self.dag_id, _base_task_id(ti.task_id), ti.run_id, ti.try_number, self.map_index)

    @property
    def log_url(self) -> str:
        """The try's page in the web UI (its Log tab), which failure callbacks put in their
        alerts (``ti.log_url`` in a Slack or e-mail message). The address is
        ``AIRFLOW__WEBSERVER__BASE_URL``, a migrated deployment's setting, or
        ``http://localhost:8080`` as in Airflow (``ductwork webserver``'s default port)."""
        ti = self.__dict__["_ti"]
        base = os.environ.get("AIRFLOW__WEBSERVER__BASE_URL", "").strip() or "http://localhost:8080"
        parts = (self.dag_id, ti.run_id, ti.task_id)
        flow_id, run_id, task_id = (urllib.parse.quote(p, safe="") for p in parts)
        return f"{base.rstrip('/')}/flows/{flow_id}/runs/{run_id}/tasks/{task_id}"

    @property
    def max_tries(self) -> int:
        """Airflow counts retries here (tries after the first)."""
        return int(self.__dict__["_ti"].max_tries) - 1

    def xcom_push(self, key: str, value: Any, execution_date: Any = None) -> None:
        self.__dict__["_ti"].xcom_push(key, value)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = RETURN_VALUE,
        include_prior_dates: bool = False,
        session: Any = None,
        *,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        ti = self.__dict__["_ti"]
        if dag_id is not None and dag_id != self.dag_id:
            raise AirflowException(
                f"xcom_pull(dag_id={dag_id!r}): reading another DAG's XComs is not supported; "
                "pass the value through an asset or a shared store"
            )
        if task_ids is None:
            return self._pull_any(key, default, include_prior_dates)
        if map_indexes is not None:
            names = [task_ids] if isinstance(task_ids, str) else list(task_ids)
            indexes = [map_indexes] if isinstance(map_indexes, int) else list(map_indexes)
            keys = [f"{t}[{i}]" for t in names for i in indexes]
            if isinstance(task_ids, str) and isinstance(map_indexes, int):
                return ti.xcom_pull(task_ids=keys, key=key, default=default)[0]
            # Several values asked for: as Airflow, the list of those that exist, in the order asked.
            return [v for v in ti.xcom_pull(task_ids=keys, key=key, default=_MISSING) if v is not _MISSING]
        value = ti.xcom_pull(task_ids=task_ids, key=key, default=_MISSING)
        if value is _MISSING and isinstance(task_ids, str):
            value = self._pull_instances(task_ids, key)
        if value is _MISSING or (isinstance(value, list) and _MISSING in value):
            self._refuse_prior(include_prior_dates, key)
            if value is _MISSING:
                return default
            # As Airflow's: a task of the list that pushed nothing has no place in the result
            # (a task that returned None pushed nothing).
            return [v for v in value if v is not _MISSING]
        return value

    def _pull_instances(self, task_id: str, key: str) -> Any:
        """A mapped task's values under ``key`` pushed by its instances (not by the task that
        collects their return values): as Airflow, the list of those that pushed one, in
        map-index order."""
        from ductwork.core.mapping import instance_ids

        ti = self.__dict__["_ti"]
        dag = getattr(self.task, "dag", None)
        ids = instance_ids(ti, getattr(dag, "tasks", {}).get(task_id))
        if not ids:
            return _MISSING
        found = [v for v in ti.xcom_pull(task_ids=ids, key=key, default=_MISSING) if v is not _MISSING]
        return found or _MISSING

    def _pull_any(self, key: str, default: Any, include_prior_dates: bool) -> Any:
        """``task_ids=None``: the value any task of this run pushed under ``key`` (Airflow 2
        reads the newest; here, the one of the task defined last, which is downstream of or
        beside the others)."""
        ti = self.__dict__["_ti"]
        dag = getattr(self.task, "dag", None)
        task_ids = list(getattr(dag, "task_ids", None) or [ti.task_id])
        found = [v for v in ti.xcom_pull(task_ids=task_ids, key=key, default=_MISSING) if v is not _MISSING]
        if found:
            return found[-1]
        self._refuse_prior(include_prior_dates, key)
        return default

    @staticmethod
    def _refuse_prior(include_prior_dates: bool, key: str) -> None:
        """Earlier runs' values are not read: say so rather than hand back ``None``."""
        if include_prior_dates:
            raise AirflowException(
                f"xcom_pull(key={key!r}, include_prior_dates=True): this run has no such value and "
                "earlier runs' XComs are not read by Ductwork"
            )

    def get_dagrun(self, session: Any = None) -> Any:
        return self.dag_run

    def __repr__(self) -> str:
        ti = self.__dict__["_ti"]
        return f"<TaskInstance: {self.dag_id}.{ti.task_id} {ti.run_id} [running]>"


class _Macros:
    """``macros``: Ductwork's plus the modules Airflow's templates reference lists."""

    def __init__(self, extra: Mapping[str, Any]) -> None:
        import dateutil

        self.__dict__.update({k: v for k, v in MACROS.items() if k != "json"})
        self.json = json
        self.time = time
        self.uuid = uuid
        self.random = random.random
        self.dateutil = dateutil
        self.datetime_diff_for_humans = _diff_for_humans
        self.__dict__.update(extra)


def _diff_for_humans(dt_value: Any, since: Any = None) -> str:
    import pendulum

    return str(pendulum.instance(dt_value).diff_for_humans(since and pendulum.instance(since)))


AIRFLOW_CONTEXT_NAMES = frozenset(
    {
        "dag",
        "dag_run",
        "task_instance",
        "execution_date",
        "ts_nodash_with_tz",
        "task_instance_key_str",
        "yesterday_ds",
        "yesterday_ds_nodash",
        "tomorrow_ds",
        "tomorrow_ds_nodash",
        "prev_execution_date",
        "prev_ds",
        "prev_ds_nodash",
        "next_execution_date",
        "next_ds",
        "next_ds_nodash",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
        "prev_start_date_success",
        "prev_end_date_success",
        "prev_execution_date_success",
        "inlets",
        "inlet_events",
        "outlets",
        "test_mode",
        "map_index_template",
        "expanded_ti_count",
        "triggering_dataset_events",
        "macros",
    }
)
"""What an Airflow task's context has besides Ductwork's own names (``core.context.CONTEXT_NAMES``):
a DAG file's ``@task`` function may declare them as parameters without a default too
(``def f(task_instance_key_str)``)."""


def _task_params(task: Any, dag: Any, run_params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params`` a task sees, in Airflow's order: the DAG's params, the task's own (and its
    ``default_args``') over them, and the values the run was given over both. A run value equal
    to the DAG's default is taken for the default (the run does not say which values it was
    given), so the task's own value stands."""
    own = dict(getattr(task, "task_params", {}) or {})
    if not own:
        return dict(run_params)
    from .models.dag import dag_params

    defaults = dag_params(dag) if dag is not None else {}
    params = dict(own)
    for name, value in run_params.items():
        if name in own and name in defaults and value == defaults[name]:
            continue
        params[name] = value
    return params


def airflow_context(context: TaskContext, task: Any) -> TaskContext:
    """``context`` with everything Airflow's templates reference names, for ``task``."""
    from .utils.log.logging_mixin import task_logger

    task_logger("airflow.task")  # Airflow's task logger logs INFO: logging.getLogger("airflow.task").info(...)
    dag = getattr(task, "flow", None)
    dag_id = context["flow_id"]
    logical = to_pendulum(context["logical_date"])
    start = to_pendulum(context["data_interval_start"])
    end = to_pendulum(context["data_interval_end"])
    run_type = context.get("run_type", "manual")
    dag_run = DagRunView(
        dag_id=dag_id,
        run_id=context["run_id"],
        run_type=run_type,
        logical_date=logical,
        data_interval_start=start,
        data_interval_end=end,
        conf=dict(context.get("conf") or {}),
        dag=dag,
        external_trigger=run_type == "manual",
        store=context.get("store"),
        current_task=context["ti"].task_id,
    )
    map_index = int(getattr(task, "map_index", -1))
    ti = TaskInstanceView(
        context["ti"], dag_id=dag_id, map_index=map_index, task=task, logical_date=logical, dag_run=dag_run
    )
    ds = _ds(logical)
    ds_nodash = ds.replace("-", "")
    prev, following = _neighbours(dag, context["logical_date"])
    params = _task_params(task, dag, context["params"])
    # Airflow's default (dag_run_conf_overrides_params): a run's conf overrides its params.
    params.update(dict(context.get("conf") or {}))
    values: dict[str, Any] = {
        "dag": dag,
        "dag_run": dag_run,
        "ti": ti,
        "task_instance": ti,
        "params": type(context["params"])(params),
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": start,
        "data_interval_end": end,
        "ds": ds,
        "ds_nodash": ds_nodash,
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": logical.isoformat().replace("-", "").replace(":", ""),
        "task_instance_key_str": f"{dag_id}__{context['task_id']}__{ds_nodash}",
        "yesterday_ds": _ds(logical.subtract(days=1)),
        "yesterday_ds_nodash": _ds(logical.subtract(days=1)).replace("-", ""),
        "tomorrow_ds": _ds(logical.add(days=1)),
        "tomorrow_ds_nodash": _ds(logical.add(days=1)).replace("-", ""),
        "prev_execution_date": prev,
        "prev_ds": _ds(prev) if prev else None,
        "prev_ds_nodash": _ds(prev).replace("-", "") if prev else None,
        "next_execution_date": following,
        "next_ds": _ds(following) if following else None,
        "next_ds_nodash": _ds(following).replace("-", "") if following else None,
        **_previous_success(context, dag_id),
        "inlets": list(getattr(task, "inlets", []) or []),
        "inlet_events": InletEvents(list(getattr(task, "inlets", []) or [])),
        "outlets": list(getattr(task, "outlets", []) or []),
        "test_mode": run_type == "test",  # ductwork tasks test, as airflow tasks test
        "map_index_template": getattr(task, "map_index_template", None),
        "expanded_ti_count": getattr(task, "expanded_ti_count", None),
        "triggering_dataset_events": TriggeringEvents(context.get("triggered_by"), by_object=False),
        "triggering_asset_events": TriggeringEvents(context.get("triggered_by"), by_object=True),
        "macros": _Macros(getattr(dag, "user_defined_macros", {}) or {}),
    }
    if "conn" in context:
        from .models.connection import ConnectionAccessor

        values["conn"] = ConnectionAccessor(context["conn"])
    values.update(getattr(dag, "user_defined_macros", {}) or {})
    return AirflowContext({**context, **values})


def _previous_success(context: TaskContext, dag_id: str) -> dict[str, Any]:
    """Airflow's ``prev_*_success`` values: from the DAG's latest successful run before this
    one, looked up in the metadata database (the scheduler's tries have it; an in-process run
    of ``ductwork run`` has none, and gets None, as a DAG's first run does)."""
    names = ("data_interval_start", "data_interval_end", "start_date", "end_date", "logical_date")
    store = context.get("store")
    found = None
    if store is not None and hasattr(store, "last_success"):
        found = store.last_success(dag_id, context["logical_date"])
    values = {name: getattr(found, name, None) for name in names}
    out = {f"prev_{name}_success": to_pendulum(v) if v is not None else None for name, v in values.items()}
    out["prev_execution_date_success"] = out.pop("prev_logical_date_success")
    return out


class AirflowContext(TaskContext):
    """Airflow's context is a mutable mapping: a task may set a name in it
    (``get_current_context()["label"] = ...``, read by ``map_index_template``)."""

    def __setitem__(self, key: str, value: Any) -> None:
        self._values[key] = value

    def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        self._values.update(values or {}, **more)


def _neighbours(dag: Any, logical_date: dt.datetime) -> tuple[Any, Any]:
    """The previous and next logical dates on the DAG's schedule (Airflow's deprecated
    ``prev_execution_date``/``next_execution_date``): the schedule's own fire times, so an
    ``@monthly`` run's previous date is the first of the month before and a weekday cron's
    Monday run's is the Friday; None for unscheduled DAGs."""
    schedule = getattr(dag, "schedule", None)
    if schedule is None:
        return None, None
    try:
        current = schedule.interval_starting(logical_date)
        before = schedule.interval_before(logical_date)
    except Exception:
        return None, None
    if current.end <= current.start:
        return None, None
    return (to_pendulum(before.start) if before is not None else None), to_pendulum(current.end)
