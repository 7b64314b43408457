"""``SqlResults``: the database-backed ``ResultBackend`` (Airflow's XCom, in the store), with
large values offloaded to an object store.

Each call is its own short transaction, because results are pushed and pulled by task code on
workers, not by the scheduler. Run keys (``flow_id/run_id``) are resolved to run primary keys
once and cached.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from ductwork.core.results import MISSING, RETURN_VALUE
from ductwork.errors import NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import ResultSerializationError, StoreError
from ductwork.store.offload import ObjectStore, delete_reference, read_reference
from ductwork.store.repo import results as repo
from ductwork.store.repo.runs import run_pks
from ductwork.store.serializers import (
    BUILT_IN,
    JsonSerializer,
    Serializer,
    is_arrow_table,
    is_dataframe,
    unstorable,
)

PICKLE = "pickle"
log = logging.getLogger("ductwork.store")


class SqlResults:
    """Task results kept in the ``task_results`` table, or in an object store when large.

    ``serializer`` writes new values (JSON by default); DataFrames and Arrow tables are written
    as Parquet; ``allow_pickle`` enables the pickle serializer (for values JSON cannot hold, and
    for tasks that ask for it) and reading rows written with it. ``readers`` (by name) read
    values written by other serializers, so switching the default never makes old results
    unreadable.

    With ``offload`` (an ``ObjectStore``), a value whose serialized size is more than
    ``offload_threshold`` bytes is written there and its row holds only the reference and the
    size; ``pull`` reads it back from the reference, wherever it is.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        serializer: Serializer | None = None,
        readers: Mapping[str, Serializer] | None = None,
        allow_pickle: bool = False,
        offload: ObjectStore | None = None,
        offload_threshold: int = 64 * 1024,
    ) -> None:
        self.engine = engine
        self.serializer: Serializer = serializer or JsonSerializer()
        self.allow_pickle = allow_pickle
        known = {n: s for n, s in BUILT_IN.items() if n != PICKLE or allow_pickle}
        self.readers: dict[str, Serializer] = {**known, self.serializer.name: self.serializer, **(readers or {})}
        self.offload = offload
        self.offload_threshold = offload_threshold

    # --- ResultBackend ----------------------------------------------------------------------
    def push(self, run_key: str, task_id: str, key: str, value: Any, *, serializer: str | None = None) -> None:
        used, data = self._dumps(task_id, key, value, serializer)
        reference = None
        if self.offload is not None and len(data) > self.offload_threshold:
            reference = self.offload.put(run_key, task_id, key, data, serializer=used.name)
        try:
            with transaction(self.engine) as conn:
                run_pk = self._run_pk(conn, run_key)
                old = repo.get_result(conn, run_pk, task_id, key)
                repo.put_result(
                    conn,
                    run_pk,
                    task_id,
                    key,
                    None if reference else data,
                    serializer=used.name,
                    reference=reference,
                    size=len(data),
                )
        except BaseException:
            if reference is not None:
                _forget(reference)
            raise
        if old is not None and old.reference and old.reference != reference:
            _forget(old.reference)

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        with read_transaction(self.engine) as conn:
            stored = repo.get_result(conn, self._run_pk(conn, run_key), task_id, key)
        if stored is None:
            return MISSING
        reader = self.readers.get(stored.serializer)
        if reader is None:
            hint = " (enable it with the results_pickle setting)" if stored.serializer == PICKLE else ""
            raise StoreError(
                f"result {key!r} of task {task_id!r} in run {run_key!r} was written with the "
                f"{stored.serializer!r} serializer, which is not configured here{hint}"
            )
        data = stored.value if stored.reference is None else read_reference(stored.reference)
        if data is None:
            raise StoreError(
                f"result {key!r} of task {task_id!r} in run {run_key!r} has neither a value nor a reference"
            )
        return reader.loads(data)

    def clear(self, run_key: str, task_id: str) -> None:
        with transaction(self.engine) as conn:
            run_pk = self._run_pk(conn, run_key)
            references = [r.reference for r in repo.list_results(conn, run_pk, task_id) if r.reference]
            repo.clear_results(conn, run_pk, [task_id])
        for reference in references:
            _forget(reference)

    # --- extras -----------------------------------------------------------------------------
    def keys(self, run_key: str, task_id: str) -> list[str]:
        with read_transaction(self.engine) as conn:
            return [r.key for r in repo.list_results(conn, self._run_pk(conn, run_key), task_id)]

    def _choose(self, value: Any, requested: str | None, task_id: str, key: str) -> Serializer:
        if requested is not None:
            if requested == PICKLE and not self.allow_pickle:
                raise ResultSerializationError(
                    f"task {task_id!r}: result {key!r} asks for the pickle serializer, which is off; turn on the "
                    "results_pickle setting (DUCTWORK_RESULTS_PICKLE=true) if only trusted code writes to this store",
                    task_id=task_id,
                    key=key,
                )
            chosen = self.readers.get(requested)
            if chosen is None:
                raise ResultSerializationError(
                    f"task {task_id!r}: result {key!r} asks for an unknown serializer {requested!r}; "
                    f"known: {', '.join(sorted(self.readers))}",
                    task_id=task_id,
                    key=key,
                )
            return chosen
        if is_dataframe(value):
            return self.readers["parquet.pandas"]
        if is_arrow_table(value):
            return self.readers["parquet.arrow"]
        return self.serializer

    def _dumps(self, task_id: str, key: str, value: Any, requested: str | None) -> tuple[Serializer, bytes]:
        chosen = self._choose(value, requested, task_id, key)
        try:
            return chosen, chosen.dumps(value)
        except (TypeError, ValueError) as exc:
            if requested is None and self.allow_pickle and chosen.name != PICKLE:
                pickle = self.readers[PICKLE]
                try:
                    return pickle, pickle.dumps(value)
                except (TypeError, ValueError):
                    pass
            raise unstorable(task_id, key, chosen.name, exc, allow_pickle=self.allow_pickle) from exc

    def _run_pk(self, conn: Connection, run_key: str) -> int:
        """Looked up in the transaction of each call, not cached: a run can be deleted and a
        new one created under the same key, and a worker outlives both."""
        pk = run_pks(conn, [run_key]).get(run_key)
        if pk is None:
            raise NotFoundError(f"no run {run_key!r} in the database; results can only be stored for recorded runs")
        return pk


def _forget(reference: str) -> None:
    """Delete an object no row points at any more; a failure leaves garbage, not an error."""
    try:
        delete_reference(reference)
    except Exception as exc:
        log.warning("could not delete the offloaded result %s: %s", reference, exc)
