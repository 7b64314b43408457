"""``ductwork scheduler`` and ``ductwork standalone``: the long-running services."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import click

from ductwork.cli.options import LOG_LEVEL
from ductwork.cli.state import CliState
from ductwork.core.log_lines import LineFormatter
from ductwork.settings import MAX_SECONDS, Settings, redact_url


def _configure_logging(level: str) -> None:
    """Rich's layout on a terminal; one whole line per record anywhere else. Written to a file,
    a pipe or a container's log, Rich wrapped records at 80 columns and left the time out under
    the same second: a run id split over lines was not found by grep, and lines without a time
    could not be put beside the workers' logs."""
    handler: logging.Handler
    if sys.stdout.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(LineFormatter())  # one record per line, as ``ductwork worker`` writes
    handler.addFilter(lambda record: not record.name.startswith("ductwork.task"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    from ductwork.cli.library_logs import quiet_library_logs

    quiet_library_logs(level)


@contextlib.contextmanager
def trigger_socket(state: CliState, settings: Any, service: Any) -> Iterator[None]:
    """While the scheduler runs, ``ductwork trigger`` on this machine and home is handed to it
    over a local socket (``cli.trigger_server``, ADR 0023)."""
    from ductwork.cli.trigger_server import TriggerServer

    server = TriggerServer(settings, config_path=state.config_path, on_run_created=service.wake)
    server.start()
    try:
        yield
    finally:
        server.stop()


def _install_signals(service: Any) -> None:
    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger("ductwork.scheduler").info("received %s: stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A hang-up (the terminal or ssh session closed, `kill -HUP` meant as a reload) stops as
    # SIGTERM does: left to its default it killed the process at once, without a word, and left
    # its worker processes running on, orphaned.
    signal.signal(signal.SIGHUP, stop)


OUTAGE_BACKOFF_MAX = 5.0
"""The longest wait, in seconds, of ``ductwork scheduler`` and ``standalone`` between two tries to
reach a database that went away. At 30 s a database back up went unused for up to half a
minute: ``/api/v1/health`` said "degraded" and no task started meanwhile. One connection
attempt every 5 s is nothing to a database coming back up."""


LOCAL_WORKERS_MAX = 1024
"""The most worker processes a local pool may be given. ``scheduler -w 100000000000000000000``
(a typo, or a parallelism meant for a Celery cluster) forked worker after worker without end,
loading the machine, and did not stop on SIGTERM; each warm worker is a Python process of its
own, and more tries at once than this go to remote workers (executor celery or kubernetes)."""


def check_local_workers(settings: Settings, given_as: str) -> None:
    """Refuse, before anything starts, a local pool larger than ``LOCAL_WORKERS_MAX``;
    ``given_as`` names where the number came from (the option, or the parallelism setting)."""
    from ductwork.errors import ParameterError

    if settings.executor == "local" and settings.parallelism > LOCAL_WORKERS_MAX:
        raise ParameterError(
            f"{given_as} {settings.parallelism}: the local executor would start that many worker processes; "
            f"at most {LOCAL_WORKERS_MAX} (for more tries at once, use the celery or kubernetes executor)"
        )


def executor_shown(settings: Settings) -> str:
    """Where the scheduler's tries run, as its first line says it: its pool's size, or the
    remote executor (``standalone`` too: it runs whichever executor the settings name)."""
    if settings.executor == "local":
        return f"{settings.parallelism} workers"
    broker = f" (broker {redact_url(settings.broker_url)})" if settings.executor == "celery" else ""
    return f"executor {settings.executor}{broker}"


def say_where_logs_go(settings: Settings) -> None:
    """Remote workers with no log store keep the logs of tries on their own disks (Kubernetes
    try pods, on disks deleted with them). The local pool's log folder is tried at once: one
    that cannot be written (read-only, full, not a folder) keeps every try from starting, and
    that was said only in the log of each worker that met it, while the runs sat queued with
    "no log yet: the task has not started"."""
    if settings.executor == "local":
        from ductwork.cli.log_dir import log_dir_fault, reason

        fault = log_dir_fault(settings.logs)
        if fault is not None:
            click.secho(
                f"warning: the try logs cannot be written in {settings.logs} ({reason(fault)}): no try will "
                "start until they can (each is put back in the queue, not charged, and tried again); make the "
                "folder writable or set log_dir (DUCTWORK_LOG_DIR)",
                fg="yellow",
                err=True,
            )
    if settings.executor == "kubernetes" and not settings.remote_log_url:
        # A try pod is deleted once its try has ended: no host shares its disk afterwards.
        click.echo(
            f"note: no remote_log_url: each try pod writes its try's log to its own disk (under {settings.logs}), "
            "which is deleted with the pod when the try ends: `ductwork tasks logs` and the web UI cannot show it; "
            "set DUCTWORK_REMOTE_LOG_URL (s3://..., gs://...) on every scheduler and web server (try pods get it "
            "from the scheduler's environment or the ductwork Secret)",
            err=True,
        )
    elif settings.executor != "local" and not settings.remote_log_url:
        click.echo(
            f"note: no remote_log_url: the {settings.executor} workers write the logs of tries to their own "
            f"disks (under {settings.logs}), which `ductwork tasks logs` and the web UI read only on a host "
            "that shares that folder; set DUCTWORK_REMOTE_LOG_URL (s3://..., file:///shared/...) on every "
            "scheduler, worker and web server",
            err=True,
        )


def say_file_pools_not_applied(settings: Settings) -> None:
    """``[pools]`` of ``ductwork.toml`` limits ``ductwork run`` and ``build`` only: the
    scheduler's pools are the database's. A pool set there alone left the scheduler warning that the pool "does not
    exist" and running its tasks without a limit, while ``ductwork run`` honoured it; said once
    at the start, with the command that makes each pool the scheduler's too."""
    if not settings.pools:
        return
    given = ", ".join(f"{name} = {slots}" for name, slots in sorted(settings.pools.items()))
    commands = "; ".join(f"ductwork pools set {name} {slots}" for name, slots in sorted(settings.pools.items()))
    click.secho(
        f"note: [pools] of {settings.config_path or 'ductwork.toml'} ({given}) limits `ductwork run` and `build` "
        f"only; the scheduler uses the database's pools (the Pools page, or: {commands})",
        fg="yellow",
        err=True,
    )


REMOTE_EXECUTORS = ("celery", "kubernetes")
"""The executors whose schedulers share a server database (the local one's refusal is the
scheduler's own, ``engine.coordination``)."""


def check_remote_stores(settings: Settings) -> None:
    """Refuse a ``results_offload_url`` (and, under a remote executor, a ``remote_log_url`` or
    ``bundle_url``) that this host's fsspec cannot open (``cli.store_urls``): each try failed on
    it instead."""
    from ductwork.cli.store_urls import CHECKED, OFFLOAD, check_store_urls

    check_store_urls(settings, CHECKED if settings.executor in REMOTE_EXECUTORS else OFFLOAD)


def refuse_beside_another_executor(settings: Settings) -> None:
    """Refuse to start a Celery scheduler beside a running Kubernetes one, or the other way round.

    Several schedulers of one database share its runs by leases: each run is driven by whichever
    scheduler claims it. A Kubernetes-executor scheduler started beside Celery ones (a copied
    manifest, a stray ``DUCTWORK_EXECUTOR``) started silently and took its share of the runs:
    their tries went to pods while the Celery workers sat idle (and the other way round), by
    chance of which scheduler claimed the run. One executor per database is what can work, so
    a second one is refused as the local executor's is: one line naming the running scheduler
    (exit status 2).
    A database that cannot be read yet is left to the scheduler's own start (it waits for it)."""
    if settings.executor not in REMOTE_EXECUTORS:
        return
    from ductwork.cli.processes import other_process_runs
    from ductwork.engine.coordination import SchedulerConflictError
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import leases

    engine = create_engine(settings.db_url)
    try:
        if engine.url.get_backend_name() == "sqlite":  # one scheduler per SQLite file anyway
            return
        others: list[tuple[str, int, str]] = []
        with read_transaction(engine) as conn:
            for executor in REMOTE_EXECUTORS:
                if executor != settings.executor:
                    found = leases.live_schedulers(conn, lease=settings.scheduler_lease, executor=executor)
                    others += [(host, pid, executor) for _, host, pid in found]
    except Exception:
        return
    finally:
        engine.dispose()
    here = socket.gethostname()
    # killed -9 here (a zombie until reaped), or this very pid (a container's pid 1 after a restart)
    others = [(h, p, e) for h, p, e in others if not (h == here and not other_process_runs(p))]
    if not others:
        return
    host, pid, executor = others[0]
    raise SchedulerConflictError(
        f'another scheduler (pid {pid} on {host}) is running on this database with executor = "{executor}", and '
        f'this one uses "{settings.executor}": schedulers of one database share its runs, so each run\'s tries '
        f"would go to {executor} or {settings.executor} by chance of which scheduler claims it; use one executor "
        f"for all the schedulers of a database (a killed one counts as gone {settings.scheduler_lease:g}s after "
        "its last heartbeat)"
    )


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A wait the scheduler's timers can keep. ``--poll-interval nan`` started a scheduler that
    never looked at the database again (every run stayed queued, nothing said) and
    ``--start-wait nan`` waited forever; past a year the timers raise ``OverflowError``, as
    for the settings in seconds (``settings.MAX_SECONDS``)."""
    if value is None:
        return None
    if math.isnan(value):
        raise click.BadParameter("expected a number of seconds, got nan")
    if value > MAX_SECONDS:
        raise click.BadParameter(f"at most {MAX_SECONDS} seconds (a year), got {value:g}")
    return value


@click.command()
@click.option(
    "--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes (default: parallelism)."
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    callback=_seconds,
    help="Seconds between looks at the database (more than 0).",
)
@click.option(
    "--worker-mode",
    type=click.Choice(["warm", "fresh"]),
    default=None,
    help="warm: workers run many tries (default); fresh: a new process for every try.",
)
@click.option("--no-parse", is_flag=True, help="Do not read the flows folder (flows come from elsewhere).")
@click.option(
    "--start-wait",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    callback=_seconds,
    help="Seconds to wait at start for an unreachable database before exiting (0: wait forever).",
)
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True, help="Least severe log level shown.")
@click.pass_obj
def scheduler(
    state: CliState,
    workers: int | None,
    poll_interval: float | None,
    worker_mode: str | None,
    no_parse: bool,
    start_wait: float,
    log_level: str,
) -> None:
    """Run the scheduler until stopped: parse flows, create due runs, run tasks on the worker pool."""
    from ductwork.engine.scheduler import SchedulerOptions, SchedulerService

    _configure_logging(log_level)
    settings = state.settings
    if workers is not None:
        settings = dataclasses.replace(settings, parallelism=workers)
    check_local_workers(settings, "--workers" if workers is not None else "parallelism")
    if worker_mode is not None:
        settings = dataclasses.replace(settings, worker_mode=worker_mode)
    options = SchedulerOptions(
        parse=not no_parse,
        parse_timeout=settings.parse_timeout,
        start_wait=start_wait,
        outage_backoff_max=OUTAGE_BACKOFF_MAX,
    )
    if poll_interval is not None:
        options.poll_interval = poll_interval
    service = SchedulerService(settings, options=options)
    _install_signals(service)
    click.echo(
        f"Ductwork scheduler: flows from {settings.flows_folder}, database {settings.db_url_shown}, "
        f"{executor_shown(settings)}. Ctrl-C to stop.",
        err=True,
    )
    say_where_logs_go(settings)
    say_file_pools_not_applied(settings)
    check_remote_stores(settings)
    refuse_beside_another_executor(settings)
    from ductwork.gc_tuning import freeze_startup

    freeze_startup()
    with trigger_socket(state, settings, service):
        service.run()
    sys.exit(0)
