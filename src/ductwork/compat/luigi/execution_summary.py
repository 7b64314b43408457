"""``luigi.execution_summary``: what a build did, in Luigi's categories and words.

Categories are derived from the run Ductwork recorded: ``already_done`` (complete before the
build), ``completed`` (ran), ``ever_failed`` (failed at least once), ``failed``,
``scheduling_error`` (``complete()``/``requires()`` raised), ``still_pending_ext`` (missing
external data), ``not_run`` and the ``upstream_*`` reasons for pending tasks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

_ORDERED_STATUSES = (
    "already_done",
    "completed",
    "ever_failed",
    "failed",
    "scheduling_error",
    "still_pending",
    "still_pending_ext",
    "run_by_other_worker",
    "upstream_failure",
    "upstream_missing_dependency",
    "upstream_run_by_other_worker",
    "upstream_scheduling_error",
    "not_run",
)

_PENDING_SUB_STATUSES = {
    "still_pending_ext",
    "run_by_other_worker",
    "upstream_failure",
    "upstream_missing_dependency",
    "upstream_run_by_other_worker",
    "upstream_scheduling_error",
    "not_run",
}

_COMMENTS = {
    "already_done": "complete ones were encountered",
    "completed": "ran successfully",
    "failed": "failed",
    "scheduling_error": "failed scheduling",
    "still_pending": "were left pending, among these",
    "still_pending_ext": "were missing external dependencies",
    "run_by_other_worker": "were being run by another worker",
    "upstream_failure": "had failed dependencies",
    "upstream_missing_dependency": "had missing dependencies",
    "upstream_run_by_other_worker": "had dependencies that were being run by other worker",
    "upstream_scheduling_error": "had dependencies whose scheduling failed",
    "not_run": "was not granted run permission by the scheduler",
}


class LuigiStatusCode(enum.Enum):
    """How a build went, with the face and the reason Luigi prints."""

    SUCCESS = (":)", "there were no failed tasks or missing dependencies")
    SUCCESS_WITH_RETRY = (":)", "there were failed tasks but they all succeeded in a retry")
    FAILED = (":(", "there were failed tasks")
    FAILED_AND_SCHEDULING_FAILED = (":(", "there were failed tasks and tasks whose scheduling failed")
    SCHEDULING_FAILED = (":(", "there were tasks whose scheduling failed")
    NOT_RUN = (":|", "there were tasks that were not granted run permission by the scheduler")
    MISSING_EXT = (":|", "there were missing external dependencies")


def all_tasks(plan: Any, summary: Any) -> dict[str, Any]:
    """The build's tasks: the planned ones, then those that ``run()`` yielded while it ran
    (the run's graph holds their nodes; a Luigi summary counts them too)."""
    tasks = dict(plan.tasks)
    if summary is None:
        return tasks
    from ductwork.core.class_flow import load_task

    for task_id, node in summary.graph.nodes.items():
        if task_id not in tasks and node.family is not None:
            tasks[task_id] = load_task(node)
    return tasks


def _upstream_ids(task_id: str, plan: Any, summary: Any) -> list[str]:
    """What a task waited on: its requirements, and the tasks its ``run()`` yielded."""
    node = summary.graph.nodes.get(task_id) if summary is not None else None
    return list(node.upstream) if node is not None else list(plan.deps.get(task_id, []))


def summary_dict(plan: Any, summary: Any) -> dict[str, set[Any]]:
    """The tasks of a build by category (task objects, as Luigi reports them)."""
    sets: dict[str, set[Any]] = {name: set() for name in _ORDERED_STATUSES}
    tasks = all_tasks(plan, summary)
    states = {t: s.value for t, s in summary.task_states.items()} if summary is not None else {}
    for task_id, task in tasks.items():
        if task_id in plan.scheduling_errors:
            sets["scheduling_error"].add(task)
            continue
        if task_id in plan.already_done:
            sets["already_done"].add(task)
            continue
        state = states.get(task_id, "none")
        tries = summary.tasks[task_id].tries if summary is not None and task_id in summary.tasks else []
        if any(t.state.value in ("failed", "up_for_retry") for t in tries):
            sets["ever_failed"].add(task)
        if state == "success":
            sets["completed"].add(task)
        elif state == "failed":
            sets["failed"].add(task)
        elif state == "up_for_reschedule":
            sets["still_pending_ext"].add(task)
        else:
            sets["still_pending"].add(task)
    for task in list(sets["still_pending"]):
        reasons = _upstream_reasons(task, tasks, lambda i: _upstream_ids(i, plan, summary), sets)
        for reason in reasons or {"not_run" if plan.limit_reached else "upstream_failure"}:
            sets[reason].add(task)
    sets["still_pending"] |= sets["still_pending_ext"]
    return sets


def _upstream_reasons(
    task: Any, tasks: dict[str, Any], upstream: Callable[[str], list[str]], sets: dict[str, set[Any]]
) -> set[str]:
    """Why a task never ran: its nearest upstream that failed, is missing or did not schedule."""
    seen: set[str] = set()
    stack = upstream(task.task_id)
    reasons: set[str] = set()
    while stack:
        dep_id = stack.pop()
        if dep_id in seen:
            continue
        seen.add(dep_id)
        dep = tasks.get(dep_id)
        if dep is None:
            continue
        if dep in sets["failed"]:
            reasons.add("upstream_failure")
        elif dep in sets["still_pending_ext"]:
            reasons.add("upstream_missing_dependency")
        elif dep in sets["scheduling_error"]:
            reasons.add("upstream_scheduling_error")
        else:
            stack.extend(upstream(dep_id))
    return reasons


def status_of(sets: dict[str, set[Any]]) -> LuigiStatusCode:
    if sets["failed"] and sets["scheduling_error"]:
        return LuigiStatusCode.FAILED_AND_SCHEDULING_FAILED
    if sets["failed"]:
        return LuigiStatusCode.FAILED
    if sets["scheduling_error"]:
        return LuigiStatusCode.SCHEDULING_FAILED
    if sets["not_run"]:
        return LuigiStatusCode.NOT_RUN
    if sets["still_pending_ext"]:
        return LuigiStatusCode.MISSING_EXT
    if sets["ever_failed"]:
        return LuigiStatusCode.SUCCESS_WITH_RETRY
    return LuigiStatusCode.SUCCESS


def _task_lines(tasks: Iterable[Any], limit: int = 5) -> list[str]:
    by_family: dict[str, list[Any]] = {}
    for task in sorted(tasks, key=repr):
        by_family.setdefault(task.get_task_family(), []).append(task)
    lines = []
    for family, members in sorted(by_family.items()):
        if len(members) == 1:
            lines.append(f"    - 1 {members[0]!r}")
        elif len(members) <= limit:
            lines.append(f"    - {len(members)} {family}({', '.join(repr(m)[len(family) + 1 : -1] for m in members)})")
        else:
            lines.append(f"    - {len(members)} {_range_of(family, members)}")
    return lines


def _range_of(family: str, members: list[Any]) -> str:
    """``Raw(day=2024-03-05...2024-03-10)``: the parameter that varies as a range, when only one does."""
    values = [m.to_str_params(only_significant=True) for m in members]
    names = list(values[0])
    varying = [n for n in names if len({v.get(n) for v in values}) > 1]
    if len(varying) != 1:
        return f"{family}(...)"
    name = varying[0]
    ordered = sorted(str(v.get(name)) for v in values)
    parts = [f"{n}={values[0][n]}" for n in names if n != name]
    parts.append(f"{name}={ordered[0]}...{ordered[-1]}")
    return f"{family}({', '.join(parts)})"


def summary_text(plan: Any, sets: dict[str, set[Any]], status: LuigiStatusCode) -> str:
    total = len(set().union(*(sets[name] for name in _ORDERED_STATUSES)))
    lines = ["", "===== Luigi Execution Summary =====", "", f"Scheduled {total} tasks of which:"]
    for name in ("already_done", "completed", "ever_failed", "failed", "scheduling_error"):
        if sets[name] and not (name == "ever_failed" and sets[name] <= sets["failed"]):
            label = "failed and then succeeded" if name == "ever_failed" else _COMMENTS[name]
            members = sets[name] - sets["failed"] if name == "ever_failed" else sets[name]
            if not members:
                continue
            lines.append(f"* {len(members)} {label}:")
            lines.extend(_task_lines(members))
    if sets["still_pending"]:
        lines.append(f"* {len(sets['still_pending'])} {_COMMENTS['still_pending']}:")
        for name in sorted(_PENDING_SUB_STATUSES):
            if sets[name]:
                lines.append(f"    * {len(sets[name])} {_COMMENTS[name]}:")
                lines.extend("    " + line for line in _task_lines(sets[name]))
    if plan.limit_reached:
        lines.append("Did not schedule all tasks: the task limit was reached")
    face, reason = status.value
    lines += ["", f"This progress looks {face} because {reason}", "", "===== Luigi Execution Summary =====", ""]
    return "\n".join(lines)


class LuigiRunResult:
    """What ``luigi.build(..., detailed_summary=True)`` returns."""

    def __init__(self, plan: Any, summary: Any = None) -> None:
        self.plan = plan
        self.run = summary
        self.task_sets = summary_dict(plan, summary)
        self.status = status_of(self.task_sets)
        self.summary_text = summary_text(plan, self.task_sets, self.status)
        self.scheduling_succeeded = plan.scheduling_succeeded and not self.task_sets["failed"]
        self.worker = None
        self.one_line_summary = f"{self.status.name}: {self.status.value[1]}"

    def __repr__(self) -> str:
        return f"LuigiRunResult(status={self.status!r}, scheduling_succeeded={self.scheduling_succeeded!r})"
