"""`ductwork webserver` stops within seconds of SIGTERM though a client follows the log of a
running task (`.../logs?follow=true`): the stop waited for that stream to end, that is for the
task to finish (55 s for a minute-long task, hours for a long one; a service manager's restart
hung meanwhile)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.web.seed import seed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_ends_a_webserver_that_streams_a_followed_log(tmp_path: Path, stop: signal.Signals) -> None:
    """And ends it with status 0, as the scheduler: the stream's thread, past the grace period,
    kept a hung-up server alive, and SIGTERM ended it only by killing it (status -15)."""
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    seeded = seed(engine, tmp_path / "logs")
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "DUCTWORK_DATABASE_URL": url, "DUCTWORK_HOME": str(tmp_path / "home")}
    log = (tmp_path / "web.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "webserver", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {seeded.tokens['viewer']}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "web.log").read_text()
            time.sleep(0.2)
        first = threading.Event()

        def follow() -> None:
            path = f"/flows/demo/runs/{quote(seeded.running_run, safe='')}/tasks/extract.users/logs?follow=true"
            try:
                with httpx.stream("GET", base + path, headers=headers, timeout=120) as response:
                    for _ in response.iter_bytes():
                        first.set()
            except httpx.HTTPError:
                pass

        threading.Thread(target=follow, daemon=True).start()
        assert first.wait(30), "the followed log sent nothing"
        server.send_signal(stop)
        started = time.monotonic()
        code = server.wait(timeout=60)
        assert time.monotonic() - started < 20, "the stop waited for the followed log"
        assert code == 0, (tmp_path / "web.log").read_text()
        said = (tmp_path / "web.log").read_text()
        # A normal stop: the followed stream ends, without "Exception in ASGI application" and a
        # CancelledError traceback in the server's log, which read as a crash.
        assert "Exception in ASGI application" not in said and "Traceback" not in said, said
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
