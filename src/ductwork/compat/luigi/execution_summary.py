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

from . import parameter as p
from .parameter import luigi_text
from .task import Config

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
    disabled = set(getattr(plan, "disabled", ()))
    for task_id, task in tasks.items():
        if task_id in disabled and task_id not in plan.already_done:
            continue  # Luigi's summary leaves a disabled task out; what needs it was not run
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
        # Nothing upstream failed, is missing or did not schedule, and no failure held it up: it
        # was left waiting (a resource it needs more of than there is), as Luigi's "not granted".
        held = (
            plan.limit_reached
            or plan.phased_out
            or _needs_any(task.task_id, disabled, plan, summary)
            or states.get(task.task_id, "none") != "upstream_failed"
        )
        for reason in reasons or {"not_run" if held else "upstream_failure"}:
            sets[reason].add(task)
    sets["still_pending"] |= sets["still_pending_ext"]
    return sets


def _needs_any(task_id: str, wanted: set[str], plan: Any, summary: Any) -> bool:
    """Whether one of ``wanted`` is upstream of the task (a disabled task it waited on)."""
    if not wanted:
        return False
    seen: set[str] = set()
    stack = _upstream_ids(task_id, plan, summary)
    while stack:
        dep_id = stack.pop()
        if dep_id in wanted:
            return True
        if dep_id not in seen:
            seen.add(dep_id)
            stack.extend(_upstream_ids(dep_id, plan, summary))
    return False


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
    """Luigi's verdict: a task that failed and then succeeded makes the build a success, even
    with missing data; otherwise failures, then scheduling errors, tasks not run, missing data."""
    if sets["ever_failed"] or sets["failed"]:
        if not sets["failed"]:
            return LuigiStatusCode.SUCCESS_WITH_RETRY
        if sets["scheduling_error"]:
            return LuigiStatusCode.FAILED_AND_SCHEDULING_FAILED
        return LuigiStatusCode.FAILED
    if sets["scheduling_error"]:
        return LuigiStatusCode.SCHEDULING_FAILED
    if sets["not_run"]:
        return LuigiStatusCode.NOT_RUN
    if sets["still_pending_ext"]:
        return LuigiStatusCode.MISSING_EXT
    return LuigiStatusCode.SUCCESS


class execution_summary(Config):
    summary_length = p.IntParameter(default=5, description="Families listed per category at most (0: all).")


def _task_lines(tasks: Iterable[Any], extra_indent: bool = False) -> list[str]:
    """One line per task family, as Luigi writes them: a single task, a range of the one
    parameter that varies when its values are consecutive (``Bar(num=5...199)``), a few values,
    or ``...``; long parameter lists are cut to ``Family(...)``."""
    by_family: dict[str, list[Any]] = {}
    for task in tasks:
        by_family.setdefault(task.get_task_family(), []).append(task)
    limit = execution_summary().summary_length
    prefix = " " * (8 if extra_indent else 4)
    lines: list[str] = []
    for family in sorted(by_family):
        if limit > 0 and len(lines) >= limit:
            lines.append(prefix + "...")
            break
        members = sorted(by_family[family], key=str)
        lines.append(f"{prefix}- {len(members)} {_family_text(family, members)}")
    return lines


def _family_text(family: str, tasks: list[Any]) -> str:
    first = tasks[0]
    params = first.get_params()
    names_length = sum(len(name) for name, _ in params)
    if not params:
        return f"{family}()"
    if (
        names_length > 60
        or len(str(first)) > 200
        or (len(tasks) == 2 and len(params) > 1 and (names_length > 40 or len(str(first)) > 100))
    ):
        return f"{family}(...)"
    if len(params) == 1:
        return _one_parameter_text(family, tasks)
    return _several_parameters_text(family, tasks)


def _one_parameter_text(family: str, tasks: list[Any]) -> str:
    name, param = tasks[0].get_params()[0]
    values = {_hashable(param, getattr(t, name)) for t in tasks}
    first, last = _range_ends(values, param)
    if first is not None and last is not None and len(values) > 3:
        text = f"{luigi_text(param, first)}...{luigi_text(param, last)}"
    else:
        text = _some_values(tasks)
    return f"{family}({name}={text})"


def _several_parameters_text(family: str, tasks: list[Any]) -> str:
    params = tasks[0].get_params()
    varying = [(n, p) for n, p in params if len({_hashable(p, getattr(t, n)) for t in tasks}) > 1]
    if len(varying) == 1:
        name, param = varying[0]
        values = {_hashable(param, getattr(t, name)) for t in tasks}
        first, last = _range_ends(values, param)
        if first is not None and last is not None and len(values) > 2:
            parts = [
                f"{n}={luigi_text(param, first)}...{luigi_text(param, last)}"
                if n == name
                else f"{n}={luigi_text(p, getattr(tasks[0], n))}"
                for n, p in params
            ]
            return f"{family}({', '.join(parts)})"
    if len(tasks) == 1:
        return str(tasks[0])
    if len(tasks) == 2:
        return f"{tasks[0]} and {tasks[1]}"
    return f"{tasks[0]} ..."


def _hashable(param: Any, value: Any) -> Any:
    """The value, or its text when it cannot be in a set (a dict parameter's)."""
    try:
        hash(value)
    except TypeError:
        return luigi_text(param, value)
    return value


def _range_ends(values: set[Any], param: Any) -> tuple[Any, Any]:
    """``(first, last)`` when the values follow each other without a gap (each one's next in
    the parameter's enumeration is the following one), else ``(None, None)``."""
    following = {param.next_in_enumeration(v) for v in values}
    starts, after = values - following, following - values
    if len(starts) == 1 and len(after) == 1:
        for value in values:
            if {param.next_in_enumeration(value)} == after:
                return next(iter(starts)), value
    return None, None


def _some_values(tasks: list[Any]) -> str:
    """``a,b,c`` of the one parameter, cut with ``...`` once the text is long."""
    name, param = tasks[0].get_params()[0]
    text = ""
    for count, task in enumerate(tasks):
        if (len(text) >= 30 and count > 2 and count != len(tasks) - 1) or len(text) > 200:
            return text + "..."
        text += luigi_text(param, getattr(task, name))
        if count < len(tasks) - 1:
            text += ","
    return text


def summary_text(plan: Any, sets: dict[str, set[Any]], status: LuigiStatusCode) -> str:
    counted = ("already_done", "completed", "failed", "scheduling_error", "still_pending")
    total = len(set().union(*(sets[name] for name in counted)))
    lines = ["", "===== Luigi Execution Summary =====", "", f"Scheduled {total} tasks of which:"]
    for name in ("already_done", "completed", "ever_failed", "failed", "scheduling_error"):
        members = sets[name] - sets["failed"] if name == "ever_failed" else sets[name]
        if members:
            label = "failed and then succeeded" if name == "ever_failed" else _COMMENTS[name]
            lines.append(f"* {len(members)} {label}:")
            lines.extend(_task_lines(members))
    if sets["still_pending"]:
        lines.append(f"* {len(sets['still_pending'])} {_COMMENTS['still_pending']}:")
        for name in _ORDERED_STATUSES:
            if name in _PENDING_SUB_STATUSES and sets[name]:
                lines.append(f"    * {len(sets[name])} {_COMMENTS[name]}:")
                lines.extend(_task_lines(sets[name], extra_indent=True))
    if plan.limit_reached:
        lines.append("Did not schedule all tasks: the task limit was reached")
    ran = sets["completed"] | sets["failed"] | sets["ever_failed"]
    lines.append("")
    if total and not ran:
        lines.append("Did not run any tasks")
    face, reason = status.value
    lines.append(f"This progress looks {face} because {reason}")
    if not total:
        lines[3:] = ["Did not schedule any tasks"]
    lines += ["", "===== Luigi Execution Summary =====", ""]
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
        self.one_line_summary = "This progress looks {} because {}".format(*self.status.value)  # Luigi's line

    def __str__(self) -> str:
        return f"LuigiRunResult with status {self.status}"

    def __repr__(self) -> str:
        return f"LuigiRunResult(status={self.status!r}, scheduling_succeeded={self.scheduling_succeeded!r})"
