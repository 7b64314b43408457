"""The admin pages (Airflow's Admin menu): connections, variables and users. Each is read and
changed with the REST API's permissions (operators read connections and variables, admins change
them and manage users), every form post is role-checked on the server and needs the CSRF token,
secrets never reach the page, refused input comes back on the form with the reason (never a 500),
and accepted posts are in the audit log."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.web.conftest import login
from tests.web.seed import PASSWORD, Seeded


@pytest.fixture(scope="module")
def app(web_env: tuple[Engine, Seeded, Path]) -> Any:
    """As conftest's, with a Fernet key: connections with a password need one."""
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.crypto import generate_key

    engine, _seeded, tmp = web_env
    return create_app(Settings(home=tmp / "home", fernet_key=generate_key()), engine)


@pytest.fixture(scope="module")
def admin_browser(app: Any) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app) as browser:
        yield browser, login(browser, "admin", PASSWORD)


@pytest.fixture(scope="module")
def operator_browser(app: Any) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app) as browser:
        yield browser, login(browser, "operator", PASSWORD)


@pytest.fixture(scope="module")
def viewer_browser(app: Any) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app) as browser:
        yield browser, login(browser, "viewer", PASSWORD)


def _secrets(app: Any) -> Any:
    from ductwork.api.routes.secrets import database_of

    return database_of(app.state.ctx)


def _error(page: str) -> str:
    found = re.search(r'<div class="error" id="form-error">(.*?)</div>', page, re.S)
    assert found is not None, page
    return html.unescape(found.group(1))


WRITES = [
    ("/connections", {"conn_id": "sneaky", "conn_type": "http"}),
    ("/connections/sneaky/edit", {"conn_type": "http"}),
    ("/connections/sneaky/delete", {}),
    ("/variables", {"key": "sneaky", "value": "1"}),
    ("/variables/sneaky/edit", {"value": "1"}),
    ("/variables/sneaky/delete", {}),
    ("/users", {"username": "sneaky", "password": "long-enough-1", "role": "admin"}),
    ("/users/viewer/role", {"role": "admin"}),
    ("/users/admin/password", {"password": "taken-over-1"}),
    ("/users/admin/delete", {}),
]


@pytest.mark.parametrize("path, data", WRITES, ids=[w[0] for w in WRITES])
def test_a_viewer_and_an_operator_posting_a_form_by_hand_get_403(
    viewer_browser: tuple[TestClient, str],
    operator_browser: tuple[TestClient, str],
    path: str,
    data: dict[str, str],
    app: Any,
    engine: Engine,
) -> None:
    from ductwork.services import accounts

    for browser, csrf in (viewer_browser, operator_browser):
        response = browser.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert response.status_code == 403, (path, response.text)
        assert "needs admin" in response.text
    assert _secrets(app).get_connection("sneaky") is None and _secrets(app).get_variable("sneaky") is None
    with pytest.raises(accounts.AuthenticationError):
        accounts.authenticate(engine, "sneaky", "long-enough-1")


def test_who_reads_what_is_the_apis_rule(
    viewer_browser: tuple[TestClient, str], operator_browser: tuple[TestClient, str]
) -> None:
    viewer, _ = viewer_browser
    for path in ("/connections", "/variables", "/users", "/connections/new", "/variables/new"):
        assert viewer.get(path).status_code == 403, path
    nav = viewer.get("/flows").text
    assert 'href="/connections"' not in nav and 'href="/variables"' not in nav and 'href="/users"' not in nav
    operator, _ = operator_browser
    page = operator.get("/connections")
    assert page.status_code == 200 and 'id="connections-table"' in page.text
    assert "/connections/new" not in page.text, "operators read only"
    assert operator.get("/variables").status_code == 200
    assert operator.get("/users").status_code == 403 and operator.get("/connections/new").status_code == 403
    nav = operator.get("/flows").text
    assert 'href="/connections"' in nav and 'href="/variables"' in nav and 'href="/users"' not in nav


def test_a_form_post_without_the_csrf_token_is_refused(admin_browser: tuple[TestClient, str], app: Any) -> None:
    browser, _csrf = admin_browser
    response = browser.post("/connections", data={"conn_id": "no_csrf", "conn_type": "http"})
    assert response.status_code == 403 and "csrf" in response.text.lower()
    assert _secrets(app).get_connection("no_csrf") is None


def test_an_admin_creates_edits_and_deletes_a_connection(
    admin_browser: tuple[TestClient, str], app: Any, engine: Engine
) -> None:
    from ductwork.services import audit

    browser, csrf = admin_browser
    assert 'href="/connections"' in browser.get("/flows").text
    created = browser.post(
        "/connections",
        data={
            "csrf_token": csrf,
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "host": "db.example",
            "port": "5432",
            "login": "etl",
            "password": "pw-never-shown",
            "schema": "analytics",
            "extra": '{"sslmode": "require", "api_token": "tok-never-shown", "nested": {"client_secret": "cs-hidden"}}',
            "description": "the warehouse",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = browser.get(created.headers["location"]).text
    row = page[page.index('data-conn-id="warehouse"') :].split("</tr>")[0]
    for shown in ("postgres", "db.example", "5432", "etl", "analytics", "require", "the warehouse"):
        assert shown in row, shown
    assert "Connection warehouse saved" in page
    for secret in ("pw-never-shown", "tok-never-shown", "cs-hidden"):
        assert secret not in page

    form = browser.get("/connections/warehouse/edit").text
    assert 'id="connection-form"' in form and "a password is stored" in form
    for secret in ("pw-never-shown", "tok-never-shown", "cs-hidden"):
        assert secret not in form
    extra_shown = html.unescape(re.search(r'<textarea id="extra" name="extra"[^>]*>(.*?)</textarea>', form, re.S)[1])
    edited = browser.post(
        "/connections/warehouse/edit",
        data={
            "csrf_token": csrf,
            "conn_type": "postgres",
            "host": "db2.example",
            "port": "6432",
            "login": "etl",
            "password": "",
            "schema": "analytics",
            "extra": extra_shown.replace('"require"', '"verify-full"'),
            "description": "moved",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text
    stored = _secrets(app).get_connection("warehouse")
    assert (stored.host, stored.port, stored.description) == ("db2.example", 6432, "moved")
    assert stored.password == "pw-never-shown", "an empty password field keeps the stored one"
    assert dict(stored.extra) == {
        "sslmode": "verify-full",
        "api_token": "tok-never-shown",
        "nested": {"client_secret": "cs-hidden"},
    }, "*** under a secret key keeps the stored value"

    browser.post(
        "/connections/warehouse/edit",
        data={"csrf_token": csrf, "conn_type": "postgres", "host": "db2.example", "clear_password": "on"},
    )
    assert _secrets(app).get_connection("warehouse").password is None

    confirm = browser.get("/connections/warehouse/delete").text
    assert "Delete connection warehouse?" in confirm and 'name="csrf_token"' in confirm
    deleted = browser.post("/connections/warehouse/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert deleted.status_code == 303
    assert _secrets(app).get_connection("warehouse") is None
    assert 'data-conn-id="warehouse"' not in browser.get("/connections").text

    entries = audit.entries(engine, target="warehouse", via="ui").items
    assert [e.action for e in entries] == ["connection.delete", "connection.set", "connection.set", "connection.set"]
    assert all(e.actor == "admin" for e in entries)
    first = entries[-1].details["body"]
    assert first["password"] == "***" and first["extra"] == "***" and first["host"] == "db.example"


@pytest.mark.parametrize(
    "fields, status, message",
    [
        ({"conn_id": "  "}, 422, "needs a name"),
        ({"conn_id": "p", "port": "abc"}, 422, "port: 'abc' is not a number"),
        ({"conn_id": "p", "port": "70000"}, 422, "port: Input should be less than or equal to 65535"),
        ({"conn_id": "p", "extra": "{nope"}, 422, "extra: not valid JSON"),
        ({"conn_id": "p", "extra": "[1]"}, 422, "extra: expected a JSON object"),
        ({"conn_id": "p", "conn_type": ""}, 400, "give a uri or at least conn_type"),
        ({"conn_id": "taken"}, 409, "a connection named 'taken' exists already"),
    ],
)
def test_bad_connection_input_gives_the_form_back_with_the_reason(
    admin_browser: tuple[TestClient, str], app: Any, fields: dict[str, str], status: int, message: str
) -> None:
    from ductwork.core.connections import Connection

    _secrets(app).put_connection(Connection("taken", "http", host="kept.example"))
    browser, csrf = admin_browser
    data = {"csrf_token": csrf, "conn_type": "http", "host": "typed.example", "password": "typed-pw", **fields}
    response = browser.post("/connections", data=data, follow_redirects=False)
    assert response.status_code == status, response.text
    assert message in _error(response.text)
    assert 'value="typed.example"' in response.text, "the form comes back as filled in"
    assert "typed-pw" not in response.text, "but never with the password"
    assert _secrets(app).get_connection("p") is None
    assert _secrets(app).get_connection("taken").host == "kept.example"


def test_editing_or_deleting_an_unknown_connection_is_a_404_page(admin_browser: tuple[TestClient, str]) -> None:
    browser, csrf = admin_browser
    assert browser.get("/connections/ghost/edit").status_code == 404
    response = browser.post("/connections/ghost/delete", data={"csrf_token": csrf})
    assert response.status_code == 404 and "ghost" in _error(response.text)


def test_an_admin_manages_variables_and_secret_values_stay_hidden(
    admin_browser: tuple[TestClient, str], operator_browser: tuple[TestClient, str], app: Any, engine: Engine
) -> None:
    from ductwork.services import audit

    browser, csrf = admin_browser
    for key, value in (("region", "eu-west-1"), ("db_password", "var-secret-1")):
        response = browser.post(
            "/variables", data={"csrf_token": csrf, "key": key, "value": value}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
    for reader in (browser, operator_browser[0]):
        page = reader.get("/variables").text
        assert "eu-west-1" in page and "var-secret-1" not in page
        row = page[page.index('data-key="db_password"') :].split("</tr>")[0]
        assert "***" in row
    form = browser.get("/variables/db_password/edit").text
    assert "var-secret-1" not in form and "leave empty to keep" in form
    assert "eu-west-1" in browser.get("/variables/region/edit").text

    kept = browser.post("/variables/db_password/edit", data={"csrf_token": csrf, "value": "", "description": "d"})
    assert kept.status_code == 200
    assert _secrets(app).get_variable("db_password") == "var-secret-1"
    browser.post("/variables/region/edit", data={"csrf_token": csrf, "value": "us-east-1"})
    assert _secrets(app).get_variable("region") == "us-east-1"

    duplicate = browser.post("/variables", data={"csrf_token": csrf, "key": "region", "value": "x"})
    assert duplicate.status_code == 409 and "exists already" in _error(duplicate.text)
    assert _secrets(app).get_variable("region") == "us-east-1"
    empty = browser.post("/variables", data={"csrf_token": csrf, "key": "", "value": "x"})
    assert empty.status_code == 422 and "needs a name" in _error(empty.text)

    assert browser.post("/variables/region/delete", data={"csrf_token": csrf}).status_code == 200
    assert _secrets(app).get_variable("region") is None
    actions = [e.action for e in audit.entries(engine, target="region", via="ui").items]
    assert actions == ["variable.delete", "variable.set", "variable.set"]
    assert all(e.details.get("body", {}).get("value") in ("***", None) for e in audit.entries(engine, via="ui").items)


def test_an_admin_manages_users_and_the_last_admin_stays(admin_browser: tuple[TestClient, str], engine: Engine) -> None:
    from ductwork.services import accounts, audit

    browser, csrf = admin_browser
    page = browser.get("/users").text
    assert 'data-username="viewer"' in page and 'data-username="admin"' in page

    created = browser.post(
        "/users",
        data={"csrf_token": csrf, "username": "dana", "password": "dana-password-1", "role": "operator"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    assert accounts.authenticate(engine, "dana", "dana-password-1").role == "operator"
    assert "dana-password-1" not in browser.get("/users").text

    short = browser.post("/users", data={"csrf_token": csrf, "username": "eve", "password": "short", "role": "viewer"})
    assert short.status_code == 422 and "password" in _error(short.text)
    again = browser.post(
        "/users", data={"csrf_token": csrf, "username": "dana", "password": "another-pass-1", "role": "viewer"}
    )
    assert again.status_code == 409 and "already exists" in _error(again.text)
    blank = browser.post("/users", data={"csrf_token": csrf, "username": " ", "password": "another-pass-1"})
    assert blank.status_code == 422 and "needs a name" in _error(blank.text)

    assert browser.post("/users/dana/role", data={"csrf_token": csrf, "role": "viewer"}).status_code == 200
    with engine.connect() as conn:
        from ductwork.store.repo import users as user_repo

        assert user_repo.get_user(conn, "dana").role == "viewer"

    reset = browser.post("/users/dana/password", data={"csrf_token": csrf, "password": "dana-new-pass-2"})
    assert reset.status_code == 200 and "dana-new-pass-2" not in reset.text
    assert accounts.authenticate(engine, "dana", "dana-new-pass-2").role == "viewer"
    with pytest.raises(accounts.AuthenticationError):
        accounts.authenticate(engine, "dana", "dana-password-1")
    weak = browser.post("/users/dana/password", data={"csrf_token": csrf, "password": "short"})
    assert weak.status_code == 422 and "password" in _error(weak.text)
    nobody = browser.post("/users/nobody/password", data={"csrf_token": csrf, "password": "long-enough-2"})
    assert nobody.status_code == 404 and "nobody" in _error(nobody.text)

    last = browser.post("/users/admin/role", data={"csrf_token": csrf, "role": "viewer"})
    assert last.status_code == 409 and "would leave no admin" in _error(last.text)
    myself = browser.post("/users/admin/delete", data={"csrf_token": csrf})
    assert myself.status_code == 400 and "cannot delete yourself" in _error(myself.text)
    bad_role = browser.post("/users/dana/role", data={"csrf_token": csrf, "role": "root"})
    assert bad_role.status_code == 422 and "unknown role" in _error(bad_role.text)

    assert "Delete user dana?" in browser.get("/users/dana/delete").text
    assert browser.post("/users/dana/delete", data={"csrf_token": csrf}).status_code == 200
    with pytest.raises(accounts.AuthenticationError):
        accounts.authenticate(engine, "dana", "dana-password-1")
    actions = [(e.action, e.target) for e in audit.entries(engine, target="dana", via="ui").items]
    assert actions == [
        ("user.delete", "dana"),
        ("user.change", "dana"),
        ("user.change", "dana"),
        ("user.create", "dana"),
    ]
    changed = [
        e
        for e in audit.entries(engine, target="dana", action="user.change").items
        if "password" in e.details.get("body", {})
    ]
    assert changed and changed[0].details["body"]["password"] == "***"
    assert audit.entries(engine, target="dana", action="user.create").items[0].details["body"]["password"] == "***"


def test_an_id_with_a_slash_is_edited_and_deleted_through_its_own_links(
    admin_browser: tuple[TestClient, str], app: Any
) -> None:
    """A connection id with a slash, stored before ids followed the task id rule (a new one is
    refused: the form says which name to write), is still edited and deleted from its page."""
    from ductwork.core.connections import Connection

    browser, csrf = admin_browser
    data = {"csrf_token": csrf, "conn_id": "team/api", "conn_type": "https", "host": "api.example"}
    refused = browser.post("/connections", data=data, follow_redirects=False)
    assert refused.status_code == 422 and "write &#39;team_api&#39;" in refused.text, refused.text
    _secrets(app).put_connection(Connection(conn_id="team/api", conn_type="https", host="api.example"))
    page = browser.get("/connections").text
    assert 'href="/connections/team%2Fapi/edit"' in page and 'href="/connections/team%2Fapi/delete"' in page
    form = browser.get("/connections/team%2Fapi/edit").text
    assert 'action="/connections/team%2Fapi/edit"' in form
    browser.post("/connections/team%2Fapi/edit", data={"csrf_token": csrf, "conn_type": "https", "host": "v2.example"})
    assert _secrets(app).get_connection("team/api").host == "v2.example"
    browser.post("/connections/team%2Fapi/delete", data={"csrf_token": csrf})
    assert _secrets(app).get_connection("team/api") is None


def test_without_a_fernet_key_a_secret_is_refused_on_the_form_not_with_a_500(
    web_env: tuple[Engine, Seeded, Path],
) -> None:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings

    engine, _seeded, tmp = web_env
    keyless = create_app(Settings(home=tmp / "home"), engine)
    with TestClient(keyless) as browser:
        csrf = login(browser, "admin", PASSWORD)
        data = {"csrf_token": csrf, "conn_id": "nokey", "conn_type": "http", "password": "pw-nokey"}
        response = browser.post("/connections", data=data)
        assert response.status_code == 400 and "fernet_key" in _error(response.text).lower()
        secret = browser.post("/variables", data={"csrf_token": csrf, "key": "api_token", "value": "x"})
        assert secret.status_code == 400 and "looks secret" in _error(secret.text)
        plain = browser.post("/connections", data={**data, "password": ""}, follow_redirects=False)
        assert plain.status_code == 303, "without a password nothing needs the key"


@pytest.mark.parametrize(
    ("path", "form", "said"),
    [
        (
            "/variables",
            {"key": "region ", "value": "eu-west-1"},
            "variable name 'region ': spaces before or after it are not part of the key a task reads; write 'region'",
        ),
        (
            "/connections",
            {"conn_id": " warehouse", "conn_type": "postgres"},
            "connection name ' warehouse': spaces before or after it are not part of the conn_id a task names; "
            "write 'warehouse'",
        ),
    ],
)
def test_a_variable_or_connection_name_with_spaces_around_it_is_refused_not_trimmed(
    admin_browser: tuple[TestClient, str], app: Any, path: str, form: dict[str, str], said: str
) -> None:
    """The variables form stored "region " as "region" without a word (pools refuse the same
    name): the form comes back as typed, with the reason naming the field, and nothing is stored."""
    browser, csrf = admin_browser
    response = browser.post(path, data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 422, response.text[-2000:]
    assert _error(response.text) == said
    typed = next(v for k, v in form.items() if k in ("key", "conn_id"))
    assert f'value="{typed}"' in response.text, "the form comes back as typed"
    database = _secrets(app)
    assert "region" not in [v.key for v in database.list_variables()]
    assert database.get_connection("warehouse") is None


def test_the_user_form_refuses_a_name_with_spaces_around_it_not_trims_it(
    admin_browser: tuple[TestClient, str], engine: Engine
) -> None:
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import users as user_repo

    browser, csrf = admin_browser
    data = {"csrf_token": csrf, "username": " erin", "password": "erin-password-1", "role": "viewer"}
    response = browser.post("/users", data=data, follow_redirects=False)
    assert response.status_code == 422, response.text[-1500:]
    assert _error(response.text).startswith("user name ' erin': spaces before or after it")
    with read_transaction(engine) as conn:
        assert not {"erin", " erin"} & {u.username for u in user_repo.list_users(conn)}
