"""``ductwork run`` (a flow, in this process) and ``ductwork build`` (Luigi's command line)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from ductwork.cli.luigi_args import BuildArgs, parse_build_args
from ductwork.cli.options import conf_option, date_option, parse_param_options
from ductwork.cli.output import console, flow_output_to_stderr, print_json
from ductwork.cli.phase_out import PhaseOut
from ductwork.cli.run_output import ProgressSink, summary_json, summary_table, tries_table
from ductwork.cli.state import CliState, load_checked_graph
from ductwork.cli.store_urls import OFFLOAD, check_store_urls
from ductwork.cli.wait_status import INTERRUPTED
from ductwork.compat.luigi_mock_sharing import mock_data_shared
from ductwork.core.class_flow import PLANNING_ERROR, all_task_classes, find_task_class
from ductwork.core.config import ParamHolder, ParamSources, config_classes, use_sources
from ductwork.core.events import EventSink
from ductwork.core.flow import Flow, flow_for_tasks
from ductwork.core.graph import FlowGraph
from ductwork.core.params import BoolParameter, finite_values, params_into_conf
from ductwork.engine import task_env
from ductwork.engine.execution import SIGINT_SEEN
from ductwork.engine.local import run_locally
from ductwork.engine.recorder import RunSummary
from ductwork.engine.supervisor import Limits
from ductwork.errors import CommandTerminated, DefinitionError, ParameterError, RunStopped
from ductwork.import_guard import guarded_import
from ductwork.loading import import_modules

if TYPE_CHECKING:
    from ductwork.settings import Settings


def _parse_date(text: str | None) -> dt.datetime | None:
    return date_option(text, "--date")


def _instance_date(flow: Flow, given: dt.datetime | None) -> dt.datetime | None:
    """The logical date to run ``flow`` for: ``given`` (None: now), except that an AWS Data
    Pipeline definition runs one of its schedule's instances, so a date between two of them is
    the instance whose period holds it (said on stderr) and one outside the schedule is refused."""
    if flow.style != "aws-datapipeline":  # datapipeline.plan.STYLE, checked before importing it (60 ms)
        return given
    from ductwork.core.schedule import as_aware
    from ductwork.declarative.datapipeline.plan import instance_logical_date

    when = as_aware(given, flow.tz) if given is not None else dt.datetime.now(dt.UTC)
    snapped = instance_logical_date(
        flow.style, flow.flow_id, flow.schedule, when, start=flow.start_date, end=flow.end_date
    )
    if given is not None and snapped != when:
        click.secho(
            f"--date {when.isoformat()} falls between two instances of the schedule of pipeline {flow.flow_id!r}: "
            f"running the one whose period holds it, logical date {snapped.isoformat()}",
            fg="yellow",
            err=True,
        )
    return snapped


def _execute(
    state: CliState,
    flow: Flow,
    *,
    params: dict[str, Any],
    logical_date: dt.datetime | None,
    workers: int,
    as_json: bool,
    progress: bool,
    run_type: str,
    only: Sequence[str] | None = None,
    record: bool = True,
    graph: FlowGraph | None = None,
    conf: dict[str, Any] | None = None,
    phase_out: PhaseOut | None = None,
    log_dir: Path | None = None,
    fork: bool = False,
    resources: Mapping[str, int] | None = None,
) -> RunSummary:
    """``phase_out``: a build that SIGUSR1 may tell to stop taking new tasks (Luigi's worker).
    ``log_dir``: where the try logs go (``usable_log_dir``); None keeps them in memory only.
    ``fork``: each try in a process of its own (``engine.forked``). ``resources``: the amounts
    of the resources, when not ``[resources]`` of the settings (a Luigi module's luigi.cfg)."""
    settings = state.settings
    total = len(flow.tasks) or 1
    recording = _recording(state, flow) if record else None
    amounts = _resource_limits(settings, resources)
    limits = Limits(pools=_pools(state, flow), resources=amounts)
    services = _task_services(settings, recording)
    telemetry = _telemetry(settings, run_type)
    with (
        ProgressSink(total, flow.flow_id, enabled=progress and not as_json and sys.stderr.isatty()) as bar,
        task_env.withheld(),  # the tasks' environment holds none of Ductwork's secrets
        _terminate_as_interrupt(),
        mock_data_shared(fork),  # a Luigi module's MockTarget data reaches the tasks' processes
    ):
        try:
            summary = run_locally(
                flow,
                params=params,
                logical_date=logical_date,
                parallelism=workers,
                log_dir=log_dir,
                # A progress bar not shown need not hear every event; nor telemetry not configured.
                sinks=[sink for sink in (bar if bar.enabled else None, telemetry) if sink is not None],
                run_type=run_type,
                conf=conf,
                limits=limits,
                only=only,
                recording=recording,
                services=services,
                graph=graph,
                allow_pickle=settings.results_pickle,
                wind_down=phase_out.reason if phase_out is not None else None,
                fork=fork,
            )
        except RunStopped as exc:  # cancelled from outside: what the cancel recorded stands
            click.secho(f"stopped: {exc}", fg="yellow", err=True)
            raise SystemExit(1) from None
        except CommandTerminated:
            click.secho("terminated (SIGTERM): the run is recorded failed", fg="yellow", err=True)
            raise SystemExit(143) from None
        except KeyboardInterrupt:  # Ctrl-C: 130, as a shell reports it, not 1 (a failed run)
            said = "the run is recorded failed" if recording is not None else "the run was not recorded"
            click.secho(f"\ninterrupted (Ctrl-C): {said}", fg="yellow", err=True)
            raise SystemExit(INTERRUPTED) from None
    for task_id, (name, amount, available) in _short_of_resources(summary, amounts).items():
        where = "ductwork.toml" if resources is None else "luigi.cfg (or ductwork.toml)"
        click.secho(
            f"task {task_id} needs {amount} of resource {name!r}, of which there is {available}: it could not run "
            f"([resources] {name} = {amount} in {where})",
            fg="yellow",
            err=True,
        )
    return summary


def _resource_limits(settings: Settings, resources: Mapping[str, int] | None) -> dict[str, int]:
    """The amounts of the resources a run's tasks share: ``resources`` when given (a Luigi
    module's luigi.cfg), else ``[resources]`` of the settings."""
    return dict(settings.resources if resources is None else resources)


def _short_of_resources(summary: RunSummary, amounts: Mapping[str, int]) -> dict[str, tuple[str, int, int]]:
    """The tasks that never started because they need more of a resource than there is (a
    resource not named has one, as in Luigi): the resource, the amount needed and the amount
    there is. The engine leaves them waiting; the run ends with them, and nothing else says why."""
    short: dict[str, tuple[str, int, int]] = {}
    for task_id, node in summary.graph.nodes.items():
        task = summary.tasks.get(task_id)
        if task is None or task.state.value not in _NOT_STARTED:
            continue
        for name, amount in node.resources.items():
            available = amounts.get(name, 1)
            if amount > available:
                short[task_id] = (name, amount, available)
                break
    return short


def _telemetry(settings: Settings, run_type: str) -> EventSink | None:
    """Traces and StatsD metrics of an in-process run when the settings ask for them (``tracing``,
    ``statsd_address``), as the scheduler sends them for its runs: ``ductwork run`` and
    ``build`` sent none. Prometheus is left out: nothing scrapes a command that ends."""
    if not (settings.tracing or settings.statsd_address):
        return None
    from ductwork.telemetry.setup import build_telemetry

    telemetry, _ = build_telemetry(settings, service=f"ductwork-{run_type}", scraped=False)
    return telemetry


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a supervisor stopping the command) stops the run as Ctrl-C does: the
    processes its tries started are stopped and the run is recorded failed. By default SIGTERM
    ends Python at once, leaving them running and the run recorded as running. A Ctrl-C is
    noted as it comes, so that a task raising ``KeyboardInterrupt`` itself only fails."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise CommandTerminated

    def ctrl_c(signum: int, frame: Any) -> None:
        SIGINT_SEEN.set()  # a KeyboardInterrupt a task raises itself is then its own failure
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    before_int = signal.getsignal(signal.SIGINT)
    if before_int is signal.default_int_handler:  # not where SIGINT is ignored (a background job)
        signal.signal(signal.SIGINT, ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
        if before_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, before_int)


def _pools(state: CliState, flow: Flow) -> dict[str, int]:
    """The pool limits an in-process run honours, as the scheduler would: the pools of the
    metadata database (``ductwork pools set``), then ``[pools]`` of ``ductwork.toml``. It says
    which limits apply to this flow's tasks, and when the database's could not be read."""
    from ductwork.engine.services_setup import existing_database

    settings = state.settings
    pools: dict[str, int] = {}
    origin: dict[str, str] = {}
    try:
        engine = existing_database(settings)
        if engine is not None:
            from ductwork.store.engine import read_transaction
            from ductwork.store.repo import pools as pool_repo

            try:
                with read_transaction(engine) as conn:
                    pools = {p.name: p.slots for p in pool_repo.list_pools(conn)}
            finally:
                engine.dispose()
            origin = dict.fromkeys(pools, "database")
    except Exception as exc:  # no usable database: the run goes on, and says what it lost
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.secho(
            f"note: pools from the database not applied ({first}); only [pools] of ductwork.toml limit this run",
            fg="yellow",
            err=True,
        )
    pools.update(settings.pools)
    origin.update(dict.fromkeys(settings.pools, "ductwork.toml"))
    used = sorted({op.pool for op in flow.tasks.values()} - {"default_pool"})
    for name in used:
        if name in pools:
            slots = pools[name]
            click.echo(f"pool {name}: {slots} slot{'s' if slots != 1 else ''} ({origin[name]})", err=True)
        else:
            click.echo(f"pool {name} is not defined: its tasks run without a limit", err=True)
    for op in flow.tasks.values():
        capacity = pools.get(op.pool)
        needed = getattr(op, "pool_slots", 1)
        if capacity is not None and needed > capacity:
            click.secho(
                f"task {op.task_id} needs {needed} slots of pool {op.pool}, which has {capacity}: it cannot run "
                f"(ductwork pools set {op.pool} {needed})",
                fg="yellow",
                err=True,
            )
    return pools


def _recording(state: CliState, flow: Flow) -> Any:
    """Record the run in the metadata database (for ``ductwork runs`` and the web UI); a
    database that cannot be reached only costs the record, not the run."""
    from ductwork.cli.engine_state import store
    from ductwork.errors import DuctworkError
    from ductwork.services.local_runs import StoreRecording

    try:
        return StoreRecording(
            store(state), flow, journal_dir=state.settings.home / "journal" / "local", settings=state.settings
        )
    except DuctworkError as exc:
        click.secho(f"note: not recording this run in the database: {exc}", fg="yellow", err=True)
        return None


def _task_services(settings: Any, recording: Any) -> Any:
    """Secrets for every run; a recorded run also lends its tries the metadata database's store,
    so that an ``ExternalTaskSensor`` sees other flows' runs and a ``TriggerFlowOperator`` queues
    one, as under the scheduler (and as ``airflow dags test`` does)."""
    from ductwork.engine.services_setup import local_task_services

    return local_task_services(settings, lend_store=recording is not None)


def usable_log_dir(logs: Path) -> Path | None:
    """``logs`` if try logs can be written there, else None after one line on stderr. A
    read-only or full log folder made the first try's log file fail inside the run loop: the
    run stopped with its tasks recorded failed though they had run (or never started), and
    their logs were gone. The run now goes on without log files, and is recorded as it went."""
    from ductwork.cli.log_dir import log_dir_fault, reason

    fault = log_dir_fault(logs)
    if fault is not None:
        click.secho(
            f"warning: the try logs cannot be written in {logs} ({reason(fault)}): "
            "this run goes on and is recorded, without its try logs",
            fg="yellow",
            err=True,
        )
        return None
    return logs


def _report(summary: RunSummary, as_json: bool, settings_logs: Path | None, *, handed_over: bool = False) -> None:
    """Print the outcome; exit 1 when the run failed, unless ``handed_over``: a build told by
    SIGUSR1 to stop taking new tasks, with none failed, leaves the rest to the next one and
    exits 0 (Luigi's ``not_run`` exit code), though its run is recorded failed."""
    if as_json:
        print_json(summary_json(summary))
    else:
        out = console()
        out.print(summary_table(summary))
        tries = tries_table(summary)
        if tries is not None:
            out.print(tries)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts().items()))
        reused = sum(1 for t in summary.tasks.values() if t.reused_from and t.state.value == "success")
        if reused:
            counts += f"; {reused} of them up to date, not run"
        why = f" ({escape(summary.reason)})" if summary.reason else ""
        where = f"logs under {escape(str(settings_logs))}" if settings_logs is not None else "no try logs kept"
        out.print(f"run {escape(summary.run_id)}: [bold]{summary.state.value}[/]{why} ({counts}); {where}")
    if summary.state.value == "failed" and not handed_over:  # the run's verdict, as `trigger --wait` exits: a task
        sys.exit(1)  # that failed under a run its rules let succeed (an all_done cleanup) is not one


@click.command()
@click.argument("flow_ref", metavar="FLOW")
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.option(
    "--conf", "conf_text", default=None, help="The run's configuration, as a JSON object (dag_run.conf, {{ conf }})."
)
@click.option("--date", "logical_date", default=None, help="Logical date of the run (ISO); default now.")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None, help="Tasks to run at once.")
@click.option("--task", "only", multiple=True, help="Run only these tasks (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--no-progress", is_flag=True, help="No live progress display.")
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Also record the run in the metadata database (ductwork runs, the web UI).",
)
@click.pass_obj
def run(
    state: CliState,
    flow_ref: str,
    param_values: tuple[str, ...],
    conf_text: str | None,
    logical_date: str | None,
    workers: int | None,
    only: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
    record: bool,
) -> None:
    """Run FLOW once, now, in this process (a flow id, or path/to/file.py:flow_id)."""
    settings = state.settings
    conf = conf_option(conf_text)  # refused before the flow is imported
    check_store_urls(settings, OFFLOAD)  # a typo failed the tries whose results it was to keep
    with flow_output_to_stderr(as_json), use_sources(ParamSources.load(config_path=state.config_path)):
        flow, graph = load_checked_graph(state, flow_ref)
        params: dict[str, Any] = parse_param_options(param_values)
        if (graph.meta if graph is not None else flow.meta()).params_in_conf:  # an Airflow DAG, as dags test -c
            params, conf = params_into_conf(f"flow {flow.flow_id!r}", flow.params, params, conf)
        else:  # `nan` is refused as by trigger: the run's params are recorded as JSON
            finite_values(f"flow {flow.flow_id!r}", flow.resolve_params(params), params)
        logs = usable_log_dir(settings.logs)
        when = _instance_date(flow, _parse_date(logical_date))
        if record:
            _past_not_waited_for(state, flow, when, only)
        summary = _execute(
            state,
            flow,
            graph=graph,
            params=params,
            logical_date=when,
            workers=workers or settings.parallelism,
            as_json=as_json,
            progress=not no_progress,
            run_type="manual",
            only=list(only) or None,
            record=record,
            conf=conf,
            log_dir=logs,
        )
    _report(summary, as_json, logs)


def _past_not_waited_for(state: CliState, flow: Flow, when: dt.datetime | None, only: tuple[str, ...]) -> None:
    """Say so when a ``depends_on_past`` task will run although the same task of the flow's
    previous run (by logical date) did not succeed: ``ductwork run`` runs every task it is
    given now and waits for no other run, where the scheduler (``trigger``, ``backfill``)
    holds the task back. An Airflow user re-running a day after a failed one otherwise got a
    success with nothing telling them the past was not looked at."""
    waiting = [
        op.task_id
        for op in flow.tasks.values()
        if getattr(op, "depends_on_past", False) and (not only or op.task_id in only)
    ]
    if not waiting:
        return
    from ductwork.core.schedule import as_aware
    from ductwork.engine.services_setup import existing_database
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    moment = as_aware(when, flow.tz) if when is not None else dt.datetime.now(dt.UTC)
    try:
        engine = existing_database(state.settings)
        if engine is None:
            return
        try:
            with read_transaction(engine) as conn:
                earlier = run_repo.list_runs(conn, flow_id=flow.flow_id, until=moment, limit=1).items
                if not earlier:
                    return
                found = {t: task_repo.get_task_instance(conn, earlier[0].pk, t) for t in waiting}
        finally:
            engine.dispose()
    except Exception:  # no readable database: the run goes on, as it would have
        return
    for task_id, previous in found.items():
        if previous is not None and previous.state.value not in ("success", "skipped"):
            click.secho(
                f"note: task {task_id} has depends_on_past, and in the previous run {earlier[0].run_id} it is "
                f"{previous.state.value}: ductwork run runs it anyway (the scheduler would hold it back: "
                f"ductwork trigger or backfill)",
                fg="yellow",
                err=True,
            )


def _bool_map(cls: type[ParamHolder]) -> dict[str, bool]:
    return {name: isinstance(p, BoolParameter) for name, p in cls.declared_params().items()}


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--module", "-m", "modules", multiple=True, help="Module (or .py file) that defines the task.")
@click.option(
    "--workers", "-w", type=click.IntRange(min=1), default=1, help="Tasks to run at once (Luigi's --workers)."
)
@click.option("--local-scheduler", is_flag=True, help="Accepted for Luigi compatibility; builds always run here.")
@click.option("--no-lock", is_flag=True, help="Run even while the same command line runs (Luigi's --no-lock).")
@click.option(
    "--take-lock",
    is_flag=True,
    help="Luigi's --take-lock: tell the builds holding the lock to stop taking new tasks, and start beside them.",
)
@click.option(
    "--lock-pid-dir",
    default=None,
    metavar="DIR",
    help="Where the lock's pid files are (Luigi's --lock-pid-dir; default: locks in the Ductwork home).",
)
@click.option(
    "--lock-size", type=click.IntRange(min=1), default=1, help="How many may run the same command line at once."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--no-progress", is_flag=True, help="No live progress display.")
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Also record the run in the metadata database (ductwork runs, the web UI).",
)
@click.argument("task_name", metavar="TASK")
@click.pass_context
def build(
    ctx: click.Context,
    modules: tuple[str, ...],
    workers: int,
    local_scheduler: bool,
    no_lock: bool,
    take_lock: bool,
    lock_pid_dir: str | None,
    lock_size: int,
    as_json: bool,
    no_progress: bool,
    record: bool,
    task_name: str,
) -> None:
    """Build TASK and everything it requires that is not complete, Luigi style.

    \b
    ductwork build --module reports DailyReport --date 2024-01-31 --workers 2
    ductwork build --module reports DailyReport --GlobalParams-log-dir ./logs

    As Luigi's luigi command, a build does not start while the same command line runs
    (unless --no-lock): it says which process holds the lock and exits with status 0. With
    --take-lock it tells that build (SIGUSR1) to stop taking new tasks, and starts beside it.
    """
    state: CliState = ctx.obj
    check_store_urls(state.settings, OFFLOAD)
    phase_out = PhaseOut()
    phase_out.install()  # before the lock lists this process: a --take-lock must not kill it
    with flow_output_to_stderr(as_json):  # stdout: the JSON document alone
        with guarded_import(state.settings.parse_timeout):
            loaded = import_modules(modules)
        cls = find_task_class(task_name, loaded)
        classes = {c.section_name(): c for c in [*all_task_classes(), *config_classes()]}
        sections = {name: _bool_map(c) for name, c in classes.items()}
        unsectioned = {
            param: name
            for name, c in classes.items()
            if not getattr(c, "use_cmdline_section", True)
            for param in c.declared_params()
        }
        args = parse_build_args(
            ctx.args, _bool_map(cls), sections, root_name=cls.get_task_family(), unsectioned=unsectioned
        )
        _check_section_values(args, classes)
        if not no_lock and not _take_build_lock(
            lock_pid_dir or str(state.settings.home / "locks"), lock_size, take_lock
        ):
            return
        sources = ParamSources.load(config_path=state.config_path, cli=args.sections)
        _warn_unread_config(sources, sections)
        with use_sources(sources), _located_in_task_code(loaded):
            if ctx.get_parameter_source("workers") is click.core.ParameterSource.DEFAULT:
                workers = _luigi_workers(classes) or workers
            resources = _luigi_resources(classes)
            root = cls(**_root_text(cls, args.root))
            flow = flow_for_tasks([root])
            logs = usable_log_dir(state.settings.logs)
            summary = _execute(
                state,
                flow,
                params={},
                logical_date=None,
                workers=workers,
                as_json=as_json,
                progress=not no_progress,
                run_type="build",
                record=record,
                phase_out=phase_out,
                log_dir=logs,
                fork=workers > 1 or _force_multiprocessing(sources),  # as Luigi's worker
                resources=resources,
            )
    if not as_json:
        short = _short_of_resources(summary, _resource_limits(state.settings, resources))
        _luigi_summary(summary, stopped=phase_out.told, short=set(short))
    if phase_out.told:
        left = sum(1 for t in summary.tasks.values() if t.state.value in _NOT_STARTED)
        click.secho(
            f"stopped taking new tasks on SIGUSR1 (another build's --take-lock): {left} task(s) not run, left to it",
            fg="yellow",
            err=True,
        )
    _report(summary, as_json, logs, handed_over=phase_out.told and not summary.any_failed)


def _force_multiprocessing(sources: ParamSources) -> bool:
    """Luigi's ``[worker] force_multiprocessing``: tasks in processes of their own even with
    one worker (from ``--worker-force-multiprocessing``, the environment or the config file)."""
    found = sources.lookup("worker", "force_multiprocessing")
    if found is None:
        return False
    try:
        return BoolParameter().parse(str(found[0]))
    except ValueError as exc:
        where = sources.where("worker", "force_multiprocessing", found[1])
        raise click.BadParameter(f"{found[0]!r}: {exc}", param_hint=where) from None


def _luigi_workers(classes: dict[str, type[ParamHolder]]) -> int | None:
    """Luigi's ``[core] workers`` (luigi.cfg, luigi.toml, ``--core-workers``) for a build of a
    Luigi module given no ``--workers``: the ``luigi`` command reads it there, and a cron line
    moved to ``ductwork build`` ran its tasks one at a time without a word. ``None`` when no
    Luigi ``core`` class is loaded (a Ductwork module: one worker, as documented)."""
    core = classes.get("core")
    if core is None or getattr(core, "use_cmdline_section", True) or "workers" not in core.declared_params():
        return None
    return max(1, int(core().workers))  # type: ignore[attr-defined]


def _luigi_resources(classes: dict[str, type[ParamHolder]]) -> dict[str, int] | None:
    """Luigi's ``[resources]`` (luigi.cfg, luigi.toml, over ``ductwork.toml``'s) for a build of a
    Luigi module: the ``luigi`` command reads them there, and a task needing more than one of a
    resource that only luigi.cfg grew was left waiting, never run. ``None`` when no Luigi
    ``core`` class is loaded (a Ductwork module: ``[resources]`` of the settings)."""
    core = classes.get("core")
    if core is None or getattr(core, "use_cmdline_section", True):
        return None
    from ductwork.compat.luigi.configuration.core import luigi_sources
    from ductwork.compat.luigi.interface import resource_amounts

    return resource_amounts(luigi_sources())


def _root_text(cls: type[ParamHolder], given: dict[str, Any]) -> dict[str, Any]:
    """The root task's values from the command line, which are text: empty text for a parameter
    that reads it as ``None`` (Luigi's ``Optional*Parameter``, ``--label ''``) is ``None``, as
    Luigi's ``parse`` gives it and as the other classes' ``--Section-name ''`` read; handed
    to the class as a value in code, an ``OptionalParameter`` kept ``''``."""
    params = cls.declared_params()
    return {
        name: None if value == "" and getattr(params.get(name), "empty_is_null", False) else value
        for name, value in given.items()
    }


def _check_section_values(args: BuildArgs, classes: dict[str, type[ParamHolder]]) -> None:
    """A value given on the command line for another class's parameter that its type refuses
    (``--log-level LOUD``, ``--scheduler-retry-delay soon``) is refused now, naming the option
    as typed, as Luigi refuses it: a config class no task reads during the build would
    otherwise take it without a word."""
    from ductwork.errors import ParameterTypeError

    for section, values in args.sections.items():
        params = classes[section].declared_params()
        for name, raw in values.items():
            try:
                params[name].convert(raw, name=name, owner=section)
            except ParameterTypeError as exc:
                typed = args.typed.get((section, name), f"{section}-{name.replace('_', '-')}")
                raise ParameterTypeError(f"{exc}; it was given as --{typed}") from None


def _warn_unread_config(sources: ParamSources, sections: dict[str, dict[str, bool]]) -> None:
    """A key of a task or config class's section of the config file that is no parameter of
    it (``[Knobs] siz = 4``) was ignored in silence, the default used instead; Luigi warns too."""
    from ductwork.errors import did_you_mean

    for section, values in sources.file.items():
        known = sections.get(section)
        if known is None or not isinstance(values, dict):
            continue  # not a class's section ([ductwork], [resources], ...)
        for key in values:
            if key not in known:
                click.secho(
                    f"warning: {key!r} in [{section}] of {sources.file_path} is no parameter of {section}, "
                    f"and is not read.{did_you_mean(key, known)}",
                    fg="yellow",
                    err=True,
                )


@contextlib.contextmanager
def _located_in_task_code(modules: Sequence[Any]) -> Iterator[None]:
    """A bad parameter or definition met while walking ``requires()`` (``R(d="2024-13-01")``
    in another task's code) named the task class but not where it was made: prefix the
    innermost line of the tasks' own files, as errors in flow files are."""
    try:
        yield
    except (ParameterError, DefinitionError) as exc:
        ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the ductwork package
        files = {getattr(m, "__file__", None) for m in modules}
        files |= {getattr(sys.modules.get(c.__module__), "__file__", None) for c in all_task_classes()}
        site = next(
            (
                f
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename in files and not f.filename.startswith(ours)
            ),
            None,
        )
        if site is None or str(exc).startswith(f"{_shown_path(site.filename)}:"):
            raise
        try:
            located = type(exc)(f"{_shown_path(site.filename)}:{site.lineno}: {exc}")
        except TypeError:  # an error class with other constructor arguments: as it is
            raise exc from None
        raise located from None


def _shown_path(filename: str) -> str:
    """``filename`` relative to the working folder when it is under it (as users typed it)."""
    try:
        return os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") else filename
    except ValueError:  # another drive
        return filename


def _take_build_lock(folder: str, size: int, take: bool = False) -> bool:
    """Whether this build may start: fewer than ``size`` other processes run this command line.
    The pid files are kept in the Ductwork home by default, not in Luigi's shared temporary
    folder, so builds of two homes (two users, two test runs) never block each other.

    ``take`` (Luigi's ``--take-lock``): send the holders SIGUSR1, so that they stop taking new
    tasks, and start beside them; as in Luigi one more process is let in, once (a third one,
    while a told build still finishes, is refused). A folder that cannot be written is warned
    about, and the build runs without the lock."""
    from ductwork.pid_lock import holders, signal_holders

    try:
        if take:
            told = signal_holders(folder, signal.SIGUSR1)
            if told:  # Luigi's words (it says them even when it told none)
                click.echo(f"Sent kill signal to Pids: {{{', '.join(map(str, sorted(told)))}}}")
            size += 1
        others = holders(folder, size)
    except OSError as exc:
        click.secho(f"warning: cannot take the build lock in {folder} ({exc}); building without it", err=True)
        return True
    if others:
        pids = ", ".join(map(str, sorted(others)))
        click.echo(f"Pid(s) {{{pids}}} already running")  # Luigi's words, on stdout as Luigi prints them
        click.secho(
            f"not started: the same command line runs as process {pids} (--no-lock runs it anyway)",
            fg="yellow",
            err=True,
        )
        return False
    return True


_NOT_STARTED = ("none", "scheduled", "queued")


def _luigi_summary(summary: RunSummary, *, stopped: bool = False, short: set[str] | None = None) -> None:
    """Luigi's counts; ``stopped``: the build was told to stop taking new tasks, so those it
    did not start were not granted the run (Luigi's words), not held up by missing dependencies;
    ``short``: tasks that never started for want of a resource (``_short_of_resources``)."""
    tasks = summary.tasks.values()
    complete = sum(1 for t in tasks if t.already_complete)
    ran = sum(1 for t in tasks if not t.already_complete and t.state.value == "success")
    unplanned = {
        task_id: str(node.extra[PLANNING_ERROR])
        for task_id, node in summary.graph.nodes.items()
        if node.extra.get(PLANNING_ERROR) is not None
    }
    failed = sum(1 for t in tasks if t.state.value == "failed" and t.task_id not in unplanned)
    blocked = sum(1 for t in tasks if t.state.value == "upstream_failed")
    skipped = sum(1 for t in tasks if t.state.value == "skipped")  # a Luigi task's disabled, and what needs it
    # An external task whose data is missing waits (up_for_reschedule); what needs it never ran.
    missing = sum(1 for t in tasks if t.state.value == "up_for_reschedule")
    held = len(short or ())
    pending = sum(1 for t in tasks if t.state.value in _NOT_STARTED) - held
    lines = [f"Scheduled {len(summary.tasks)} tasks of which:"]
    if complete:
        lines.append(f"* {complete} complete ones were encountered")
    if ran:
        lines.append(f"* {ran} ran successfully")
    if failed:
        lines.append(f"* {failed} failed")
    if unplanned:
        lines.append(f"* {len(unplanned)} failed scheduling:")
        lines.extend(f"    - {escape(error)}" for error in unplanned.values())
    if blocked:
        lines.append(f"* {blocked} were not run because of a failed dependency")
    if skipped:
        lines.append(f"* {skipped} were skipped (disabled, or needing a disabled task)")
    if missing or pending or held:
        lines.append(f"* {missing + pending + held} were left pending, among these:")
        if missing:
            lines.append(f"    * {missing} were missing external dependencies")
        if held:
            lines.append(f"    * {held} needed more of a resource than there is")
        if pending:
            why = (
                "were not run: this build stopped taking new tasks (SIGUSR1)" if stopped else "had missing dependencies"
            )
            lines.append(f"    * {pending} {why}")
    if complete == len(summary.tasks):
        lines.append("Nothing to do: everything was already complete.")
    if unplanned:  # Luigi's verdict, which a cron mail's reader looks for
        why = (
            "there were failed tasks and tasks whose scheduling failed"
            if failed
            else ("there were tasks whose scheduling failed")
        )
        lines.append(f"This progress looks :( because {why}")
    console().print("\n".join(lines), markup=False)  # Luigi's task reprs hold "[...]" of list parameters
