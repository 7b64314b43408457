"""``ductwork tasks``: act on the tasks of a flow and its runs."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.markup import escape

from ductwork.cli.options import date_option, parse_param_options
from ductwork.cli.output import console, print_json, short_error, styled, task_state_json
from ductwork.cli.state import CliState, load_checked
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.schedule import as_aware
from ductwork.core.states import TaskState
from ductwork.engine import task_env
from ductwork.engine.local import run_locally
from ductwork.engine.services_setup import local_task_services
from ductwork.errors import ParameterError


@click.group()
def tasks() -> None:
    """Test, inspect, clear and mark task instances."""


@tasks.command("test")
@click.argument("flow_ref", metavar="FLOW")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.option(
    "--conf", "conf_text", default=None, help="Extra configuration for the run, as a JSON object (dag_run.conf)."
)
@click.option(
    "--task-params",
    "-t",
    "task_params_text",
    default=None,
    help="Params of this task only, as a JSON object (Airflow DAGs, as airflow tasks test -t).",
)
@click.option(
    "--map-index",
    "map_index",
    type=click.IntRange(min=0),
    default=None,
    help="Run only this instance of a mapped task (TASK[N]), as airflow tasks test --map-index.",
)
@click.pass_obj
def test_task(
    state: CliState,
    flow_ref: str,
    task_id: str,
    logical_date: str | None,
    param_values: tuple[str, ...],
    conf_text: str | None,
    task_params_text: str | None,
    map_index: int | None,
) -> None:
    """Run one task now, ignoring its dependencies, print its log, and record nothing.

    A mapped task runs every instance (each one's log is printed); --map-index N, or the
    instance's id TASK[N], runs instance N alone."""

    from ductwork.cli.options import conf_option

    conf = conf_option(conf_text)
    task_params = _task_params_option(task_params_text)
    with use_sources(ParamSources.load(config_path=state.config_path)):
        flow = load_checked(state, flow_ref)
        if task_params:
            _give_task_params(flow, task_id, task_params)
        given = date_option(logical_date or None, "logical date")
        when = as_aware(given, flow.tz) if given is not None else None
        graph = flow.to_graph()
        graph, task_id, reads = _graph_for_test(flow, graph, task_id, map_index)
        seed = _upstream_of_recorded_run(state, flow.flow_id, task_id, reads, when)
        services = local_task_services(state.settings, lend_store=True)  # as `airflow tasks test`
        with task_env.withheld():
            summary = run_locally(
                flow,
                params=parse_param_options(param_values),
                logical_date=when,
                only=[task_id],
                seed_results=seed,
                run_type="test",
                conf=conf,
                services=services,
                graph=graph,
                allow_pickle=state.settings.results_pickle,
            )
    task = summary[task_id]
    # A mapped task's instances ran in their own tries: their logs are what the user wants to see.
    shown = [t for t in summary.task_states if t.startswith(f"{task_id}[") and t.endswith("]")] + [task_id]
    failed = False
    for shown_id in shown:
        failed = _print_test_try(summary, shown_id) or failed
    if failed or task.state.is_failure:
        sys.exit(1)


def _print_test_try(summary: Any, task_id: str) -> bool:
    """Print the log of every try of ``task_id`` and its state; True when it failed."""
    task = summary[task_id]
    out = console()
    # A sensor in reschedule mode has an entry per poke, all of one try (one log): each try once.
    for try_number in dict.fromkeys(attempt.try_number for attempt in task.tries):
        text = summary.logs.get((task_id, try_number), "")
        out.print(f"[bold]--- {escape(task_id)} try {try_number} ---[/]")
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()
    out.print(
        f"{escape(task_id)}: {styled(task.state.value)}"
        + (f" ({escape(task.tries[-1].error)})" if task.tries and task.tries[-1].error else "")
    )
    return bool(task.state.is_failure)


def _graph_for_test(flow: Any, graph: Any, task_id: str, map_index: int | None) -> tuple[Any, str, Sequence[str]]:
    """The graph ``tasks test`` runs, the id of the task it runs and the tasks whose results
    that task reads. For one instance of a mapped task (``--map-index N`` or ``TASK[N]``, as
    ``airflow tasks test --map-index``) the instance is added to the graph, since the task's
    expander, which adds it in a run, does not run in a test."""
    from ductwork.core.graph import FlowGraph
    from ductwork.core.mapping import lone_instance

    match = re.fullmatch(r"(.+)\[(\d+)\]", task_id)
    if match and task_id not in graph.nodes and match.group(1) in graph.nodes:
        if map_index is not None and map_index != int(match.group(2)):
            raise ParameterError(f"--map-index {map_index} and the task id {task_id!r} name two instances")
        task_id, map_index = match.group(1), int(match.group(2))
    node = graph.nodes.get(task_id)
    if node is None:
        return graph, task_id, ()  # the run names the missing task, with the closest id
    if map_index is None:
        return graph, task_id, node.upstream
    found = lone_instance(flow.tasks.get(task_id), map_index)
    if found is None:
        raise ParameterError(f"--map-index: task {task_id!r} is not mapped (it has no instances {task_id}[N])")
    instance, reads = found
    return FlowGraph(graph.meta, {**graph.nodes, instance.task_id: instance}, graph.groups), instance.task_id, reads


def _task_params_option(text: str | None) -> dict[str, Any]:
    from ductwork.cli.options import json_object_option

    return json_object_option(text, "--task-params")


def _give_task_params(flow: Any, task_id: str, given: dict[str, Any]) -> None:
    """Airflow's ``tasks test -t``: the values join the task's own params (its ``params`` in
    templates and ``task.params``) for this test only; only Airflow operators have such params."""
    op = flow.tasks.get(task_id)
    if op is None:
        return  # the run names the missing task, with the closest id
    if not hasattr(op, "task_params"):
        raise ParameterError(
            f"--task-params: task {task_id!r} is not an Airflow operator, which alone has params of its own; "
            "give run parameters with --param NAME=VALUE"
        )
    op.task_params = {**op.task_params, **given}


def _upstream_of_recorded_run(
    state: CliState, flow_id: str, task_id: str, upstream: Sequence[str], when: Any
) -> dict[str, Any]:
    """As Airflow's ``tasks test``: the upstream results the run of ``when`` recorded; the
    upstream tasks it has none for (or with no date, or no run) give None, and that is said."""
    if not upstream:
        return {}
    found: dict[str, Any] = {}
    run_id = None
    if when is not None:
        from ductwork.engine.services_setup import existing_database
        from ductwork.services.local_runs import recorded_upstream_results

        engine = existing_database(state.settings)
        if engine is not None:
            try:
                run_id, found = recorded_upstream_results(engine, state.settings, flow_id, when, upstream)
            finally:
                engine.dispose()
    if found:
        click.secho(
            f"note: upstream results of {task_id!r} read from run {run_id}: {', '.join(found)}", fg="yellow", err=True
        )
    missing = [t for t in upstream if t not in found]
    if missing:
        if run_id:
            why = f"run {run_id} kept no result of them"
        elif when is not None:
            why = "no recorded run has that logical date"
        else:
            why = "no logical date was given to read a recorded run's results"
        click.secho(
            f"note: the upstream tasks of {task_id!r} ({', '.join(missing)}) are not run and {why}: values "
            "taken from them are None (ductwork.testing.run_task takes them as upstream_results)",
            fg="yellow",
            err=True,
        )
    return found


def _run(state: CliState, flow_id: str, run_id: str) -> tuple[Any, Any]:
    from ductwork.cli.engine_state import store
    from ductwork.services import runs as run_service

    engine = store(state)
    return engine, run_service.get_run(engine, flow_id, run_id)


@tasks.command("clear")
@click.argument("flow_id")
@click.argument("run_id")
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--downstream", "-d", is_flag=True, help="Also clear every task downstream.")
@click.option("--upstream", "-u", is_flag=True, help="Also clear every task upstream.")
@click.option("--dry-run", is_flag=True, help="Only list what would be cleared.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def clear(
    state: CliState,
    flow_id: str,
    run_id: str,
    task_ids: tuple[str, ...],
    downstream: bool,
    upstream: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Send tasks of a run back to be run again (with --downstream/--upstream closures)."""
    from ductwork.services import tasks as task_service

    engine, record = _run(state, flow_id, run_id)
    ids, elsewhere = task_service.clear_across(
        engine, record, list(task_ids), downstream=downstream, upstream=upstream, dry_run=dry_run
    )
    if as_json:
        others = [{"flow_id": o.record.flow_id, "run_id": o.record.run_id, "cleared": o.task_ids} for o in elsewhere]
        print_json({"dry_run": dry_run, "cleared": ids, "other_runs": others})
        return
    verb = "would clear" if dry_run else "cleared"
    console().print(f"{verb} {len(ids)} task(s) of {flow_id} {run_id}: " + ", ".join(ids), markup=False)
    for other in elsewhere:
        where = f"{other.record.flow_id} {other.record.run_id}"
        console().print(
            f"{verb} {len(other.task_ids)} task(s) of {where} (ExternalTaskMarker): " + ", ".join(other.task_ids),
            markup=False,
        )


@tasks.command("mark")
@click.argument("flow_id")
@click.argument("run_id")
@click.argument("task_ids", nargs=-1, required=True)
@click.option(
    "--state",
    "new_state",
    type=click.Choice(["success", "failed", "skipped"]),
    required=True,
    help="The state to set.",
)
@click.option("--downstream", "-d", is_flag=True, help="Also mark every task downstream.")
@click.option("--upstream", "-u", is_flag=True, help="Also mark every task upstream.")
@click.option("--dry-run", is_flag=True, help="Only list what would be marked.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mark(
    state: CliState,
    flow_id: str,
    run_id: str,
    task_ids: tuple[str, ...],
    new_state: str,
    downstream: bool,
    upstream: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Set tasks of a run to success, failed or skipped by hand."""
    from ductwork.services import tasks as task_service

    engine, record = _run(state, flow_id, run_id)
    ids = task_service.mark(
        engine, record, list(task_ids), TaskState(new_state), downstream=downstream, upstream=upstream, dry_run=dry_run
    )
    if as_json:
        print_json({"dry_run": dry_run, "state": new_state, "marked": ids})
        return
    verb = "would mark" if dry_run else "marked"
    if not ids:  # "marked 0 task(s) success: " and nothing more read as a mark that went wrong
        closures = [name for name, asked in (("downstream", downstream), ("upstream", upstream)) if asked]
        named = ", ".join(task_ids) + (f" and their {' and '.join(closures)} tasks" if closures else "")
        are = "is" if len(task_ids) == 1 and not closures else "are"
        nothing = "nothing would be marked" if dry_run else "nothing marked"
        console().print(f"{nothing}: {named} {are} already {new_state}", markup=False)
        return
    console().print(f"{verb} {len(ids)} task(s) {new_state}: " + ", ".join(ids), markup=False)


@tasks.command("state")
@click.argument("flow_id")
@click.argument("run_id")
@click.argument("task_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--map-index",
    "map_index",
    type=click.IntRange(min=0),
    default=None,
    help="This instance of a mapped task (the same as TASK[N]), as Airflow's --map-index.",
)
@click.pass_obj
def task_state(
    state: CliState, flow_id: str, run_id: str, task_id: str | None, as_json: bool, map_index: int | None
) -> None:
    """The state of one task of a run (or of all of them)."""
    from ductwork.services import tasks as task_service

    if map_index is not None:
        if task_id is None:
            raise ParameterError("--map-index names an instance of a task: give the task too")
        task_id = _instance(task_id, map_index)
    engine, record = _run(state, flow_id, run_id)
    instances = task_service.instances(engine, record, [task_id] if task_id else None)
    errors = task_service.last_errors(engine, record, instances)  # why the failed ones failed
    unserved = _unserved(state, engine, instances)
    if as_json:
        out = {t.task_id: task_state_json(t, errors.get(t.task_id)) for t in instances}
        for t in instances:
            if t.task_id in unserved:
                out[t.task_id]["unserved_queue"] = unserved[t.task_id]
        print_json(out)
        return
    for t in instances:
        due = task_state_json(t).get("next_try_at")
        when = f", next try at {due}" if due else ""
        # A reschedule gives its try back (Airflow's too): the number shown is the one that
        # checks next, not the count of tries used so far (0 before its first check).
        number = t.try_number + 1 if t.state == TaskState.UP_FOR_RESCHEDULE else t.try_number
        error = f": {escape(short_error(errors[t.task_id]))}" if t.task_id in errors else ""
        console().print(f"{escape(t.task_id)}: {styled(t.state.value)} (try {number}{when}){error}")
        if t.task_id in unserved:
            from ductwork.services.workers import unserved_note

            console().print(f"  [yellow]waits: {escape(unserved_note(unserved[t.task_id]))}[/yellow]", highlight=False)


def _instance(task_id: str, map_index: int) -> str:
    """The id of instance ``map_index`` of mapped task ``task_id`` (``--map-index``): Airflow
    users name an instance by task and map index, Ductwork's runs by ``TASK[N]``."""
    if re.fullmatch(r".+\[\d+\]", task_id):
        raise ParameterError(f"--map-index {map_index}: {task_id!r} already names an instance; give the task alone")
    return f"{task_id}[{map_index}]"


def _unserved(state: CliState, engine: Any, instances: Sequence[Any]) -> dict[str, str]:
    """Task id -> queue, for the queued tasks whose queue no live worker listens on: a bare
    ``queued`` that never changes does not say that a worker for the task's queue is missing."""
    queued = [t for t in instances if t.state == TaskState.QUEUED]
    if not queued:
        return {}
    from ductwork.services.workers import unserved_queues

    missing = unserved_queues(engine, state.settings, [t.queue for t in queued])
    return {t.task_id: t.queue or "default" for t in queued if (t.queue or "default") in missing}


@tasks.command("logs")
@click.argument("flow_id")
@click.argument("run_id")
@click.argument("task_id")
@click.option("--try", "try_number", type=int, default=None, help="Which try (default: the latest).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the try runs.")
@click.option(
    "--map-index",
    "map_index",
    type=click.IntRange(min=0),
    default=None,
    help="This instance of a mapped task (the same as TASK[N]), as Airflow's --map-index.",
)
@click.pass_obj
def logs(
    state: CliState,
    flow_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    follow: bool,
    map_index: int | None,
) -> None:
    """Print the log of a task's try."""
    from ductwork.services import tasks as task_service

    if map_index is not None:
        task_id = _instance(task_id, map_index)
    engine, record = _run(state, flow_id, run_id)
    if follow and try_number is None:
        _wait_for_first_try(state, engine, record, task_id)
    number = task_service.logged_try(engine, record, task_id, try_number).try_number
    tail = ""
    for chunk in task_service.log_chunks(engine, record, task_id, number, follow=follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()
        tail = (tail + chunk)[-LOG_TAIL:]
    ended = task_service.logged_try(engine, record, task_id, number)
    if follow:  # say how it ended: a try whose worker died wrote no last line of its own
        error = f": {ended.error}" if ended.error and ended.state.value != "success" else ""
        click.echo(f"(try {ended.try_number} of {task_id} ended {ended.state.value}{error})", err=True)
    elif _end_unlogged(ended, tail):
        click.echo(f"(try {ended.try_number} of {task_id} ended {ended.state.value}: {ended.error})", err=True)


LOG_TAIL = 16384
"""How much of the end of a try's log ``tasks logs`` looks at for the try's recorded error."""


def _end_unlogged(ended: Any, tail: str) -> bool:
    """A try that ended in failure for a reason its log does not give. A try whose worker was
    killed (the host lost, its pool process killed -9, its pod failed) ends its log at its
    "starting" line: ``tasks logs`` printed that alone, and the reason (recorded by whoever
    declared the try lost) was only in ``tasks state``. A try whose log ends with its own
    traceback is printed as before."""
    if ended.end_date is None or ended.state.value == "success" or not ended.error or not ended.error.strip():
        return False
    return ended.error.strip().splitlines()[0] not in tail


FIRST_TRY_POLL = 0.2
"""``tasks logs --follow`` looks this often for the first try of a task that has not started."""


UNSERVED_LOOK = 3.0
"""``tasks logs --follow`` looks this often whether the queued task's queue has a live worker."""


def _wait_for_first_try(state: CliState, engine: Any, record: Any, task_id: str) -> None:
    """``--follow`` right after ``trigger`` (the task still queued, or waiting for its upstream
    tasks) waits for its first try, as ``--follow`` promises, instead of failing with "has not
    run yet"; a task that will not run now (skipped, upstream failed, the run ended) is said as
    before."""
    import time

    from ductwork.services import tasks as task_service
    from ductwork.services.runs import get_run

    said = False
    next_look: float | None = time.monotonic()
    while True:
        if task_service.tries(engine, record, task_id):
            return
        (instance,) = task_service.instances(engine, record, [task_id])
        if instance.state.is_terminal or get_run(engine, record.flow_id, record.run_id).state.is_terminal:
            return  # logged_try says why there is no log
        if not said:
            click.echo(f"(waiting for {task_id} to start; Ctrl-C to stop)", err=True)
            said = True
        if next_look is not None and time.monotonic() >= next_look:
            next_look = time.monotonic() + UNSERVED_LOOK
            unserved = _unserved(state, engine, [instance])
            if unserved:  # said once: it waits for a worker that is not there
                from ductwork.services.workers import unserved_note

                click.echo(f"({task_id} is queued, but {unserved_note(unserved[task_id])})", err=True)
                next_look = None
        time.sleep(FIRST_TRY_POLL)
