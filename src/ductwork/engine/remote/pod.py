"""One try in a process of its own (a Kubernetes try pod): ``ductwork worker --run-try``.

The try request comes in ``DUCTWORK_TRY_REQUEST``. The try is claimed, run and recorded exactly
as a Celery worker does it (``runner.RemoteHost``); a thread refreshes the try's heartbeat while
it runs, so the scheduler can tell a live pod from a lost one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading

from ductwork.engine.remote.runner import RemoteHost
from ductwork.errors import DuctworkError
from ductwork.settings import Settings
from ductwork.store.engine import transaction
from ductwork.store.repo import remote as remote_repo

log = logging.getLogger("ductwork.worker")


def run_one_try(settings: Settings, name: str | None = None) -> int:
    """Run the try in ``DUCTWORK_TRY_REQUEST``; the exit status (0 once its end is recorded)."""
    text = os.environ.get("DUCTWORK_TRY_REQUEST")
    if not text:
        raise DuctworkError("--run-try needs the try request in DUCTWORK_TRY_REQUEST")
    payload = json.loads(text)
    host = RemoteHost(settings, name or f"pod-{socket.gethostname()}")
    _, task_id, number = payload["key"]
    key = (int(payload["run_pk"]), task_id, int(number))
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.worker_heartbeat):
            try:
                with transaction(host.engine) as conn:
                    remote_repo.heartbeat_tries(conn, [key], dt.datetime.now(dt.UTC))
            except Exception as exc:  # the database is away: the end waits for it anyway
                log.warning("heartbeat failed: %s", exc)

    thread = threading.Thread(target=beat, name="ductwork-try-heartbeat", daemon=True)
    thread.start()
    try:
        host.run(payload)
    finally:
        stop.set()
        host.close()
    return 0
