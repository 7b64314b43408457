"""The local socket on which a running scheduler takes ``ductwork trigger`` (ADR 0023).

Shared by both ends: the scheduler's server (``cli.trigger_server``) and the command's client
(``cli.fast_trigger``), which runs before anything else of the CLI is imported. So this module
imports only ``os``, ``sys`` and ``zlib``, and the client imports ``socket`` and ``json`` itself.

The socket is an abstract Unix socket (Linux): it has a name, not a file, so a scheduler
killed with -9 leaves nothing behind, and a long ``DUCTWORK_HOME`` is no problem. The name is
derived from the home's real path; whoever connects must be the scheduler's own user (the
server checks the peer's user id), and must name the same home, flows folder and database
(the server checks them) before anything is done on its behalf.
"""

from __future__ import annotations

import os
import sys
import zlib

TYPE_CHECKING = False  # the command's client imports this module first: no ``typing``
if TYPE_CHECKING:
    from typing import Any

PROTOCOL = 2
"""Raised when a message's meaning changes: a client and a scheduler of different versions
then decline each other, and the command does its work itself."""

MAX_MESSAGE = 1 << 20
"""A message is one line of JSON; a longer one is refused (a ``--conf`` of a megabyte)."""


class Lost(OSError):
    """The other end closed the connection before a whole message, or sent one too long."""


class Lines:
    """The messages of one connection, one JSON value per line, as they come."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> Any:
        """The next message; ``Lost`` (an ``OSError``) or ``ValueError`` (not JSON) otherwise."""
        import json

        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Lost("the connection ended before a whole message")
            self.buffer += chunk
            if len(self.buffer) > MAX_MESSAGE:
                raise Lost(f"a message longer than {MAX_MESSAGE} bytes")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


def available() -> bool:
    """Abstract sockets are Linux's; elsewhere ``ductwork trigger`` always writes the run itself."""
    return sys.platform.startswith("linux")


def real_home(home: str) -> str:
    """``home`` as both ends name it: absolute, ``~`` expanded, symbolic links resolved."""
    return os.path.realpath(os.path.expanduser(home))


def address(home: str) -> str:
    """The abstract socket name of the scheduler running on ``home`` (a ``real_home``)."""
    return f"\0ductwork-scheduler-{PROTOCOL}-{zlib.crc32(home.encode()):08x}-{zlib.adler32(home.encode()):08x}"


def normal_database_url(url: str, home: str, cwd: str) -> str:
    """The database URL as both ends compare it: the default (empty) is the SQLite file in
    ``home``, and a relative SQLite path is taken from ``cwd`` (as SQLAlchemy would)."""
    if not url:
        return f"sqlite:///{os.path.join(home, 'ductwork.db')}"
    scheme, sep, rest = url.partition(":///")
    if sep and scheme.startswith("sqlite") and rest and not rest.startswith(("/", ":memory:")):
        path, q, query = rest.partition("?")
        return f"{scheme}:///{os.path.realpath(os.path.join(cwd, path))}{q}{query}"
    return url


def ping(home: str, flows_folder: str, database_url: str, cwd: str, *, timeout: float = 1.0) -> tuple[int, bool] | None:
    """The pid of the scheduler listening for ``home`` (a ``real_home``) and whether it would
    take ``ductwork trigger`` for this flows folder and database; None: none listens."""
    if not available():
        return None
    import json
    import socket

    message: dict[str, Any] = {"protocol": PROTOCOL, "command": "ping", "home": home, "flows_folder": flows_folder}
    message.update(database_url=database_url, cwd=cwd)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address(home))
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply = Lines(sock).next()
        except (OSError, ValueError):
            return None
    if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
        return None
    return reply["pid"], bool(reply.get("same"))
