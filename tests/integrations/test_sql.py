"""SQL operators, sensor, transfer and table target on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from ductwork import Flow, PythonOperator, Task
from ductwork.errors import DuctworkError
from ductwork.integrations._deps import MissingDependencyError
from ductwork.integrations.sql import SqlOperator, SqlSensor, SqlTableTarget, SqlTransferOperator, split_statements
from ductwork.testing import SystemClock, build, run_flow, run_task


def _table() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_sql_operator_runs_templated_statements_and_passes_rows_down(db_url: str) -> None:
    table = _table()
    with Flow("sql", start_date="2024-01-01", params={"table": table}) as f:
        SqlOperator(
            task_id="load",
            url=db_url,
            sql=[
                "CREATE TABLE {{ params.table }} (id INTEGER, day DATE, amount NUMERIC(10, 2), name VARCHAR(20))",
                "INSERT INTO {{ params.table }} VALUES (1, '{{ ds }}', 2.50, 'a'), (2, '{{ ds }}', 3.00, 'b; c')",
                "SELECT id, day, amount, name FROM {{ params.table }} WHERE id >= :low ORDER BY id",
            ],
            parameters={"low": 1},
        )
    result = run_flow(f, logical_date="2024-01-31")
    assert result.state == "success", result["load"].tries[-1].error
    assert result.result("load") == [
        {"id": 1, "day": "2024-01-31", "amount": 2.5, "name": "a"},
        {"id": 2, "day": "2024-01-31", "amount": 3, "name": "b; c"},
    ]
    assert "INSERT INTO " + table in result["load"].tries[-1].rendered["sql"][1]


def test_sql_operator_splits_scripts_limits_rows_and_rolls_back_on_error(db_url: str) -> None:
    table = _table()
    script = f"""
        CREATE TABLE {table} (id INTEGER, note VARCHAR(40));  -- a comment; with a semicolon
        INSERT INTO {table} VALUES (1, 'semi;colon'), (2, 'x'), (3, 'y');
        /* block; comment */
        SELECT id, note FROM {table} ORDER BY id;
    """
    with Flow("split") as f:
        SqlOperator(task_id="run", url=db_url, sql=script, split_statements=True, max_rows=2)
    result = run_flow(f)
    assert result.result("run") == [{"id": 1, "note": "semi;colon"}, {"id": 2, "note": "x"}]
    assert "more than max_rows=2" in result.logs[("run", 1)]

    with Flow("broken") as g:
        SqlOperator(
            task_id="bad",
            url=db_url,
            sql=[f"INSERT INTO {table} VALUES (4, 'z')", f"SELECT no_such_column FROM {table}"],
        )
    failed = run_flow(g)
    error = failed["bad"].tries[-1].error or ""
    assert failed["bad"].state == "failed"
    assert "task 'bad': statement 2 of 2 failed on" in error and "no_such_column" in error
    assert _query(db_url, f"SELECT COUNT(*) FROM {table}") == [(3,)]  # the insert was rolled back
    _query(db_url, f"DROP TABLE {table}")


def test_sql_sensor_pokes_until_the_first_cell_is_true(db_url: str) -> None:
    table = _table()
    _query(db_url, f"CREATE TABLE {table} (id INTEGER)")

    poked = threading.Event()

    def insert_later() -> None:
        # Only once the sensor has seen the empty table (however slow the machine is).
        assert poked.wait(60), "the sensor never poked"
        _query(db_url, f"INSERT INTO {table} VALUES (1), (2)")

    def enough(n: int) -> bool:
        poked.set()
        return n >= 2

    with Flow("wait_rows") as f:
        PythonOperator(task_id="producer", python_callable=insert_later)
        SqlSensor(
            task_id="rows",
            url=db_url,
            sql=f"SELECT COUNT(*) FROM {table} WHERE id <= :top",
            parameters={"top": 5},
            success=enough,
            poke_interval=0.05,
            timeout=30,
        )
    result = run_flow(f, workers=2, clock=SystemClock())
    assert result.state == "success"
    assert "first cell: 0" in result.logs[("rows", 1)]

    with Flow("failing") as g:
        SqlSensor(task_id="f", url=db_url, sql=f"SELECT MAX(id) FROM {table}", failure=lambda v: v == 2)
        SqlSensor(task_id="e", url=db_url, sql=f"SELECT id FROM {table} WHERE id > 9", fail_on_empty=True)
    failed = run_flow(g)
    assert "task 'f': failure condition met by 2" in (failed["f"].tries[-1].error or "")
    assert "task 'e': the sensor query returned no row" in (failed["e"].tries[-1].error or "")
    _query(db_url, f"DROP TABLE {table}")


def _seed_source(url: str, table: str, n: int) -> None:
    _query(url, f"CREATE TABLE {table} (id INTEGER, name VARCHAR(30), price NUMERIC(12, 3), day DATE, at TIMESTAMP)")
    values = ", ".join(
        f"({i}, 'item {i}', {i}.125, '2024-01-{1 + i % 28:02d}', '2024-01-02 03:04:{i % 60:02d}')" for i in range(n)
    )
    _query(url, f"INSERT INTO {table} VALUES {values}")


def test_transfer_postgres_to_mariadb_in_batches(postgres_url: str, mariadb_url: str) -> None:
    source, dest = _table(), _table()
    _seed_source(postgres_url, source, 25)
    with Flow("copy") as f:
        SqlTransferOperator(
            task_id="copy",
            source_url=postgres_url,
            sql=f"SELECT id, name, price, day, at FROM {source} WHERE id < :limit ORDER BY id",
            parameters={"limit": 23},
            destination_url=mariadb_url,
            table=dest,
            create_table=True,
            batch_size=10,
        )
    result = run_flow(f)
    assert result.state == "success", result["copy"].tries[-1].error
    assert result.result("copy") == {"rows": 23, "batches": 3, "table": dest}
    rows = _query(mariadb_url, f"SELECT id, name, price, day, at FROM {dest} ORDER BY id")
    assert len(rows) == 23
    assert rows[22] == (
        22,
        "item 22",
        decimal.Decimal("22.125"),
        dt.date(2024, 1, 23),
        dt.datetime(2024, 1, 2, 3, 4, 22),
    )
    again = run_flow(f)
    assert again.result("copy")["rows"] == 23
    assert _query(mariadb_url, f"SELECT COUNT(*) FROM {dest}") == [(46,)]  # append mode


def test_transfer_replace_mode_and_errors(db_url: str, sqlite_url: str) -> None:
    source, dest = _table(), _table()
    _seed_source(sqlite_url, source, 5)
    _query(db_url, f"CREATE TABLE {dest} (id INTEGER, name VARCHAR(30))")
    _query(db_url, f"INSERT INTO {dest} VALUES (100, 'old')")

    def copy(task_id: str, sql: str, **kwargs: Any) -> SqlTransferOperator:
        return SqlTransferOperator(
            task_id=task_id, source_url=sqlite_url, sql=sql, destination_url=db_url, table=dest, **kwargs
        )

    with Flow("replace") as f:
        copy("replace", f"SELECT id, name FROM {source}", mode="replace", batch_size=2)
    assert run_flow(f).result("replace") == {"rows": 5, "batches": 3, "table": dest}
    assert _query(db_url, f"SELECT MIN(id), MAX(id), COUNT(*) FROM {dest}") == [(0, 4, 5)]

    with Flow("errors") as g:
        copy("extra_column", f"SELECT id, name, price FROM {source}", mode="replace")
        SqlTransferOperator(
            task_id="missing_table",
            source_url=sqlite_url,
            sql=f"SELECT id FROM {source}",
            destination_url=db_url,
            table="no_such_table_here",
        )
    failed = run_flow(g)
    assert "has no column(s) 'price'" in (failed["extra_column"].tries[-1].error or "")
    assert "does not exist" in (failed["missing_table"].tries[-1].error or "")
    assert "create_table=True" in (failed["missing_table"].tries[-1].error or "")
    assert _query(db_url, f"SELECT COUNT(*) FROM {dest}") == [(5,)]  # the failed replace deleted nothing
    _query(db_url, f"DROP TABLE {dest}")


def test_sql_table_target_marks_loads_in_the_data_transaction(db_url: str) -> None:
    data, marker = _table(), f"updates_{uuid.uuid4().hex[:6]}"
    _query(db_url, f"CREATE TABLE {data} (day VARCHAR(10), total INTEGER)")

    class LoadDay(Task):
        def output(self) -> SqlTableTarget:
            return SqlTableTarget(db_url, data, update_id=f"{data}:2024-01-31", marker_table=marker)

        def run(self) -> None:
            with self.output().transaction() as conn:
                conn.execute(sa.text(f"INSERT INTO {data} VALUES ('2024-01-31', 42)"))

    target = LoadDay().output()
    assert not target.exists()
    assert build(LoadDay()).state == "success"
    assert target.exists()
    assert isinstance(target.inserted_at(), dt.datetime)
    assert list(build(LoadDay()).tasks) == ["LoadDay"]  # complete: not run again
    assert _query(db_url, f"SELECT COUNT(*) FROM {data}") == [(1,)]

    other = SqlTableTarget(db_url, data, update_id=f"{data}:2024-02-01", marker_table=marker)
    with pytest.raises(RuntimeError), other.transaction() as conn:
        conn.execute(sa.text(f"INSERT INTO {data} VALUES ('2024-02-01', 7)"))
        raise RuntimeError("load failed")
    assert not other.exists()
    assert _query(db_url, f"SELECT COUNT(*) FROM {data}") == [(1,)]  # data and marker rolled back together

    target.remove()
    assert not target.exists()
    _query(db_url, f"DROP TABLE {data}")
    _query(db_url, f"DROP TABLE {marker}")


def test_on_kill_cancels_a_running_postgres_query(postgres_url: str) -> None:
    with Flow("slow") as f:
        SqlOperator(task_id="slow", url=postgres_url, sql="SELECT pg_sleep(30)", execution_timeout=0.5)
    started = time.monotonic()
    result = run_flow(f, clock=SystemClock())  # returns once the try's thread has ended
    assert result["slow"].state == "failed"
    assert time.monotonic() - started < 10  # the query was cancelled, not waited out


def test_bad_urls_and_missing_drivers_are_clear() -> None:
    with Flow("bad") as f:
        SqlOperator(task_id="scheme", url="nosuchdb://u@h/d", sql="SELECT 1")
        SqlOperator(task_id="garbage", url="not a url", sql="SELECT 1")
        SqlOperator(task_id="driver", url="mssql+pymssql://u:secret@h/d", sql="SELECT 1")
        SqlOperator(task_id="down", url="postgresql+psycopg://u:secret@127.0.0.1:1/d", sql="SELECT 1")
    result = run_flow(f)
    errors = {t: result[t].tries[-1].error or "" for t in ("scheme", "garbage", "driver", "down")}
    assert "unknown database scheme 'nosuchdb'" in errors["scheme"]
    assert "'not a url' is not a database URL" in errors["garbage"]
    assert "pymssql" in errors["driver"] and "not installed" in errors["driver"]
    assert "task 'down': cannot run SQL on postgresql+psycopg://u:***@127.0.0.1:1/d" in errors["down"]
    assert "secret" not in errors["down"]
    with pytest.raises(MissingDependencyError):
        SqlTableTarget("mssql+pymssql://u@h/d", "t", "u").exists()
    with pytest.raises(DuctworkError, match="update_id must be a non-empty string"):
        SqlTableTarget("sqlite://", "t", "")


def test_run_task_with_sqlite_memory() -> None:
    with Flow("mem") as f:
        SqlOperator(task_id="q", url="sqlite://", sql="SELECT 1 AS one, 'x' AS two, NULL AS three")
    assert run_task(f, "q").result == [{"one": 1, "two": "x", "three": None}]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("select 1; select 2;", ["select 1", "select 2"]),
        ("select ';'; select \"a;b\"", ["select ';'", 'select "a;b"']),
        ("select 'it''s; fine'; -- tail; comment\n", ["select 'it''s; fine'"]),
        (
            "create function f() returns int as $$ begin; return 1; end $$ language plpgsql; select 1",
            ["create function f() returns int as $$ begin; return 1; end $$ language plpgsql", "select 1"],
        ),
        ("/* only; a comment */ ;  ; -- and this", []),
        ("select $1; select 2", ["select $1", "select 2"]),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    assert split_statements(script) == expected
