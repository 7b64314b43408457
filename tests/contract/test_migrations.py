"""Migrations: one stream builds exactly ``tables.metadata`` on every backend, from empty."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from dbfixtures import run_concurrently
from ductwork.core.graph import DEFAULT_POOL
from ductwork.errors import DuctworkError
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.errors import SchemaMismatchError
from ductwork.store.repo import pools
from ductwork.store.tables import DEFAULT_POOL_SLOTS, metadata


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """Built by the migrations themselves (the shared fixture creates the schema in one step)."""
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def empty(db_url: str) -> Engine:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_reaches_head_and_is_idempotent(empty: Engine) -> None:
    assert migrate.current_revision(empty) is None
    assert migrate.upgrade(empty) == migrate.head_revision()
    assert migrate.upgrade(empty) == migrate.head_revision()
    assert migrate.check(empty) == migrate.head_revision()
    tables = set(sa.inspect(empty).get_table_names())
    assert set(metadata.tables) <= tables
    assert migrate.VERSION_TABLE in tables


def test_migrated_schema_matches_table_definitions(db_engine: Engine) -> None:
    assert migrate.schema_diff(db_engine) == []


def test_schema_diff_sees_a_missing_schema(empty: Engine) -> None:
    diff = migrate.schema_diff(empty)
    added = {d[1].name for d in diff if d[0] == "add_table"}
    assert added == set(metadata.tables)


def test_default_pool_is_seeded(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        pool = pools.get_pool(conn, DEFAULT_POOL)
    assert pool is not None and pool.slots == DEFAULT_POOL_SLOTS


def test_check_on_empty_database_says_to_init(empty: Engine) -> None:
    with pytest.raises(SchemaMismatchError, match="ductwork db init") as info:
        migrate.check(empty)
    assert info.value.current is None
    assert isinstance(info.value, DuctworkError)


def test_check_behind_and_ahead(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        command.stamp(migrate.alembic_config(conn), "base")
    with pytest.raises(SchemaMismatchError, match="no Ductwork schema"):
        migrate.check(db_engine)
    with transaction(db_engine) as conn:
        conn.execute(sa.text(f"INSERT INTO {migrate.VERSION_TABLE} (version_num) VALUES ('9999_future')"))
    with pytest.raises(SchemaMismatchError, match="ahead of this version") as info:
        migrate.check(db_engine)
    assert info.value.current == "9999_future"


def test_check_behind_names_upgrade(db_engine: Engine) -> None:
    # A database one migration behind the code: the message must say to upgrade, and upgrading fixes it.
    with transaction(db_engine) as conn:
        command.downgrade(migrate.alembic_config(conn), "0001")
    with pytest.raises(SchemaMismatchError, match="ductwork db upgrade"):
        migrate.check(db_engine)
    migrate.upgrade(db_engine)
    assert migrate.check(db_engine) == migrate.head_revision()


def test_downgrade_to_base_and_back(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    assert not set(metadata.tables) & set(sa.inspect(db_engine).get_table_names())
    assert migrate.upgrade(db_engine) == migrate.head_revision()
    assert migrate.schema_diff(db_engine) == []


def test_reset_drops_data(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        pools.put_pool(conn, "io", 3)
    assert migrate.reset(db_engine) == migrate.head_revision()
    with transaction(db_engine) as conn:
        assert [p.name for p in pools.list_pools(conn)] == [DEFAULT_POOL]


def test_migrations_ship_inside_the_package() -> None:
    root = resources.files("ductwork.store") / "migrations"
    assert (root / "env.py").is_file()
    assert (root / "script.py.mako").is_file()
    assert (root / "versions" / "0001_initial.py").is_file()


def test_concurrent_first_upgrades_do_not_collide(db_url: str) -> None:
    """A scheduler and a CLI command that both find an empty database both succeed."""
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        assert run_concurrently(migrate.upgrade, engines) == []
        assert migrate.check(engines[0]) == migrate.head_revision()
    finally:
        for e in engines:
            e.dispose()


def test_a_database_made_at_0004_without_revision_0003_gets_its_tables(empty: Engine) -> None:
    """0003 was inserted before 0004 after databases had been made at 0004 without it: they
    were upgraded past it and lacked users, api_tokens and web_sessions (`users list` failed)."""
    migrate.upgrade(empty, "0010")
    with transaction(empty) as conn:
        for table in ("web_sessions", "api_tokens", "users"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
    assert migrate.upgrade(empty) == migrate.head_revision()
    assert migrate.schema_diff(empty) == []
