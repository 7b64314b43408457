"""``ductwork triggerer``: the listeners of flows' message triggers, in a process of their own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ductwork.cli.options import LOG_LEVEL
from ductwork.cli.state import CliState

if TYPE_CHECKING:
    from sqlalchemy import Engine

HEARTBEAT_EVERY = 5.0
"""Seconds between the triggerer's heartbeats in the database, well within the 30 s in which
``db upgrade`` and ``db reset`` take a job for running (``db_cmd.LIVE_JOB_WINDOW``)."""

log = logging.getLogger("ductwork.triggerer")


@click.command()
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True, help="Least severe log level shown.")
@click.pass_obj
def triggerer(state: CliState, log_level: str) -> None:
    """Listen for the messages that start runs (RabbitMQ, Redis Streams, NATS JetStream, MQTT)
    until stopped. Set triggerer = "separate" so that the scheduler does not listen as well."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.scheduler_cmd import _configure_logging, _install_signals
    from ductwork.engine.triggerer import TriggererService

    _configure_logging(log_level)
    from ductwork.engine.services_setup import build_secrets

    engine = store(state)
    # Every flow's triggers: a separate triggerer may run where the flows folder is not (a
    # container of its own), so it cannot tell which flows a scheduler's folders hold.
    service = TriggererService(engine, secrets=build_secrets(state.settings, engine=engine))
    _install_signals(service)
    click.echo(f"Ductwork triggerer on {state.settings.db_url}. Ctrl-C to stop.", err=True)
    if state.settings.triggerer != "separate":
        click.secho(
            'warning: triggerer = "scheduler" (the default) here: a scheduler started with it listens for '
            "message triggers too, so each message is read by both (an MQTT trigger's two connections of one "
            'client id disconnect each other). Set triggerer = "separate" (DUCTWORK_TRIGGERER=separate) where '
            "the schedulers run, and here",
            fg="yellow",
            err=True,
        )
    job_id, beat = _heartbeat(engine)
    try:
        service.run(until=beat)
    finally:
        _end(engine, job_id)


def _heartbeat(engine: Engine) -> tuple[int | None, Callable[[], bool]]:
    """Record the triggerer as a running job and return it with a callable that refreshes its
    heartbeat (never asking to stop). Without the record, ``db reset`` and ``db upgrade`` took a
    database with a triggerer on it for one nothing runs on: the README says they name it (reset
    refuses), and they dropped or changed the tables under it. A database that cannot be written
    at start does not stop the listeners: the job is then not recorded."""
    import os
    import socket

    from ductwork.store.engine import transaction
    from ductwork.store.repo import jobs as job_repo

    try:
        with transaction(engine) as conn:
            job_id = job_repo.start_job(conn, "triggerer", hostname=socket.gethostname(), pid=os.getpid())
    except Exception as exc:  # the database is away: listeners retry on their own
        log.warning("triggerer: could not record itself in the database (%s); listening all the same", exc)
        return None, lambda: False
    last = time.monotonic()

    def beat() -> bool:
        nonlocal last
        if time.monotonic() - last >= HEARTBEAT_EVERY:
            last = time.monotonic()
            try:
                with transaction(engine) as conn:
                    job_repo.heartbeat_job(conn, job_id)
            except Exception as exc:  # said by the listeners' own loop when the database is away
                log.debug("triggerer: heartbeat not written: %s", exc)
        return False

    return job_id, beat


def _end(engine: Engine, job_id: int | None) -> None:
    if job_id is None:
        return
    from ductwork.store.engine import transaction
    from ductwork.store.repo import jobs as job_repo

    try:
        with transaction(engine) as conn:
            job_repo.end_job(conn, job_id)
    except Exception as exc:  # its heartbeat lapses on its own
        log.debug("triggerer: end not recorded: %s", exc)
