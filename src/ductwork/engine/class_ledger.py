"""A class task runs once, whichever runs need it (Luigi's rule, kept under the scheduler).

Luigi identifies a task by its family and parameters, and its scheduler runs a task id once
however many workers ask for it. Ductwork compiles each run's graph on its own, so two runs
created together (``Flow.from_task`` with catchup, a backfill) can both contain the same class
task before either has run it. The supervisor asks this ledger before it dispatches a class
task: if another run is running it, this one waits; if another run completed it, this one takes
that success instead of running it again (the task instance says which run did it).

Only a run created before the completion takes it: its graph was compiled while the task had
not run. A run created later compiled its graph after the completion, so the task is in it
because its ``complete()`` said no then (its output was deleted, say, or it is never complete):
it runs, as Luigi checks ``complete()`` at each invocation. A task cleared in a run runs again
too (``since`` is the time of the clear for it). Completions are forgotten after ``keep``.
"""

from __future__ import annotations

import datetime as dt
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
    def __init__(self, *, keep: dt.timedelta = dt.timedelta(days=1)) -> None:
        self.keep = keep
        self.running: dict[Identity, TryKey] = {}
        self.done: OrderedDict[Identity, tuple[str, dt.datetime]] = OrderedDict()

    def verdict(self, run_key: str, node: NodeSpec, since: dt.datetime) -> str:
        """``RUN``, ``WAIT`` (another run runs it now), or the key of the run that completed it
        at or after ``since`` (when the asking run was created, or its task cleared)."""
        ident = identity(node)
        if ident is None:
            return RUN
        done = self.done.get(ident)
        if done is not None and done[0] != run_key and done[1] >= since:
            return done[0]
        holder = self.running.get(ident)
        if holder is not None and holder.run_key != run_key:
            return WAIT
        return RUN

    def claim(self, node: NodeSpec, key: TryKey) -> None:
        ident = identity(node)
        if ident is not None:
            self.running[ident] = key

    def release(self, node: NodeSpec, key: TryKey, *, succeeded: bool, at: dt.datetime) -> None:
        ident = identity(node)
        if ident is None:
            return
        if self.running.get(ident) == key:
            del self.running[ident]
        if succeeded:
            self._remember(ident, key.run_key, at)

    def seed(
        self, run_key: str, nodes: Mapping[str, NodeSpec], states: Mapping[str, TaskState], at: dt.datetime
    ) -> None:
        """Class tasks a run loaded from the store has completed (after a restart, say), counted
        as completed ``at`` (the load: later than the real end, so every run created before the
        restart takes them)."""
        for task_id, state in states.items():
            ident = identity(nodes[task_id]) if state == TaskState.SUCCESS and task_id in nodes else None
            if ident is not None and ident not in self.done:
                self._remember(ident, run_key, at)

    def _remember(self, ident: Identity, run_key: str, at: dt.datetime) -> None:
        self.done[ident] = (run_key, at)
        self.done.move_to_end(ident)
        while self.done and at - next(iter(self.done.values()))[1] > self.keep:
            self.done.popitem(last=False)
