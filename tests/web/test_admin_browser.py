"""The admin pages in real headless Chromium against a real ``ductwork webserver`` (with a Fernet
key, as connections with passwords need): an admin adds, edits and deletes a connection through
the forms, a refused form says why, the last admin cannot demote themselves, and a viewer sees
no admin links and is refused (403) even when posting the form by hand with a valid CSRF token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.test_browser import Session, Standalone, _need_chromium, chromium, free_port

pytestmark = pytest.mark.timeout(300)

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    _need_chromium()
    from ductwork.store.crypto import generate_key

    root = tmp_path_factory.mktemp("admin-ui")
    home = root / "home"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(home),
        "DUCTWORK_FERNET_KEY": generate_key(),
        "PYTHONUNBUFFERED": "1",
    }
    init = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "db", "init"], env=env, cwd=root, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stdout + init.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "webserver", "--port", str(port)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Standalone(f"http://127.0.0.1:{port}", ADMIN_PASSWORD, home, env, process)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(server.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.process.poll() is None, server.process.communicate()[0]
            time.sleep(0.3)
        else:
            raise AssertionError("the web server never answered")
        server.cli("users", "create", "admin", "--role", "admin", "--password-stdin", input=ADMIN_PASSWORD + "\n")
        server.cli("users", "create", "viewer", "--role", "viewer", "--password-stdin", input=VIEWER_PASSWORD + "\n")
        yield server
    finally:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def browser(server: Standalone) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _stored(server: Standalone) -> dict[str, dict[str, Any]]:
    return {c["conn_id"]: c for c in json.loads(server.cli("connections", "list", "--json"))}


def test_an_admin_adds_edits_and_deletes_a_connection(browser: Any, server: Standalone) -> None:
    tab = Session(browser, server, "admin", ADMIN_PASSWORD)
    try:
        page = tab.open("/flows")
        page.click("nav >> text=Connections")
        page.wait_for_url("**/connections")
        page.click("#connection-new")
        page.fill("#conn_id", "warehouse")
        page.fill("#conn_type", "postgres")
        page.fill("#host", "db.example")
        page.fill("#port", "not-a-port")
        page.fill("#login", "etl")
        page.fill("#password", "pw-in-browser")
        page.fill("#extra", '{"sslmode": "require", "api_token": "tok-in-browser"}')
        page.click("#connection-save")
        assert "port: 'not-a-port' is not a number" in page.inner_text("#form-error")
        assert page.input_value("#host") == "db.example", "the form comes back as filled in"
        assert page.input_value("#password") == ""
        tab.errors.clear()  # Chromium logs the 422 answer as a console error
        page.fill("#port", "5432")
        page.fill("#password", "pw-in-browser")
        page.click("#connection-save")
        page.wait_for_url("**/connections?saved=warehouse")
        row = page.locator('tr[data-conn-id="warehouse"]')
        text = row.inner_text()
        assert "db.example" in text and "5432" in text and "etl" in text and "***" in text
        content = page.content()
        assert "pw-in-browser" not in content and "tok-in-browser" not in content

        row.locator("a", has_text="Edit").click()
        page.wait_for_url("**/connections/warehouse/edit")
        assert page.input_value("#password") == "" and "tok-in-browser" not in page.content()
        page.fill("#host", "db2.example")
        page.click("#connection-save")
        page.wait_for_url("**/connections?saved=warehouse")
        assert "db2.example" in page.locator('tr[data-conn-id="warehouse"]').inner_text()
        stored = _stored(server)["warehouse"]
        assert stored["host"] == "db2.example" and stored["password"] == "***", "the password was kept"
        assert stored["extra"] == {"sslmode": "require", "api_token": "***"}

        page.locator('tr[data-conn-id="warehouse"] a', has_text="Delete").click()
        page.wait_for_url("**/connections/warehouse/delete")
        assert "Delete connection warehouse?" in page.inner_text("h1")
        page.click("#delete-confirm")
        page.wait_for_url("**/connections?deleted=warehouse")
        assert page.locator('tr[data-conn-id="warehouse"]').count() == 0
        assert "warehouse" not in _stored(server)

        audit = server.cli("audit", "list", "--json")
        assert audit.count('"connection.set"') == 2 and '"connection.delete"' in audit
        assert "pw-in-browser" not in audit and "tok-in-browser" not in audit
    finally:
        tab.close()


def test_the_last_admin_cannot_demote_themselves(browser: Any, server: Standalone) -> None:
    tab = Session(browser, server, "admin", ADMIN_PASSWORD)
    try:
        page = tab.open("/users")
        row = page.locator('tr[data-username="admin"]')
        row.locator("select").select_option("viewer")
        row.locator("button", has_text="Change role").click()
        page.wait_for_selector("#form-error")
        assert "would leave no admin" in page.inner_text("#form-error")
        assert "(admin)" in page.inner_text(".who"), "still an admin, still logged in"
        tab.errors.clear()  # the 409 answer
    finally:
        tab.close()


def test_a_viewer_cannot_see_or_use_the_admin_pages(browser: Any, server: Standalone) -> None:
    tab = Session(browser, server, "viewer", VIEWER_PASSWORD)
    try:
        page = tab.open("/flows")
        nav = page.inner_text("nav")
        assert "Connections" not in nav and "Variables" not in nav and "Users" not in nav
        for path in ("/connections", "/connections/new", "/variables", "/users"):
            response = page.goto(server.url + path)
            assert response is not None and response.status == 403, path
            assert "viewer role" in page.inner_text("#page-error")
        page = tab.open("/flows")
        csrf = page.get_attribute('meta[name="csrf-token"]', "content")
        posted = page.request.post(
            server.url + "/connections",
            form={"csrf_token": csrf, "conn_id": "by_hand", "conn_type": "http", "host": "evil.example"},
        )
        assert posted.status == 403
        assert "by_hand" not in _stored(server)
        tab.errors.clear()  # the 403 page loads
    finally:
        tab.close()


def _pools(server: Standalone) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(server.cli("pools", "list", "--json"))}


def test_changing_a_pools_slots_keeps_its_description_from_the_page_the_cli_and_the_api(
    browser: Any, server: Standalone
) -> None:
    # Setting a pool's slots on the page (description box left empty), with `pools set NAME N` or
    # a PUT without a description wiped the description ("Default pool" was gone).
    server.cli("pools", "set", "etl", "4", "--description", "nightly loads")
    tab = Session(browser, server, "admin", ADMIN_PASSWORD)
    try:
        page = tab.open("/pools")
        page.fill("#pool-name", "etl")
        page.press("#pool-name", "Tab")
        assert page.input_value("#pool-slots") == "4" and page.input_value("#pool-description") == "nightly loads"
        page.fill("#pool-slots", "6")
        page.click("#pool-form button[type=submit]")
        page.wait_for_selector('tr[data-pool="etl"][data-slots="6"]')
        page.locator('.pool-edit[data-pool="default_pool"]').click()
        assert page.input_value("#pool-name") == "default_pool"
        assert page.input_value("#pool-description") == "Default pool"
    finally:
        tab.close()
    assert _pools(server)["etl"] == {"name": "etl", "slots": 6, "description": "nightly loads"}
    server.cli("pools", "set", "etl", "8")
    assert _pools(server)["etl"]["description"] == "nightly loads"
    token = server.cli("tokens", "create", "admin").split()[0]
    put = httpx.put(
        server.url + "/api/v1/pools/etl", json={"slots": 9}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert put.status_code == 200 and put.json()["description"] == "nightly loads", put.text
    server.cli("pools", "set", "etl", "9", "--description", "")
    assert _pools(server)["etl"]["description"] == "", "an empty --description still clears it"
