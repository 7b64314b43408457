"""``ductwork trigger``, ``ductwork backfill`` and ``ductwork runs``: runs in the database."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from ductwork.cli.engine_state import ensure_flow, store
from ductwork.cli.options import OFFSET, conf_option, date_option, parse_param_options
from ductwork.cli.output import (
    console,
    error_notes,
    print_json,
    print_run_states,
    styled,
    task_state_json,
    waited_run_json,
)
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable
from ductwork.core.masking import mask_secret_keys
from ductwork.core.states import RunState, TaskState
from ductwork.errors import NotFoundError, ParameterError
from ductwork.services import runs as run_service
from ductwork.services import tasks as task_service
from ductwork.services import why as why_service
from ductwork.store.engine import read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ductwork.settings import Settings


def run_json(record: RunRecord) -> dict[str, Any]:
    return {
        "flow_id": record.flow_id,
        "run_id": record.run_id,
        "run_type": record.run_type,
        "state": record.state.value,
        "logical_date": record.logical_date.isoformat(),
        "data_interval": [record.data_interval_start.isoformat(), record.data_interval_end.isoformat()],
        "params": mask_secret_keys(dict(record.params)),  # a "*password" parameter as ***, as the API shows it
        "conf": mask_secret_keys(dict(record.conf)),  # dag_run.conf, masked as the API and the run page do
        "start_date": record.start_date.isoformat() if record.start_date else None,
        "end_date": record.end_date.isoformat() if record.end_date else None,
        "note": record.note,
        "code": dict(record.code) if record.code else None,
        "triggered_by": dict(record.triggered_by) if record.triggered_by else None,  # a message, asset updates
    }


def _a_number(timeout: float | None) -> float | None:
    """``--timeout nan`` waited forever: no deadline ever passed."""
    if timeout is not None and math.isnan(timeout):
        raise click.BadParameter("expected a number of seconds, got nan")
    return timeout


WAIT_POLL = 0.01
"""``trigger --wait`` looks at the run this often (one primary-key read): it returns within a few
tens of milliseconds of the run's end."""


NO_SCHEDULER_AFTER = 3.0
"""Seconds a waited-for run may stay queued before the command looks for a running scheduler."""


UNSERVED_EVERY = 3.0
"""Seconds between two looks, while a waited-for run runs, for tasks queued where no worker listens."""


def _wait(
    engine: Any, record: RunRecord, timeout: float | None, *, lease: float = 15.0, settings: Settings | None = None
) -> RunRecord:
    began = time.monotonic()
    deadline = began + timeout if timeout is not None else None
    notes = WaitNotes(engine, settings, began, lease=lease)
    while True:
        with read_transaction(engine) as conn:
            current = run_repo.get_run_by_pk(conn, record.pk)
        assert current is not None
        if current.state.is_terminal:
            return current
        if deadline is not None and time.monotonic() > deadline:
            return current
        for note in notes.due(current):
            click.echo(note, err=True)
        time.sleep(WAIT_POLL)


class WaitNotes:
    """What ``trigger --wait`` says, once, about a run that does not move, rather than wait in
    silence: queued with no scheduler alive, or running with tasks queued on a queue no live
    worker listens on (``queue="gpu"`` and no ``ductwork worker --queues gpu``; once per queue).
    The command says them when it waits itself; a scheduler it handed the trigger to sends them
    (``trigger_server``)."""

    def __init__(self, engine: Any, settings: Settings | None, began: float, *, lease: float = 15.0) -> None:
        self.engine = engine
        self.settings = settings
        self.began = began
        self.lease = lease
        self._looked = False
        self._said: set[str] = set()
        self._next_look = began + NO_SCHEDULER_AFTER

    def due(self, current: RunRecord) -> list[str]:
        now = time.monotonic()
        notes: list[str] = []
        if not self._looked and current.state == RunState.QUEUED and now - self.began > NO_SCHEDULER_AFTER:
            self._looked = True
            notes += _no_scheduler(self.engine, self.lease)
        if self.settings is not None and current.state == RunState.RUNNING and now > self._next_look:
            self._next_look = now + UNSERVED_EVERY
            notes += self._unserved(current)
        return notes

    def _unserved(self, record: RunRecord) -> list[str]:
        from ductwork.services.workers import unserved_note, unserved_tasks

        assert self.settings is not None
        waiting: dict[str, list[str]] = {}
        for task_id, queue in unserved_tasks(self.engine, self.settings, record.pk).items():
            if queue not in self._said:
                waiting.setdefault(queue, []).append(task_id)
        notes = []
        for queue, names in sorted(waiting.items()):
            self._said.add(queue)
            names.sort()
            tasks = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            notes.append(f"note: {tasks} queued, but {unserved_note(queue)}; still waiting")
        return notes


def _no_scheduler(engine: Any, lease: float) -> list[str]:
    """A run nobody will start."""
    from ductwork.store.repo import leases

    with read_transaction(engine) as conn:
        live = leases.live_schedulers(conn, lease=lease)
    if live:
        return []
    return [
        f"note: the run is queued, but no scheduler is running on this database (none in the last {lease:g}s): "
        "start one with `ductwork scheduler` or `ductwork standalone`; still waiting"
    ]


def errors_of(engine: Any, record: RunRecord) -> dict[str, str]:
    """Why each failed (or up-for-retry) task of the run failed: its last try's error."""
    with read_transaction(engine) as conn:
        instances = task_repo.list_task_instances(conn, record.pk)
    return task_service.last_errors(engine, record, instances)


def unserved_notes(engine: Any, settings: Settings, record: RunRecord) -> dict[str, str]:
    """Task id -> the note of a queued task whose queue no live worker listens on."""
    from ductwork.services.workers import unserved_note, unserved_tasks

    return {t: f"waits: {unserved_note(q)}" for t, q in unserved_tasks(engine, settings, record.pk).items()}


def states_of(engine: Any, record: RunRecord) -> tuple[list[tuple[str, str, int, float | None]], str]:
    """The run's (task, state, try, duration) rows and why it ended (empty while it runs)."""
    with read_transaction(engine) as conn:
        instances = task_repo.list_task_instances(conn, record.pk)
        reason = event_repo.run_end_reason(conn, record.pk) if record.state.is_terminal else ""
    return [(ti.task_id, ti.state.value, ti.try_number, ti.duration) for ti in instances], reason


def _print_states(engine: Any, record: RunRecord, settings: Settings | None = None) -> None:
    rows, reason = states_of(engine, record)
    # A reschedule gives its try back: a sensor waiting shows the try that checks next, not 0.
    rows = [(t, s, n + 1 if s == "up_for_reschedule" else n, d) for t, s, n, d in rows]
    with read_transaction(engine) as conn:
        labels = task_repo.map_index_labels(conn, record.pk)  # mapped instances' map_index_template
        reused = why_service.reused_in_run(conn, record.pk, {t: n for t, _, n, _ in rows})
    notes = {
        (f"{t} {labels[t]}" if t in labels else t): f"up to date (cache): reused run {r}" for t, r in reused.items()
    }
    # Why a task failed, where the on-call engineer looks first (the log has the rest).
    notes.update(
        {(f"{t} {labels[t]}" if t in labels else t): e for t, e in error_notes(errors_of(engine, record)).items()}
    )
    if settings is not None and any(s == TaskState.QUEUED.value for _, s, _, _ in rows):
        for task_id, note in unserved_notes(engine, settings, record).items():
            notes[f"{task_id} {labels[task_id]}" if task_id in labels else task_id] = note
    if labels:
        rows = [(f"{t} {labels[t]}" if t in labels else t, *rest) for t, *rest in rows]  # type: ignore[misc]
    print_run_states(record.flow_id, record.run_id, record.state.value, rows, reason, notes)


def _state_of(typed: Any) -> CliState:
    """The CLI's state for a ``trigger`` command line read by ``cli.fast_trigger`` (its
    ``--home``, ``--flows-folder`` and ``--config``), as click would have made it."""
    overrides = {
        "home": typed.home and Path(typed.home),
        "flows_folder": typed.flows_folder and Path(typed.flows_folder),
    }
    return CliState(config_path=typed.config_path, overrides=overrides)


def run_named_in_database(typed: Any, flow_id: str, run_id: str, since: dt.datetime) -> dict[str, Any] | None:
    """The run ``trigger --run-id`` asked the scheduler for, when the scheduler stopped before
    it answered: recorded or not, the database knows (``cli.fast_trigger``). A run of that id
    made before ``since`` is someone else's (the scheduler would have refused the trigger)."""
    state = _state_of(typed)
    engine = store(state)
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, flow_id, run_id)
    finally:
        engine.dispose()
    if record is None:
        return None
    made = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=dt.UTC)
    return {"run": run_json(record), "pk": record.pk} if made >= since else None


def wait_in_database(typed: Any, pk: int) -> dict[str, Any]:
    """``trigger --wait`` for a run the scheduler queued but stopped answering about
    (``cli.fast_trigger``): the wait goes on in the database, as when the command wrote the run."""
    state = _state_of(typed)
    engine = store(state)
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run_by_pk(conn, pk)
        if record is None:
            raise NotFoundError(f"the run of {typed.flow_ref!r} was deleted while the command waited for it")
        record = _wait(engine, record, typed.timeout, settings=state.settings)
        rows, reason = states_of(engine, record)
        errors = errors_of(engine, record)
    finally:
        engine.dispose()
    return {"run": run_json(record), "tasks": rows, "reason": reason, "errors": errors}


@click.command()
@click.argument("flow_ref", metavar="FLOW")
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.option("--conf", "conf_text", default=None, help="Extra configuration for the run, as a JSON object.")
@click.option("--date", "logical_date", default=None, help="Logical date (ISO); default now.")
@click.option("--run-id", default=None, help="Run id (default manual__<logical date>).")
@click.option("--wait", is_flag=True, help="Wait for the run to finish and show its task states.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    callback=lambda ctx, param, value: _a_number(value),
    help="With --wait: give up after this many seconds (exit status 3; the run goes on).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def trigger(
    state: CliState,
    flow_ref: str,
    param_values: tuple[str, ...],
    conf_text: str | None,
    logical_date: str | None,
    run_id: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Queue a run of FLOW for the scheduler (ductwork scheduler or standalone runs it)."""
    if timeout is not None and not wait:  # it was ignored: the command returned at once
        raise click.UsageError("--timeout applies to --wait: add --wait, or leave --timeout out")
    engine = store(state)
    flow_id = ensure_flow(state, engine, flow_ref)
    record = run_service.trigger(
        engine,
        flow_id,
        params=parse_param_options(param_values),
        conf=conf_option(conf_text),
        logical_date=date_option(logical_date, "--date"),
        run_id=run_id,
    )
    if wait:
        try:
            record = _wait(engine, record, timeout, lease=state.settings.scheduler_lease, settings=state.settings)
        except KeyboardInterrupt:
            from ductwork.cli.wait_status import stopped_waiting

            sys.exit(stopped_waiting(record.flow_id, record.run_id))
    if as_json:
        if wait:
            print_json(waited_run_json(run_json(record), *states_of(engine, record), errors_of(engine, record)))
        else:
            print_json(run_json(record))
    else:
        console().print(f"run {escape(record.flow_id)} {escape(record.run_id)}: {styled(record.state.value)}")
        if wait:
            _print_states(engine, record, state.settings)
    if wait:
        from ductwork.cli.wait_status import wait_status

        status = wait_status(record.state.value, timeout)
        if status:
            sys.exit(status)


@click.command()
@click.argument("flow_ref", metavar="FLOW")
@click.option("--start", "-s", required=True, help="First logical date (ISO).")
@click.option("--end", "-e", required=True, help="Last logical date (ISO), included.")
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.option(
    "--rerun-failed",
    is_flag=True,
    help="Also run again the failed (and upstream-failed) tasks of the range's runs that failed.",
)
@click.option("--dry-run", is_flag=True, help="List the runs and tasks that would execute; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def backfill(
    state: CliState,
    flow_ref: str,
    start: str,
    end: str,
    param_values: tuple[str, ...],
    rerun_failed: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Queue a run for every schedule interval between --start and --end that has none (with
    --rerun-failed, also clear the failed tasks of the range's failed runs)."""
    engine = store(state)
    flow_id = ensure_flow(state, engine, flow_ref)
    first, last = date_option(start, "--start"), date_option(end, "--end")
    assert first is not None and last is not None
    try:
        graph, planned = run_service.plan_backfill(
            engine, flow_id, first, last, max_runs=state.settings.backfill_max_runs
        )
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    rerun: dict[str, list[str]] = {}
    if rerun_failed:
        rerun = run_service.failed_tasks_to_rerun(engine, flow_id, [p.run_id for p in planned if p.exists])
    if dry_run:
        run_service.validate_params(graph.meta, parse_param_options(param_values))
        if as_json:
            print_json(
                [
                    {
                        "run_id": p.run_id,
                        "logical_date": p.logical_date.isoformat(),
                        "exists": p.exists,
                        "tasks": list(p.tasks) if not p.exists else rerun.get(p.run_id, []),
                    }
                    for p in planned
                ]
            )
            return
        out = console()
        new = [p for p in planned if not p.exists]
        out.print(
            f"backfill of {flow_id} from {first.date()} to {last.date()}: {len(new)} run(s) to create, "
            f"{len(planned) - len(new)} already exist"
        )
        for p in planned:  # plain text: run ids and "[...]" are not Rich markup
            again = rerun.get(p.run_id, [])
            mark = f"exists, failed: {len(again)} tasks run again" if again else "exists, skipped"
            out.print(f"  {p.run_id}  [{mark if p.exists else f'{len(p.tasks)} tasks'}]", markup=False)
            if not p.exists or again:
                out.print("    " + ", ".join(p.tasks if not p.exists else again), markup=False)
        return
    created = run_service.backfill(
        engine,
        flow_id,
        first,
        last,
        params=parse_param_options(param_values),
        max_runs=state.settings.backfill_max_runs,
    )
    task_service.rerun_failed(engine, rerun, flow_id)
    if as_json:
        print_json([run_json(r) for r in created])
    else:
        existing = sum(p.exists for p in planned)  # "queued 0" alone read as a backfill that did nothing, silently
        skipped = f"; {existing} date(s) of the range already had a run, left as they are" if existing else ""
        console().print(
            f"queued {len(created)} backfill run(s) of {flow_id}{skipped}"
            + "".join(f"\n  {r.run_id}" for r in created),
            markup=False,
        )
        if rerun:
            console().print(
                f"and cleared the failed tasks of {len(rerun)} failed run(s)" + "".join(f"\n  {r}" for r in rerun),
                markup=False,
            )


def _known_flow(state: CliState, engine: Engine, flow_id: str) -> None:
    """Refuse a flow id that is neither recorded in the database (a flow, or a pipeline stored
    there) nor defined in the flows folder (a flow never run yet, or not parsed yet, has no
    runs: that is not an error)."""
    with read_transaction(engine) as conn:
        if run_service.recorded_flow(conn, flow_id):
            return
    try:
        run_service.flow_graph(engine, flow_id)
    except NotFoundError as recorded:
        try:
            state.flow_index.resolve(flow_id, state.settings.flows_folder)
        except NotFoundError:
            raise recorded from None


@click.group()
def runs() -> None:
    """List, show and cancel runs recorded in the database."""


@runs.command("list")
@click.argument("flow_id", required=False)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in RunState]),
    help="Only runs in this state (repeatable).",
)
@click.option(
    "--limit", type=click.IntRange(min=1, max=1000), default=25, show_default=True, help="Show at most this many runs."
)
@click.option("--offset", type=OFFSET, default=0, help="Skip this many runs first (the next page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_runs(
    state: CliState, flow_id: str | None, states: tuple[str, ...], limit: int, offset: int, as_json: bool
) -> None:
    """The runs of every flow, or of FLOW_ID, newest logical date first."""
    engine = store(state)
    with read_transaction(engine) as conn:
        page = run_repo.list_runs(
            conn, flow_id=flow_id, states=[RunState(s) for s in states] or None, limit=limit, offset=offset
        )
    if flow_id is not None and not page.total:  # a typo looked like "no runs" (exit 0, an empty list)
        _known_flow(state, engine, flow_id)
    if as_json:
        print_json({"total": page.total, "runs": [run_json(r) for r in page.items]})
        return
    table = DataTable(title=f"runs ({page.total} in all)", title_justify="left")
    # The flow and run ids are what `runs show FLOW RUN_ID` wants, and the state what one looks
    # for: never cut (the dates give way in a narrow terminal).
    whole = {"flow": [r.flow_id for r in page.items], "run": [r.run_id for r in page.items]}
    whole["state"] = [r.state.value for r in page.items]
    for name in ("flow", "run", "type", "state", "logical date", "started", "ended"):
        if name in whole:
            table.add_column(name, no_wrap=True, min_width=max(len(v) for v in [name, *whole[name]]))
        else:
            table.add_column(name)
    for r in page.items:
        table.add_row(
            r.flow_id,
            r.run_id,
            r.run_type,
            styled(r.state.value),
            r.logical_date.isoformat(),
            r.start_date.isoformat(timespec="seconds") if r.start_date else "",
            r.end_date.isoformat(timespec="seconds") if r.end_date else "",
        )
    console().print(table)


@runs.command("show")
@click.argument("flow_id")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_run(state: CliState, flow_id: str, run_id: str, as_json: bool) -> None:
    """One run: its state, dates, and the state and try of each of its tasks."""
    engine = store(state)
    record = run_service.get_run(engine, flow_id, run_id)
    if as_json:
        with read_transaction(engine) as conn:
            instances = task_repo.list_task_instances(conn, record.pk)
            reason = event_repo.run_end_reason(conn, record.pk) if record.state.is_terminal else ""
            reused = why_service.reused_in_run(conn, record.pk, {t.task_id: t.try_number for t in instances})
        errors = task_service.last_errors(engine, record, instances)
        tasks = {t.task_id: task_state_json(t, errors.get(t.task_id)) for t in instances}
        for task_id, matched in reused.items():
            tasks[task_id]["reused_from"] = matched  # as `ductwork run --json` says it
        from ductwork.services.workers import unserved_tasks

        for task_id, queue in unserved_tasks(engine, state.settings, record.pk).items():
            tasks[task_id]["unserved_queue"] = queue  # as `tasks state --json` says it
        print_json({**run_json(record), "reason": reason or None, "tasks": tasks})
        return
    _print_states(engine, record, state.settings)
    for line in _origin_lines(record):
        console().print(line, markup=False, highlight=False)


def _origin_lines(record: RunRecord) -> list[str]:
    """What started the run and with which parameters, under its tasks: a run a message or an
    asset update started says which (its note) and what the payload gave, since nothing else
    in the table tells one such run from another."""
    lines = [record.note] if record.note else []
    if record.params:
        shown = mask_secret_keys(dict(record.params))
        lines.append(
            "params: "
            + ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in shown.items())
        )
    return lines


@runs.command("cancel")
@click.argument("flow_id")
@click.argument("run_id")
@click.option("--dry-run", is_flag=True, help="Only list the tasks that would be stopped.")
@click.pass_obj
def cancel_run(state: CliState, flow_id: str, run_id: str, dry_run: bool) -> None:
    """Stop a run: running tasks are marked failed (their tries stopped), the others skipped.

    A run that already finished is refused (exit status 2) and left as it is.
    """
    engine = store(state)
    if dry_run:
        record, unfinished = run_service.cancel_preview(engine, flow_id, run_id)
        console().print(
            f"would cancel run {escape(record.flow_id)} {escape(record.run_id)} ({styled(record.state.value)}): "
            f"{len(unfinished)} unfinished task(s) would end (running ones failed, the others skipped)"
            + (": " + escape(", ".join(unfinished)) if unfinished else "")
        )
        return
    record = run_service.cancel(engine, flow_id, run_id)
    console().print(f"run {escape(record.flow_id)} {escape(record.run_id)}: {styled(record.state.value)}")
