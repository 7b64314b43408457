"""A web server whose database lost its Ductwork schema (tables dropped under it) or was
migrated by a newer Ductwork: health, metrics, pages and the API answer 503 saying what is wrong
and what to run. They answered 500 "ProgrammingError" (PostgreSQL, MariaDB), which a monitor
reads as a crashed server and which named no way out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.dbfixtures import BACKENDS, temporary_database


@pytest.fixture(params=BACKENDS)
def dropped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A server started on a migrated database whose tables were then all dropped."""
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    with temporary_database(request.param, tmp_path) as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        app = create_app(Settings(home=tmp_path / "home"), engine)
        with TestClient(app) as client:
            assert client.get("/api/v1/health").status_code == 200
            migrate.drop_all(engine)
            yield client
        engine.dispose()


def test_health_says_the_schema_is_missing_with_a_503(dropped: TestClient) -> None:
    response = dropped.get("/api/v1/health")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "schema_mismatch"
    assert "no Ductwork schema" in body["database_detail"] and "ductwork db init" in body["database_detail"]
    assert dropped.head("/api/v1/health").status_code == 503


def test_metrics_say_the_store_is_down_and_the_scrape_succeeds(dropped: TestClient) -> None:
    response = dropped.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    assert "ductwork_store_up 0.0" in response.text


def test_the_api_and_a_page_say_what_to_run(dropped: TestClient) -> None:
    from ductwork.api.security import SESSION_COOKIE

    response = dropped.get("/api/v1/flows", headers={"Authorization": "Bearer dwt_not_a_real_token"})
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"] == "schema_mismatch"
    assert "ductwork db init" in response.json()["detail"]
    dropped.cookies.set(SESSION_COOKIE, "a-session-from-before")
    page = dropped.get("/flows")
    dropped.cookies.clear()
    assert page.status_code == 503, page.text[:300]
    assert "ductwork db init" in page.text


def test_a_schema_a_newer_ductwork_migrated_is_named(tmp_path: Path) -> None:
    """``db upgrade`` by a newer version before this server restarted: the revision is one this
    code does not know, and the answer says to upgrade Ductwork rather than "server error"."""
    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    with temporary_database("postgres", tmp_path) as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        accounts.create_user(engine, "dana", "a-long-password", "admin")
        token = accounts.issue_token(engine, "dana", "tests").token
        app = create_app(Settings(home=tmp_path / "home"), engine)
        with TestClient(app) as client:
            with engine.begin() as conn:
                conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'f00dfacef00d'"))
                conn.execute(sa.text("DROP TABLE pools CASCADE"))  # a table the newer version renamed
            response = client.get("/api/v1/pools", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503, response.text[:300]
            assert response.json()["error"] == "schema_mismatch"
            assert "ahead of this version of Ductwork" in response.json()["detail"]
            response = client.get("/metrics")
            assert response.status_code == 200 and "ductwork_store_up 0.0" in response.text
        engine.dispose()
