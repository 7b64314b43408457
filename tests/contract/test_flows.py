"""Flows: upsert from a graph, versions, pause, next run, deactivation, listing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from store_helpers import IST, T0, at, graph

from ductwork.errors import NotFoundError
from ductwork.store.engine import transaction
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
