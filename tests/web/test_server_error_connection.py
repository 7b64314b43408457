"""After a failure nobody foresaw (a 500), the server closes the connection: uvicorn does so
once the application raised, whatever the answer said. The answer now says so
(``Connection: close``), so a client that keeps connections open (``httpx.Client``, the
browser) does not send its next request down a connection being closed, where it failed with
"Connection reset by peer" instead of being answered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.web.conftest import login
from tests.web.seed import PASSWORD, Seeded


@pytest.fixture(scope="module")
def served(web_env: tuple[Engine, Seeded, Path]) -> Iterator[str]:
    """The application, with one route that fails, served by a real uvicorn on a free port."""
    import uvicorn

    from ductwork.api.app import create_app
    from ductwork.settings import Settings

    engine, _seeded, tmp = web_env
    app = create_app(Settings(home=tmp / "home"), engine)

    def fails() -> None:
        raise RuntimeError("nobody foresaw this")

    app.add_api_route("/api/v1/fails", fails)
    app.add_api_route("/fails", fails)  # a page
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_a_server_error_closes_the_connection_and_says_so(served: str, seeded: Seeded) -> None:
    headers = {"Authorization": f"Bearer {seeded.tokens['viewer']}"}
    with httpx.Client(base_url=served, headers=headers) as client:
        failed = client.get("/api/v1/fails")
        assert failed.status_code == 500
        assert failed.json()["error"] == "internal_error"
        assert failed.headers.get("connection") == "close"
        for _ in range(3):  # answered, not reset: the next requests open a new connection
            assert client.get("/api/v1/me").status_code == 200


def test_a_server_errors_page_closes_the_connection_too(served: str) -> None:
    with httpx.Client(base_url=served) as browser:
        login(browser, "viewer", PASSWORD)
        page = browser.get("/fails")
        assert page.status_code == 500
        assert "text/html" in page.headers["content-type"]
        assert page.headers.get("connection") == "close"
        assert browser.get("/flows").status_code == 200
