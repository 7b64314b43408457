"""``ductwork why``: why a task ran in a run, or why it did not.

For a task with ``cache="content"`` the answer comes from the fingerprint its try recorded
(``store.cache``): it reused run X's results because its code, parameters and inputs all
matched, or it ran because of the named changes since its last successful try. For a class task
(Luigi style) it is what was found when the run's graph was built: which outputs were missing,
or that they all existed. Otherwise the task simply runs every time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from ductwork.core.states import RunState
from ductwork.errors import NotFoundError, did_you_mean
from ductwork.services.runs import flow_graph, get_run
from ductwork.store.cache import latest_entry, recorded_node
from ductwork.store.engine import read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.tables import task_fingerprints


def _latest_run_with(engine: Engine, flow_id: str, task_id: str) -> RunRecord:
    with read_transaction(engine) as conn:
        page = run_repo.list_runs(conn, flow_id=flow_id, limit=50)
        for record in page.items:
            if task_repo.get_task_instance(conn, record.pk, task_id) is not None:
                return record
    graph = flow_graph(engine, flow_id)  # a flow id with a typo: "no flow ...", with a suggestion
    if not page.items:
        raise NotFoundError(f"flow {flow_id!r} has no runs yet")
    hint = did_you_mean(task_id, graph.nodes)
    raise NotFoundError(f"no recent run of flow {flow_id!r} has a task {task_id!r}.{hint}")


_ENDED_UNRUN = ("skipped", "upstream_failed")
"""States a task ends in without running; a task in one with no try gets "did not run" and why."""


def explain(engine: Engine, flow_id: str, task_id: str, run_id: str | None = None) -> dict[str, Any]:
    """What decided whether ``task_id`` ran in the run (the latest run that has it by default)."""
    record = get_run(engine, flow_id, run_id) if run_id else _latest_run_with(engine, flow_id, task_id)
    with read_transaction(engine) as conn:
        node = recorded_node(conn, record.pk, task_id)
        if node is None:
            known = [t.task_id for t in task_repo.list_task_instances(conn, record.pk)]
            raise NotFoundError(
                f"run {record.run_id!r} of flow {flow_id!r} has no task {task_id!r}.{did_you_mean(task_id, known)}"
            )
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
        entry = latest_entry(conn, flow_id, task_id, run_id=record.run_id) if node.extra.get("cache") else None
        waiting = _past_holds(conn, record, task_id) if node.depends_on_past else None
        state = instance.state.value if instance is not None else "none"
        pool_hold = _pool_holds(conn, node.pool, node.pool_slots) if state == "scheduled" else None
        run_hold = _run_holds(conn, record, task_id) if record.state.value == "queued" else None
        tried = bool(task_repo.list_tries(conn, record.pk, task_id)) if state in _ENDED_UNRUN else True
        changes = event_repo.list_state_events(conn, record.pk, task_id=task_id) if not tried else []
        ended_by = next((e.reason for e in reversed(changes) if e.new == state), "")
    out: dict[str, Any] = {"flow_id": flow_id, "run_id": record.run_id, "task_id": task_id, "state": state}
    if run_hold is not None and state in ("none", "scheduled"):
        out.update(decision="waiting", reasons=[], text=run_hold)
        return out
    if waiting is not None and state in ("none", "scheduled"):
        previous_run, previous_state = waiting
        out.update(
            decision="waiting",
            reasons=[],
            text=f"waits (depends_on_past): the same task of the previous run {previous_run} is {previous_state}; "
            "it starts once that one succeeded or was skipped",
        )
        return out
    if pool_hold is not None:
        out.update(decision="waiting", reasons=[], text=pool_hold)
        return out
    if instance is not None and state in _ENDED_UNRUN and instance.start_date is None and not tried:
        # A task its run's cancel skipped, or whose upstream failed, read "runs (it has not yet:
        # skipped)": it will not run in this run, and what ended it is the answer.
        because = f" ({ended_by})" if ended_by else ""
        out.update(decision="not_run", reasons=[], text=f"did not run: it ended {state.replace('_', ' ')}{because}")
        return out
    if node.extra.get("cache"):
        out["cache"] = node.extra["cache"]
        if entry is None:
            out.update(decision="not_yet", reasons=[], text="no try of this task has been recorded in this run yet")
            return out
        fingerprint = entry.fingerprint.to_dict()
        out["fingerprint"] = fingerprint
        if entry.status == "reused":
            out.update(
                decision="up_to_date",
                matched_run_id=entry.matched_run_id,
                reasons=[],
                text=(
                    f"did not run: up to date. Its code, parameters and inputs matched run "
                    f"{entry.matched_run_id}, whose results it reused"
                ),
                matched=[*fingerprint["code"], *fingerprint["params"], *fingerprint["inputs"]],
            )
            return out
        reasons = [dict(c) for c in entry.changes]
        if reasons:
            text = "ran because " + "; ".join(r["text"] for r in reasons)
        else:
            text = "ran: there was no earlier successful try of this task to compare with"
        if not entry.succeeded:
            text += " (and failed)"
        out.update(decision="ran", reasons=reasons, text=text)
        return out
    outputs = list(node.extra.get("outputs", ()))
    verb = "ran" if instance is not None and instance.start_date is not None else f"runs (it has not yet: {state})"
    taken = node.family is not None and state == "success" and (instance is None or instance.start_date is None)
    if taken and not node.extra.get("already_complete"):
        out.update(
            decision="taken",
            reasons=[],
            text="did not run here: another run ran this class task and this run took its success (a class task "
            "runs once, whichever runs need it; `ductwork runs show` names that run)",
        )
    elif node.extra.get("already_complete"):
        out.update(
            decision="complete",
            reasons=[],
            text="did not run: its outputs already existed" + (f": {', '.join(outputs)}" if outputs else ""),
        )
    elif node.family is not None:
        missing = list(node.extra.get("missing_outputs", ()))
        if missing:
            reasons = [
                {"part": "output", "name": m, "what": "missing", "text": f"output {m} is missing"} for m in missing
            ]
            out.update(decision="ran", reasons=reasons, text=f"{verb} because " + "; ".join(r["text"] for r in reasons))
        else:
            out.update(decision="ran", reasons=[], text=f"{verb}: it is incomplete (its complete() returned false)")
    else:
        out.update(
            decision="always",
            reasons=[],
            text=f'{verb}: the task has no cache, so it runs in every run (give it cache="content" to skip it when '
            "nothing it depends on changed)",
        )
    return out


def _past_holds(conn: Any, record: RunRecord, task_id: str) -> tuple[str, str] | None:
    """The previous run (by logical date) and its state of ``task_id`` when that holds this run's
    ``depends_on_past`` task back; None when nothing does."""
    earlier = run_repo.list_runs(conn, flow_id=record.flow_id, until=record.logical_date, limit=1).items
    if not earlier:
        return None
    previous = task_repo.get_task_instance(conn, earlier[0].pk, task_id)
    if previous is None or previous.state.value in ("success", "skipped"):
        return None
    return earlier[0].run_id, previous.state.value


def _run_holds(conn: Any, record: RunRecord, task_id: str) -> str | None:
    """Why a queued run does not start: its flow has ``max_active_runs`` running already. When
    one of those waits (``depends_on_past``) for this very run (an earlier run cleared while
    later ones ran), neither can move: said so, with the way out (Airflow leaves it stuck too)."""
    flow = flow_repo.get_flow(conn, record.flow_id)
    if flow is None:
        return None
    running = run_repo.list_runs(conn, flow_id=record.flow_id, states=[RunState.RUNNING], limit=1000).items
    if len(running) < flow.max_active_runs:
        return None
    names = ", ".join(r.run_id for r in running[:5]) + (" ..." if len(running) > 5 else "")
    text = (
        f"waits (max_active_runs): run {record.run_id} is queued, and flow {record.flow_id} allows "
        f"{flow.max_active_runs} active run(s): {names} running"
    )
    blocked = [
        r
        for r in running
        if r.logical_date > record.logical_date
        and (held := _past_holds(conn, r, task_id)) is not None
        and held[0] == record.run_id
    ]
    if blocked:
        other = blocked[0].run_id
        text += (
            f". Run {other} waits in turn for this run's {task_id} (depends_on_past): neither can move until run "
            f"{other} ends (ductwork runs cancel {record.flow_id} {other}) or max_active_runs is raised"
        )
    return text


def _pool_holds(conn: Any, name: str, slots: int) -> str | None:
    """Why a task ready to run waits for its pool: the pool is smaller than the slots the task
    needs (the scheduler only says so in its log), or its slots are taken; None otherwise."""
    usage = next((u for u in pool_repo.pool_usage(conn) if u.name == name), None)
    if usage is None:  # no such pool: the task runs without a limit
        return None
    if usage.slots < slots:
        return (
            f"waits (pool): it needs {slots} slot(s) of pool {name!r}, which has {usage.slots}: it cannot start "
            f"until the pool grows (ductwork pools set {name} {slots})"
        )
    taken = usage.queued_slots + usage.running_slots
    if taken + slots > usage.slots:
        return (
            f"waits (pool): {taken} of the {usage.slots} slot(s) of pool {name!r} are taken by queued or running "
            f"tasks; it needs {slots}"
        )
    return None


def reused_in_run(conn: Connection, run_pk: int, tries: dict[str, int]) -> dict[str, str]:
    """``{task id: run id}``: the tasks of a run whose current try (``tries``, task id -> try
    number) was up to date and took the results of that run instead of running, so that a listing
    of the run's tasks can say so (a cache hit looks like any success otherwise). One query for
    the whole run; a task cleared and run again after a hit is not listed."""
    tf = task_fingerprints
    rows = conn.execute(
        sa.select(tf.c.task_id, tf.c.try_number, tf.c.matched_run_id).where(
            tf.c.run_pk == run_pk, tf.c.status == "reused", tf.c.succeeded == sa.true()
        )
    )
    return {r.task_id: r.matched_run_id for r in rows if r.matched_run_id and tries.get(r.task_id) == r.try_number}
