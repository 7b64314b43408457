"""Fixtures for the web layer: a seeded store, the application, clients per role."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.dbfixtures import temporary_database
from tests.web.seed import Seeded, seed

with warnings.catch_warnings():
    # Starlette's TestClient asks for another HTTP client at import; the one we have is fine for tests.
    warnings.simplefilter("ignore")
    import starlette.testclient  # noqa: F401


class Api:
    """A TestClient that sends one role's API token and answers JSON."""

    def __init__(self, client: Any, token: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method: str) -> Any:
        def call(path: str, **kwargs: Any) -> Any:
            return getattr(self.client, method)(
                "/api/v1" + path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
            )

        return call


@pytest.fixture(scope="module")
def web_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Seeded, Path]]:
    """A migrated, seeded database (SQLite unless the module sets ``BACKEND``), shared by a module."""
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    backend = getattr(request, "param", "sqlite")
    tmp = tmp_path_factory.mktemp("web")
    with temporary_database(backend, tmp) as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        seeded = seed(engine, tmp / "logs")
        yield engine, seeded, tmp
        engine.dispose()


@pytest.fixture(scope="module")
def app(web_env: tuple[Engine, Seeded, Path]) -> Any:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings

    engine, _seeded, tmp = web_env
    return create_app(Settings(home=tmp / "home", resources={"db": 2}), engine)


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def seeded(web_env: tuple[Engine, Seeded, Path]) -> Seeded:
    return web_env[1]


@pytest.fixture(scope="module")
def engine(web_env: tuple[Engine, Seeded, Path]) -> Engine:
    return web_env[0]


@pytest.fixture(scope="module")
def admin(client: Any, seeded: Seeded) -> Api:
    return Api(client, seeded.tokens["admin"])


@pytest.fixture(scope="module")
def operator(client: Any, seeded: Seeded) -> Api:
    return Api(client, seeded.tokens["operator"])


@pytest.fixture(scope="module")
def viewer(client: Any, seeded: Seeded) -> Api:
    return Api(client, seeded.tokens["viewer"])


def login(client: Any, username: str, password: str) -> str:
    """Log ``client`` in through the login form; returns the session's CSRF token."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/flows"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    flows = client.get("/flows")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', flows.text)
    assert csrf is not None
    return csrf.group(1)


@pytest.fixture(scope="module")
def anonymous(client: Any) -> Api:
    return Api(client, None)
