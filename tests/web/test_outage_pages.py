"""During a database outage the web UI's pages answer with an HTML error page (503) and the API
with JSON; both recover when the database is back (issue 9, item 15). The outage is real: a
private PostgreSQL server, stopped and started again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.private_services import PrivatePostgres, private_postgres
from tests.web.conftest import login

PASSWORD = "outage-password-1"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def test_pages_get_an_html_error_page_while_the_database_is_down(postgres: PrivatePostgres) -> None:
    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    engine = create_engine(postgres.create_database("outage"))
    migrate.upgrade(engine)
    accounts.create_user(engine, "ops", PASSWORD, "viewer")
    token = accounts.issue_token(engine, "ops", "script").token
    browser = TestClient(create_app(Settings(), engine))
    login(browser, "ops", PASSWORD)
    assert browser.get("/flows").status_code == 200
    postgres.stop()
    try:
        for path in ("/flows", "/flows/anything/grid", "/import-errors"):
            page: Any = browser.get(path, follow_redirects=False)
            assert page.status_code == 503, (path, page.status_code, page.text[:200])
            assert page.headers["content-type"].startswith("text/html"), (path, page.headers["content-type"])
            assert "<html" in page.text.lower() and "cannot connect" in page.text
            assert "Database unreachable" in page.text
        api = browser.get("/api/v1/flows", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and api.headers["content-type"].startswith("application/json")
        assert api.json()["error"] == "database_unreachable"
        form = browser.get("/login")
        assert form.status_code == 200  # the login page itself needs no database
    finally:
        postgres.start()
    assert browser.get("/flows").status_code == 200
    engine.dispose()
