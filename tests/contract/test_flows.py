"""Flows: upsert from a graph, versions, pause, next run, deactivation, listing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Connection, Engine
from store_helpers import IST, T0, at, graph

from dbfixtures import run_concurrently
from ductwork.errors import NotFoundError
from ductwork.store import fresh_schema
from ductwork.store.engine import create_engine, transaction
from ductwork.store.repo import flows


def test_new_flow_is_recorded_with_its_metadata(db_engine: Engine) -> None:
    g = graph(tags=("nightly", "finance"), description="Loads the ledger")
    with transaction(db_engine) as conn:
        record = flows.upsert_flow(conn, g, now=T0)
        versions = flows.list_flow_versions(conn, "etl")
        stored = flows.get_flow_graph(conn, "etl")
    assert record.flow_id == "etl"
    assert record.fileloc == "/flows/etl.py"
    assert record.version_hash == g.version_hash()
    assert (record.schedule, record.timezone, record.max_active_runs) == ("@daily", "Europe/Paris", 3)
    assert record.tags == ("nightly", "finance")
    assert record.description == "Loads the ledger"
    assert record.is_active and not record.is_paused
    assert record.created_at == record.updated_at == record.last_parsed_at == T0
    assert [v.version_hash for v in versions] == [g.version_hash()]
    assert stored is not None and stored.to_dict() == g.to_dict()


@pytest.mark.parametrize("paused", [True, False])
def test_new_flows_start_paused_iff_the_flow_says_so(db_engine: Engine, paused: bool) -> None:
    with transaction(db_engine) as conn:
        assert flows.upsert_flow(conn, graph(paused_on_creation=paused)).is_paused is paused


def test_reparse_keeps_pause_state_and_versions_only_on_change(db_engine: Engine) -> None:
    g1 = graph()
    g2 = graph(edges={"a": [], "b": ["a"]})
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, g1, now=T0)
        flows.set_paused(conn, "etl", True, now=at(1))
        again = flows.upsert_flow(conn, g1, now=at(2))
        assert again.is_paused and again.last_parsed_at == at(2) and again.created_at == T0
        assert len(flows.list_flow_versions(conn, "etl")) == 1
        changed = flows.upsert_flow(conn, g2, now=at(3))
        assert changed.version_hash == g2.version_hash() != g1.version_hash()
        assert changed.is_paused
        back = flows.upsert_flow(conn, g1, now=at(4))  # a version seen before is not duplicated
        versions = flows.list_flow_versions(conn, "etl")
        old = flows.get_flow_graph(conn, "etl", version_hash=g2.version_hash())
    assert back.version_hash == g1.version_hash()
    assert [v.version_hash for v in versions] == [g1.version_hash(), g2.version_hash()]
    assert old is not None and set(old.nodes) == {"a", "b"}


def test_setting_a_value_it_already_has_is_not_an_error(db_engine: Engine) -> None:
    # MariaDB reports changed rows, not matched ones, unless the driver asks for FOUND_ROWS.
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph(), now=T0)
        flows.set_paused(conn, "etl", False, now=T0)
        flows.set_paused(conn, "etl", False, now=T0)
        flows.set_next_run(conn, "etl", logical_date=None, interval_start=None, interval_end=None, now=T0)


def test_unknown_flows(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        assert flows.get_flow(conn, "nope") is None
        assert flows.get_flow_graph(conn, "nope") is None
        with pytest.raises(NotFoundError, match="'nope'"):
            flows.set_paused(conn, "nope", True)
        with pytest.raises(NotFoundError):
            flows.set_next_run(conn, "nope", logical_date=None, interval_start=None, interval_end=None)


def test_flow_ids_are_case_sensitive(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph("etl"))
        flows.upsert_flow(conn, graph("ETL", edges={"x": []}))
        assert {f.flow_id for f in flows.list_flows(conn)} == {"ETL", "etl"}
        stored = flows.get_flow_graph(conn, "ETL")
    assert stored is not None and list(stored.nodes) == ["x"]


def test_next_run_is_stored_in_utc(db_engine: Engine) -> None:
    start = T0.astimezone(IST)
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph())
        flows.set_next_run(conn, "etl", logical_date=start, interval_start=start, interval_end=at(1440))
        record = flows.get_flow(conn, "etl")
        assert record is not None
        assert (record.next_logical_date, record.next_interval_start, record.next_interval_end) == (T0, T0, at(1440))
        assert record.next_logical_date is not None and record.next_logical_date.tzinfo is not None
        flows.set_next_run(conn, "etl", logical_date=None, interval_start=None, interval_end=None)
        cleared = flows.get_flow(conn, "etl")
    assert cleared is not None and cleared.next_logical_date is None


def test_flows_that_leave_a_file_become_inactive(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        for flow_id in ("a", "b", "c"):
            flows.upsert_flow(conn, graph(flow_id, fileloc="/f/one.py"))
        flows.upsert_flow(conn, graph("other", fileloc="/f/two.py"))
        gone = flows.deactivate_missing(conn, "/f/one.py", ["a"], now=at(5))
        assert gone == ["b", "c"]
        assert [f.flow_id for f in flows.list_flows(conn)] == ["a", "other"]
        assert [f.flow_id for f in flows.list_flows(conn, active=False)] == ["b", "c"]
        assert flows.deactivate_missing(conn, "/f/one.py", ["a"]) == []
        assert flows.upsert_flow(conn, graph("b", fileloc="/f/one.py")).is_active


def test_list_flows_filters(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph("a", tags=("x",), fileloc="/f/1.py"))
        flows.upsert_flow(conn, graph("b", tags=("x", "y"), fileloc="/f/2.py", paused_on_creation=True))
        flows.upsert_flow(conn, graph("c", fileloc="/f/2.py"))
        assert [f.flow_id for f in flows.list_flows(conn, tag="x")] == ["a", "b"]
        assert [f.flow_id for f in flows.list_flows(conn, paused=True)] == ["b"]
        assert [f.flow_id for f in flows.list_flows(conn, paused=False, fileloc="/f/2.py")] == ["c"]
        assert [f.flow_id for f in flows.list_flows(conn, active=None)] == ["a", "b", "c"]


def test_fileloc_argument_overrides_the_graph(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        assert flows.upsert_flow(conn, graph(fileloc=None), fileloc="/elsewhere.py").fileloc == "/elsewhere.py"


def _snapshot(conn: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    listed = [
        (f.flow_id, f.fileloc, f.version_hash, f.is_active, f.is_paused, f.tags, f.schedule)
        for f in flows.list_flows(conn, active=None)
    ]
    versions = sorted(
        (f.flow_id, v.version_hash)
        for f in flows.list_flows(conn, active=None)
        for v in flows.list_flow_versions(conn, f.flow_id)
    )
    return listed, versions


def test_recording_many_files_at_once_matches_recording_them_one_by_one(db_engine: Engine) -> None:
    """``record_files`` (a scheduler starting on a folder of files) does in a few statements what
    ``record_flow`` + ``deactivate_missing`` do per file: new flows, changed ones with a new
    version, a flow moved to another file, and a file's flows that are gone marked inactive."""
    a1, b1 = graph("a", fileloc="/f/a.py", tags=("x",)), graph("b", fileloc="/f/b.py")
    moved = graph("m", fileloc="/f/a.py")
    with transaction(db_engine) as conn:
        for g in (a1, b1, moved, graph("gone", fileloc="/f/b.py")):
            flows.record_flow(conn, g, now=T0)
        flows.set_paused(conn, "b", True, now=T0)
    a2 = graph("a", {"a": [], "z": ["a"]}, fileloc="/f/a.py", tags=("x",))  # changed
    c1 = graph("c", fileloc="/f/c.py", paused_on_creation=True)  # new, with the moved flow
    m2 = graph("m", fileloc="/f/c.py")
    parsed = {"/f/a.py": [(a2, None)], "/f/b.py": [(b1, {"source": "x"})], "/f/c.py": [(c1, None), (m2, None)]}
    present = {"/f/a.py": ["a"], "/f/b.py": ["b"], "/f/c.py": ["c", "m"]}
    with transaction(db_engine) as conn:
        flows.record_files(conn, parsed, present, now=at(1))
        bulk = _snapshot(conn)
        code = flows.get_flow(conn, "b")
    assert ("gone", "/f/b.py") in [(f[0], f[1]) for f in bulk[0] if not f[3]]
    assert {f[0]: f[1] for f in bulk[0]}["m"] == "/f/c.py"
    by_id = {f[0]: f for f in bulk[0]}
    assert by_id["a"][2] == a2.version_hash() and by_id["a"][3]
    assert by_id["b"][4] is True  # the pause state is kept
    assert by_id["c"][4] is True and by_id["c"][3]  # new flows start paused iff they say so
    assert by_id["m"][3]  # moved, still active
    assert ("a", a1.version_hash()) in bulk[1] and ("a", a2.version_hash()) in bulk[1]
    assert len([v for v in bulk[1] if v[0] == "b"]) == 1  # unchanged: no new version
    assert code is not None and by_id["gone"][3] is False


def test_a_new_flow_recorded_by_several_writers_at_once_is_recorded_once(db_url: str) -> None:
    """The scheduler's parse and ``ductwork trigger`` (or two commands) recording the same new
    flow at the same moment: each succeeds, and the flow has one row and one version (a
    command met the IntegrityError of the other's insert, and so could the scheduler)."""
    engines = [create_engine(db_url) for _ in range(4)]
    try:
        fresh_schema.ensure_schema(engines[0])
        for attempt in range(5):
            g = graph(flow_id=f"raced_{attempt}")
            start = threading.Barrier(len(engines))

            def record(engine: Engine, g: Any = g, start: threading.Barrier = start) -> None:
                start.wait(timeout=30)  # (SQLite's writers queue on its lock from BEGIN on)
                with transaction(engine) as conn:
                    if engines.index(engine) % 2:  # a command
                        flows.upsert_flow(conn, g)
                    else:  # the scheduler's batch of parsed files
                        flows.record_files(conn, {"/flows/etl.py": [(g, None)]}, {"/flows/etl.py": [g.flow_id]})

            assert run_concurrently(record, engines) == []
            with transaction(engines[0]) as conn:
                assert [v.version_hash for v in flows.list_flow_versions(conn, g.flow_id)] == [g.version_hash()]
                assert flows.get_flow(conn, g.flow_id) is not None
    finally:
        for engine in engines:
            engine.dispose()
