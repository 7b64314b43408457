"""Results: the repository and ``SqlResults`` (the ResultBackend), values round-trip exactly."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from store_helpers import IST, at, create_run, graph

from ductwork.core.results import MISSING, RETURN_VALUE, ResultBackend
from ductwork.errors import DuctworkError, NotFoundError
from ductwork.store.engine import transaction
from ductwork.store.errors import DatabaseUnreachableError, ResultSerializationError, StoreError
from ductwork.store.repo import results
from ductwork.store.results import SqlResults


@pytest.fixture
def backend(db_engine: Engine) -> SqlResults:
    with transaction(db_engine) as conn:
        create_run(conn, graph(), "r1")
    return SqlResults(db_engine)


def test_repository_put_get_list_clear(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        results.put_result(conn, run.pk, "a", "return_value", b"\x00\xffbinary", serializer="raw", now=at(1))
        results.put_result(conn, run.pk, "a", "extra", b"{}", serializer="json", now=at(1))
        results.put_result(conn, run.pk, "b", "return_value", None, serializer="json", reference="s3://x/y", size=10)
        results.put_result(conn, run.pk, "a", "extra", b"[1]", serializer="json", now=at(2))  # replaces
        stored = results.get_result(conn, run.pk, "a", "return_value")
        listed = results.list_results(conn, run.pk)
        assert stored is not None and (stored.value, stored.serializer) == (b"\x00\xffbinary", "raw")
        extra = results.get_result(conn, run.pk, "a", "extra")
        assert extra is not None and extra.value == b"[1]"
        assert [(r.task_id, r.key, r.size, r.reference) for r in listed] == [
            ("a", "extra", 3, None),
            ("a", "return_value", 8, None),
            ("b", "return_value", 10, "s3://x/y"),
        ]
        assert listed[0].created_at == at(2)
        assert [r.key for r in results.list_results(conn, run.pk, "b")] == ["return_value"]
        assert results.get_result(conn, run.pk, "zz", "return_value") is None
        assert results.clear_results(conn, run.pk, ["a"]) == 2
        assert results.clear_results(conn, run.pk) == 1
        assert results.list_results(conn, run.pk) == []


def test_sql_results_is_a_result_backend(backend: SqlResults) -> None:
    port: ResultBackend = backend
    port.push("etl/r1", "a", "return_value", {"rows": 3})
    assert port.pull("etl/r1", "a") == {"rows": 3}
    assert port.pull("etl/r1", "a", "other") is MISSING
    assert port.pull("etl/r1", "b") is MISSING
    port.push("etl/r1", "a", "other", [1, 2])
    assert backend.keys("etl/r1", "a") == ["other", "return_value"]
    port.clear("etl/r1", "a")
    assert port.pull("etl/r1", "a") is MISSING and backend.keys("etl/r1", "a") == []


def test_values_round_trip_exactly(backend: SqlResults) -> None:
    value = {
        "when": dt.datetime(2024, 5, 1, 12, 30, 1, 5, tzinfo=IST),
        "naive": dt.datetime(2024, 5, 1, 12, 30),
        "day": dt.date(2024, 5, 1),
        "time": dt.time(7, 45),
        "gap": dt.timedelta(days=1, seconds=3, microseconds=9),
        "pair": (1, "x"),
        "tags": {"a", "b"},
        "frozen": frozenset({1}),
        "by_number": {1: "one", (2, 3): "tuple key"},
        "money": Decimal("10.25"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "raw": b"\x00\x01",
        "tricky": {"__dw__": "datetime", "v": "not a date"},
        "text": "héllo ☃ \x00",
        "nested": [{"deep": [(dt.date(2024, 1, 1),)]}],
        "big": 2**70,
        "float": 1.5,
        "none": None,
    }
    backend.push("etl/r1", "a", "return_value", value)
    back = backend.pull("etl/r1", "a")
    assert back == value
    assert back["when"].utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert type(back["pair"]) is tuple and type(back["frozen"]) is frozenset


def test_unserializable_values_fail_with_the_task_and_key(backend: SqlResults) -> None:
    class Model:
        pass

    with pytest.raises(ResultSerializationError) as info:
        backend.push("etl/r1", "train", "model", {"weights": [Model()]})
    message = str(info.value)
    assert "'train'" in message and "'model'" in message and "weights[0]" in message and "Model" in message
    assert "write large or custom objects to a target" in message
    assert isinstance(info.value, DuctworkError) and (info.value.task_id, info.value.key) == ("train", "model")
    assert backend.pull("etl/r1", "train", "model") is MISSING


def test_unknown_runs_and_unreadable_rows(backend: SqlResults, db_engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="etl/nope"):
        backend.push("etl/nope", "a", "return_value", 1)
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(), "r2")
        results.put_result(conn, run.pk, "a", "return_value", b"...", serializer="pickle")
        # An offloaded value whose object is gone (memory://: no network in tests).
        results.put_result(conn, run.pk, "b", "return_value", None, serializer="json", reference="memory://b/k")
    with pytest.raises(StoreError, match="'pickle' serializer"):
        backend.pull("etl/r2", "a")
    with pytest.raises(StoreError, match="memory://b/k"):
        backend.pull("etl/r2", "b")


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=8)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.timedeltas()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
    ),
    max_leaves=10,
)
_keys = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_values)
@example(value=dt.datetime(1967, 2, 28, 23, 0, tzinfo=ZoneInfo("America/Rio_Branco")))  # inside a fold
def test_any_supported_value_round_trips(backend: SqlResults, value: Any) -> None:
    key = f"k{next(_keys)}"
    backend.push("etl/r1", "a", key, value)
    assert _instants(backend.pull("etl/r1", "a", key)) == _instants(value)


def _instants(value: Any) -> Any:
    """An aware datetime comes back with its UTC offset, not its zone: the same instant and
    offset. (Compared as they are, two zones never match inside a fold or a gap: PEP 495.)"""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return (value.astimezone(dt.UTC), value.utcoffset())
    if isinstance(value, list | tuple):
        return type(value)(_instants(v) for v in value)
    if isinstance(value, dict):
        return {k: _instants(v) for k, v in value.items()}
    return value


def test_a_result_pushed_while_the_database_restarts_waits_for_it(tmp_path: Path) -> None:
    """A try that finished its work while PostgreSQL restarted was recorded failed
    (DatabaseUnreachableError from storing its return value); the push waits for it instead,
    and gives up with the error past ``outage_wait``."""
    import threading

    from ductwork.store.engine import create_engine
    from ductwork.store.fresh_schema import ensure_schema
    from private_services import private_postgres

    with private_postgres() as pg:
        engine = create_engine(pg.create_database("ductwork_outage"))
        try:
            ensure_schema(engine)
            with transaction(engine) as conn:
                run = create_run(conn, graph())
            results = SqlResults(engine)
            pg.stop()
            restart = threading.Timer(2.0, pg.start)
            restart.start()
            results.push(run.key, "a", RETURN_VALUE, {"rows": 3})  # waits through the restart
            restart.join()
            assert results.pull(run.key, "a") == {"rows": 3}
            pg.stop()
            impatient = SqlResults(engine, outage_wait=0.5)
            with pytest.raises(DatabaseUnreachableError):
                impatient.push(run.key, "b", RETURN_VALUE, 1)
        finally:
            engine.dispose()
