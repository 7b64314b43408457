"""Real databases for tests: a fresh, randomly named database per test, dropped afterwards.

Other engineers run their tests against the same PostgreSQL and MariaDB servers at the same
time, so nothing here touches a shared database: each test gets ``ductwork_t_<8 hex>``. A
server that is down skips the test locally and fails it on CI (``require_service``).

Fixtures (registered for every test module by ``tests/conftest.py``):

- ``db_url``: the URL of an empty database, parametrized over sqlite, postgres and mariadb;
- ``db_engine``: an engine on such a database, at the head revision.

Other modules may use ``temporary_database(backend, tmp_path)`` directly.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

BACKENDS = ("sqlite", "postgres", "mariadb")

POSTGRES_ADMIN_URL = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("DUCTWORK_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def random_name() -> str:
    return f"ductwork_t_{uuid.uuid4().hex[:8]}"


def _require(backend: str, admin_url: str) -> sa.URL:
    from conftest import require_service

    url = sa.make_url(admin_url)
    require_service(backend, url.host or "127.0.0.1", url.port or (5432 if backend == "postgres" else 3306))
    return url


@contextmanager
def _server_database(backend: str, admin_url: str) -> Iterator[str]:
    url = _require(backend, admin_url)
    name = random_name()
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                force = " WITH (FORCE)" if backend == "postgres" else ""
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        admin.dispose()


@contextmanager
def temporary_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend``; dropped when the block ends."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / (random_name() + '.db')}"
    elif backend == "postgres":
        with _server_database(backend, POSTGRES_ADMIN_URL) as url:
            yield url
    elif backend == "mariadb":
        with _server_database(backend, MARIADB_ADMIN_URL) as url:
            yield url
    else:  # pragma: no cover
        raise ValueError(f"unknown test backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """Set up as a first command sets up a new database (``store.fresh_schema``), which a
    contract test proves equal to the migrations' result; ``test_migrations`` runs those."""
    from ductwork.store.engine import create_engine
    from ductwork.store.fresh_schema import ensure_schema

    engine = create_engine(db_url)
    try:
        ensure_schema(engine)
        yield engine
    finally:
        engine.dispose()


def run_concurrently(work: Callable[[Engine], object], engines: list[Engine]) -> list[BaseException]:
    """``work`` on each engine in a thread of its own, all at once (as a scheduler and CLI
    commands that start together would); the exceptions they raised."""
    errors: list[BaseException] = []

    def one(engine: Engine) -> None:
        try:
            work(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
