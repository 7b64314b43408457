"""Run one flow to the end in this process: ``ductwork run``, ``ductwork build`` and tests.

No database and no server: the in-process executor, memory results and the same supervisor
and tracker as the persistent scheduler.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ductwork.core.clock import Clock, SystemClock
from ductwork.core.config import current_sources, use_sources
from ductwork.core.context import RunInfo, TaskContext
from ductwork.core.flow import ClassTaskFlow, Flow
from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.results import MISSING, RETURN_VALUE, MemoryResults, ResultBackend
from ductwork.core.schedule import as_aware
from ductwork.core.task_services import TaskServices
from ductwork.core.versioning import CacheStore
from ductwork.engine import logcapture
from ductwork.engine.executors.inline import InProcessExecutor
from ductwork.engine.journal import JournalWriter
from ductwork.engine.recorder import MemoryRecorder, RunSummary, states_from_nodes
from ductwork.engine.supervisor import EventSink, Limits, Supervisor
from ductwork.errors import CommandTerminated, RunStopped

log = logging.getLogger("ductwork")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=\-]+")


def safe_name(text: str) -> str:
    """A file-system-safe rendering of a task or run id (readable, collision-resistant)."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    if cleaned != text:
        import hashlib

        cleaned = f"{cleaned[:80]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return cleaned


def try_log_path(log_dir: Path | str, run: RunInfo, task_id: str, try_number: int) -> str:
    """``<logs>/<flow>/<run>/<task>.<try>.log``: one folder per run, since creating a folder
    costs as much as a whole no-op try on some disks."""
    return f"{_run_log_dir(str(log_dir), run.flow_id, run.run_id)}{safe_name(task_id)}.{try_number}.log"


@functools.lru_cache(maxsize=256)
def _run_log_dir(log_dir: str, flow_id: str, run_id: str) -> str:
    return os.path.join(log_dir, safe_name(flow_id), safe_name(run_id), "")


def make_run_id(run_type: str, logical_date: dt.datetime) -> str:
    return f"{run_type}__{logical_date.isoformat()}"


class Recording(Protocol):
    """Where an in-process run is also recorded (the metadata database, for the web UI).

    ``journal``: where tries are journaled (start before the code runs, end before the run
    loop hears of it), so that the sink may be written only every ``flush_interval`` seconds
    while tries run, many tries per transaction, and a killed run still leaves its truth behind.
    Without a journal every step is recorded as it happens.
    """

    journal: JournalWriter | None
    flush_interval: float

    def free_run_id(self, flow_id: str, proposed: str) -> str:
        """``proposed``, or a variant of it no recorded run of the flow has yet."""
        ...

    def begin(self, info: RunInfo, graph: FlowGraph, *, definition: FlowGraph | None = None) -> EventSink:
        """Record the run's start and graph; the sink receives its events. ``definition`` is
        the flow's own graph when the caller has it already (else the recording asks the flow)."""
        ...

    def finish(self, summary: RunSummary) -> None:
        """Record what only the in-process run holds (its results)."""
        ...

    def watch(self, stop: Callable[[str], None]) -> Callable[[], None]:
        """Call ``stop`` with a reason if the run is cancelled from outside while it runs (even
        while one long try holds the run loop); returns the function that ends the watch."""
        ...

    def interrupted(self, reason: str) -> None:
        """The command was stopped (Ctrl-C, SIGTERM) before the run ended: record its
        unfinished tasks and the run failed, for ``reason``."""
        ...

    def earlier_tries(self) -> EarlierTries | None:
        """Where tries of ``cache="content"`` tasks find the earlier tries of their task (the
        scheduler's and other recorded runs') and those tries' results; None: every try runs."""
        ...


@dataclass(frozen=True)
class EarlierTries:
    """What an in-process run needs to skip tasks that are up to date: the fingerprints of
    earlier tries (``TaskServices.cache``) and the results of the runs they were made in."""

    cache: CacheStore
    results: ResultBackend


class _StorableResults(MemoryResults):
    """This run's results, kept as they are, but each checked as the metadata database's store
    would keep it: a value a scheduler's worker could not store (a custom object, a generator)
    fails its try here too, so a flow tried with `ductwork run` or ``ductwork.testing`` behaves
    as it will under the scheduler."""

    def __init__(self, *, allow_pickle: bool = False) -> None:
        super().__init__()
        self.allow_pickle = allow_pickle

    def push(self, run_key: str, task_id: str, key: str, value: Any, *, serializer: str | None = None) -> None:
        if serializer is None:
            from ductwork.store.serializers import check_storable

            check_storable(value, task_id=task_id, key=key, allow_pickle=self.allow_pickle)
        super().push(run_key, task_id, key, value, serializer=serializer)


class _WithEarlierRuns(_StorableResults):
    """This run's results in memory; another run's (only an up-to-date try reuses them, through
    ``engine.caching.reuse``) read from where recorded runs keep theirs. A result that cannot
    be read there is missing, and the try that wanted it runs its code instead."""

    def __init__(self, own_key: str, earlier: ResultBackend, *, allow_pickle: bool = False) -> None:
        super().__init__(allow_pickle=allow_pickle)
        self.own_key = own_key
        self.earlier = earlier

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        value = super().pull(run_key, task_id, key)
        if value is not MISSING or run_key == self.own_key:
            return value
        try:
            return self.earlier.pull(run_key, task_id, key)
        except Exception as exc:  # unreadable here (a serializer not configured, a deleted run)
            log.info("result %r of %s in run %s cannot be reused: %s", key, task_id, run_key, exc)
            return MISSING


def run_locally(
    flow: Flow,
    *,
    params: Mapping[str, Any] | None = None,
    logical_date: dt.datetime | dt.date | None = None,
    clock: Clock | None = None,
    parallelism: int = 1,
    log_dir: Path | None = None,
    sinks: Iterable[EventSink] = (),
    run_type: str = "manual",
    run_id: str | None = None,
    conf: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    only: Iterable[str] | None = None,
    seed_results: Mapping[str, Any] | None = None,
    recording: Recording | None = None,
    services: TaskServices | None = None,
    graph: FlowGraph | None = None,
    allow_pickle: bool = False,
    wind_down: Callable[[], str | None] | None = None,
    fork: bool = False,
) -> RunSummary:
    """Run ``flow`` once, to the end, and return what happened.

    ``only`` restricts the run to some task ids (their other upstream tasks count as done);
    ``seed_results`` gives the return values of tasks left out, by task id. ``services`` gives
    tasks their connections, variables and store (by default: connections and variables from
    ``DUCTWORK_CONN_*``/``DUCTWORK_VAR_*``, no store). ``graph``: the flow's graph when the
    caller compiled it and has not changed the flow since (the CLI validated it on loading).
    Results are checked as the store would keep them (``allow_pickle``: the ``results_pickle``
    setting), so a value a scheduler could not store fails here too. ``wind_down``: asked as
    the run goes; once it gives a reason, no new task starts and the run ends failed with that
    reason when its running tries have ended (``Supervisor``). ``fork``: each class task's try
    runs in a process forked for it (``engine.forked``), as Luigi's ``--workers N`` runs them.
    """
    clock = clock or SystemClock()
    resolved = flow.resolve_params(params)
    when = as_aware(logical_date, flow.tz) if logical_date is not None else clock.now()
    interval = flow.schedule.interval_starting(when)
    chosen = run_id or make_run_id(run_type, when)
    if recording is not None and run_id is None:
        chosen = recording.free_run_id(flow.flow_id, chosen)
    info = RunInfo(
        flow_id=flow.flow_id,
        run_id=chosen,
        logical_date=when,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        params=resolved,
        conf=dict(conf or {}),
        run_type=run_type,
        timezone=flow.tz,
    )
    plain = type(flow).materialize is Flow.materialize and type(flow).to_graph is Flow.to_graph
    if graph is not None and plain:
        operators: Mapping[str, Any] = flow.tasks  # what Flow.materialize gives, without compiling again
    else:
        graph, operators = flow.materialize(params=resolved, logical_date=when)
    # An operator flow's run graph is its graph, and so is a build's when nothing was already
    # complete: the recording need not compile it again.
    same = plain or (
        isinstance(flow, ClassTaskFlow)
        and flow.fixed_roots
        and not any(n.extra.get("already_complete") for n in graph.nodes.values())
    )
    definition = graph if same else None
    if only is not None:
        graph = _subgraph(graph, set(only))
    if services is None:
        from ductwork.engine.services_setup import build_task_services

        services = build_task_services()
    results: _StorableResults = _StorableResults(allow_pickle=allow_pickle)
    earlier = _earlier_tries(recording, graph, services)
    if earlier is not None:
        results = _WithEarlierRuns(info.key, earlier.results, allow_pickle=allow_pickle)
        services = replace(services, cache=earlier.cache)
    for task_id, value in (seed_results or {}).items():
        results.push(info.key, task_id, "return_value", value)
    summary = RunSummary(flow.flow_id, info.run_id, graph, results, started_at=clock.now())
    recorder = MemoryRecorder(summary)
    sources = current_sources()

    def resolve(node: NodeSpec) -> Any:
        with use_sources(sources):
            return operators.get(node.task_id) or flow.resolve_operator(node)

    extra_sinks = list(sinks)
    journal: JournalWriter | None = None
    flush_interval = 0.0
    if recording is not None:
        extra_sinks.append(recording.begin(info, graph, definition=definition))
        journal = recording.journal
        flush_interval = recording.flush_interval if journal is not None else 0.0
    timeout = graph.meta.run_timeout
    executor = InProcessExecutor(
        resolve,
        results,
        clock,
        parallelism=parallelism,
        services=services,
        journal=journal,
        threads_only=timeout is not None,  # the loop must stay free to stop a try at the deadline
        fork=fork,
    )
    if len({node.priority_weight for node in graph.nodes.values()}) > 1:
        # Luigi's priority, Airflow's priority_weight: the next try is the most urgent of the
        # ready ones when a thread is free, not one queued ahead before it became ready.
        executor.prefetch = 0
    log_path = (lambda run, task_id, n: try_log_path(log_dir, run, task_id, n)) if log_dir else None
    supervisor = Supervisor(
        executor,
        clock,
        [recorder, *extra_sinks],
        limits=limits,
        log_path=log_path,
        flush_interval=flush_interval,
        wait_for_missing=False,
        wind_down=wind_down,
    )
    if recording is not None:  # a long try running alone shows as running while it runs
        executor.report_early = supervisor.record_now
    executor.stand_in = supervisor.stand_in  # other branches go on while a long try holds the loop
    deadline = clock.now() + dt.timedelta(seconds=timeout) if timeout is not None else None
    supervisor.add_run(info, graph, states=states_from_nodes(graph.nodes), deadline=deadline)
    unwatch = recording.watch(executor.cancel_all) if recording is not None else None
    stopped: BaseException | None = None
    # The routing lasts until the tries' threads have ended: a try stopped by Ctrl-C logs its end
    # into its own log (it was printed on the terminal, traceback and all, after the routing).
    with logcapture.routing():
        try:
            supervisor.run_until_done()
        except BaseException as exc:  # Ctrl-C, SIGTERM, or the run cancelled from outside (RunStopped)
            stopped = exc
            for key in supervisor.in_flight():  # what the tries started stops with them (on_kill)
                executor.cancel(key, _stop_reason(exc))
            raise
        finally:
            if unwatch is not None:
                unwatch()
            executor.shutdown(wait=True)
            if not isinstance(stopped, RunStopped):  # a cancel from outside recorded the end already
                if stopped is not None:
                    supervisor.absorb(executor.drain(), reason=_stop_reason(stopped) + " before it started")
                supervisor.flush()  # interrupted: record what happened up to here
            if stopped is not None and recording is not None:
                recording.interrupted(_stop_reason(stopped))
    summary.logs = logcapture.TryLogs({(key.task_id, key.try_number): sink for key, sink in executor.sinks.items()})
    for key, sink in executor.sinks.items():
        if sink.path is not None:
            for t in summary.tasks[key.task_id].tries:
                if t.try_number == key.try_number:
                    packed = sink.packed  # where the text is: its own file, or a range of the pack
                    t.log_path = packed[0] if packed else str(sink.path)
                    t.log_range = (packed[1], packed[2]) if packed else None
    _flow_callbacks(flow, summary, info)
    if recording is not None:
        recording.finish(summary)
    return summary


def _stop_reason(exc: BaseException) -> str:
    if isinstance(exc, RunStopped):
        return "the run was cancelled from outside while a command ran it in-process"
    if isinstance(exc, KeyboardInterrupt):
        return "the command running it in-process was interrupted (Ctrl-C)"
    if isinstance(exc, CommandTerminated):
        return "the command running it in-process was terminated (SIGTERM)"
    return f"the command running it in-process stopped: {type(exc).__name__}: {exc}"


def _earlier_tries(recording: Recording | None, graph: FlowGraph, services: TaskServices) -> EarlierTries | None:
    """A recorded run of a flow with cached tasks remembers and reuses tries (only then: a run
    without cached tasks asks nothing more of the store). Services that bring their own cache
    store keep it."""
    if recording is None or services.cache is not None:
        return None
    if not any(node.extra.get("cache") for node in graph.nodes.values()):
        return None
    return recording.earlier_tries()


def _subgraph(graph: Any, keep: set[str]) -> Any:
    from ductwork.core.graph import FlowGraph

    unknown = keep - set(graph.nodes)
    if unknown:
        from ductwork.errors import NotFoundError, did_you_mean

        name = sorted(unknown)[0]
        raise NotFoundError(f"flow {graph.flow_id!r} has no task {name!r}.{did_you_mean(name, graph.nodes)}")
    nodes = {
        t: replace(n, upstream=tuple(u for u in n.upstream if u in keep)) for t, n in graph.nodes.items() if t in keep
    }
    return FlowGraph(graph.meta, nodes, graph.groups)


def _flow_callbacks(flow: Flow, summary: RunSummary, info: RunInfo) -> None:
    extra: dict[str, Any] = {"summary": summary}
    if summary.state.value == "failed" and summary.reason.startswith("the run timed out"):
        extra["reason"] = "timed_out"
    call_flow_callbacks(flow, summary.state.value, info, extra=extra)


def call_flow_callbacks(
    flow: Flow,
    state: str,
    info: RunInfo,
    *,
    extra: Mapping[str, Any] | None = None,
    errors: list[str] | None = None,
) -> int:
    """Call the flow's success or failure callbacks for a run that ended in ``state``; a failing
    callback is logged (and its traceback added to ``errors``: the scheduler calls callbacks in
    a child process whose log nobody reads) and does not change the run. Returns how many were
    called."""
    callbacks = flow.on_failure_callback if state == "failed" else flow.on_success_callback
    if not callbacks:
        return 0
    context = TaskContext(
        {
            "flow": flow,
            "flow_id": flow.flow_id,
            "run_id": info.run_id,
            "run_type": info.run_type,
            "run_state": state,
            "reason": "task_failure" if state == "failed" else "success",  # Airflow's words
            "params": dict(info.params),
            "conf": dict(info.conf),
            "logical_date": info.logical_date,
            "data_interval_start": info.data_interval_start,
            "data_interval_end": info.data_interval_end,
            **(extra or {}),
        }
    )
    adapt = getattr(flow, "adapt_callback_context", None)  # the Airflow shim adds dag, dag_run...
    if adapt is not None:
        context = adapt(context)
    for callback in callbacks:
        try:
            callback(context)
        except Exception:
            import logging
            import traceback

            logging.getLogger("ductwork").exception("flow callback %r failed", callback)
            if errors is not None:
                name = getattr(callback, "__qualname__", repr(callback))
                errors.append(f"{name}: {traceback.format_exc().rstrip()}")
    return len(callbacks)
