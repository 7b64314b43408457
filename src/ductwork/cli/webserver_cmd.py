"""``ductwork webserver`` and ``ductwork standalone``: the web UI and REST API, alone or with the
scheduler in the same process (one machine, one command)."""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from typing import Any, NoReturn

import click

from ductwork.cli.options import LOG_LEVEL
from ductwork.cli.state import CliState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
GRACEFUL_SHUTDOWN = 5
"""Seconds a stopping web server waits for open requests (followed logs) before ending them."""


def make_server(app: Any, host: str, port: int, log_level: str = "warning") -> Any:
    """A uvicorn server for ``app`` (run it with ``.run()``, stop it with ``should_exit = True``)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # A stop waits this long for open requests, then ends them: a followed log (`?follow=true`)
        # would otherwise hold the stop until its task ended, hours for a long one.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    state = getattr(app, "state", None)
    if state is not None:
        state.stopping = threading.Event()  # set when the server begins to stop: followed logs end
    return _server_class()(config)


def _server_class() -> Any:
    """uvicorn's server, but a stop signal ends the process with status 0 once the server has
    stopped cleanly, as ``ductwork scheduler`` and ``standalone`` do.

    After its graceful shutdown uvicorn raises the SIGTERM or SIGINT it caught again: the
    process then died of SIGTERM (status 143, "Error" to Kubernetes, a failed unit to a service
    manager that does not list it) or exited 130 on Ctrl-C, though nothing went wrong."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            """Followed logs end (``app.state.stopping``) as the stop begins, within the grace
            period, instead of being cancelled at its end with a traceback in the log."""
            stopping = getattr(getattr(self.config.app, "state", None), "stopping", None)
            if stopping is not None:
                stopping.set()
            await super().shutdown(sockets=sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()  # handled: the server stopped; nothing to raise again

    return Server


def bound_socket(host: str, port: int) -> Any:
    """The web UI's socket, bound before anything starts: a port another process holds is one
    line and exit status 2, where ``standalone`` logged uvicorn's bind error and went on running
    its scheduler without a web UI."""
    import socket

    from ductwork.errors import DuctworkError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DuctworkError(
            f"cannot serve the web UI on {host}:{port}: {exc.strerror or exc} (another process may have it: "
            "choose another --port)"
        ) from None
    return sock


def web_url(host: str, port: int) -> str:
    """The address the banner says to open: an IPv6 host in brackets (``http://[::1]:8080/``);
    ``http://:::8080/`` is no URL a browser or curl takes."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _options(secure_cookies: bool) -> Any:
    from ductwork.api.context import WebOptions

    return WebOptions(secure_cookies=secure_cookies)


@click.command()
@click.option(
    "--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on (0.0.0.0: every interface)."
)
@click.option(
    "--port", "-p", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port to listen on."
)
@click.option("--secure-cookies", is_flag=True, help="Send cookies over HTTPS only (behind a TLS proxy).")
@click.option("--log-level", type=LOG_LEVEL, default="warning", show_default=True, help="Least severe log level shown.")
@click.pass_obj
def webserver(state: CliState, host: str, port: int, secure_cookies: bool, log_level: str) -> None:
    """Serve the web UI and the REST API (/api/v1, docs at /api/v1/docs)."""
    from ductwork.api.app import create_app
    from ductwork.cli.engine_state import store

    sock = bound_socket(host, port)  # a port another process holds: one line, before "web UI on ..."
    engine = store(state)
    app = create_app(state.settings, engine, options=_options(secure_cookies))
    click.echo(
        f"Ductwork web UI on {web_url(host, port)} (database {state.settings.db_url_shown}). Ctrl-C to stop.", err=True
    )
    server = make_server(app, host, port, log_level)
    _stop_on_hangup(server)
    server.run(sockets=[sock])
    engine.dispose()
    _end_stopped_server(0 if server.started else 3)  # 3: it never started (uvicorn's status; errors above)


def _end_stopped_server(status: int) -> NoReturn:
    """End the process with ``status`` once uvicorn has stopped serving.

    A request still open past the grace period (a followed log of a running task) keeps its
    worker thread, which is not a daemon: a normal exit waited for it, that is for the task to
    end, so a server told to stop (SIGHUP) hung on. uvicorn has given up on such requests by
    now; the exit handlers run (logging's flush) and the process ends without waiting for them."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say on it
            pass
    os._exit(status)


def _stop_on_hangup(server: Any) -> None:
    """SIGHUP (the terminal or ssh session closed, ``kill -HUP`` meant as a reload) stops the web
    server as SIGTERM does, letting open requests finish. uvicorn handles only SIGINT and SIGTERM:
    left to its default, a hang-up killed the process at once, cutting the requests under way."""

    def hang_up(signum: int, _frame: Any) -> None:
        click.echo("received SIGHUP: stopping", err=True)
        server.should_exit = True

    signal.signal(signal.SIGHUP, hang_up)


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address the web UI listens on.")
@click.option(
    "--port", "-p", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port to listen on."
)
@click.option(
    "--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes (default: parallelism)."
)
@click.option("--secure-cookies", is_flag=True, help="Send cookies over HTTPS only (behind a TLS proxy).")
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True, help="Least severe log level shown.")
@click.pass_obj
def standalone(
    state: CliState, host: str, port: int, workers: int | None, secure_cookies: bool, log_level: str
) -> None:
    """Scheduler, workers and web UI in one process, for one machine. On the first start an
    'admin' user is created and its password printed once."""
    from ductwork.api.app import create_app
    from ductwork.cli.engine_state import store
    from ductwork.cli.scheduler_cmd import (
        OUTAGE_BACKOFF_MAX,
        _configure_logging,
        _install_signals,
        check_local_workers,
        trigger_socket,
    )
    from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
    from ductwork.services import accounts

    _configure_logging(log_level)
    settings = state.settings
    if workers is not None:
        settings = dataclasses.replace(settings, parallelism=workers)
    check_local_workers(settings, "--workers" if workers is not None else "parallelism")
    sock = bound_socket(host, port)
    engine = store(state)
    from ductwork.services.home_key import ensure_home_key

    home_key = ensure_home_key(settings, engine)  # Airflow's standalone writes a fernet_key too
    settings = home_key.settings
    password = accounts.ensure_admin(engine)
    if password is not None:
        click.echo(
            "Created the user 'admin' with the password below. It is shown this once and stored only as a hash;\n"
            "change it with `ductwork users password admin`.\n"
            f"  admin password: {password}",
            err=False,
        )
    if home_key.said:
        click.echo(home_key.said, err=False)
    options = SchedulerOptions(  # prometheus: /metrics
        parse_timeout=settings.parse_timeout, prometheus=True, outage_backoff_max=OUTAGE_BACKOFF_MAX
    )
    service = SchedulerService(settings, options=options)
    app = create_app(settings, engine, options=_options(secure_cookies))
    app.state.scheduler = service  # /metrics shows the scheduler's metrics too
    server = make_server(app, host, port)
    web = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ductwork-web", daemon=True)
    web.start()

    stop_scheduler = service.stop

    def stop_all() -> None:
        server.should_exit = True
        stop_scheduler()

    service.stop = stop_all  # type: ignore[method-assign]
    _install_signals(service)
    from ductwork.cli.scheduler_cmd import (
        check_remote_stores,
        executor_shown,
        refuse_beside_another_executor,
        say_file_pools_not_applied,
        say_where_logs_go,
    )

    click.echo(
        f"Ductwork standalone: web UI on {web_url(host, port)}, flows from {settings.flows_folder}, "
        f"database {settings.db_url_shown}, {executor_shown(settings)}. Ctrl-C to stop.",
        err=True,
    )
    say_where_logs_go(settings)
    say_file_pools_not_applied(settings)
    check_remote_stores(settings)
    refuse_beside_another_executor(settings)
    from ductwork.gc_tuning import freeze_startup

    freeze_startup()  # as `ductwork scheduler` does: a long-lived process
    try:
        with trigger_socket(state, settings, service):
            service.run()
    finally:
        server.should_exit = True
        web.join(timeout=10)
        engine.dispose()
        logging.getLogger("ductwork.scheduler").info("stopped")
    sys.exit(0)
