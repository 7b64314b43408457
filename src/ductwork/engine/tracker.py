"""Readiness of one run, tracked per node: the decision core of every runner and the scheduler.

The tracker holds a run's graph and task states in memory. Each node keeps a tally of how its
upstream tasks ended; when a task reaches a terminal state only its direct downstream tallies
change and only those nodes are re-decided (``trigger_rules.decide``). Nothing rescans the
graph, so the cost of a state change does not grow with the size of the run.

The tracker does no I/O and reads no clock. Every method returns the ``Change`` records it made,
and the caller persists them (or prints them): the in-process runner, the persistent scheduler
and the tests all drive the same object.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping

from ductwork.core.events import StateChange
from ductwork.core.graph import MAPPED_TASK, RUNS_NOTHING, NodeSpec
from ductwork.core.states import ACTIVE, TERMINAL, TaskState, check_transition, run_state_of
from ductwork.core.trigger_rules import Decision, TriggerRule, UpstreamTally, decide
from ductwork.errors import NotFoundError

S = TaskState


Change = StateChange
"""One task's state change, with the reason the tracker made it."""


_DECISION_STATE = {
    Decision.RUN: S.SCHEDULED,
    Decision.SKIP: S.SKIPPED,
    Decision.UPSTREAM_FAILED: S.UPSTREAM_FAILED,
}


_NO_NODE = NodeSpec("")


class RunTracker:
    """In-memory readiness and state of one run."""

    def __init__(
        self,
        nodes: Mapping[str, NodeSpec],
        states: Mapping[str, TaskState] | None = None,
    ) -> None:
        self.nodes: dict[str, NodeSpec] = dict(nodes)
        self.state: dict[str, TaskState] = {t: S.NONE for t in self.nodes}
        self.down: dict[str, list[str]] = {t: [] for t in self.nodes}
        self.tally: dict[str, UpstreamTally] = {}
        self._ready: list[tuple[int, int, str]] = []
        self._ready_free: list[str] = []
        """Ready tasks with nothing to run (``RUNS_NOTHING``): they need no slot, so they do not
        queue behind the others for one (``take_free``)."""
        self._seq = itertools.count()
        self._unfinished = len(self.nodes)
        self.spread: dict[str, dict[TaskState, int]] = {}
        """How the instances of each ended mapped task ended (its instances in its upstream):
        what its downstream tallies count where the mapped task stands, as Airflow counts each
        mapped task instance. The mapped task's own state (failed if one failed, skipped if one
        was skipped) fitted no rule that counts: ``one_success`` after instances that succeeded
        and one skipped was skipped."""
        self.collectors: set[str] = set()
        """The mapped tasks among the nodes: the tasks some node is an instance of."""
        for node in self.nodes.values():
            for up in dict.fromkeys(node.upstream):
                self.down[up].append(node.task_id)
            self._note_instance(node)
        if states:
            for task_id, state in states.items():
                if task_id in self.state:
                    self._set_raw(task_id, S(state))
            for task_id in self.state:
                self._spread_of(task_id)
        for node in self.nodes.values():
            self.tally[node.task_id] = self._count(node)
        for task_id, state in self.state.items():
            if state == S.SCHEDULED:
                self._push_ready(task_id)

    # --- queries ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._unfinished == 0

    def leaves(self) -> list[str]:
        return [t for t, d in self.down.items() if not d]

    def run_state(self) -> str:
        return run_state_of(self.state, self._judged_leaves()).value

    def _judged_leaves(self) -> list[str]:
        """The tasks whose outcome is the run's: the leaves, where a teardown task counts only
        with ``fail_run`` and the work before teardowns counts as a leaf (Airflow's rule)."""
        out = []
        for task_id, down in self.down.items():
            extra = self.nodes[task_id].extra
            if extra.get("teardown"):
                if extra.get("fail_run"):
                    out.append(task_id)
            elif all(self.nodes[d].extra.get("teardown") for d in down):
                out.append(task_id)
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for state in self.state.values():
            out[state.value] = out.get(state.value, 0) + 1
        return out

    def has_ready(self) -> bool:
        return bool(self._ready)

    def take_free(self) -> list[str]:
        """Scheduled tasks with nothing to run, in the order they became ready (``take_ready``
        never returns them)."""
        taken, self._ready_free = self._ready_free, []
        return [task_id for task_id in taken if self.state[task_id] == S.SCHEDULED]

    # --- decisions --------------------------------------------------------------------------
    def start(self) -> list[Change]:
        """Decide every waiting node whose upstream allows it (the roots, on a new run)."""
        changes: list[Change] = []
        for task_id, state in self.state.items():
            if state == S.NONE:
                self._decide(task_id, changes)
        return changes

    def take_ready(self, limit: int | None = None) -> list[str]:
        """Scheduled tasks, highest priority first, in the order they became ready."""
        out: list[str] = []
        while self._ready and (limit is None or len(out) < limit):
            _, _, task_id = heapq.heappop(self._ready)
            if self.state[task_id] == S.SCHEDULED:
                out.append(task_id)
        return out

    def ready_nodes(self) -> list[NodeSpec]:
        """The nodes ``take_ready`` would give, in no order, without taking them."""
        return [self.nodes[t] for _, _, t in self._ready if self.state[t] == S.SCHEDULED]

    def top_priority(self) -> int | None:
        """The weight of the task ``take_ready`` would give next; None when none is ready."""
        while self._ready:
            weight, _, task_id = self._ready[0]
            if self.state[task_id] == S.SCHEDULED:
                return -weight
            heapq.heappop(self._ready)  # no longer scheduled since it was pushed
        return None

    def push_back(self, task_ids: Iterable[str]) -> None:
        """Return tasks taken with ``take_ready`` that could not be started (no free slot)."""
        for task_id in task_ids:
            if self.state[task_id] == S.SCHEDULED:
                self._push_ready(task_id)

    def set_state(self, task_id: str, new: TaskState, reason: str = "", *, manual: bool = False) -> list[Change]:
        """Apply a state change and everything it implies downstream."""
        old = self._get(task_id)
        if old == new:
            return []
        check_transition(task_id, old, new, manual=manual)
        changes = [Change(task_id, old, new, reason)]
        self._set_raw(task_id, new)
        if new == S.SCHEDULED:
            self._push_ready(task_id)
        if new in TERMINAL:
            self._propagate(task_id, changes)
        return changes

    def skip(self, task_ids: Iterable[str], *, recursive: bool, reason: str, branch: str | None = None) -> list[Change]:
        """Skip waiting tasks (a branch not taken, a short circuit); ``recursive`` skips all
        tasks below them too, ignoring their trigger rules.

        With ``branch`` (the task that decided), a task that is also below a branch it followed
        is spared, as Airflow's branching does: in ``branch >> [task1, join]; task1 >> join``,
        following ``task1`` keeps ``join``, which then waits for ``task1``."""
        targets = set(task_ids)
        if recursive:
            targets |= self._below(targets)
        elif branch is not None:
            targets -= self._below(t for t in self.down[branch] if t not in targets)
        changes: list[Change] = []
        for task_id in self._in_order(targets):
            if self.state[task_id] in (S.NONE, S.SCHEDULED):
                changes.append(Change(task_id, self.state[task_id], S.SKIPPED, reason))
                self._set_raw(task_id, S.SKIPPED)
                self._propagate(task_id, changes)
        return changes

    def _below(self, starts: Iterable[str]) -> set[str]:
        """Every task downstream of ``starts``, however far (not ``starts`` themselves)."""
        found: set[str] = set()
        stack = list(starts)
        while stack:
            for nxt in self.down[stack.pop()]:
                if nxt not in found:
                    found.add(nxt)
                    stack.append(nxt)
        return found

    def stop_all(self, *, skipped: str, failed: str) -> list[Change]:
        """End every unfinished task at once (the run's ``run_timeout`` passed): the ones with a
        try (queued or running) fail, the ones waiting are skipped, each with its reason. Nothing
        downstream is decided: no task is left to decide."""
        changes: list[Change] = []
        for task_id in self.nodes:
            old = self.state[task_id]
            if old in TERMINAL:
                continue
            new, reason = (S.FAILED, failed) if old in ACTIVE else (S.SKIPPED, skipped)
            changes.append(Change(task_id, old, new, reason))
            self._set_raw(task_id, new)
        return changes

    def add_nodes(self, nodes: Iterable[NodeSpec], *, waiting: str | None = None) -> list[Change]:
        """Grow the graph (dynamic dependencies): add nodes, then decide them.

        ``waiting`` is a task that has just gained new upstream tasks and must wait for them; it
        goes back from running to NONE.
        """
        new = [n for n in nodes if n.task_id not in self.nodes or n.task_id == waiting]
        for node in new:
            if node.task_id in self.nodes:
                for up in self.nodes[node.task_id].upstream:
                    if node.task_id in self.down.get(up, []):
                        self.down[up].remove(node.task_id)
            else:
                self.state[node.task_id] = S.NONE
                self.down[node.task_id] = []
                self._unfinished += 1
            self.nodes[node.task_id] = node
        for node in new:
            for up in dict.fromkeys(node.upstream):
                self.down.setdefault(up, []).append(node.task_id)
            self._note_instance(node)
        changes: list[Change] = []
        if waiting is not None and self.state[waiting] != S.NONE:
            changes += self.set_state(waiting, S.NONE, "waiting for dynamic dependencies")
        for node in new:
            self.tally[node.task_id] = self._count(node)
        for node in new:
            if self.state[node.task_id] == S.NONE:
                self._decide(node.task_id, changes)
        return changes

    # --- internals --------------------------------------------------------------------------
    def _get(self, task_id: str) -> TaskState:
        try:
            return self.state[task_id]
        except KeyError:
            raise NotFoundError(f"no task {task_id!r} in this run") from None

    def _set_raw(self, task_id: str, new: TaskState) -> None:
        old = self.state[task_id]
        was_done, is_done = old in TERMINAL, new in TERMINAL
        if was_done:
            # The downstream tallies counted the old outcome; _propagate counts the new one.
            for nxt in self.down[task_id]:
                self._untally(self.tally.get(nxt), old, task_id)
        if was_done and not is_done:
            self._unfinished += 1
        elif is_done and not was_done:
            self._unfinished -= 1
        self.state[task_id] = new
        self._spread_of(task_id)
        collector = self.nodes[task_id].extra.get(MAPPED_TASK)
        if collector is not None and collector in self.spread and old != new:
            self._instance_changed(collector, task_id, old, new)

    # --- mapped tasks: their instances counted downstream ------------------------------------
    def _instances_of(self, task_id: str) -> list[str]:
        """The instances ``task_id`` collects: those of its upstream tasks that are its own."""
        return [
            u for u in self.nodes[task_id].upstream if self.nodes.get(u, _NO_NODE).extra.get(MAPPED_TASK) == task_id
        ]

    def _note_instance(self, node: NodeSpec) -> None:
        collector = node.extra.get(MAPPED_TASK)
        if collector is not None:
            self.collectors.add(collector)

    def _spread_of(self, task_id: str) -> None:
        """Note how the instances of ``task_id`` ended, when it has ended and has instances."""
        if task_id not in self.collectors:
            return
        self.spread.pop(task_id, None)
        if self.state[task_id] not in TERMINAL:
            return
        instances = self._instances_of(task_id)
        if instances:
            counts: dict[TaskState, int] = {}
            for instance in instances:
                state = self.state[instance]
                counts[state] = counts.get(state, 0) + 1
            self.spread[task_id] = counts

    def _instance_changed(self, collector: str, instance: str, old: TaskState, new: TaskState) -> None:
        """An instance of an ended mapped task changed (marked, say): the downstream tallies
        that count it change with it."""
        if instance not in self.nodes[collector].upstream:
            return
        counts = self.spread[collector]
        counts[old] = counts.get(old, 0) - 1
        counts[new] = counts.get(new, 0) + 1
        for nxt in self.down[collector]:
            tally = self.tally.get(nxt)
            if tally is not None:
                self._count_state(tally, old, -1)
                self._count_state(tally, new, 1)

    def _count(self, node: NodeSpec) -> UpstreamTally:
        ups = list(dict.fromkeys(node.upstream))
        tally = UpstreamTally(total=len(ups))
        if node.extra.get("teardown") and node.trigger_rule is TriggerRule.ALL_DONE_MIN_ONE_SUCCESS:
            known = self.nodes
            tally.setups = frozenset(u for u in ups if u in known and known[u].extra.get("setup"))
        for up in ups:
            self._tally_add(tally, self.state.get(up, S.NONE), up)
        return tally

    @staticmethod
    def _count_state(tally: UpstreamTally, state: TaskState, n: int) -> None:
        if state == S.SUCCESS:
            tally.success += n
        elif state == S.FAILED:
            tally.failed += n
        elif state == S.UPSTREAM_FAILED:
            tally.upstream_failed += n
        elif state == S.SKIPPED:
            tally.skipped += n

    def _tally_add(self, tally: UpstreamTally, state: TaskState, up: str) -> None:
        spread = self.spread.get(up) if state in TERMINAL else None
        if spread is None:
            self._count_state(tally, state, 1)
        else:  # an ended mapped task: its instances, one by one
            tally.total += sum(spread.values()) - 1
            for each, n in spread.items():
                self._count_state(tally, each, n)
        if tally.setups and up in tally.setups:
            if state == S.SUCCESS:
                tally.setup_success += 1
            elif state == S.FAILED or state == S.UPSTREAM_FAILED:
                tally.setup_failures += 1

    def _untally(self, tally: UpstreamTally | None, state: TaskState, up: str) -> None:
        if tally is None:
            return
        spread = self.spread.get(up) if state in TERMINAL else None
        if spread is None:
            self._count_state(tally, state, -1)
        else:
            tally.total -= sum(spread.values()) - 1
            for each, n in spread.items():
                self._count_state(tally, each, -n)
        if tally.setups and up in tally.setups:
            if state == S.SUCCESS:
                tally.setup_success -= 1
            elif state == S.FAILED or state == S.UPSTREAM_FAILED:
                tally.setup_failures -= 1

    def _push_ready(self, task_id: str) -> None:
        node = self.nodes[task_id]
        if node.extra.get(RUNS_NOTHING):
            self._ready_free.append(task_id)
            return
        heapq.heappush(self._ready, (-node.priority_weight, next(self._seq), task_id))

    def _decide(self, task_id: str, changes: list[Change]) -> None:
        node = self.nodes[task_id]
        decision = decide(node.trigger_rule, self.tally[task_id])
        if decision == Decision.WAIT:
            return
        new = _DECISION_STATE[decision]
        changes.append(Change(task_id, S.NONE, new, f"trigger rule {node.trigger_rule.value}"))
        self._set_raw(task_id, new)
        if new == S.SCHEDULED:
            self._push_ready(task_id)
        else:
            self._propagate(task_id, changes)

    def _propagate(self, task_id: str, changes: list[Change]) -> None:
        """Tell the downstream of a newly terminal task, and decide them; iterative."""
        stack = [task_id]
        while stack:
            done = stack.pop()
            state = self.state[done]
            for nxt in self.down[done]:
                self._tally_add(self.tally[nxt], state, done)
                if self.state[nxt] != S.NONE:
                    continue
                decision = decide(self.nodes[nxt].trigger_rule, self.tally[nxt])
                if decision == Decision.WAIT:
                    continue
                new = _DECISION_STATE[decision]
                changes.append(Change(nxt, S.NONE, new, f"trigger rule {self.nodes[nxt].trigger_rule.value}"))
                self._set_raw(nxt, new)
                if new == S.SCHEDULED:
                    self._push_ready(nxt)
                else:
                    stack.append(nxt)

    def _in_order(self, task_ids: set[str]) -> list[str]:
        return [t for t in self.nodes if t in task_ids]
