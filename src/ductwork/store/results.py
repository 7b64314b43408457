"""``SqlResults``: the database-backed ``ResultBackend`` (Airflow's XCom, in the store).

Each call is its own short transaction, because results are pushed and pulled by task code on
workers, not by the scheduler. Run keys (``flow_id/run_id``) are resolved to run primary keys
once and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from ductwork.core.results import MISSING, RETURN_VALUE
from ductwork.errors import NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import ResultSerializationError, StoreError
from ductwork.store.repo import results as repo
from ductwork.store.repo.runs import get_run_by_key
from ductwork.store.serializers import JsonSerializer, Serializer


class SqlResults:
    """Task results kept in the ``task_results`` table.

    ``serializer`` writes new values; ``readers`` (by name) read values written by other
    serializers, so that switching the default never makes old results unreadable.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        serializer: Serializer | None = None,
        readers: Mapping[str, Serializer] | None = None,
    ) -> None:
        self.engine = engine
        self.serializer: Serializer = serializer or JsonSerializer()
        self.readers: dict[str, Serializer] = {self.serializer.name: self.serializer, **(readers or {})}
        self._pks: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- ResultBackend ----------------------------------------------------------------------
    def push(self, run_key: str, task_id: str, key: str, value: Any) -> None:
        data = self._dumps(task_id, key, value)
        with transaction(self.engine) as conn:
            run_pk = self._run_pk(conn, run_key)
            repo.put_result(conn, run_pk, task_id, key, data, serializer=self.serializer.name)

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        with read_transaction(self.engine) as conn:
            stored = repo.get_result(conn, self._run_pk(conn, run_key), task_id, key)
        if stored is None:
            return MISSING
        if stored.value is None:
            raise StoreError(
                f"result {key!r} of task {task_id!r} in run {run_key!r} is stored at {stored.reference!r}, "
                "and reading offloaded results is not supported by this version"
            )
        reader = self.readers.get(stored.serializer)
        if reader is None:
            raise StoreError(
                f"result {key!r} of task {task_id!r} in run {run_key!r} was written with the "
                f"{stored.serializer!r} serializer, which is not configured here"
            )
        return reader.loads(stored.value)

    def clear(self, run_key: str, task_id: str) -> None:
        with transaction(self.engine) as conn:
            repo.clear_results(conn, self._run_pk(conn, run_key), [task_id])

    # --- extras -----------------------------------------------------------------------------
    def keys(self, run_key: str, task_id: str) -> list[str]:
        with read_transaction(self.engine) as conn:
            return [r.key for r in repo.list_results(conn, self._run_pk(conn, run_key), task_id)]

    def _dumps(self, task_id: str, key: str, value: Any) -> bytes:
        try:
            return self.serializer.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ResultSerializationError(
                f"task {task_id!r}: result {key!r} cannot be stored with the {self.serializer.name!r} "
                f"serializer: {exc}. Return plain data (dicts, lists, strings, numbers, booleans, dates, "
                "tuples, sets), or write large or custom objects to a target and return its path",
                task_id=task_id,
                key=key,
            ) from exc

    def _run_pk(self, conn: Connection, run_key: str) -> int:
        with self._lock:
            pk = self._pks.get(run_key)
        if pk is not None:
            return pk
        run = get_run_by_key(conn, run_key)
        if run is None:
            raise NotFoundError(f"no run {run_key!r} in the database; results can only be stored for recorded runs")
        with self._lock:
            self._pks[run_key] = run.pk
        return run.pk
