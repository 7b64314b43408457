"""``SqlResults``: the database-backed ``ResultBackend`` (Airflow's XCom, in the store), with
large values offloaded to an object store.

Each call is its own short transaction, because results are pushed and pulled by task code on
workers, not by the scheduler. Run keys (``flow_id/run_id``) are resolved to run primary keys
once and cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from ductwork.core.results import MISSING, RETURN_VALUE
from ductwork.errors import NotFoundError
from ductwork.store.engine import database_unavailable, read_transaction, transaction
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
T = TypeVar("T")


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
        outage_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``outage_wait``: how long a push or pull waits for a database that is unreachable
        (restarting, failing over, its disk full) before it gives up: a try whose work is done
        must not fail for want of a place to put its return value for a few seconds."""
        self.engine = engine
        self.outage_wait = outage_wait
        self._sleep = sleep
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

        def put() -> Any:
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
                return old

        try:
            old = self._patiently(put, f"store result {key!r} of task {task_id!r}")
        except BaseException:
            if reference is not None:
                _forget(reference)
            raise
        if old is not None and old.reference and old.reference != reference:
            _forget(old.reference)

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        def get() -> Any:
            with read_transaction(self.engine) as conn:
                return repo.get_result(conn, self._run_pk(conn, run_key), task_id, key)

        stored = self._patiently(get, f"read result {key!r} of task {task_id!r}")
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

    def _patiently(self, call: Callable[[], T], what: str) -> T:
        """``call()``, again and again (0.2 s apart, doubling to 5 s) while the database is
        unavailable, for up to ``outage_wait`` seconds; the statement is an upsert or a read,
        so doing it twice is harmless. Said once in the try's log."""
        waited, pause, told = 0.0, 0.2, False
        while True:
            try:
                return call()
            except Exception as exc:
                if not database_unavailable(exc) or waited >= self.outage_wait:
                    raise
                if not told:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning(
                        "the database is unavailable (%s): waiting up to %gs to %s", first, self.outage_wait, what
                    )
                    told = True
            self._sleep(pause)
            waited += pause
            pause = min(pause * 2, 5.0)

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
