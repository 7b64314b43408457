"""A new database set up in one step (``store.fresh_schema``) is the database the migrations
build: same tables, columns, defaults, keys, indexes, table options and seeded rows, at the head
revision, so Alembic takes it over as if it had built it. On every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from dbfixtures import run_concurrently, temporary_database
from ductwork.store import fresh_schema, migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.schema_version import HEAD_REVISION, VERSION_TABLE
from ductwork.store.tables import metadata


def _backend(url: str) -> str:
    name = sa.make_url(url).get_backend_name()
    return {"postgresql": "postgres", "mysql": "mariadb"}.get(name, name)


@pytest.fixture
def migrated(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A second database on the same backend, built by Alembic's migrations."""
    with temporary_database(_backend(db_url), tmp_path / "migrated") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        yield engine
        engine.dispose()


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything a reflection sees of each table, in comparable form."""
    inspector = sa.inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [
            (c["name"], str(c["type"]), c["nullable"], str(c.get("default")), c.get("autoincrement"))
            for c in inspector.get_columns(table)
        ]
        pk = inspector.get_pk_constraint(table)
        fks = sorted(
            (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(table)
        )
        indexes = sorted(
            (ix["name"], tuple(str(c) for c in ix["column_names"]), bool(ix["unique"]))
            for ix in inspector.get_indexes(table)
        )
        uniques = sorted((uq["name"], tuple(uq["column_names"])) for uq in inspector.get_unique_constraints(table))
        options = {k: v for k, v in inspector.get_table_options(table).items() if "auto_increment" not in k}
        out[table] = {
            "columns": columns,
            "pk": (pk.get("name"), tuple(pk["constrained_columns"])),
            "fks": fks,
            "indexes": indexes,
            "uniques": uniques,
            "options": options,
        }
    return out


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            name: sorted(tuple(row) for row in conn.execute(sa.select(sa.table(name, *columns))))
            for name, columns in (
                ("pools", [sa.column("name"), sa.column("slots"), sa.column("description")]),
                (VERSION_TABLE, [sa.column("version_num")]),
            )
        }


def test_a_fresh_database_is_the_one_the_migrations_build(db_url: str, migrated: Engine) -> None:
    fresh = create_engine(db_url)
    assert fresh_schema.create_if_empty(fresh) is True
    assert _schema(fresh) == _schema(migrated)
    assert (
        _rows(fresh)
        == _rows(migrated)
        == {
            "pools": [("default_pool", 128, "Default pool")],
            VERSION_TABLE: [(HEAD_REVISION,)],
        }
    )
    assert migrate.check(fresh) == migrate.head_revision()
    assert migrate.schema_diff(fresh) == []
    assert migrate.upgrade(fresh) == HEAD_REVISION  # Alembic takes it over: nothing to do
    fresh.dispose()


def test_a_database_with_a_schema_is_left_to_alembic(db_engine: Engine) -> None:
    """At the head, behind, or partly there: never created over, never touched."""
    assert fresh_schema.create_if_empty(db_engine) is False
    with transaction(db_engine) as conn:
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    assert fresh_schema.create_if_empty(db_engine) is False  # tables without a version
    with transaction(db_engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pools")).scalar() == 1


def test_the_first_look_at_an_empty_database_creates_it(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        fresh_schema.ensure_schema(engine)
        assert migrate.check(engine) == HEAD_REVISION
        assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
        fresh_schema.ensure_schema(engine)  # and the second look changes nothing
        assert _rows(engine)["pools"] == [("default_pool", 128, "Default pool")]
    finally:
        engine.dispose()


def test_concurrent_first_looks_create_it_once(db_url: str) -> None:
    """A scheduler and CLI commands that all find the database empty: each succeeds, one creates it."""
    engines = [create_engine(db_url) for _ in range(3)]
    created: list[bool] = []

    def first_look(engine: Engine) -> None:
        created.append(fresh_schema.create_if_empty(engine))
        fresh_schema.ensure_schema(engine)

    try:
        assert run_concurrently(first_look, engines) == []
        assert sorted(created) == [False, False, True]
        assert _rows(engines[0]) == {
            "pools": [("default_pool", 128, "Default pool")],
            VERSION_TABLE: [(HEAD_REVISION,)],
        }
    finally:
        for e in engines:
            e.dispose()
