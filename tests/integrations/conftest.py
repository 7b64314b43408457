"""Fixtures for integration tests: a private database per test on the real servers, and a local
HTTP server that records what it receives."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import require_service

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"


def _private_database(admin_url: str, name: str, quote: str) -> Iterator[str]:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin_url.startswith("postgresql") else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    yield from _private_database(POSTGRES_ADMIN, f"ductwork_it_{uuid.uuid4().hex[:10]}", '"')


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    require_service("MariaDB", "127.0.0.1", 3306)
    yield from _private_database(MARIADB_ADMIN, f"ductwork_it_{uuid.uuid4().hex[:10]}", "`")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


# --- a local HTTP server ---------------------------------------------------------------------------
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class HttpServer:
    """A threaded stdlib server on 127.0.0.1; ``route(path, handler)`` decides replies."""

    url: str
    requests: list[Received] = field(default_factory=list)
    routes: dict[str, Callable[[Received], Reply]] = field(default_factory=dict)

    def route(self, path: str, handler: Callable[[Received], Reply]) -> None:
        self.routes[path] = handler

    def reply(self, received: Received) -> Reply:
        handler = self.routes.get(received.path.split("?", 1)[0])
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, b"no such route"
        return handler(received)


def json_reply(status: int, value: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server_ref: list[HttpServer] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            server = server_ref[0]
            server.requests.append(received)
            status, headers, payload = server.reply(received)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ref.append(HttpServer(url=f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_ref[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
