"""Pools, import errors and scheduler jobs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from store_helpers import T0, at, change, create_run, graph

from ductwork.core.states import TaskState
from ductwork.engine.supervisor import StateChanged
from ductwork.errors import NotFoundError
from ductwork.store.engine import transaction
from ductwork.store.errors import PoolInUseError
from ductwork.store.records import NewImportError, PoolRecord
from ductwork.store.repo import import_errors, jobs, pools
from ductwork.store.sink import SqlEventSink

S = TaskState


def test_pools_crud(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        assert pools.put_pool(conn, "io", 4, "disk-bound work") == PoolRecord("io", 4, "disk-bound work")
        pools.put_pool(conn, "io", 6)
        pools.put_pool(conn, "default_pool", 32, "Default pool")
        assert pools.get_pool(conn, "io") == PoolRecord("io", 6, "")
        assert [(p.name, p.slots) for p in pools.list_pools(conn)] == [("default_pool", 32), ("io", 6)]
        pools.delete_pool(conn, "io")
        assert pools.get_pool(conn, "io") is None
        with pytest.raises(NotFoundError, match="'io'"):
            pools.delete_pool(conn, "io")
        with pytest.raises(PoolInUseError, match="default_pool"):
            pools.delete_pool(conn, "default_pool")
        with pytest.raises(ValueError, match="slots must be 0 or more"):
            pools.put_pool(conn, "bad", -1)


def test_pool_usage_counts_queued_and_running_slots(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        pools.put_pool(conn, "io", 10)
        run = create_run(conn, graph(edges={"a": [], "b": [], "c": []}, pool="io", pool_slots=3))
        other = create_run(conn, graph("x", edges={"z": []}))
        SqlEventSink(db_engine).write(
            conn,
            [
                StateChanged(run.key, change("a", S.NONE, S.QUEUED), T0, 1),
                StateChanged(run.key, change("b", S.NONE, S.QUEUED), T0, 1),
                StateChanged(run.key, change("b", S.QUEUED, S.RUNNING), T0, 1),
                StateChanged(other.key, change("z", S.NONE, S.QUEUED), T0, 1),
            ],
        )
        usage = {u.name: u for u in pools.pool_usage(conn)}
    assert (usage["io"].queued_slots, usage["io"].running_slots, usage["io"].open_slots) == (3, 3, 4)
    assert (usage["default_pool"].queued_slots, usage["default_pool"].open_slots) == (1, 127)


def test_import_errors_are_replaced_per_file(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        import_errors.replace_import_errors(
            conn, "/f/a.py", [NewImportError("SyntaxError: x", 3, "tb"), NewImportError("NameError: y", 1)], now=at(1)
        )
        import_errors.replace_import_errors(conn, "/f/b.py", [NewImportError("ImportError: z")], now=at(1))
        listed = import_errors.list_import_errors(conn)
        assert [(e.fileloc, e.line, e.error) for e in listed] == [
            ("/f/a.py", 1, "NameError: y"),
            ("/f/a.py", 3, "SyntaxError: x"),
            ("/f/b.py", None, "ImportError: z"),
        ]
        assert listed[1].traceback == "tb" and listed[1].at == at(1)
        import_errors.replace_import_errors(conn, "/f/a.py", [])  # the file imports cleanly now
        assert [e.fileloc for e in import_errors.list_import_errors(conn)] == ["/f/b.py"]
        assert import_errors.list_import_errors(conn, "/f/a.py") == []


def test_scheduler_jobs_heartbeat(db_engine: Engine) -> None:
    timeout = dt.timedelta(seconds=30)
    with transaction(db_engine) as conn:
        first = jobs.start_job(conn, "scheduler", hostname="h1", pid=10, now=at(0))
        second = jobs.start_job(conn, "scheduler", hostname="h2", pid=20, now=at(0))
        assert jobs.heartbeat_job(conn, first, now=at(1))
        alive = jobs.alive_jobs(conn, "scheduler", timeout=timeout, now=at(1.25))
        assert [j.id for j in alive] == [first]  # the second has not beaten for 75 s
        jobs.end_job(conn, first, now=at(2))
        assert not jobs.heartbeat_job(conn, first, now=at(3))
        assert jobs.alive_jobs(conn, "scheduler", timeout=timeout, now=at(2)) == []
        record = jobs.get_job(conn, first)
        assert record is not None and (record.state, record.end_date, record.hostname, record.pid) == (
            "success",
            at(2),
            "h1",
            10,
        )
        assert jobs.get_job(conn, second) is not None and jobs.get_job(conn, 999) is None
        with pytest.raises(NotFoundError):
            jobs.end_job(conn, 999)


def test_a_user_deleted_by_several_clients_at_once_is_deleted_by_one(db_engine: Engine) -> None:
    """Four admins deleting one user at once: one deletes it, the others are told it is gone
    (three were told they had deleted it: the look and the delete were apart)."""
    import threading

    from ductwork.store.repo import users

    with transaction(db_engine) as conn:
        users.create_user(conn, "leaver", "x", "viewer")
        users.create_user(conn, "keeper", "x", "admin")
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def delete() -> None:
        start.wait()
        try:
            with transaction(db_engine) as conn:
                users.delete_user(conn, "leaver")
            outcomes.append("deleted")
        except NotFoundError:
            outcomes.append("gone")

    threads = [threading.Thread(target=delete) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["deleted", "gone", "gone", "gone"]


def test_audit_filters_match_the_case_given_on_every_database(db_engine: Engine) -> None:
    """SQLite's LIKE ignored case where PostgreSQL and MariaDB did not."""
    from ductwork.store.repo import audit

    with transaction(db_engine) as conn:
        audit.add_entry(conn, audit.AuditEntry("Dana", "cli", "host", "run.trigger", "Etl/manual__1"))
        audit.add_entry(conn, audit.AuditEntry("Dana", "cli", "host", "run.cancel", "etl_100%/manual_2"))
        found = {
            (action, target): [e.target for e in audit.list_entries(conn, action=action, target=target).items]
            for action, target in [
                (None, "etl"),
                (None, "Etl"),
                ("RUN.", None),
                ("run.", None),
                (None, "etl_100%"),
                (None, "etl_1000"),
            ]
        }
    assert found == {
        (None, "etl"): ["etl_100%/manual_2"],
        (None, "Etl"): ["Etl/manual__1"],
        ("RUN.", None): [],
        ("run.", None): ["etl_100%/manual_2", "Etl/manual__1"],
        (None, "etl_100%"): ["etl_100%/manual_2"],  # LIKE's wildcards are plain characters here
        (None, "etl_1000"): [],
    }
