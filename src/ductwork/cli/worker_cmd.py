"""``ductwork worker`` (a Celery worker that runs tries) and ``ductwork workers list``."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys

import click
from rich.markup import escape

from ductwork.cli.engine_state import store
from ductwork.cli.markup import Markup
from ductwork.cli.options import LOG_LEVEL
from ductwork.cli.output import console, print_json
from ductwork.cli.processes import other_process_runs
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable
from ductwork.errors import DuctworkError

_HOST_FORMAT = re.compile(r"%(\w)")  # celery.utils.text.RE_FORMAT


def _node_name(ctx: click.Context, param: click.Parameter, name: str | None) -> str | None:
    """``--name`` as Celery reads ``-n``: ``%h`` (the host name), ``%n`` (its first part) and
    ``%d`` (its domain) expanded. ``--name 'gpu@%h'``, as Airflow's and Celery's guides write it
    for a worker started alike on every host, was kept as written: every host's worker had the one
    name ``gpu@%h``, and the second host's was refused as a namesake of the first. A name with no
    name or no host part (``gpu@``) names no worker either: refused here, where it is typed."""
    if name is None:
        return None
    host = socket.gethostname()
    first, _, domain = host.partition(".")
    keys = {"h": host, "n": first, "d": domain, "i": "0", "I": ""}  # %i, %I: Celery's pool index (main: 0)
    unknown = sorted({m[1] for m in _HOST_FORMAT.finditer(name) if m[1] not in keys})
    if unknown:
        raise click.BadParameter(
            f"{name!r} holds {', '.join('%' + k for k in unknown)}, which Celery does not know: use %h (the host "
            "name), %n (its first part) or %d (its domain)",
            param_hint="--name",
        )
    expanded = _HOST_FORMAT.sub(lambda m: keys[m[1]], name)
    head, at, tail = expanded.partition("@")
    if not head.strip() or (at and not tail.strip()):
        raise click.BadParameter(f"{name!r} is not NAME or NAME@HOST", param_hint="--name")
    return expanded


@click.command()
@click.option("--queues", "-Q", default="default", show_default=True, help="Comma-separated queues to take tries from.")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1024),  # as the scheduler's local pool (LOCAL_WORKERS_MAX): one process each
    default=None,
    help="Tries at once (default: CPU count).",
)
@click.option(
    "--name",
    "-n",
    default=None,
    callback=_node_name,
    help="Worker name (NAME@host; Celery's %h, %n, %d stand for the host name, its first part, its domain; "
    "default: ductwork-PID@host).",
)
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True, help="Least severe log level shown.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve this worker group's Prometheus metrics at http://0.0.0.0:PORT/metrics "
    "(default: the metrics_port setting; 0: none).",
)
@click.option(
    "--run-try",
    is_flag=True,
    hidden=True,
    help="Run the one try in $DUCTWORK_TRY_REQUEST and exit (a Kubernetes try pod).",
)
@click.pass_obj
def worker(
    state: CliState,
    queues: str,
    concurrency: int | None,
    name: str | None,
    log_level: str,
    metrics_port: int | None,
    run_try: bool,
) -> None:
    """Run a Celery worker that runs tries of flows scheduled with executor = "celery".

    It needs the database (database_url) and the broker (broker_url); code comes from the
    bundles the scheduler publishes (or flows_git_url), logs go to remote_log_url.
    """
    from ductwork.core.log_lines import LineFormatter
    from ductwork.engine.remote.celery_app import start_worker

    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter())
    logging.basicConfig(level=log_level.upper(), handlers=[handler])
    from ductwork.cli.library_logs import quiet_library_logs

    quiet_library_logs(log_level)
    if run_try:
        from ductwork.engine.remote.pod import run_one_try

        raise SystemExit(run_one_try(state.settings, name))
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("give at least one queue", param_hint="--queues")
    from ductwork.cli.store_urls import check_store_urls

    check_store_urls(state.settings)  # before Celery: a try claimed could not open its log
    restarted = os.environ.pop(_RESTARTED, "") == "1"
    if not restarted:  # started again in place: the row is this very process's
        _refuse_a_namesake(state, name)
    from ductwork.gc_tuning import freeze_startup

    freeze_startup()  # before Celery forks its pool: the children share what was frozen
    restart = start_worker(
        state.settings,
        patient=restarted,
        queues=names,
        concurrency=concurrency,
        name=name,
        loglevel=log_level.upper(),
        metrics_port=state.settings.metrics_port if metrics_port is None else metrics_port,
    )
    if restart:
        _start_again(state)


_RESTARTED = "DUCTWORK_WORKER_RESTARTED"


def _refuse_a_namesake(state: CliState, name: str | None) -> None:
    """Refuse to start a second live worker under the name of one that heartbeats: both wrote
    one row of ``workers`` (``workers list`` showed one of them, and when one died its tries
    were not seen lost with it). A worker of that name that is gone (a restart after kill -9,
    a container started again: same host, its pid dead or this one) is replaced as before.
    Default names carry the pid, so only ``--name`` can collide. When the database cannot be
    read yet, ``start_worker`` reports it."""
    if not name:
        return
    hostname = socket.gethostname()
    node_name = name if "@" in name else f"{name}@{hostname}"
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import remote as remote_repo
    from ductwork.store.types import utcnow

    engine = create_engine(state.settings.db_url)
    try:
        with read_transaction(engine) as conn:
            rows = remote_repo.list_workers(conn, include_stopped=False)
    except Exception:  # unreachable, or no schema yet: start_worker says which, in one line
        return
    finally:
        engine.dispose()
    for row in rows:
        if row.name != node_name or row.status(state.settings.worker_lost_after) != remote_repo.RUNNING:
            continue
        if row.hostname == hostname and not other_process_runs(row.pid):  # killed -9, or this very pid
            continue
        age = (utcnow() - row.heartbeat_at).total_seconds()
        raise DuctworkError(
            f"a worker named {node_name!r} is running on {row.hostname} (pid {row.pid}, last heartbeat "
            f"{max(age, 0):.0f}s ago): give this one another --name, or stop that one first"
        )


def _start_again(state: CliState) -> None:
    """Celery stopped on a broker fault it does not recover from: wait until the broker answers,
    then replace this process with a fresh worker (same pid, same name, same options), as a
    service manager's restart would, but without leaving the host without a worker meanwhile."""
    from ductwork.engine.remote.celery_app import wait_for_broker

    log = logging.getLogger("ductwork.worker")
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    log.warning("the Celery worker stopped on a broker fault; starting it again once the broker answers")
    if not wait_for_broker(state.settings.broker_url, lambda: bool(stopping)):
        raise SystemExit(0)
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[_RESTARTED] = "1"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


@click.group()
def workers() -> None:
    """Remote workers (Celery, Kubernetes): who runs what, and who is lost."""


@workers.command("list")
@click.option("--all", "include_stopped", is_flag=True, help="Include workers that stopped.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_workers(state: CliState, include_stopped: bool, as_json: bool) -> None:
    """Remote workers with their queues, slots in use, current tries and last heartbeat, and
    the queues that tries wait on with no worker serving them."""
    from ductwork.services.workers import list_workers as read

    found = read(store(state), state.settings, include_stopped=include_stopped)
    if as_json:
        print_json(
            {
                "workers": [
                    {
                        "name": w.name,
                        "hostname": w.hostname,
                        "kind": w.kind,
                        "queues": list(w.queues),
                        "concurrency": w.concurrency,
                        "slots_used": w.slots_used,
                        "current": list(w.current),
                        "heartbeat_at": w.heartbeat_at.isoformat(),
                        "state": w.state,
                    }
                    for w in found.workers
                ],
                "unserved_queues": found.unserved,
            }
        )
        return
    out = console()
    if not found.workers:
        out.print("No workers." + ("" if include_stopped else " (--all shows stopped ones)"))
    else:
        table = DataTable("worker", "host", "queues", "slots", "current tries", "last heartbeat", "state")
        for w in found.workers:
            colour = {"running": "green", "lost": "red"}.get(w.state, "dim")
            table.add_row(
                w.name,
                w.hostname,
                ",".join(w.queues),
                f"{w.slots_used}/{w.concurrency}",
                "\n".join(w.current) or "-",
                f"{w.heartbeat_age:.0f}s ago",
                Markup(f"[{colour}]{escape(w.state)}[/{colour}]"),
            )
        out.print(table)
    for queue, count in sorted(found.unserved.items()):
        out.print(Markup(f"[yellow]{escape(unserved_line(queue, count))}[/yellow]"))


def unserved_line(queue: str, count: int) -> str:
    """The line ``workers list`` prints under its table for a queue whose tries no live worker
    takes. It said "1 queued tries", and left out what the web UI's workers page and ``tasks
    state`` say beside it: the command that starts a worker for that queue."""
    tries = "try" if count == 1 else "tries"
    return (
        f"queue {queue!r}: {count} queued {tries}, and no live worker listens on it: start one with "
        f"`ductwork worker --queues {queue}`"
    )
