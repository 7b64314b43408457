"""Login throttling (issue 9, item 10): a running ``ductwork webserver`` refuses further guesses
for a user name, or from an address, after too many failures, computes a bounded number of
password hashes at once (its memory stays flat under parallel logins), and logs failures."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

MAX_FAILURES = 3
PER_ADDRESS = 6
WINDOW = 8
CONCURRENCY = 2
PASSWORD = "the-right-password-1"
ARGON2_MIB = 64


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_mib(self, field: str) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
        assert found is not None
        return int(found.group(1)) / 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("throttle")
    env = {
        **os.environ,
        "DUCTWORK_HOME": str(tmp / "home"),
        "DUCTWORK_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "DUCTWORK_LOGIN_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS),
        "DUCTWORK_LOGIN_FAILURE_WINDOW": str(WINDOW),
        "DUCTWORK_LOGIN_CONCURRENCY": str(CONCURRENCY),
    }
    made = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "users", "create", "alice", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    port = _free_port()
    log = tmp / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "webserver", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _login(server: Server, username: str, password: str, source: str) -> int:
    """One login through the form, from the loopback address ``source`` (127.0.0.x: each test
    its own client address)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, timeout=120, transport=transport) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/flows"},
        )
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return response.status_code


def _parallel(server: Server, attempts: list[tuple[str, str]], source: str) -> Counter[int]:
    with ThreadPoolExecutor(len(attempts)) as pool:
        return Counter(pool.map(lambda a: _login(server, *a, source), attempts))


def test_parallel_logins_compute_a_bounded_number_of_hashes(server: Server) -> None:
    before = server.rss_mib("VmRSS")
    statuses = _parallel(server, [(f"nobody{i}", "wrong-password") for i in range(12)], "127.0.0.2")
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] >= PER_ADDRESS  # they were checked (hashed), only not all at once
    grew = server.rss_mib("VmHWM") - before
    assert grew < ARGON2_MIB * (CONCURRENCY + 1.5), f"memory grew by {grew:.0f} MiB for 12 parallel logins"


def test_guessing_one_users_password_is_throttled(server: Server) -> None:
    statuses = _parallel(server, [("alice", f"guess-{i}") for i in range(12)], "127.0.0.3")
    assert statuses[401] + statuses[429] == 12, statuses
    assert statuses[401] <= MAX_FAILURES + CONCURRENCY - 1, f"{statuses[401]} guesses were checked"
    assert _login(server, "alice", PASSWORD, "127.0.0.5") == 429  # the name is throttled, from anywhere
    time.sleep(WINDOW)
    assert _login(server, "alice", PASSWORD, "127.0.0.5") == 303  # logged in: off to /flows
    text = server.log.read_text()
    assert "login failed for 'alice' from 127.0.0.3" in text
    assert "login refused for 'alice'" in text


def test_one_address_guessing_many_names_is_throttled(server: Server) -> None:
    statuses = _parallel(server, [(f"user{i}", "wrong-password") for i in range(PER_ADDRESS + 6)], "127.0.0.4")
    assert statuses[401] + statuses[429] == PER_ADDRESS + 6, statuses
    assert PER_ADDRESS <= statuses[401] <= PER_ADDRESS + CONCURRENCY - 1, statuses
    assert _login(server, "alice", PASSWORD, "127.0.0.4") == 429  # names never tried: refused by address
    assert _login(server, "alice", PASSWORD, "127.0.0.6") == 303


@given(st.lists(st.tuples(st.floats(0, 30), st.booleans()), max_size=60))
def test_never_more_than_the_limit_of_failures_is_checked_within_a_window(events: list[tuple[float, bool]]) -> None:
    from ductwork.web.throttle import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(per_account=3, per_address=1000, window=10.0, clock=lambda: now[0])
    checked: list[float] = []
    for step, right in events:
        now[0] += step
        if throttle.retry_after("alice", "here"):
            continue
        if right:
            throttle.succeeded("alice")
            checked.clear()
        else:
            throttle.failed("alice", "here")
            checked.append(now[0])
            assert sum(1 for t in checked if t > now[0] - 10.0) <= 3
