"""Access: nothing answers without authentication (except health, login and static files),
roles limit what each user may do, cookie-authenticated writes need the CSRF token, and
secrets are stored only as hashes."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from ductwork.store.engine import read_transaction
from ductwork.store.tables import api_tokens, users, web_sessions
from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD, Seeded

PUBLIC = {"/api/v1/health", "/login", "/static", "/metrics"}  # /metrics: Prometheus has no session (its own token)


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def all_routes(app: Any) -> list[tuple[str, str]]:
    """(method, sample path) of every route, through included routers (which FastAPI may keep
    as lazily combined branches)."""
    found = []
    for top in app.routes:
        routes = top.effective_route_contexts() if hasattr(top, "effective_route_contexts") else [top]
        for route in routes:
            if isinstance(route, Mount):
                found.append(("GET", route.path + "/css/ductwork.css"))
                continue
            assert isinstance(route, (APIRoute, Route)) or hasattr(route, "methods"), route
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    found.append((method, _sample(route.path)))
    return found


def test_every_route_requires_authentication(app: Any) -> None:
    routes = all_routes(app)
    assert len(routes) > 50
    fresh = TestClient(app)
    checked = 0
    for method, path in routes:
        response = fresh.request(method, path, follow_redirects=False)
        if path in PUBLIC or path.startswith("/static/"):
            assert response.status_code < 400 or (path == "/login" and method == "POST"), (
                method,
                path,
                response.status_code,
            )
            continue
        checked += 1
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"
        elif path == "/logout":  # no session to end: the login page, with nothing to come back to
            assert response.status_code == 303 and response.headers["location"] == "/login"
        else:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login?next=")
    assert checked > 45


def test_openapi_and_docs_need_a_login(anonymous: Api, viewer: Api) -> None:
    assert anonymous.get("/openapi.json").status_code == 401
    assert anonymous.get("/docs").status_code == 401
    assert viewer.get("/openapi.json").json()["info"]["title"] == "Ductwork"


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("Bearer dwt_wrong", "the API token is not valid: it is unknown, revoked or expired"),
        ("Bearer ", "holds no token"),
        ("Basic dXNlcjpwYXNz", "uses the 'Basic' scheme, which this API does not accept"),
        ("dwt_nobearer", "has no scheme, which this API does not accept"),
    ],
)
def test_bad_credentials_are_401_saying_what_was_wrong(client: Any, header: str, says: str) -> None:
    """A script that sent a token hears that the token is wrong, not "authentication required"
    (which reads as if its header had been lost)."""
    response = client.get("/api/v1/flows", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert says in response.json()["detail"], response.json()
    assert "authentication required" not in response.json()["detail"]
    assert "dwt_" not in response.json()["detail"] and "dXNlcjpwYXNz" not in response.json()["detail"]  # not echoed


def test_a_bad_token_is_not_rescued_by_a_session(app: Any, seeded: Seeded) -> None:
    with TestClient(app) as browser:
        login(browser, "admin", PASSWORD)
        assert browser.get("/api/v1/me").json()["via"] == "session"
        assert browser.get("/api/v1/me", headers={"Authorization": "Bearer dwt_wrong"}).status_code == 401


WRITES = [
    ("post", "/flows/demo/runs", {}),
    ("patch", "/flows/demo", {"is_paused": True}),
    ("post", "/flows/demo/backfill", {"start": "2020-01-01", "end": "2020-01-02", "dry_run": True}),
    ("post", "/flows/demo/runs/{run}/cancel", None),
    ("post", "/flows/demo/runs/{run}/tasks/clear", {"task_ids": ["load"], "dry_run": True}),
    ("post", "/flows/demo/runs/{run}/tasks/mark", {"task_ids": ["load"], "state": "success"}),
]
ADMIN_ONLY = [
    ("put", "/pools/p1", {"slots": 1}),
    ("delete", "/pools/io", None),
    ("get", "/users", None),
    ("get", "/users/admin", None),
    ("post", "/users", {"username": "x", "password": "long-enough-1"}),
    ("delete", "/users/operator", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES + ADMIN_ONLY)
def test_viewer_cannot_change_anything(viewer: Api, seeded: Seeded, method: str, path: str, body: Any) -> None:
    path = path.replace("{run}", seeded.success_run)
    kwargs = {"json": body} if body is not None else {}
    response = getattr(viewer, method)(path, **kwargs)
    assert response.status_code == 403, response.text
    assert "viewer role" in response.json()["detail"] and response.json()["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_operator_cannot_administer(operator: Api, method: str, path: str, body: Any) -> None:
    kwargs = {"json": body} if body is not None else {}
    assert getattr(operator, method)(path, **kwargs).status_code == 403


def test_operator_can_operate(operator: Api) -> None:
    assert (
        operator.post(
            "/flows/demo/backfill", json={"start": "2020-01-01", "end": "2020-01-02", "dry_run": True}
        ).status_code
        == 200
    )
    assert operator.patch("/flows/nightly_paused", json={"is_paused": True}).status_code == 200


def test_session_writes_need_the_csrf_token(app: Any) -> None:
    with TestClient(app) as browser:
        csrf = login(browser, "operator", PASSWORD)
        assert browser.post("/api/v1/flows/demo/runs", json={"run_id": "csrf__a"}).json()["error"] == "csrf_failed"
        wrong = browser.post("/api/v1/flows/demo/runs", json={"run_id": "csrf__a"}, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        right = browser.post("/api/v1/flows/demo/runs", json={"run_id": "csrf__a"}, headers={"X-CSRF-Token": csrf})
        assert right.status_code == 201, right.text
        # forms carry it as a field
        assert (
            browser.post("/flows/demo/trigger", data={"run_id": "csrf__b"}, follow_redirects=False).status_code == 403
        )
        form = browser.post(
            "/flows/demo/trigger", data={"run_id": "csrf__b", "csrf_token": csrf}, follow_redirects=False
        )
        assert form.status_code == 303 and form.headers["location"] == "/flows/demo/runs/csrf__b/graph"
        assert browser.post("/logout", follow_redirects=False).status_code == 403
        assert (
            browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).headers["location"] == "/login"
        )
        assert browser.get("/api/v1/me").status_code == 401


def test_tokens_need_no_csrf(operator: Api) -> None:
    assert operator.post("/flows/demo/runs", json={"run_id": "token__a"}).status_code == 201


def test_login_failures_and_safe_redirects(app: Any) -> None:
    with TestClient(app) as browser:
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        wrong = browser.post("/login", data={"username": "admin", "password": "nope", "csrf_token": token})
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text).group(1)  # type: ignore[union-attr]
        unknown = browser.post("/login", data={"username": "ghost", "password": "nope", "csrf_token": token})
        assert unknown.status_code == 401 and "Wrong user name or password" in unknown.text
        forged = browser.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "forged"})
        assert forged.status_code == 403
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        ok = browser.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert ok.headers["location"] == "/flows"
        cookie = ok.headers["set-cookie"]
        assert "ductwork_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")


def test_a_refused_login_keeps_the_user_name_typed(app: Any) -> None:
    """A wrong password emptied the user name too: it had to be typed again each time."""
    with TestClient(app) as browser:
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        wrong = browser.post("/login", data={"username": 'ad"min<', "password": "nope", "csrf_token": token})
        assert wrong.status_code == 401
        field = re.search(r'<input id="username"[^>]*>', wrong.text)
        assert field is not None and 'value="ad&#34;min&lt;"' in field.group(0), field
        assert 'value="' not in re.search(r'<input id="password"[^>]*>', wrong.text).group(0)  # type: ignore[union-attr]


def test_login_keeps_where_you_were_going(app: Any) -> None:
    with TestClient(app) as browser:
        first = browser.get("/flows/demo/grid?x=1", follow_redirects=False)
        assert first.headers["location"] == "/login?next=%2Fflows%2Fdemo%2Fgrid%3Fx%3D1"
        page = browser.get(first.headers["location"])
        assert 'value="/flows/demo/grid?x=1"' in page.text


def test_a_form_posted_after_the_session_expired_comes_back_to_its_page(app: Any, engine: Any) -> None:
    """After the login the browser GETs ``next``: a form's action may answer only POST (a user's
    role), so a post without a session comes back to the page the form was on, its query kept."""
    with TestClient(app) as browser:
        csrf = login(browser, "admin", PASSWORD)
        _expire_sessions(engine)
        posted = browser.post(
            "/users/viewer/role",
            data={"role": "viewer", "csrf_token": csrf},
            headers={"Referer": "http://testserver/users?x=1"},
            follow_redirects=False,
        )
        assert posted.status_code == 303
        assert posted.headers["location"] == "/login?next=%2Fusers%3Fx%3D1"
        elsewhere = browser.post(
            "/users/viewer/role",
            data={"role": "viewer"},
            headers={"Referer": "https://evil.example/users"},
            follow_redirects=False,
        )
        assert elsewhere.headers["location"] == "/login?next=%2Fflows"


def test_logging_out_after_the_session_expired_shows_the_login_page(app: Any, engine: Any) -> None:
    """Not a "Method Not Allowed" page after logging in again (``next=/logout`` was GET)."""
    with TestClient(app) as browser:
        csrf = login(browser, "admin", PASSWORD)
        _expire_sessions(engine)
        out = browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert 'ductwork_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]


def test_a_login_never_lands_on_the_login_page(app: Any) -> None:
    """A login sent on to /login (next=/login) showed the form again, as if the password had been wrong."""
    with TestClient(app) as browser:
        for target in ("%2Flogin", "%2Flogin%3Fnext%3D%252Fflows", "%2Flogout"):
            page = browser.get(f"/login?next={target}")
            assert 'name="next" value="/flows"' in page.text, target


def _expire_sessions(engine: Any) -> None:
    import datetime as dt

    with engine.begin() as conn:
        conn.execute(sa.update(web_sessions).values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


def test_secrets_are_stored_only_as_hashes(engine: Any, seeded: Seeded, app: Any) -> None:
    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        session_id = browser.cookies.get("ductwork_session")
    with read_transaction(engine) as conn:
        hashes = [r.password_hash for r in conn.execute(sa.select(users.c.password_hash))]
        token_hashes = list(conn.execute(sa.select(api_tokens.c.token_hash)).scalars())
        session_hashes = list(conn.execute(sa.select(web_sessions.c.session_hash)).scalars())
    assert all(h.startswith("$argon2id$") for h in hashes) and PASSWORD not in "".join(hashes)
    assert all(len(h) == 64 for h in token_hashes)
    assert not set(seeded.tokens.values()) & set(token_hashes)
    assert session_id and session_id not in session_hashes and len(session_hashes) >= 1


def test_security_headers_on_pages(app: Any) -> None:
    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        response = browser.get("/flows")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def _session_alive(client: TestClient) -> bool:
    response = client.get("/api/v1/flows")
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def test_a_new_password_or_role_ends_the_users_sessions(app: Any, engine: Any, admin: Api) -> None:
    from ductwork.services import accounts

    accounts.create_user(engine, "rotating", "first-password-1", "operator")
    accounts.create_user(engine, "bystander", "other-password-1", "viewer")
    by_password, by_role, by_api, bystander = (TestClient(app) for _ in range(4))
    for client in (by_password, by_role, by_api):
        login(client, "rotating", "first-password-1")
        assert _session_alive(client)
    login(bystander, "bystander", "other-password-1")

    accounts.set_password(engine, "rotating", "second-password-2")  # what `ductwork users password` does
    assert not _session_alive(by_password) and not _session_alive(by_role) and not _session_alive(by_api)
    assert _session_alive(bystander), "another user's session must survive"

    login(by_role, "rotating", "second-password-2")
    assert _session_alive(by_role)
    accounts.set_role(engine, "rotating", "viewer")  # what `ductwork users role` does
    assert not _session_alive(by_role)

    login(by_api, "rotating", "second-password-2")
    changed = admin.patch("/users/rotating", json={"role": "operator", "password": "third-password-3"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "operator"
    assert not _session_alive(by_api)
    login(by_api, "rotating", "third-password-3")
    assert _session_alive(by_api)
    assert admin.patch("/users/rotating", json={}).status_code == 422
    assert admin.patch("/users/nobody", json={"role": "viewer"}).status_code == 404
    assert _session_alive(bystander)


def test_a_token_with_characters_beyond_ascii_is_refused_not_a_server_error(app: Any) -> None:
    """A CSRF token (form field or header) holding é made the comparison raise TypeError
    ("comparing strings with non-ASCII characters is not supported"): a 500 and a traceback in
    the server's log for what is only a wrong token."""
    with TestClient(app) as browser:
        page = browser.get("/login")
        forged = browser.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "jeton-é"})
        assert forged.status_code == 403, forged.text[:300]
        assert "csrf_token" in page.text
        login(browser, "operator", PASSWORD)
        wrong = browser.post(
            "/api/v1/flows/demo/runs", json={"run_id": "csrf__e"}, headers={"X-CSRF-Token": "jeton-é".encode()}
        )
        assert wrong.status_code == 403 and wrong.json()["error"] == "csrf_failed", wrong.text[:300]
        form = browser.post(
            "/flows/demo/trigger", data={"run_id": "csrf__e", "csrf_token": "jeton-é"}, follow_redirects=False
        )
        assert form.status_code == 403, form.text[:300]
