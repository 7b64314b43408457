"""Operations on runs shared by the CLI and the REST API: trigger, backfill, cancel, inspect.

Each function takes the store ``Engine`` and does its own short transaction; nothing here
imports user code (ADR 0001): parameters are validated from the flow's recorded description,
and a run whose graph depends on the run (class-task flows) is created with its graph
pending, for the scheduler's parsing process to build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from ductwork.core.context import RunInfo
from ductwork.core.graph import FlowGraph, FlowMeta
from ductwork.core.params import finite_values, from_description, params_into_conf, resolve_values
from ductwork.core.schedule import DataInterval, as_aware, get_timezone
from ductwork.core.states import RunState, TaskState
from ductwork.engine.code_info import as_on_disk
from ductwork.engine.scheduling import backfill_intervals, schedule_of
from ductwork.errors import InvalidTransitionError, NotFoundError, ParameterError, did_you_mean
from ductwork.services.names import refuse_control_characters, refuse_unseen_characters
from ductwork.store.engine import read_transaction, retry_deadlocks, transaction
from ductwork.store.errors import RunExistsError
from ductwork.store.records import RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import pipelines as pipeline_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo

CLASS_TASKS = "class_tasks"
BACKFILL_MAX_RUNS = 1000
"""The default of the ``backfill_max_runs`` setting (callers pass the setting's value)."""


def make_run_id(run_type: str, logical_date: dt.datetime) -> str:
    return f"{run_type}__{logical_date.astimezone(dt.UTC).isoformat()}"


def flow_graph(engine: Engine, flow_id: str) -> FlowGraph:
    """The flow's current graph as last parsed; a clear error for unknown flows."""
    with read_transaction(engine) as conn:
        graph = flow_repo.get_flow_graph(conn, flow_id)
        if graph is None:
            raise unknown_flow(conn, flow_id)
    return graph


def defined_flow_graph(engine: Engine, flow_id: str) -> FlowGraph:
    """``flow_graph`` for a run about to be started from outside (the REST API, the webhook,
    the web form): a flow that no file defines now (its file was removed, no longer defines it,
    or fails to import) is refused. Its run was queued (202 "started") and then failed at once,
    each task with "could not load task: flow file ... does not exist", where ``ductwork
    trigger`` refused it with the reason."""
    with read_transaction(engine) as conn:
        record = flow_repo.get_flow(conn, flow_id)
        graph = flow_repo.get_flow_graph(conn, flow_id)
        if graph is None:
            raise unknown_flow(conn, flow_id)
    if record is not None and not record.is_active:
        raise NotFoundError(
            f"flow {flow_id!r} is not defined by any file now (it was in {record.fileloc or 'no file'}: the file "
            "was removed, no longer defines it, or fails to import; `ductwork flows list` shows import errors): "
            "nothing can run it until a file of the flows folder defines it again"
        )
    return graph


def recorded_flow(conn: Connection, flow_id: str) -> bool:
    """Whether the database knows ``flow_id``: a parsed flow, or a stored pipeline the
    scheduler has not parsed yet (its runs are about to come)."""
    return flow_repo.get_flow(conn, flow_id) is not None or pipeline_repo.latest_version(conn, flow_id) is not None


def unknown_flow(conn: Connection, flow_id: str) -> NotFoundError:
    """The error for a flow id the database does not know, with the closest known ones."""
    known = [f.flow_id for f in flow_repo.list_flows(conn)]
    return NotFoundError(
        f"no flow {flow_id!r} in the database.{did_you_mean(flow_id, known)} "
        f"Known flows: {', '.join(sorted(known)) or '(none: is the scheduler parsing the flows folder?)'}"
    )


def validate_params(meta: FlowMeta, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed run parameters from the flow's recorded parameter descriptions."""
    declared = {name: from_description(info) for name, info in meta.params.items()}
    return _finite(meta, resolve_values(f"flow {meta.flow_id!r}", declared, given), given)


def _finite(meta: FlowMeta, values: dict[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    return finite_values(f"flow {meta.flow_id!r}", values, given)


def params_and_conf(
    meta: FlowMeta, params: Mapping[str, Any] | None, conf: Mapping[str, Any] | None
) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """A triggered run's typed params and its conf, whichever door it came through (the CLI,
    the REST API, the trigger form, ``TriggerFlowOperator``): for an Airflow DAG with params
    (``FlowMeta.params_in_conf``) the params go into the conf and the conf is checked against
    them (``core.params.params_into_conf``); other flows keep their conf as given."""
    if not meta.params_in_conf:
        return validate_params(meta, params), conf
    declared = {name: from_description(info) for name, info in meta.params.items()}
    values, conf = params_into_conf(f"flow {meta.flow_id!r}", declared, params, conf)
    return _finite(meta, values, params), conf


def run_info(record: RunRecord, meta: FlowMeta) -> RunInfo:
    return RunInfo(
        flow_id=record.flow_id,
        run_id=record.run_id,
        logical_date=record.logical_date,
        data_interval_start=record.data_interval_start,
        data_interval_end=record.data_interval_end,
        params=dict(record.params),
        conf=dict(record.conf),
        run_type=record.run_type,
        timezone=get_timezone(meta.timezone),
        triggered_by=record.triggered_by,
    )


def create_run(
    engine: Engine,
    graph: FlowGraph,
    *,
    run_type: str,
    logical_date: dt.datetime,
    interval: DataInterval,
    params: Mapping[str, Any],
    conf: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    note: str | None = None,
    pending: bool | None = None,
    conn: Connection | None = None,
    code: Mapping[str, Any] | None = None,
    owner: int | None = None,
) -> RunRecord:
    """Record a new queued run; class-task flows get their graph built by the scheduler
    (unless ``pending=False``: the caller built the run's graph already). In ``conn``'s
    transaction when given (the caller records something else with it, atomically). ``code``:
    the code it runs, when not the flow's as last recorded."""
    pending = graph.meta.style == CLASS_TASKS if pending is None else pending
    if conn is None:
        with transaction(engine) as own:
            return create_run(
                engine, graph, run_type=run_type, logical_date=logical_date, interval=interval, params=params,
                conf=conf, run_id=run_id, note=note, pending=pending, conn=own, code=code, owner=owner,
            )  # fmt: skip
    _recordable(graph.meta.flow_id, params, conf)
    return run_repo.create_run(
        conn,
        FlowGraph(graph.meta, {}, graph.groups) if pending else graph,
        run_id=run_id or make_run_id(run_type, logical_date),
        logical_date=logical_date,
        data_interval=(interval.start, interval.end),
        run_type=run_type,
        params=params,
        conf=conf,
        states={t: TaskState.SUCCESS for t, n in graph.nodes.items() if n.extra.get("already_complete")},
        graph_pending=pending,
        note=note,
        code=code,
        owner=owner,
    )


def _recordable(flow_id: str, params: Mapping[str, Any], conf: Mapping[str, Any] | None) -> None:
    """Refuse, naming the parameter, a value a run cannot record: a flow whose parameter's
    default is a ``Path`` (or any object the store's JSON has no form for) ended ``ductwork
    run`` and ``trigger`` with a SQLAlchemy ``StatementError`` traceback, and the scheduler
    did not say which flow or parameter."""
    from ductwork.store.codec import UnencodableValueError, encode

    for what, values in (("parameter", params), ("conf key", conf or {})):
        for name, value in values.items():
            try:
                encode(value, name)
            except UnencodableValueError as exc:
                kind = f"{type(exc.value).__module__}.{type(exc.value).__qualname__}"
                raise ParameterError(
                    f"flow {flow_id!r}: {what} {name!r} is {value!r}, a {kind}, which a run cannot record "
                    "(its values are kept as JSON, with dates, decimals, tuples and sets): declare it as text "
                    f"(str, {str(value)!r}) and convert it in the task"
                ) from None


def _code_now(engine: Engine, flow_id: str) -> dict[str, Any] | None:
    """The flow's code as its files are now, when they changed since it was recorded (a run
    triggered right after an edit, before the scheduler parsed the file again)."""
    with read_transaction(engine) as conn:
        code, fileloc = flow_repo.code_and_file(conn, flow_id)
    if code is None or fileloc is None:
        return None
    return as_on_disk(code, fileloc)


RUN_ID_MAX = 250
"""The longest run id: it names the run's log folder, and file names stop at 255 bytes."""


RESERVED_RUN_ID_PREFIXES = {
    "scheduled__": "the scheduler gives its runs",
    "backfill__": "backfills give their runs",
    "event__": "runs started by a message get",
    "asset_triggered__": "runs started by an asset update get",
    "dataset_triggered__": "Airflow gives runs started by a dataset",
}
"""Run id prefixes that the parties creating runs by themselves make ids with. A manual run
given one (``trigger --run-id scheduled__2024-09-01...``) took the id the schedule's run of that
date needed: the scheduler passed over that date for ever (ADR 0025), its work never done.
Airflow refuses a manual run such an id too ("reserved for scheduled runs")."""


def check_run_id(run_id: str) -> None:
    """Refuse a run id that could not be addressed afterwards (in a URL, a log path) by every
    way in: the API, the web form and the CLI."""
    if not run_id or len(run_id) > RUN_ID_MAX:
        raise ParameterError(f"run id: must be 1 to {RUN_ID_MAX} characters, got {len(run_id)}")
    if "/" in run_id or "\x00" in run_id or run_id in (".", ".."):
        raise ParameterError(f"run id {run_id!r}: may not be '.' or '..' nor contain '/' or a NUL character")
    if not run_id.strip():  # ' ' was queued, and listed as a run with no id
        raise ParameterError(f"run id {run_id!r}: it needs a character other than spaces")
    if run_id != run_id.strip():  # pasted with a space: ' fix' is another run than the 'fix' a command names
        raise ParameterError(
            f"run id {run_id!r}: has spaces before or after it, which are not trimmed; write {run_id.strip()!r}"
        )
    refuse_control_characters("run id", run_id)  # 'a\nb' was listed as two runs, and named its log folder
    refuse_unseen_characters("run id", run_id)  # 'fix\u00a0june' was listed as the 'fix june' no one could name
    if run_id.startswith("-"):  # `runs show etl -x` said "No such option '-x'", as would every command naming it
        raise ParameterError(
            f"run id {run_id!r}: it may not start with '-', which the commands that name a run "
            f"(runs show, tasks clear...) would read as an option; write {run_id.lstrip('-') or 'run'!r}"
        )
    for prefix, who in RESERVED_RUN_ID_PREFIXES.items():
        if run_id.startswith(prefix):
            raise ParameterError(
                f"run id {run_id!r}: ids starting with {prefix!r} are the ones {who}, and a manual run holding "
                f"one would keep that run from being made (as in Airflow, they are reserved); choose another, "
                f"such as {'manual__' + run_id[len(prefix) :]!r}"
            )


def check_logical_date(when: dt.datetime) -> None:
    """Years a schedule can compute with, checked in UTC (where the run's dates are kept)."""
    try:
        year = when.astimezone(dt.UTC).year if when.tzinfo is not None else when.year
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        year = 10000
    if not 1900 <= year <= 9000:
        raise ParameterError(f"logical date {when.isoformat()}: the year must be between 1900 and 9000 (in UTC)")


def trigger(
    engine: Engine,
    flow_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    conf: Mapping[str, Any] | None = None,
    logical_date: dt.datetime | None = None,
    run_id: str | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
    conn: Connection | None = None,
) -> RunRecord:
    """A manual run of ``flow_id``, queued for the scheduler (in ``conn``'s transaction when given)."""
    if run_id is not None:
        check_run_id(run_id)
    graph = flow_graph(engine, flow_id)
    values, conf = params_and_conf(graph.meta, params, conf)
    tz = get_timezone(graph.meta.timezone)
    when = as_aware(logical_date, tz) if logical_date is not None else (now or dt.datetime.now(dt.UTC))
    check_logical_date(when)
    asked = when
    when = _instance_date(graph.meta, when)
    interval = schedule_of(graph.meta).interval_starting(when)
    _refuse_second_run(engine, graph.meta, when, asked, conn)
    return create_run(
        engine,
        graph,
        code=_code_now(engine, flow_id),
        run_type="manual",
        logical_date=when,
        interval=interval,
        params=values,
        conf=conf,
        run_id=run_id,
        note=note,
        conn=conn,
    )


def _refuse_second_run(
    engine: Engine, meta: FlowMeta, when: dt.datetime, asked: dt.datetime, conn: Connection | None
) -> None:
    """Refuse a trigger of an AWS pipeline's instance that has a run already. AWS has one
    instance per period of the schedule (it is re-run, never doubled), but a trigger at another
    time of a period whose instance had run made a second run of that instance: with
    ``--run-id``, silently; without, the run id clash said to choose another run id, which then
    did. Other flows keep taking a second run of a date by its own run id (a Luigi-style
    re-run; ``test_harden_scheduler`` relies on it)."""
    if meta.style != "aws-datapipeline":  # datapipeline.plan.STYLE, checked before importing it
        return None
    if conn is None:
        with read_transaction(engine) as own:
            return _refuse_second_run(engine, meta, when, asked, own)
    found = run_repo.list_runs(
        conn, flow_id=meta.flow_id, since=when, until=when + dt.timedelta(microseconds=1), limit=1
    ).items
    if not found:
        return None
    run = found[0]
    instance = f" (the instance of the schedule that {asked.isoformat()} falls in)" if asked != when else ""
    raise RunExistsError(
        f"pipeline {meta.flow_id!r} already has a run for the logical date {when.isoformat()}{instance}: "
        f"{run.run_id} ({run.state.value}); as in AWS, an instance runs once and is re-run, not doubled: "
        f"ductwork tasks clear {meta.flow_id} {run.run_id} OBJECT..."
    )


def _instance_date(meta: FlowMeta, when: dt.datetime, *, first_after: bool = False) -> dt.datetime:
    """``when`` for most flows; for an AWS Data Pipeline definition, the logical date of its
    schedule's instance whose period holds ``when`` (``first_after``: the first instance at or
    after it, where a backfill starts), as AWS runs instances only on its schedule's boundaries."""
    if meta.style != "aws-datapipeline":  # datapipeline.plan.STYLE, checked before importing it
        return when
    from ductwork.declarative.datapipeline.plan import instance_logical_date

    schedule = schedule_of(meta)
    start = dt.datetime.fromisoformat(meta.start_date) if meta.start_date else None
    end = dt.datetime.fromisoformat(meta.end_date) if meta.end_date else None
    if first_after:
        held = schedule.logical_date_holding(when, start_date=start)
        if held != when:
            when = schedule.interval_starting(held).end
        return when if start is None else max(when, start)
    return instance_logical_date(meta.style, meta.flow_id, schedule, when, start=start, end=end)


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    logical_date: dt.datetime
    interval: DataInterval
    exists: bool
    tasks: tuple[str, ...]


def plan_backfill(
    engine: Engine,
    flow_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    now: dt.datetime | None = None,
    max_runs: int = BACKFILL_MAX_RUNS,
) -> tuple[FlowGraph, list[PlannedRun]]:
    """Which runs a backfill of ``[start, end]`` would create and which tasks each would run.
    More than ``max_runs`` runs to create (the ``backfill_max_runs`` setting) is refused with
    the number it would create (counted up to ten times the limit)."""
    graph = flow_graph(engine, flow_id)
    tz = get_timezone(graph.meta.timezone)
    first, last = as_aware(start, tz), as_aware(end, tz)
    if last < first:
        raise ParameterError(f"backfill: the end {end.isoformat()} is before the start {start.isoformat()}")
    planned = []
    with read_transaction(engine) as conn:
        existing = {
            r.logical_date: r.run_id
            for r in run_repo.list_runs(conn, flow_id=flow_id, since=first, limit=100_000).items
        }
    first = _instance_date(graph.meta, first, first_after=True)
    look = len(existing) + max_runs * 10 + 1  # bounded: a minutely flow since 1970 has 30 million intervals
    intervals = backfill_intervals(graph.meta, first, last, now or dt.datetime.now(dt.UTC), limit=look)
    new = sum(1 for i in intervals if i.start not in existing)
    if new > max_runs:
        count = f"{new:,}" if len(intervals) < look else f"more than {max_runs * 10:,}"
        raise ParameterError(
            f"a backfill of flow {flow_id!r} from {first.isoformat()} to {last.isoformat()} would create {count} "
            f"runs, more than backfill_max_runs ({max_runs:,}) allows: choose a shorter range (--start/--end), "
            "or raise backfill_max_runs (ductwork.toml or DUCTWORK_BACKFILL_MAX_RUNS)"
        )
    tasks = tuple(t for t, n in graph.nodes.items() if not n.extra.get("already_complete"))
    for interval in intervals:
        found = existing.get(interval.start)  # a run that exists is shown by the id it has
        run_id = found if found is not None else make_run_id("backfill", interval.start)
        planned.append(PlannedRun(run_id, interval.start, interval, found is not None, tasks if found is None else ()))
    return graph, planned


def backfill(
    engine: Engine,
    flow_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    params: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    max_runs: int = BACKFILL_MAX_RUNS,
) -> list[RunRecord]:
    """Queue one run per interval of ``[start, end]`` that has no run yet (``max_runs`` at most:
    see ``plan_backfill``), all in one transaction: a backfill stopped part way (Ctrl-C, a
    run id another backfill took meanwhile, a full disk) queues none of its runs, where it left
    the first ones queued while saying it was refused; and one commit, not one per run."""
    graph, planned = plan_backfill(engine, flow_id, start, end, now=now, max_runs=max_runs)
    values = validate_params(graph.meta, params)
    created = []
    with transaction(engine) as conn:
        for plan in planned:
            if plan.exists:
                continue
            created.append(
                create_run(
                    engine,
                    graph,
                    run_type="backfill",
                    logical_date=plan.logical_date,
                    interval=plan.interval,
                    params=values,
                    run_id=plan.run_id,
                    conn=conn,
                )
            )
    return created


def failed_tasks_to_rerun(engine: Engine, flow_id: str, run_ids: list[str]) -> dict[str, list[str]]:
    """Of these runs, those that failed, each with its failed and upstream-failed tasks (what
    ``backfill --rerun-failed`` clears, as Airflow's ``--rerun-failed-tasks``)."""
    out: dict[str, list[str]] = {}
    with read_transaction(engine) as conn:
        for run_id in run_ids:
            record = run_repo.get_run(conn, flow_id, run_id)
            if record is None or record.state != RunState.FAILED:
                continue
            states = task_repo.task_states(conn, record.pk)
            failed = [t for t, st in states.items() if st in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)]
            if failed:
                out[run_id] = failed
    return out


def get_run(engine: Engine, flow_id: str, run_id: str) -> RunRecord:
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, flow_id, run_id)
        if record is None:
            recent = [r.run_id for r in run_repo.list_runs(conn, flow_id=flow_id, limit=20).items]
            if not recent and not recorded_flow(conn, flow_id):  # a typo of the flow, not of the run
                raise unknown_flow(conn, flow_id)
            raise NotFoundError(
                f"flow {flow_id!r} has no run {run_id!r}.{did_you_mean(run_id, recent)}"
                + (f" Recent runs: {', '.join(recent[:5])}" if recent else "")
            )
    return record


def _refuse_finished(record: RunRecord) -> None:
    """A finished run has nothing left to stop: cancelling it would only rewrite its outcome
    (a success turned into failed), so it is refused and left as it is."""
    if record.state.is_terminal:
        raise InvalidTransitionError(
            f"run {record.flow_id} {record.run_id} already finished ({record.state.value}): there is nothing "
            "to cancel, and it stays as it is; `ductwork tasks clear` runs its tasks again"
        )


def cancel_preview(engine: Engine, flow_id: str, run_id: str) -> tuple[RunRecord, list[str]]:
    """What ``cancel`` would do (a dry run): the run, and its unfinished tasks (the running ones
    would fail, the others be skipped), in graph order. A finished run is refused, as ``cancel`` would refuse it."""
    record = get_run(engine, flow_id, run_id)
    _refuse_finished(record)
    with read_transaction(engine) as conn:
        instances = task_repo.list_task_instances(conn, record.pk)
    return record, [t.task_id for t in instances if not t.state.is_terminal]


@retry_deadlocks
def cancel(engine: Engine, flow_id: str, run_id: str, *, reason: str = "cancelled") -> RunRecord:
    """Stop a run: its running tasks are marked failed (the scheduler stops their tries) and
    those not started skipped, as Airflow marks a run failed.

    Only a queued or running run can be cancelled; a finished one raises
    ``InvalidTransitionError`` and nothing changes, also when it finishes while this runs (the
    run's state change is conditional, and the transaction is rolled back if it did not happen).
    """
    record = get_run(engine, flow_id, run_id)
    _refuse_finished(record)
    with transaction(engine) as conn:
        run_repo.lock_runs(conn, [record.pk])  # before reading: a scheduler step must not interleave
        states = task_repo.task_states(conn, record.pk)
        # As Airflow marks a run failed: running tasks fail, those not started are skipped.
        running = [t for t, s in states.items() if s == TaskState.RUNNING]
        waiting = [t for t, s in states.items() if not s.is_terminal and s != TaskState.RUNNING]
        if running:
            task_repo.mark_task_instances(conn, record.pk, running, TaskState.FAILED, reason=reason)
        if waiting:
            task_repo.mark_task_instances(conn, record.pk, waiting, TaskState.SKIPPED, reason=reason)
        if not run_repo.set_run_state(
            conn, record.pk, RunState.FAILED, expected=(RunState.QUEUED, RunState.RUNNING), reason=reason
        ):
            now = run_repo.get_run_by_pk(conn, record.pk)
            _refuse_finished(now or record)
            raise InvalidTransitionError(f"run {flow_id} {run_id} changed while it was being cancelled; try again")
        run_repo.bump_revision(conn, record.pk)
        updated = run_repo.get_run_by_pk(conn, record.pk)
    assert updated is not None
    return updated
