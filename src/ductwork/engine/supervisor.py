"""The run loop: ready tasks to the executor, executor events back into the trackers.

One ``Supervisor`` drives any number of active runs through one executor. Each ``step``
releases retries that are due, dispatches ready tasks within the limits (parallelism, pools,
resources, per-flow concurrency), waits for executor events and applies them, and hands every
resulting state change to the sinks in one batch, so a persistent sink can write a whole step in
one transaction. It does not sleep when there is work: a finished try is applied, and its
downstream dispatched, in the same step.

The in-process runner (``ductwork run``, ``ductwork.testing``) and the persistent scheduler both
use this loop; they differ only in their executor and sinks.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ductwork.core.clock import Clock
from ductwork.core.context import RunInfo
from ductwork.core.events import (
    EngineEvent,
    EventSink,
    NodesAdded,
    RunEnded,
    StateChanged,
    TryBegan,
    TryEnded,
    TryOutcome,
    TryRendered,
)
from ductwork.core.graph import DEFAULT_POOL, FlowGraph, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.engine.class_ledger import RUN, WAIT, ClassTaskLedger
from ductwork.engine.executor import (
    Executor,
    ExecutorEvent,
    FieldsRendered,
    TryFinished,
    TryKey,
    TryRequest,
    TryStarted,
)
from ductwork.engine.tracker import Change, RunTracker

S = TaskState

_MAX_BLOCKED_SCAN = 64
"""How many ready tasks blocked by a pool or resource one dispatch looks past, per run."""

log = logging.getLogger("ductwork.scheduler")


# The events handed to sinks live in ``core.events`` (the store persists them).
# --- limits ----------------------------------------------------------------------------------
@dataclass
class Limits:
    """Concurrency limits shared by all runs of one supervisor.

    ``pools`` maps pool names to slots (``default_pool`` is unlimited unless set). ``resources``
    maps Luigi-style resource names to amounts; as in Luigi, a resource that is not configured
    has an amount of 1.
    """

    pools: dict[str, int] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    pool_used: dict[str, int] = field(default_factory=dict)
    resource_used: dict[str, int] = field(default_factory=dict)
    pool_elsewhere: dict[str, int] = field(default_factory=dict)
    """Slots held by the tries of runs other schedulers hold (several on one database)."""
    flow_tasks_elsewhere: dict[str, int] = field(default_factory=dict)
    """Tasks queued or running in runs of each flow that other schedulers hold: a flow's
    ``max_active_tasks`` counts them too."""
    pools_known: bool = False
    """``pools`` lists every pool there is (the scheduler's, from the database): a task naming
    another one is told about once, as a misspelt pool would otherwise lift its limit unseen."""
    _unknown_told: set[str] = field(default_factory=set)

    def fits(self, node: NodeSpec) -> bool:
        capacity = self.pools.get(node.pool)
        if capacity is None:
            if self.pools_known and node.pool != DEFAULT_POOL and node.pool not in self._unknown_told:
                self._unknown_told.add(node.pool)
                log.warning(
                    "task %s uses pool %r, which does not exist: it runs without a pool limit "
                    "(create it with `ductwork pools set %s SLOTS`)",
                    node.task_id,
                    node.pool,
                    node.pool,
                )
        elif self.pool_used.get(node.pool, 0) + self.pool_elsewhere.get(node.pool, 0) + node.pool_slots > capacity:
            if node.pool_slots > capacity:
                self._tell_never(node, f"{node.pool_slots} slots of pool {node.pool!r}, which has {capacity}")
            return False
        for name, amount in node.resources.items():
            available = self.resources.get(name, 1)
            if self.resource_used.get(name, 0) + amount > available:
                if amount > available:
                    self._tell_never(node, f"{amount} of resource {name!r}, of which there is {available}")
                return False
        return True

    def _tell_never(self, node: NodeSpec, need: str) -> None:
        """A task that needs more than there is waits for ever: said once (Airflow logs it too)."""
        if node.task_id not in self._unknown_told:
            self._unknown_told.add(node.task_id)
            log.warning(
                "task %s needs %s: it cannot start until that grows (ductwork pools set / [resources])",
                node.task_id,
                need,
            )

    def acquire(self, node: NodeSpec) -> None:
        self.pool_used[node.pool] = self.pool_used.get(node.pool, 0) + node.pool_slots
        for name, amount in node.resources.items():
            self.resource_used[name] = self.resource_used.get(name, 0) + amount

    def release(self, node: NodeSpec) -> None:
        self.pool_used[node.pool] = self.pool_used.get(node.pool, 0) - node.pool_slots
        for name, amount in node.resources.items():
            self.resource_used[name] = self.resource_used.get(name, 0) - amount


# --- one active run --------------------------------------------------------------------------
_LONG_AGO = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class ActiveRun:
    info: RunInfo
    graph: FlowGraph
    tracker: RunTracker
    tries: dict[str, int] = field(default_factory=dict)
    due: dict[str, dt.datetime] = field(default_factory=dict)
    in_flight: dict[str, TryKey] = field(default_factory=dict)
    max_tries: dict[str, int] = field(default_factory=dict)
    resuming: set[str] = field(default_factory=set)
    log_paths: dict[str, str] = field(default_factory=dict)
    started: bool = False
    max_active_tasks: int | None = None
    deadline: dt.datetime | None = None
    """When the run's ``run_timeout`` passes (None: it has none)."""
    try_started: dict[str, dt.datetime] = field(default_factory=dict)
    """When each running try began, for the end recorded when a timeout stops it."""
    since: dt.datetime = _LONG_AGO
    """When the run was created: a class task another run completed before then is not this
    run's to take (``engine.class_ledger``)."""
    cleared_at: dict[str, dt.datetime] = field(default_factory=dict)
    """When tasks that had ended were cleared (after ``since``): they run again, whoever else
    completed them before."""

    def built_since(self, task_id: str) -> dt.datetime:
        """Completions of ``task_id`` by other runs before this are not this run's to take."""
        return max(self.since, self.cleared_at.get(task_id, self.since))

    @property
    def key(self) -> str:
        return self.info.key


LimitsGuard = Callable[[Sequence["ActiveRun"]], AbstractContextManager[object]]
"""Held from the counting of the limits to the recording of the queued tries (``Supervisor``)."""


class Supervisor:
    def __init__(
        self,
        executor: Executor,
        clock: Clock,
        sinks: Iterable[EventSink] = (),
        *,
        limits: Limits | None = None,
        log_path: LogPathFn | None = None,
        record_before_submit: bool = False,
        flush_interval: float = 0.0,
        gate: Callable[[ActiveRun, NodeSpec], bool] | None = None,
        wait_for_missing: bool = True,
        ledger: ClassTaskLedger | None = None,
        wind_down: Callable[[], str | None] | None = None,
        limits_guard: LimitsGuard | None = None,
    ) -> None:
        """``record_before_submit``: flush the sinks (record tries as queued) before a try is
        handed to the executor; needed when workers check the store before they start a try,
        not when they journal their tries (then the step is recorded while the tries run).
        ``flush_interval``: while tries are running, hand events to the sinks at most this often
        (one transaction for many tries); 0 records every step. Only safe when tries are made
        durable elsewhere (the workers' journal). ``gate``: a last word on whether a ready task
        may start now (``depends_on_past``); a task it refuses waits and is asked again.
        ``wait_for_missing``: check a missing external input again later (a scheduler) or leave
        it pending and let the run end (an in-process build). ``ledger``: run each class task
        once across runs (``engine.class_ledger``). ``wind_down``: asked every step; once it
        gives a reason, nothing new starts (no task, no due retry), and each run ends failed
        with that reason when its tries in flight have ended (a build told to hand over).
        ``limits_guard``: held around each dispatch that has ready tasks, from the counting of
        the limits to the recording of the queued tries: several schedulers sharing pools and
        flows' ``max_active_tasks`` take turns there, each counting what the others queued
        (``Limits.pool_elsewhere``, which the guard refreshes)."""
        self.executor = executor
        self.clock = clock
        self.sinks = list(sinks)
        self.limits = limits or Limits()
        self.log_path = log_path
        self.record_before_submit = record_before_submit
        self.flush_interval = flush_interval
        self.gate = gate
        self.wait_for_missing = wait_for_missing
        self.ledger = ledger
        self.wind_down = wind_down
        self.limits_guard = limits_guard
        self.winding_down: str | None = None
        """Why nothing new starts any more (``wind_down`` said so)."""
        self._next_flush = 0.0
        self._run_ended_pending = False
        self._held: tuple[list[EngineEvent], int] | None = None
        """A batch a sink failed to record, and the index of that sink."""
        self.paused = False
        """No new tries are dispatched, and nothing is recorded until ``flush()`` (the scheduler
        sets it while its database is unreachable); tries in flight still end and are applied."""
        self.holding = False
        """Nothing new starts (no task, no due retry) and no run is ended for being unable to
        move: a stopping scheduler waits for its tries in flight and leaves the rest of each run
        as it is, for the next scheduler. Ends are applied and recorded as usual."""
        self.runs: dict[str, ActiveRun] = {}
        self._pending: list[EngineEvent] = []

    # --- runs -------------------------------------------------------------------------------
    def add_run(
        self,
        info: RunInfo,
        graph: FlowGraph,
        *,
        states: Mapping[str, TaskState] | None = None,
        tries: Mapping[str, int] | None = None,
        max_tries: Mapping[str, int] | None = None,
        deadline: dt.datetime | None = None,
        created: dt.datetime | None = None,
    ) -> ActiveRun:
        """``deadline``: when the run times out (its start plus the flow's ``run_timeout``);
        ``created``: when the run was created (default: now)."""
        tracker = RunTracker(graph.nodes, states)
        now = self.clock.now()
        run = ActiveRun(
            info,
            graph,
            tracker,
            dict(tries or {}),
            max_tries=dict(max_tries or {}),
            max_active_tasks=graph.meta.max_active_tasks,
            deadline=deadline,
            since=created or now,
        )
        self.runs[info.key] = run
        if self.ledger is not None and states:
            self.ledger.seed(info.key, graph.nodes, states, now)
        return run

    @property
    def idle(self) -> bool:
        return not self.runs

    def adopt(self, run_key: str, task_id: str, try_number: int) -> TryKey:
        """Count a try that some other process is running (found running after a restart) as
        in flight; its end arrives later through ``feed``."""
        run = self.runs[run_key]
        key = TryKey(run_key, task_id, try_number)
        run.tries[task_id] = max(run.tries.get(task_id, 0), try_number)
        run.in_flight[task_id] = key
        self.limits.acquire(run.tracker.nodes[task_id])
        if self.ledger is not None:
            self.ledger.claim(run.tracker.nodes[task_id], key)
        return key

    def feed(self, events: Sequence[ExecutorEvent]) -> None:
        """Apply events that did not come from the executor (adopted tries), then dispatch."""
        now = self.clock.now()
        for event in events:
            self._apply(event, now)
        self._dispatch(now)
        self._finish_runs()
        self._flush()

    def absorb(self, events: Sequence[ExecutorEvent], *, reason: str = "the run was stopped") -> None:
        """Apply the starts and ends of the tries stopped with an interrupted run (Ctrl-C,
        SIGTERM), starting nothing: the record then says which tasks ran and why they ended
        (a try stopped before its start reached the loop was recorded queued, then failed
        under a try that never appeared). The tasks that had not started are skipped first, as
        ``runs cancel`` leaves them: decided after the stopped tries' failures they were
        ``upstream_failed``, as if an upstream task had failed by itself."""
        now = self.clock.now()
        for run in self.runs.values():
            waiting = [t for t, state in run.tracker.state.items() if state in (TaskState.NONE, TaskState.SCHEDULED)]
            if waiting:
                changes = run.tracker.skip(waiting, recursive=False, reason=reason)
                self._emit_changes(run, changes, now)
        for event in events:
            self._apply(event, now)

    def in_flight(self) -> list[TryKey]:
        return [key for run in self.runs.values() for key in run.in_flight.values()]

    def started_in_flight(self) -> list[TryKey]:
        """The tries in flight whose start the executor reported (the others wait in its line)."""
        return [key for run in self.runs.values() for task, key in run.in_flight.items() if task in run.try_started]

    def replace_run(
        self,
        info: RunInfo,
        graph: FlowGraph,
        *,
        states: Mapping[str, TaskState],
        tries: Mapping[str, int],
        due: Mapping[str, dt.datetime] | None = None,
        deadline: dt.datetime | None = None,
        created: dt.datetime | None = None,
    ) -> ActiveRun:
        """Rebuild a run's tracker from recorded states (someone cleared or marked tasks),
        keeping the tries that are in flight."""
        old = self.runs.get(info.key)
        run = self.add_run(info, graph, states=states, tries=tries, deadline=deadline, created=created)
        if old is not None:
            run.in_flight = old.in_flight
            run.try_started = old.try_started
            run.cleared_at = old.cleared_at
            now = self.clock.now()
            for task_id, state in states.items():
                if state == S.NONE and old.tracker.state.get(task_id, S.NONE) != S.NONE:
                    run.cleared_at[task_id] = now
            for task_id, key in old.in_flight.items():
                run.tries[task_id] = max(run.tries.get(task_id, 0), key.try_number)
        for task_id, at in (due or {}).items():
            if states.get(task_id) in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE):
                run.due[task_id] = at
        return run

    def abandon(self, run_key: str, task_id: str) -> TryKey | None:
        """Stop counting a task's try as in flight (its state was set from outside while it ran):
        its outcome, when it comes, is ignored. The caller stops the try."""
        run = self.runs.get(run_key)
        key = run.in_flight.pop(task_id, None) if run is not None else None
        if run is not None and key is not None:
            node = run.tracker.nodes[task_id]
            self.limits.release(node)
            if self.ledger is not None:
                self.ledger.release(node, key, succeeded=False, at=self.clock.now())
        return key

    def drop_run(self, run_key: str) -> ActiveRun | None:
        """Forget a run (its state changed elsewhere); returns it so the caller can re-add it."""
        run = self.runs.pop(run_key, None)
        if run is not None:
            for key in run.in_flight.values():
                self.limits.release(run.tracker.nodes[key.task_id])
                if self.ledger is not None:
                    self.ledger.release(run.tracker.nodes[key.task_id], key, succeeded=False, at=self.clock.now())
        return run

    def run_until_done(self) -> None:
        while self.runs:
            self.step(timeout=None)

    # --- the loop ---------------------------------------------------------------------------
    def step(self, timeout: float | None) -> None:
        """One turn: start, release due retries, dispatch, wait, apply, record."""
        now = self.clock.now()
        self._ask_wind_down()
        for run in list(self.runs.values()):
            if run.deadline is not None and now >= run.deadline:
                self._time_out(run, now)
                continue
            if not run.started:
                run.started = True
                self._emit_changes(run, run.tracker.start(), now)
            self._release_due(run, now)
        self._dispatch(now)
        self._finish_runs()
        in_flight = sum(len(r.in_flight) for r in self.runs.values())
        self._flush(force=in_flight == 0)
        if not self.runs:
            return
        wait = self._wait_time(timeout)
        if in_flight == 0:
            if wait is None:
                self._finish_runs(force=True)
                self._flush(force=True)
                return
            self.clock.sleep(wait)
            return
        if self._pending:
            until_flush = max(0.0, self._next_flush - time.monotonic())
            wait = until_flush if wait is None else min(wait, until_flush)
        events = self.executor.wait(wait)
        events += self.executor.heartbeat()
        now = self.clock.now()
        for event in events:
            self._apply(event, now)
        self._dispatch(now)
        self._finish_runs()
        self._flush(force=not any(r.in_flight for r in self.runs.values()))

    def _wait_time(self, timeout: float | None) -> float | None:
        now = self.clock.now()
        dues = [at for run in self.runs.values() for at in run.due.values()]
        wait = timeout
        busy = bool(dues) or any(run.in_flight for run in self.runs.values())
        if busy:  # a run that can no longer move ends now (step), not at its deadline
            dues += [run.deadline for run in self.runs.values() if run.deadline is not None]
        if dues:
            until = max(0.0, (min(dues) - now).total_seconds())
            wait = until if wait is None else min(wait, until)
        return wait

    def _ask_wind_down(self) -> bool:
        """Whether nothing new may start (``wind_down`` said so, now or before)."""
        if self.winding_down is None and self.wind_down is not None and (why := self.wind_down()):
            self.winding_down = why
            for run in self.runs.values():
                run.due.clear()  # a retry not yet due is not taken either: it is left as it is
        return self.winding_down is not None

    def _release_due(self, run: ActiveRun, now: dt.datetime) -> None:
        if self.winding_down is not None:
            run.due.clear()
            return
        if self.holding:
            return
        for task_id, at in list(run.due.items()):
            if at <= now:
                del run.due[task_id]
                if run.tracker.state[task_id] == S.UP_FOR_RESCHEDULE:
                    run.resuming.add(task_id)
                self._emit_changes(run, run.tracker.set_state(task_id, S.SCHEDULED, "retry due"), now)

    def _dispatch(self, now: dt.datetime) -> None:
        """Queue what may start and hand it to the executor (recording the queued state first
        when ``record_before_submit``)."""
        if self.paused or self.holding or self._ask_wind_down():
            return
        for run in list(self.runs.values()):
            self._succeed_free(run, now)
        free = self.executor.free_slots()
        if free <= 0:
            return
        runs = [run for run in self.runs.values() if run.tracker.has_ready()]
        if not runs:
            return
        if self.limits_guard is None:
            requests = self._queue_ready(runs, free, now)
        else:
            with self.limits_guard(runs):
                requests = self._queue_ready(runs, free, now)
        if requests:
            for request in requests:
                self.executor.submit(request)
            self.executor.submitted()

    def _queue_ready(self, runs: list[ActiveRun], free: int, now: dt.datetime) -> list[TryRequest]:
        """Queue the ready tasks that fit, best first, and record them as queued when
        ``record_before_submit``: the tries to hand to the executor."""
        requests: list[TryRequest] = []
        per_flow: dict[str, int] = dict(self.limits.flow_tasks_elsewhere)
        for run in self.runs.values():
            per_flow[run.info.flow_id] = per_flow.get(run.info.flow_id, 0) + len(run.in_flight)
        # The best ready task of all runs goes first, as Airflow orders by priority_weight across
        # runs (the older run first among equals): a run keeps its turn while its best ready task
        # is the best there is. ``order`` holds each run with ready tasks under that task's weight.
        order: list[tuple[int, int]] = []
        for index, run in enumerate(runs):
            top = run.tracker.top_priority()
            if top is not None:
                order.append((-top, index))
        heapq.heapify(order)
        blocked: dict[int, list[str]] = {}
        while free > 0 and order:
            index = order[0][1]
            run = runs[index]
            held = blocked.setdefault(index, [])
            budget = free
            if run.max_active_tasks is not None:  # per flow, across its runs (Airflow's meaning)
                budget = min(budget, run.max_active_tasks - per_flow[run.info.flow_id])
            ready = run.tracker.take_ready(1) if budget > 0 and len(held) < _MAX_BLOCKED_SCAN else []
            if not ready:
                heapq.heappop(order)
                continue
            node = run.tracker.nodes[ready[0]]
            verdict = RUN if self.ledger is None else self.ledger.verdict(run.key, node, run.built_since(node.task_id))
            if verdict == WAIT or not self.limits.fits(node) or (self.gate is not None and not self.gate(run, node)):
                held.append(node.task_id)
            elif verdict != RUN:  # another run completed this class task: its success is this run's
                reason = f"done by run {verdict.split('/', 1)[1]} (a class task runs once)"
                self._emit_changes(run, run.tracker.set_state(node.task_id, S.SUCCESS, reason, manual=True), now)
            else:
                requests.append(self._queue(run, node, now))
                free -= 1
                per_flow[run.info.flow_id] += 1
            top = run.tracker.top_priority()
            if top is None:
                heapq.heappop(order)
            else:
                heapq.heapreplace(order, (-top, index))
        for index, held in blocked.items():
            runs[index].tracker.push_back(held)
            self._succeed_free(runs[index], now)  # any that a class task done by another run made ready
        if requests and self.record_before_submit:
            try:
                self._flush()
            except BaseException:  # not recorded as queued, so not handed over: ready again
                for request in requests:
                    self._unqueue(request, now)
                raise
        return requests

    def _succeed_free(self, run: ActiveRun, now: dt.datetime) -> None:
        """Every ready task of ``run`` with nothing to run, and those their ends make ready, as
        succeeded (``_succeed_at_once``), whatever the slots; ``depends_on_past`` still holds
        one back (the gate), until a later dispatch."""
        held: list[str] = []
        while ready := run.tracker.take_free():
            for task_id in ready:
                node = run.tracker.nodes[task_id]
                if self.gate is not None and not self.gate(run, node):
                    held.append(task_id)
                    continue
                self._succeed_at_once(run, node, now)
        run.tracker.push_back(held)

    def _succeed_at_once(self, run: ActiveRun, node: NodeSpec, now: dt.datetime) -> None:
        """A try with nothing to do (``RUNS_NOTHING``: an ``EmptyOperator`` with no callbacks or
        assets) is recorded as started and succeeded here, as Airflow's scheduler does: no
        worker, slot, pool slot or log. Its downstream tasks are ready within this dispatch."""
        task_id = node.task_id
        try_number = run.tries.get(task_id, 0) + 1
        holds = getattr(self.executor, "holds", None)
        while holds is not None and holds(TryKey(run.key, task_id, try_number)):
            # A try of this task that a change from outside stopped (its run let go of and loaded
            # again) has not left the executor yet: the new one takes the next number.
            try_number += 1
        run.tries[task_id] = try_number
        key = TryKey(run.key, task_id, try_number)
        self._emit_changes(run, run.tracker.set_state(task_id, S.QUEUED, "nothing to run"), now)
        self.limits.acquire(node)  # released by the try's end, as for any other
        run.in_flight[task_id] = key
        run.resuming.discard(task_id)
        run.log_paths.pop(task_id, None)
        # The end alone: it records the try (started and ended at ``now``) and the running state.
        self._apply(TryFinished(key, TryOutcome(S.SUCCESS, now, now)), now)

    def _unqueue(self, request: TryRequest, now: dt.datetime) -> None:
        run = self.runs[request.key.run_key]
        task_id = request.key.task_id
        del run.in_flight[task_id]
        node = run.tracker.nodes[task_id]
        self.limits.release(node)
        if self.ledger is not None:
            self.ledger.release(node, request.key, succeeded=False, at=self.clock.now())
        run.tries[task_id] = request.key.try_number - 1
        self._emit_changes(run, run.tracker.set_state(task_id, S.SCHEDULED, "not handed over"), now)

    def _queue(self, run: ActiveRun, node: NodeSpec, now: dt.datetime) -> TryRequest:
        task_id = node.task_id
        try_number = run.tries.get(task_id, 0) + 1
        holds = getattr(self.executor, "holds", None)
        while holds is not None and holds(TryKey(run.key, task_id, try_number)):
            # A try of this task that a change from outside stopped (its run let go of and loaded
            # again) has not left the executor yet: the new one takes the next number.
            try_number += 1
        run.tries[task_id] = try_number
        key = TryKey(run.key, task_id, try_number)
        self._emit_changes(run, run.tracker.set_state(task_id, S.QUEUED, "dispatched"), now)
        self.limits.acquire(node)
        run.in_flight[task_id] = key
        if self.ledger is not None:
            self.ledger.claim(node, key)
        run.resuming.discard(task_id)
        log_path = self.log_path(run.info, task_id, try_number) if self.log_path else None
        if log_path is not None:
            run.log_paths[task_id] = log_path
        return TryRequest(
            key=key,
            node=node,
            run=run.info,
            downstream=tuple(run.tracker.down[task_id]),
            log_path=log_path,
            max_tries=run.max_tries.get(task_id),
            resumed=task_id in run.resuming,
            flow_file=run.graph.meta.fileloc,
        )

    def record_now(self, events: Sequence[ExecutorEvent]) -> None:
        """Apply and record events that an executor hands over while the loop is blocked in its
        ``wait`` (a long try running alone in the loop's own thread: ``executors.inline``).
        Unlike ``feed`` it neither dispatches nor ends runs: the loop does, once its wait returns."""
        now = self.clock.now()
        for event in events:
            self._apply(event, now)
        self._flush(force=True)

    def stand_in(self, events: Sequence[ExecutorEvent]) -> None:
        """The loop's work on events an executor hands over while the loop is blocked in its
        ``wait`` by a long try running in its own thread (``executors.inline``): apply them,
        dispatch what they made ready, record by time. Runs cannot end meanwhile (that try is
        in flight); the loop ends them once its wait returns."""
        now = self.clock.now()
        for event in events:
            self._apply(event, now)
        for run in self.runs.values():  # retries and reschedules that came due meanwhile
            self._release_due(run, now)
        self._dispatch(now)
        self._flush(force=False)

    def _apply(self, event: ExecutorEvent, now: dt.datetime) -> None:
        run = self.runs.get(event.key.run_key)
        if run is None or run.in_flight.get(event.key.task_id) != event.key:
            return  # a try that was cleared or cancelled meanwhile
        task_id = event.key.task_id
        if isinstance(event, FieldsRendered):
            self._pending.append(TryRendered(run.key, task_id, event.key.try_number, event.rendered))
            return
        if isinstance(event, TryStarted):
            run.try_started[task_id] = event.at
            if run.tracker.state[task_id] == S.QUEUED:
                self._emit_changes(run, run.tracker.set_state(task_id, S.RUNNING, "started"), now)
            self._pending.append(
                TryBegan(
                    run.key,
                    task_id,
                    event.key.try_number,
                    event.at,
                    event.worker,
                    run.log_paths.get(task_id),
                    event.pid,
                    event.rendered,
                )
            )
            return
        self._finish_try(run, event.key, event.outcome, now)

    def _finish_try(self, run: ActiveRun, key: TryKey, outcome: TryOutcome, now: dt.datetime) -> None:
        task_id = key.task_id
        node = run.tracker.nodes[task_id]
        del run.in_flight[task_id]
        run.try_started.pop(task_id, None)
        self.limits.release(node)
        if self.ledger is not None:
            self.ledger.release(node, key, succeeded=outcome.state == S.SUCCESS, at=now)
        if outcome.missing and not self.wait_for_missing and outcome.next_try_at is not None:
            # Left pending for good (an in-process build ends without it): no check is due.
            outcome = replace(outcome, next_try_at=None)
        self._pending.append(TryEnded(run.key, task_id, key.try_number, outcome))
        tracker = run.tracker
        if tracker.state[task_id] == S.QUEUED and outcome.state not in (S.FAILED, S.UP_FOR_RETRY):
            self._emit_changes(run, tracker.set_state(task_id, S.RUNNING, "started"), now)
        state = outcome.state
        if state == S.SUCCESS and outcome.skip:
            self._emit_changes(
                run,
                tracker.skip(
                    outcome.skip, recursive=outcome.skip_recursive, reason=f"skipped by {task_id}", branch=task_id
                ),
                now,
            )
        if state == S.NONE:
            run.tries[task_id] = key.try_number - 1  # waiting for dynamic dependencies is not a try
            new_nodes = _within(outcome.new_nodes, tracker.nodes)
            self._pending.append(NodesAdded(run.key, new_nodes))
            self._emit_changes(run, tracker.add_nodes(new_nodes, waiting=task_id), now)
            return
        reason = outcome.error or ""
        self._emit_changes(run, tracker.set_state(task_id, state, reason), now)
        if state == S.UP_FOR_RESCHEDULE:
            # A reschedule does not use up a try; the event above names the try that ran (the
            # store gives it back too).
            run.tries[task_id] = key.try_number - 1
        if state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE) and (self.wait_for_missing or not outcome.missing):
            run.due[task_id] = outcome.next_try_at or now

    def _finish_runs(self, *, force: bool = False) -> None:
        for run in list(self.runs.values()):
            wound = self.winding_down is not None and not run.tracker.finished
            forced = force and not run.due and not self.holding
            if not run.in_flight and (run.tracker.finished or wound or forced):
                state = RunState(run.tracker.run_state())
                if state == RunState.RUNNING:  # nothing can move: report what is left as failed
                    state = RunState.FAILED
                why = (self.winding_down or "") if wound else ""
                self._pending.append(RunEnded(run.key, state, self.clock.now(), why))
                self._run_ended_pending = True
                del self.runs[run.key]

    def _time_out(self, run: ActiveRun, now: dt.datetime) -> None:
        """The run has run longer than its flow's ``run_timeout`` (Airflow's ``dagrun_timeout``):
        its tries in flight are stopped and end failed, its tasks not started are skipped (not
        run, and not a failure of their own), and the run ends failed with the reason in its
        events. Airflow marks them all skipped; a stopped try failing says which work was cut."""
        why = f"the run timed out: it ran longer than its run_timeout ({_duration(run.graph.meta.run_timeout)})"
        stopped = "cancelled by run timeout"
        for task_id in list(run.in_flight):
            key = self.abandon(run.key, task_id)
            if key is None:
                continue
            self.executor.cancel(key, stopped)
            started = run.try_started.pop(task_id, now)
            outcome = TryOutcome(S.FAILED, started, now, error=stopped)
            self._pending.append(TryEnded(run.key, task_id, key.try_number, outcome))
        self._emit_changes(run, run.tracker.stop_all(skipped=f"not started: {why}", failed=stopped), now)
        self._pending.append(RunEnded(run.key, RunState.FAILED, now, reason=why))
        self._run_ended_pending = True
        del self.runs[run.key]

    def _emit_changes(self, run: ActiveRun, changes: list[Change], now: dt.datetime) -> None:
        for change in changes:
            self._pending.append(StateChanged(run.key, change, now, run.tries.get(change.task_id, 0)))

    def _flush(self, *, force: bool = True, asked: bool = False) -> None:
        """Hand the pending events to the sinks; with a ``flush_interval`` and tries in flight,
        only once that interval has passed (group commit), or at once when a run ended. While
        ``paused``, only when ``asked`` (``flush()``)."""
        if self.paused and not asked:
            return
        if not self._pending and self._held is None:
            return
        if (
            not force
            and self.flush_interval > 0
            and time.monotonic() < self._next_flush
            and not self._run_ended_pending
        ):
            return
        self._send_held()
        batch, self._pending = self._pending, []
        self._run_ended_pending = False
        self._next_flush = time.monotonic() + self.flush_interval
        if batch:
            self._send(batch, 0)

    def _send(self, batch: list[EngineEvent], first: int) -> None:
        """Hand ``batch`` to the sinks from ``first`` on; if one fails (its database is down),
        keep the batch for it and those after it, to be handed over again by the next flush."""
        for index in range(first, len(self.sinks)):
            try:
                self.sinks[index].record(batch)
            except BaseException:
                self._held = (batch, index)
                raise

    def _send_held(self) -> None:
        if self._held is not None:
            (batch, index), self._held = self._held, None
            self._send(batch, index)

    def flush(self) -> None:
        """Record every pending event now (before a shutdown, after an outage); raises what the
        sinks raise, keeping what they could not record."""
        self._flush(force=True, asked=True)

    @property
    def unrecorded(self) -> int:
        """Events the sinks have not taken yet (pending, or held after a sink failed)."""
        return len(self._pending) + (len(self._held[0]) if self._held is not None else 0)


def _duration(seconds: float | None) -> str:
    """``0:00:02`` for whole seconds (how a timedelta prints), ``0.5s`` below a second."""
    if seconds is None or seconds < 1:
        return f"{seconds}s"
    return str(dt.timedelta(seconds=round(seconds)))


class LogPathFn(Protocol):
    def __call__(self, run: RunInfo, task_id: str, try_number: int) -> str: ...


def _within(new_nodes: tuple[NodeSpec, ...], known: Mapping[str, Any]) -> tuple[NodeSpec, ...]:
    """New nodes as the run's graph can hold them: a run of part of a flow (``run_task``,
    ``tasks test``, ``--task``) has not the upstream tasks a mapped instance names (``nums`` of
    ``double[0]``), whose values it was given; those edges are left out, as for its other nodes."""
    ids = {n.task_id for n in new_nodes}
    if all(u in known or u in ids for n in new_nodes for u in n.upstream):
        return new_nodes
    return tuple(replace(n, upstream=tuple(u for u in n.upstream if u in known or u in ids)) for n in new_nodes)
