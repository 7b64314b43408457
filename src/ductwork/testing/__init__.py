"""Test pipelines inside your own pytest tests: in-process, no database, no server.

::

    from ductwork.testing import FrozenClock, run_flow, run_task, build

    def test_etl():
        result = run_flow(etl, params={"n": 3}, clock=FrozenClock("2024-01-31"))
        assert result.state == "success"
        assert result.result("aggregate") == 42

Retry delays cost no time with a ``FrozenClock`` (sleeping advances it). ``result`` is a
``RunSummary``: ``result["task"].state``, ``result["task"].tries``, ``result.result("task")``,
``result.logs[(task_id, try_number)]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ductwork.core.clock import Clock, FrozenClock, SystemClock
from ductwork.core.config import ParamSources, current_sources, use_sources
from ductwork.core.decorators import FlowFunction
from ductwork.core.flow import Flow, flow_for_tasks
from ductwork.core.results import MISSING
from ductwork.core.states import TaskState
from ductwork.core.targets import MEMORY_FS
from ductwork.core.task import Task
from ductwork.engine.local import run_locally
from ductwork.engine.recorder import RunSummary, TaskSummary, TryInfo
from ductwork.errors import DefinitionError, NotFoundError, did_you_mean

__all__ = [
    "FrozenClock",
    "RunSummary",
    "SystemClock",
    "TaskResult",
    "TaskSummary",
    "build",
    "reset_memory_targets",
    "run_flow",
    "run_task",
]


def _flow(flow: Flow | FlowFunction) -> Flow:
    return flow.build() if isinstance(flow, FlowFunction) else flow


def run_flow(
    flow: Flow | FlowFunction,
    *,
    params: Mapping[str, Any] | None = None,
    logical_date: dt.datetime | dt.date | str | None = None,
    clock: Clock | None = None,
    workers: int = 1,
    conf: Mapping[str, Any] | None = None,
) -> RunSummary:
    """Run a whole flow once and return its summary."""
    clock = clock or FrozenClock()
    if isinstance(logical_date, str):
        logical_date = dt.datetime.fromisoformat(logical_date)
    return run_locally(
        _flow(flow),
        params=params,
        logical_date=logical_date,
        clock=clock,
        parallelism=workers,
        run_type="test",
        conf=conf,
    )


def run_task(
    flow: Flow | FlowFunction,
    task_id: str,
    *,
    upstream_results: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    logical_date: dt.datetime | dt.date | str | None = None,
    clock: Clock | None = None,
) -> TaskResult:
    """Run one task of a flow, giving the return values of its upstream tasks by task id."""
    clock = clock or FrozenClock()
    if isinstance(logical_date, str):
        logical_date = dt.datetime.fromisoformat(logical_date)
    built = _flow(flow)
    if upstream_results:
        names = built.to_graph().nodes
        for name in upstream_results:
            if name not in names:
                raise NotFoundError(
                    f"run_task({task_id!r}): upstream_results names {name!r}, which is not a task of flow "
                    f"{built.flow_id!r}.{did_you_mean(name, names)}"
                )
    summary = run_locally(
        built,
        params=params,
        logical_date=logical_date,
        clock=clock,
        run_type="test",
        only=[task_id],
        seed_results=upstream_results,
    )
    task = summary[task_id]
    last = task.tries[-1] if task.tries else None
    value = summary.results.pull(summary.key, task_id)
    return TaskResult(
        task_id=task_id,
        state=task.state,
        tries=task.tries,
        result=None if value is MISSING else value,
        log=summary.logs.get((task_id, last.try_number), "") if last else "",
        error=last.error if last else None,
    )


@dataclass
class TaskResult:
    """One task run by ``run_task``."""

    task_id: str
    state: TaskState
    tries: list[TryInfo]
    result: Any
    log: str
    error: str | None


def build(
    *tasks: Task | Sequence[Task],
    workers: int = 1,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    clock: Clock | None = None,
) -> RunSummary:
    """Build class tasks and the requirements that are not complete (``ductwork build``):
    ``build(a, b)``, or ``build([a, b])`` as ``luigi.build`` takes them.

    ``config`` gives class parameters as a config file would (``{"GlobalParams": {...}}``).
    """
    roots: list[Task] = []
    for given in tasks:
        for root in given if isinstance(given, list | tuple) else [given]:
            if not isinstance(root, Task):
                raise DefinitionError(f"build() takes class task instances (or lists of them), got {root!r}")
            roots.append(root)
    sources = current_sources()
    if config is not None:
        sources = ParamSources(cli=sources.cli, env=sources.env, file={**sources.file, **config})
    with use_sources(sources):
        return run_locally(flow_for_tasks(roots), clock=clock or FrozenClock(), parallelism=workers, run_type="build")


def reset_memory_targets() -> None:
    """Forget every ``MemoryTarget`` written in this process."""
    MEMORY_FS.clear()


def task_ids(summary: RunSummary, state: str) -> Sequence[str]:
    """The ids of tasks that ended in ``state`` (handy in assertions)."""
    return [t for t, s in summary.task_states.items() if s.value == state]
