"""A class task runs once, whichever runs need it (Luigi's rule, kept under the scheduler).

Luigi identifies a task by its family and parameters, and its scheduler runs a task id once
however many workers ask for it. Ductwork compiles each run's graph on its own, so two runs
created together (``Flow.from_task`` with catchup, a backfill) can both contain the same class
task before either has run it. The supervisor asks this ledger before it dispatches a class
task: if another run is running it, this one waits; if another run completed it, this one takes
that success instead of running it again (the task instance says which run did it).

Completions are remembered for ``keep`` seconds (a run created later finds the task's outputs
in place and prunes it from its graph anyway).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

from ductwork.core.graph import CLASS_TASK, NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.executor import TryKey

Identity = tuple[str, str]

RUN = "run"
WAIT = "wait"


def identity(node: NodeSpec) -> Identity | None:
    """A class task's identity across runs (its module and Luigi task id); None for others."""
    return (node.module or "", node.task_id) if node.kind == CLASS_TASK else None


class ClassTaskLedger:
    def __init__(self, *, keep: float = 24 * 3600.0) -> None:
        self.keep = keep
        self.running: dict[Identity, TryKey] = {}
        self.done: OrderedDict[Identity, tuple[str, float]] = OrderedDict()

    def verdict(self, run_key: str, node: NodeSpec) -> str:
        """``RUN``, ``WAIT`` (another run runs it now), or the key of the run that completed it."""
        ident = identity(node)
        if ident is None:
            return RUN
        done = self.done.get(ident)
        if done is not None and done[0] != run_key:
            return done[0]
        holder = self.running.get(ident)
        if holder is not None and holder.run_key != run_key:
            return WAIT
        return RUN

    def claim(self, node: NodeSpec, key: TryKey) -> None:
        ident = identity(node)
        if ident is not None:
            self.running[ident] = key

    def release(self, node: NodeSpec, key: TryKey, *, succeeded: bool) -> None:
        ident = identity(node)
        if ident is None:
            return
        if self.running.get(ident) == key:
            del self.running[ident]
        if succeeded:
            self._remember(ident, key.run_key)

    def seed(self, run_key: str, nodes: Mapping[str, NodeSpec], states: Mapping[str, TaskState]) -> None:
        """Class tasks a run loaded from the store has completed (after a restart, say)."""
        for task_id, state in states.items():
            ident = identity(nodes[task_id]) if state == TaskState.SUCCESS and task_id in nodes else None
            if ident is not None and ident not in self.done:
                self._remember(ident, run_key)

    def _remember(self, ident: Identity, run_key: str) -> None:
        now = time.monotonic()
        self.done[ident] = (run_key, now)
        self.done.move_to_end(ident)
        while self.done and now - next(iter(self.done.values()))[1] > self.keep:
            self.done.popitem(last=False)
