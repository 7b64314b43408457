"""Operations on the task instances of a run, shared by the CLI and the REST API."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from sqlalchemy import Connection, Engine

from ductwork.core.graph import RUNS_NOTHING, FlowGraph
from ductwork.core.mapping import MAPPED_TASK, OUTCOME, SKIPPED, SUCCEEDED
from ductwork.core.states import MANUAL_TARGETS, TaskState
from ductwork.engine.packed_logs import read_packed
from ductwork.errors import InvalidTransitionError, NotFoundError, did_you_mean
from ductwork.services import external_clear
from ductwork.services.external_clear import ExternalClear
from ductwork.store.engine import read_transaction, retry_deadlocks, transaction
from ductwork.store.records import RunRecord, TaskInstanceRecord, TryRecord
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import results as result_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.serializers import JsonSerializer
from ductwork.store.tables import IN_PROCESS_OWNER


def _graph(engine: Engine, record: RunRecord) -> FlowGraph:
    with read_transaction(engine) as conn:
        return run_repo.load_run_graph(conn, record.pk).graph


def check_tasks(graph: FlowGraph, record: RunRecord, task_ids: Sequence[str]) -> None:
    for task_id in task_ids:
        if task_id not in graph.nodes:
            raise NotFoundError(
                f"run {record.flow_id} {record.run_id} has no task {task_id!r}.{did_you_mean(task_id, graph.nodes)}"
            )


def with_mapped_instances(graph: FlowGraph, task_ids: Sequence[str]) -> list[str]:
    """A mapped task stands for all its instances (``sq`` for ``sq[0]``, ``sq[1]``...), as in
    Airflow: clearing it runs them again, not only the step that collects them."""
    chosen = set(task_ids)
    extra = [t for t, node in graph.nodes.items() if node.extra.get(MAPPED_TASK) in chosen and t not in chosen]
    return [*task_ids, *extra]


def closure(graph: FlowGraph, task_ids: Sequence[str], *, downstream: bool, upstream: bool) -> list[str]:
    """The tasks, plus their downstream and/or upstream closure, in graph order."""
    chosen = set(task_ids)
    if downstream:
        chosen |= graph.downstream_closure(task_ids)
    if upstream:
        chosen |= graph.upstream_closure(task_ids)
    return [t for t in graph.nodes if t in chosen]


def rerun_consumers(graph: FlowGraph, states: Mapping[str, str], task_ids: Sequence[str]) -> list[str]:
    """Below tasks whose node has ``cascade_rerun``: the downstream tasks that did not run because
    of them (``upstream_failed``, or ``skipped`` by their outcome), transitively."""
    down = graph.downstream_map()
    found: list[str] = []
    stack = [t for t in task_ids if graph.nodes[t].cascade_rerun]
    seen = set(task_ids)
    while stack:
        for child in down.get(stack.pop(), ()):
            if child in seen or states.get(child) not in (TaskState.UPSTREAM_FAILED.value, TaskState.SKIPPED.value):
                continue
            seen.add(child)
            found.append(child)
            stack.append(child)
    return found


def clear(
    engine: Engine,
    record: RunRecord,
    task_ids: Sequence[str],
    *,
    downstream: bool = False,
    upstream: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Run tasks again: back to ``none`` (a finished run is queued again). ``dry_run`` only says
    which tasks would be cleared. Tasks of other flows that ``ExternalTaskMarker``s among them
    point at are cleared too (``clear_across`` also says which)."""
    return clear_across(engine, record, task_ids, downstream=downstream, upstream=upstream, dry_run=dry_run)[0]


@retry_deadlocks
def clear_across(
    engine: Engine,
    record: RunRecord,
    task_ids: Sequence[str],
    *,
    downstream: bool = False,
    upstream: bool = False,
    dry_run: bool = False,
) -> tuple[list[str], list[ExternalClear]]:
    """``clear``, and the tasks of other runs cleared with them through markers (in one
    transaction: all or nothing)."""
    graph = _graph(engine, record)
    check_tasks(graph, record, task_ids)
    _refuse_while_run_in_process(record, "cleared")
    task_ids = with_mapped_instances(graph, task_ids)
    if not downstream and any(graph.nodes[t].cascade_rerun for t in task_ids):
        states = {i.task_id: i.state.value for i in instances(engine, record)}
        task_ids = [*task_ids, *rerun_consumers(graph, states, task_ids)]
    chosen = closure(graph, task_ids, downstream=downstream, upstream=upstream)
    with read_transaction(engine) as conn:
        elsewhere = external_clear.plan(conn, record, graph, chosen)
    for other in elsewhere:
        _refuse_while_run_in_process(other.record, "cleared")
    if dry_run:
        return chosen, elsewhere
    with transaction(engine) as conn:
        cleared = task_repo.clear_task_instances(conn, record.pk, task_ids, downstream=downstream, upstream=upstream)
        if record.owner == IN_PROCESS_OWNER and cleared:
            run_repo.hand_to_schedulers(conn, record.pk)  # its command has ended: a scheduler runs them
        for other in elsewhere:
            task_repo.clear_task_instances(conn, other.record.pk, other.task_ids)
            if other.record.owner == IN_PROCESS_OWNER:
                run_repo.hand_to_schedulers(conn, other.record.pk)
        return cleared, elsewhere


@retry_deadlocks
def mark(
    engine: Engine,
    record: RunRecord,
    task_ids: Sequence[str],
    state: TaskState,
    *,
    downstream: bool = False,
    upstream: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Set tasks (with their downstream and/or upstream closure) to ``state`` by hand; the ids
    changed, in graph order. ``dry_run`` only says which tasks would change (those already in
    ``state`` would not)."""
    graph = _graph(engine, record)
    check_tasks(graph, record, task_ids)
    _refuse_while_run_in_process(record, f"marked {state.value}")
    if dry_run:
        check_mark_target(state)
        chosen = closure(graph, task_ids, downstream=downstream, upstream=upstream)
        with read_transaction(engine) as conn:
            states = task_repo.task_states(conn, record.pk)
        return [t for t in chosen if states.get(t) != state]
    with transaction(engine) as conn:
        changed = task_repo.mark_task_instances(
            conn, record.pk, task_ids, state, downstream=downstream, upstream=upstream
        )
        return changed + _settle_mapped(conn, record, graph, changed, state)


def _settle_mapped(
    conn: Connection, record: RunRecord, graph: FlowGraph, changed: Sequence[str], state: TaskState
) -> list[str]:
    """A mapped task's instances marked by hand: what its collecting step reads of them follows
    the mark, and so does the mapped task itself when it has ended (the ids it changed).
    Marking a failed instance success left ``work`` failed ("1 of its 3 mapped instances
    failed"), and its downstream stayed upstream_failed through any clear, as in Airflow it
    does not: there the mapped task is its instances."""
    instances = [t for t in changed if graph.nodes[t].extra.get(MAPPED_TASK)]
    if not instances:
        return []
    outcome = {TaskState.SUCCESS: SUCCEEDED, TaskState.SKIPPED: SKIPPED}.get(state, state.value)
    data = JsonSerializer().dumps(outcome)
    for task_id in instances:
        result_repo.put_result(conn, record.pk, task_id, OUTCOME, data, serializer=JsonSerializer.name)
    states = task_repo.task_states(conn, record.pk)
    settled: list[str] = []
    for parent in dict.fromkeys(graph.nodes[t].extra[MAPPED_TASK] for t in instances):
        if parent in changed or states.get(parent) not in _ENDED_BY_RUNNING:
            continue  # marked itself, or not collected yet: it collects the marks when it runs
        members = [states.get(t) for t, n in graph.nodes.items() if n.extra.get(MAPPED_TASK) == parent]
        if any(s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) for s in members):
            summary = TaskState.FAILED
        elif any(s == TaskState.SKIPPED for s in members):
            summary = TaskState.SKIPPED
        elif all(s == TaskState.SUCCESS for s in members):
            summary = TaskState.SUCCESS
        else:
            continue
        if summary != states[parent]:
            reason = f"its mapped instances were marked: {summary.value}"
            settled += task_repo.mark_task_instances(conn, record.pk, [parent], summary, reason=reason)
    return settled


_ENDED_BY_RUNNING = (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED)


def _refuse_while_run_in_process(record: RunRecord, change: str) -> None:
    """A command running a run in its own process (``ductwork run``/``build``) follows its own
    graph: tasks changed behind it would be run or recorded over. It takes a cancel (it stops);
    once it has ended, its tasks may be marked, and cleared ones are run by a scheduler."""
    if record.owner == IN_PROCESS_OWNER and not record.state.is_terminal:
        raise InvalidTransitionError(
            f"run {record.flow_id} {record.run_id} is being run by a `ductwork run`/`build` command in its own "
            f"process, which would run or record its tasks over any change: its tasks cannot be {change} until "
            "it ends. Stop it with Ctrl-C, or cancel the run (`ductwork runs cancel`), then change them"
        )


def rerun_failed(engine: Engine, failed: Mapping[str, Sequence[str]], flow_id: str) -> None:
    """Clear each run's failed tasks (``runs.failed_tasks_to_rerun``) with their downstream:
    ``backfill --rerun-failed``, from the CLI and the API alike."""
    for run_id, task_ids in failed.items():
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, flow_id, run_id)
        if record is not None:
            clear(engine, record, task_ids, downstream=True)


def check_mark_target(state: TaskState) -> None:
    """The error a mark to ``state`` gets from the store, raised before anything is read."""
    if state not in MANUAL_TARGETS or state == TaskState.NONE:
        allowed = ", ".join(sorted(s.value for s in MANUAL_TARGETS if s != TaskState.NONE))
        raise InvalidTransitionError(
            f"cannot mark tasks {state.value}: a task may be marked {allowed} (use clear to run it again)"
        )


def instances(engine: Engine, record: RunRecord, task_ids: Sequence[str] | None = None) -> list[TaskInstanceRecord]:
    if task_ids:
        check_tasks(_graph(engine, record), record, task_ids)
    with read_transaction(engine) as conn:
        return task_repo.list_task_instances(conn, record.pk, task_ids=task_ids)


_ERROR_STATES = (TaskState.FAILED, TaskState.UP_FOR_RETRY)
_FEW = 20
"""Up to this many failing tasks, their tries are read task by task; past it, the run's at once."""


def last_errors(engine: Engine, record: RunRecord, instances: Sequence[TaskInstanceRecord]) -> dict[str, str]:
    """Why each failed or up-for-retry task of ``instances`` failed: the error of its latest
    try that has one (``task_tries.error``), by task id. What an on-call engineer looks for
    first in ``runs show`` and ``tasks state``, which gave only the state."""
    failing = [t for t in instances if t.state in _ERROR_STATES]
    if not failing:
        return {}
    with read_transaction(engine) as conn:
        if len(failing) <= _FEW:
            found = [r for t in failing for r in task_repo.list_tries(conn, record.pk, t.task_id)]
        else:
            found = task_repo.list_tries(conn, record.pk)
    latest = {t.task_id: t.try_number for t in failing}
    errors: dict[str, str] = {}
    for tried in found:  # by task and try number: a later try's error replaces an earlier one's
        if tried.error and tried.task_id in latest and tried.try_number <= latest[tried.task_id]:
            errors[tried.task_id] = tried.error
    return errors


def tries(engine: Engine, record: RunRecord, task_id: str) -> list[TryRecord]:
    check_tasks(_graph(engine, record), record, [task_id])
    with read_transaction(engine) as conn:
        return task_repo.list_tries(conn, record.pk, task_id)


def logged_try(engine: Engine, record: RunRecord, task_id: str, try_number: int | None) -> TryRecord:
    """The try whose log is asked for (the latest when ``try_number`` is None); a clear error
    when the task has not run, has no such try, or the try has no log file."""
    graph = _graph(engine, record)
    check_tasks(graph, record, [task_id])
    with read_transaction(engine) as conn:
        attempts = task_repo.list_tries(conn, record.pk, task_id)
    if not attempts:
        with read_transaction(engine) as conn:
            instance = task_repo.get_task_instance(conn, record.pk, task_id)
            changes = event_repo.list_state_events(conn, record.pk, task_id=task_id) if instance else []
        if instance is not None and instance.state.is_terminal:
            # upstream failed, skipped, removed: it never will run, where "not yet" said to wait
            ended = instance.state.value.replace("_", " ")
            reason = next((e.reason for e in reversed(changes) if e.new == instance.state.value), "")
            why = f" ({reason})" if reason else ""
            raise NotFoundError(
                f"task {task_id!r} of run {record.run_id} ended {ended} without running{why}: it has no log"
            )
        raise NotFoundError(f"task {task_id!r} of run {record.run_id} has not run yet")
    chosen = attempts[-1] if try_number is None else next((t for t in attempts if t.try_number == try_number), None)
    if chosen is None:
        raise NotFoundError(
            f"task {task_id!r} has no try {try_number}; its tries: {', '.join(str(t.try_number) for t in attempts)}"
        )
    if not chosen.log_path:
        if graph.nodes[task_id].extra.get(RUNS_NOTHING):
            raise NotFoundError(
                f"task {task_id!r} is an EmptyOperator with nothing to run: try {chosen.try_number} "
                "succeeded without a worker, and has no log"
            )
        if chosen.end_date is not None or chosen.error:
            # It ended before any host ran it (its pod failed or could not be made, its worker was
            # lost before it claimed it, it was cancelled while queued): the reason is the answer,
            # where "no log file recorded" read as a log lost.
            ended = chosen.state.value.replace("_", " ")
            why = f" ({chosen.error.strip().splitlines()[0]})" if chosen.error and chosen.error.strip() else ""
            raise NotFoundError(
                f"try {chosen.try_number} of task {task_id!r} of run {record.run_id} ended {ended} "
                f"without running{why}: it has no log"
            )
        raise NotFoundError(f"try {chosen.try_number} of task {task_id!r} has no log file recorded")
    return chosen


def followed_log(engine: Engine, record: RunRecord, task_id: str, *, poll: float = 0.3) -> Iterator[str]:
    """The newest try's log, followed, for a task that may not have started yet (``logs?follow=true``
    right after a trigger, its upstream tasks still running): it answered 404 "has not run
    yet", so a script following a run's last task had to poll for it. Now the answer says once
    that it waits, then streams the first try from its start, or says why the task ended
    without running (skipped, upstream failed, the run cancelled). What can be told at once
    (an unknown task, a task that will not run, a try without a log) is raised before anything
    is streamed, as without ``follow``."""
    check_tasks(_graph(engine, record), record, [task_id])
    if not _may_still_start(engine, record, task_id):
        _no_try_yet(engine, record, task_id)
        logged_try(engine, record, task_id, None)
        return log_chunks(engine, record, task_id, None, follow=True, poll=poll)
    return _waiting_then_followed(engine, record, task_id, poll)


def _may_still_start(engine: Engine, record: RunRecord, task_id: str) -> bool:
    """Whether the task has no try yet but may get one: neither it nor its run has ended."""
    with read_transaction(engine) as conn:
        if task_repo.list_tries(conn, record.pk, task_id):
            return False
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
        run = run_repo.get_run(conn, record.flow_id, record.run_id)
    return not (instance is None or instance.state.is_terminal or run is None or run.state.is_terminal)


def _no_try_yet(engine: Engine, record: RunRecord, task_id: str) -> None:
    """Raises why a task that ended without a try has no log (the state it ended in)."""
    with read_transaction(engine) as conn:
        if task_repo.list_tries(conn, record.pk, task_id):
            return
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
        run = run_repo.get_run(conn, record.flow_id, record.run_id)
    if instance is not None and instance.state.is_terminal:
        said = f"ended {instance.state.value.replace('_', ' ')} without running"
    else:
        said = f"did not start before its run ended ({run.state.value if run is not None else 'deleted'})"
    raise NotFoundError(f"task {task_id!r} of run {record.run_id} {said}: it has no log")


def _waiting_then_followed(engine: Engine, record: RunRecord, task_id: str, poll: float) -> Iterator[str]:
    # The tries and the state are read together, again: a try that began after the check of
    # ``followed_log`` made the line read "has not started yet (running)". It streams at once.
    state = "none"
    with read_transaction(engine) as conn:
        started = bool(task_repo.list_tries(conn, record.pk, task_id))
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
    if not started:
        if instance is not None:
            state = instance.state.value.replace("_", " ")
        yield f"*** {task_id} has not started yet ({state}); waiting for its first try\n"
    while not started and _may_still_start(engine, record, task_id):
        yield ""  # nothing new: a reader may stop here (a web server stopping)
        time.sleep(poll)
    try:
        _no_try_yet(engine, record, task_id)
        logged_try(engine, record, task_id, None)
    except NotFoundError as exc:
        yield f"*** no log: {exc}\n"
        return
    yield from log_chunks(engine, record, task_id, None, follow=True, poll=poll)


def log_chunks(
    engine: Engine,
    record: RunRecord,
    task_id: str,
    try_number: int | None = None,
    *,
    follow: bool = False,
    poll: float = 0.3,
) -> Iterator[str]:
    """The log of a try, in chunks; with ``follow``, new output until the try ends."""
    chosen = logged_try(engine, record, task_id, try_number)
    assert chosen.log_path is not None
    if "://" in chosen.log_path:  # written by a remote worker to the remote log store
        yield from _remote_log_chunks(engine, record, task_id, chosen, follow=follow, poll=poll)
        return
    path = Path(chosen.log_path)
    offset = 0
    seen = False
    while True:
        if path.exists():
            seen = True
            with path.open("r", encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                data = fh.read()
                offset = fh.tell()
            if data:
                yield data
        if follow and _still_running(engine, record, task_id, chosen.try_number):
            yield ""  # nothing new: a reader may stop here (a web server stopping)
            time.sleep(poll)
            continue
        if follow and path.exists() and path.stat().st_size > offset:
            continue  # written as the try ended
        packed = read_packed(path)  # a short try's log is packed with its run's (ADR 0018)
        if packed:
            yield packed
        elif not seen and not _still_running(engine, record, task_id, chosen.try_number):
            # said, not an empty answer that reads as "the task printed nothing"
            yield missing_log_note(path, chosen)
        return


def missing_log_note(path: Path, chosen: TryRecord) -> str:
    """Why a try's log file is not here. A try that ran on another host (a Celery worker, a
    pod, a scheduler elsewhere) wrote it to that host's disk when no ``remote_log_url`` was set:
    "deleted, or never written" sent users looking for a bug; the setting is the answer. A try
    pod's disk is gone with the pod: that is said, not where to look for it."""
    import socket

    ran_on = chosen.hostname or ""  # a remote worker's name (NAME@host, pod-...), else a thread's
    here = socket.gethostname()
    if ran_on.startswith("pod-"):
        # A Kubernetes try pod is deleted once its try has ended: no disk is left to look on.
        return (
            f"*** no log here: try {chosen.try_number} ran in the pod {ran_on}, which wrote its log ({path}) to "
            "its own disk, deleted with the pod. Set remote_log_url (DUCTWORK_REMOTE_LOG_URL, an fsspec URL: "
            "s3://..., gs://...) on the schedulers (their try pods get it) and the web server to keep the logs "
            "of tries\n"
        )
    if "@" in ran_on and ran_on.rsplit("@", 1)[1] != here:
        return (
            f"*** no log here: {path} is not on this host ({here}); try {chosen.try_number} ran on {ran_on}, "
            "which wrote its log to its own disk. Set remote_log_url (DUCTWORK_REMOTE_LOG_URL, an fsspec URL "
            "every host can write: s3://..., file:///shared/...) on the schedulers, workers and web server "
            "to read the logs of tries from any host\n"
        )
    return f"*** no log: {path} does not exist (deleted, or never written)\n"


def _still_running(engine: Engine, record: RunRecord, task_id: str, try_number: int) -> bool:
    with read_transaction(engine) as conn:
        current = task_repo.get_task_instance(conn, record.pk, task_id)
    return (
        current is not None
        and current.try_number == try_number
        and current.state in (TaskState.RUNNING, TaskState.QUEUED)
    )


def _remote_log_chunks(
    engine: Engine, record: RunRecord, task_id: str, chosen: TryRecord, *, follow: bool, poll: float
) -> Iterator[str]:
    """A log in the remote log store (chunks an fsspec store holds), followed while the try runs."""
    from ductwork.engine.remote.logs import read_remote_log

    assert chosen.log_path is not None
    offset = 0
    while True:
        data, offset = read_remote_log(chosen.log_path, offset)
        if data:
            yield data.decode("utf-8", errors="replace")
        if not follow:
            return
        if not _still_running(engine, record, task_id, chosen.try_number):
            data, offset = read_remote_log(chosen.log_path, offset)  # the last chunk, shipped at the end
            if data:
                yield data.decode("utf-8", errors="replace")
            return
        time.sleep(max(poll, 0.5))
