"""The login page of a web server whose database has no user yet (``ductwork webserver`` or the
Kubernetes manifests, which create none, unlike ``standalone``): it said that ``standalone``
had printed the admin password, so nobody could log in and nothing said how to get in."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from ductwork.api.app import create_app
from ductwork.services import accounts
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine
from tests.dbfixtures import temporary_database


def test_the_login_page_says_how_to_create_the_first_user_until_there_is_one(tmp_path: Path) -> None:
    with temporary_database("sqlite", tmp_path) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine)
            app = create_app(Settings(home=tmp_path / "home"), engine)
            with TestClient(app) as browser:
                empty = browser.get("/login").text
                accounts.create_user(engine, "dana", "a-long-password-1", "admin")
                later = browser.get("/login").text
        finally:
            engine.dispose()
    assert 'id="no-users"' in empty
    assert "No user exists yet" in empty and "ductwork users create NAME --role admin" in empty
    assert "printed the <code>admin</code> password" not in empty
    assert 'id="no-users"' not in later
    assert "ductwork users create" in later
