"""``airflow.models.xcom``: ``XCom`` (``BaseXCom``) and ``XCOM_RETURN_KEY``.

DAG code calls XCom's class methods from inside a task (``XCom.get_one(run_id=context["run_id"],
task_id="extract", dag_id=dag.dag_id)``, ``XCom.get_many(...)``, ``XCom.set(...)``), and
custom XCom backends subclass ``BaseXCom``. Under Ductwork these read and write the running
try's result store, the one ``ti.xcom_pull`` uses: values of the running DAG run always;
another run's (``run_id=`` naming it) when the store keeps every run, as the scheduler's
metadata database does. ``ductwork run`` keeps only its own run's values, so asking it for another
run's raises, as does an ``execution_date`` other than the run's own: these calls fail saying
what they could not read rather than answer ``None`` for a value that may exist. Called outside
a running task (at import), they raise saying so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from ductwork.core.context import get_current_context, run_key
from ductwork.core.results import MISSING, RETURN_VALUE

from ..exceptions import AirflowException

XCOM_RETURN_KEY = RETURN_VALUE


class XComRow:
    """One value as ``XCom.get_many`` lists it (Airflow's ORM row, read-only)."""

    def __init__(self, *, key: str, value: Any, dag_id: str, task_id: str, run_id: str, map_index: int) -> None:
        self.key = key
        self.value = value
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.map_index = map_index

    def __repr__(self) -> str:
        index = "" if self.map_index < 0 else f" map_index={self.map_index}"
        return f'<XCom "{self.key}" ({self.task_id} @ {self.run_id}{index})>'


class XComRows(list[XComRow]):
    """What ``get_many`` returns: the rows, with the query methods DAG code calls on it."""

    def all(self) -> list[XComRow]:
        return list(self)

    def first(self) -> XComRow | None:
        return self[0] if self else None

    def one_or_none(self) -> XComRow | None:
        if len(self) > 1:
            raise AirflowException(f"XCom.get_many(...).one_or_none(): {len(self)} values match")
        return self.first()

    def count(self) -> int:  # type: ignore[override]  # a query's count(), not list.count(x)
        return len(self)

    def limit(self, n: int | None) -> XComRows:
        return XComRows(self if n is None else self[:n])

    def order_by(self, *clauses: Any) -> XComRows:
        return self

    def with_entities(self, *columns: Any) -> XComRows:
        return self


def _running_ti(call: str) -> Any:
    """The try's ``ti`` (the shim's view) and its core handle, or an error naming ``call``."""
    try:
        context = get_current_context()
    except RuntimeError:
        raise AirflowException(
            f"XCom.{call}() is called outside a running task: under Ductwork XComs are read and written "
            "by tasks of a run (call it in the task, or pull the value with ti.xcom_pull there)"
        ) from None
    return context["ti"]


class BaseXCom:
    """Airflow's XCom model: class methods over the running try's result store."""

    @staticmethod
    def serialize_value(value: Any, *, key: str | None = None, **kwargs: Any) -> Any:
        """JSON text, as Airflow's default backend writes (custom backends override it)."""
        return json.dumps(value).encode("utf-8")

    @staticmethod
    def deserialize_value(result: Any) -> Any:
        raw = getattr(result, "value", result)
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)

    def orm_deserialize_value(self) -> Any:
        return getattr(self, "value", None)

    # --- reading ---------------------------------------------------------------------------------
    @classmethod
    def get_value(cls, *, ti_key: Any, key: str | None = None, session: Any = None) -> Any:
        """The value of the try ``ti_key`` (``ti.key``) under ``key`` (its return value by default)."""
        return cls.get_one(
            key=key or XCOM_RETURN_KEY,
            task_id=ti_key.task_id,
            dag_id=ti_key.dag_id,
            run_id=ti_key.run_id,
            map_index=ti_key.map_index,
        )

    @classmethod
    def get_one(
        cls,
        execution_date: dt.datetime | None = None,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        include_prior_dates: bool = False,
        session: Any = None,
        *,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        """One value, ``None`` when there is none (as Airflow's). Without ``key``, the task's
        return value when it has one, else another value it pushed."""
        if key is None:
            found = cls.get_one(
                execution_date, XCOM_RETURN_KEY, task_id, dag_id, False, None, run_id=run_id, map_index=map_index
            )
            if found is not None:
                return found
        rows = cls.get_many(
            execution_date=execution_date,
            key=key,
            task_ids=task_id,
            dag_ids=dag_id,
            map_indexes=map_index,
            include_prior_dates=include_prior_dates,
            run_id=run_id,
            _call="get_one",
        )
        return rows[0].value if rows else None

    @classmethod
    def get_many(
        cls,
        execution_date: dt.datetime | None = None,
        key: str | None = None,
        task_ids: str | Iterable[str] | None = None,
        dag_ids: str | Iterable[str] | None = None,
        map_indexes: int | Iterable[int] | None = None,
        include_prior_dates: bool = False,
        limit: int | None = None,
        session: Any = None,
        *,
        run_id: str | None = None,
        _call: str = "get_many",
    ) -> XComRows:
        """The values that match, in the order of ``task_ids`` (then map index); ``key=None``:
        every key the tasks pushed."""
        ti = _running_ti(_call)
        dag_id, run = _run_asked(ti, _call, execution_date, dag_ids, run_id)
        names = _task_ids(ti, task_ids)
        indexes: list[int | None] = (
            [None] if map_indexes is None else [map_indexes] if isinstance(map_indexes, int) else list(map_indexes)
        )
        results = ti.results
        own_run = run == ti.run_id and dag_id == ti.dag_id
        if not own_run and not _keeps_every_run(results):
            raise AirflowException(
                f"XCom.{_call}(dag_id={dag_id!r}, run_id={run!r}): this run (`ductwork run`) keeps only its own "
                "XComs; run the DAG under `ductwork scheduler`, whose metadata database keeps every run's"
            )
        rows = XComRows()
        where = run_key(dag_id, run)
        for name in names:
            for index in indexes:
                stored = name if index is None or index < 0 else f"{name}[{index}]"
                keys = [key] if key is not None else _keys(results, where, stored)
                for one in keys:
                    value = _pull(ti, results, where, stored, one, own_run)
                    if value is not MISSING:
                        rows.append(
                            XComRow(
                                key=one,
                                value=value,
                                dag_id=dag_id,
                                task_id=name,
                                run_id=run,
                                map_index=-1 if index is None else index,
                            )
                        )
        if not rows and include_prior_dates:
            raise AirflowException(
                f"XCom.{_call}(key={key!r}, include_prior_dates=True): this run has no such value and "
                "earlier runs' XComs are not read by Ductwork"
            )
        return rows.limit(limit)

    # --- writing ---------------------------------------------------------------------------------
    @classmethod
    def set(
        cls,
        key: str,
        value: Any,
        task_id: str,
        dag_id: str,
        execution_date: dt.datetime | None = None,
        session: Any = None,
        *,
        run_id: str | None = None,
        map_index: int = -1,
    ) -> None:
        """Store ``value`` under ``key`` for ``task_id`` of the running DAG run (only that run)."""
        ti = _running_ti("set")
        flow_id, run = _run_asked(ti, "set", execution_date, dag_id, run_id)
        if (flow_id, run) != (ti.dag_id, ti.run_id):
            raise AirflowException(
                f"XCom.set(dag_id={flow_id!r}, run_id={run!r}): a task writes XComs only into its own DAG run"
            )
        stored = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        ti.results.push(run_key(flow_id, run), stored, key, value)

    @classmethod
    def clear(
        cls,
        execution_date: dt.datetime | None = None,
        dag_id: str | None = None,
        task_id: str | None = None,
        session: Any = None,
        *,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> None:
        """Remove ``task_id``'s values in the running DAG run."""
        ti = _running_ti("clear")
        flow_id, run = _run_asked(ti, "clear", execution_date, dag_id, run_id)
        if (flow_id, run) != (ti.dag_id, ti.run_id) or task_id is None:
            raise AirflowException("XCom.clear(): a task clears only a task_id's XComs of its own DAG run")
        stored = task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
        ti.results.clear(run_key(flow_id, run), stored)


XCom = BaseXCom


def _run_asked(
    ti: Any, call: str, execution_date: dt.datetime | None, dag_ids: str | Iterable[str] | None, run_id: str | None
) -> tuple[str, str]:
    """The (DAG id, run id) a call names: the running one unless it names another."""
    if dag_ids is None or isinstance(dag_ids, str):
        dag_id = dag_ids or ti.dag_id
    else:
        listed = list(dag_ids)
        if len(listed) != 1:
            raise AirflowException(f"XCom.{call}(dag_ids={listed!r}): give one DAG id")
        dag_id = listed[0]
    if run_id is not None:
        return dag_id, run_id
    if execution_date is not None and (dag_id != ti.dag_id or not _same_instant(execution_date, ti.logical_date)):
        raise AirflowException(
            f"XCom.{call}(dag_id={dag_id!r}, execution_date={execution_date!r}): only the running DAG run is "
            "found by its date under Ductwork; name another run by run_id="
        )
    return dag_id, ti.run_id


def _same_instant(a: dt.datetime, b: Any) -> bool:
    try:
        return bool(a == b)
    except TypeError:  # a naive date against the run's aware one: Airflow's dates are UTC
        return a.replace(tzinfo=dt.UTC) == b


def _task_ids(ti: Any, task_ids: str | Iterable[str] | None) -> list[str]:
    if task_ids is None:
        dag = getattr(ti.task, "dag", None)
        return list(getattr(dag, "task_ids", None) or [ti.task_id])
    return [task_ids] if isinstance(task_ids, str) else list(task_ids)


def _keeps_every_run(results: Any) -> bool:
    """Whether the try's store answers for other runs: the metadata database's does; the one
    `ductwork run` keeps in memory for its run does not (unless it reads earlier runs from it)."""
    from ductwork.core.results import MemoryResults

    return not isinstance(results, MemoryResults) or hasattr(results, "earlier")


def _pull(ti: Any, results: Any, where: str, task_id: str, key: str, own_run: bool) -> Any:
    """One stored value, ``MISSING`` when there is none (a mapped task's instances' values, in
    the running run, as ``ti.xcom_pull`` lists them)."""
    if own_run:
        missing = object()
        value = ti.xcom_pull(task_ids=task_id, key=key, default=missing)
        return MISSING if value is missing else value
    from ductwork.errors import NotFoundError

    try:
        return results.pull(where, task_id, key)
    except NotFoundError:  # no such run: nothing to read, as Airflow's query finds no row
        return MISSING


def _keys(results: Any, where: str, task_id: str) -> list[str]:
    """The keys ``task_id`` pushed in the run ``where`` (none when there is no such run)."""
    from ductwork.errors import NotFoundError

    listing = getattr(results, "keys", None)
    if listing is None:  # a store that cannot list: the return value is the key tasks push
        return [XCOM_RETURN_KEY]
    try:
        return [k for k in listing(where, task_id) if k not in _ENGINE_KEYS]
    except NotFoundError:
        return []


def _engine_keys() -> frozenset[str]:
    """Keys Ductwork itself keeps beside a task's XComs (a mapped instance's outcome, a
    sensor's state): not the DAG's, so never listed as its XComs."""
    from ductwork.core.mapping import MAPPED_COUNT, MAPPED_TASK, OUTCOME, WAITED_FOR
    from ductwork.core.sensors import SENSOR_STATE_KEY

    return frozenset({MAPPED_COUNT, MAPPED_TASK, OUTCOME, SENSOR_STATE_KEY, WAITED_FOR})


_ENGINE_KEYS = _engine_keys()


__all__ = ["XCOM_RETURN_KEY", "BaseXCom", "XCom"]
