"""Read models for the web UI: the grid, a run's graph and Gantt chart, Luigi's task view.

These are the queries that must stay fast at 10,000 tasks per run. The grid reads the states of
many runs with one query and returns them as strings of one-letter state codes (one letter per
task, in the order of ``task_ids``), which is about 40 times smaller than a list of objects and
needs no work per task on the client. Large reads go straight to the driver's cursor
(``_fast_rows``): building a SQLAlchemy ``Row`` for each of 250,000 rows costs more than the
query itself. Only statements whose bound values are integers take that path, so there is no
quoting to get wrong.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select

from ductwork.core.states import RunState, TaskState
from ductwork.store.repo._util import chunks
from ductwork.store.tables import flows, runs, scheduler_jobs, task_instances, task_tries

ti = task_instances
S = TaskState

STATE_CODES: Mapping[str, str] = {
    S.NONE.value: "n",
    S.SCHEDULED.value: "c",
    S.QUEUED.value: "q",
    S.RUNNING.value: "r",
    S.SUCCESS.value: "s",
    S.FAILED.value: "f",
    S.UP_FOR_RETRY.value: "y",
    S.UP_FOR_RESCHEDULE.value: "e",
    S.SKIPPED.value: "k",
    S.UPSTREAM_FAILED.value: "u",
}
"""One letter per task state; ``-`` marks a task that a run does not have."""
ABSENT = "-"
UNKNOWN = "?"

CLASS_TASK_KINDS = ("Task", "WrapperTask", "ExternalTask", "ExternalProgramTask")
"""``operator`` values of class-task nodes: their family is in the node's definition."""

LUIGI_STATES = ("pending", "running", "done", "failed", "upstream_failed", "disabled")
_LUIGI_OF = {
    S.NONE.value: "pending",
    S.SCHEDULED.value: "pending",
    S.QUEUED.value: "pending",
    S.UP_FOR_RETRY.value: "pending",
    S.UP_FOR_RESCHEDULE.value: "pending",
    S.RUNNING.value: "running",
    S.SUCCESS.value: "done",
    S.SKIPPED.value: "done",
    S.FAILED.value: "failed",
    S.UPSTREAM_FAILED.value: "upstream_failed",
}


def luigi_state(state: str, *, paused: bool) -> str:
    """Luigi's name for a task state; waiting tasks of a paused flow are ``disabled``."""
    name = _LUIGI_OF.get(state, "pending")
    return "disabled" if paused and name == "pending" else name


def _fast_rows(conn: Connection, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """Plain tuples straight from the driver. Only for statements whose bound values are all
    integers (they are rendered inline) and whose columns need no type conversion."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _ints(values: Iterable[int]) -> list[int]:
    return [int(v) for v in values]  # guards the inline rendering in ``_fast_rows``


# --- the grid ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """Tasks (rows) by runs (columns): ``codes[pk][i]`` is the state code of ``task_ids[i]``."""

    task_ids: list[str]
    groups: list[str | None]
    codes: dict[int, str]


def grid(conn: Connection, run_pks: Sequence[int]) -> Grid:
    """The states of every task of ``run_pks`` (newest first), aligned on the newest run's task
    order; tasks only older runs have are added at the end."""
    if not run_pks:
        return Grid([], [], {})
    pks = _ints(run_pks)
    code = STATE_CODES.get
    # The newest run's layout and states in one pass (a second read of 100,000 rows costs more
    # than the rest of the answer), then only the states of the older runs.
    newest = _fast_rows(
        conn,
        sa.select(ti.c.task_id, ti.c.group_id, ti.c.state).where(ti.c.run_pk == pks[0]).order_by(ti.c.ordinal),
    )
    task_ids = [r[0] for r in newest]
    groups: list[str | None] = [r[1] for r in newest]
    index = {task_id: i for i, task_id in enumerate(task_ids)}
    columns = {pks[0]: [code(r[2], UNKNOWN) for r in newest]}
    columns.update({pk: [ABSENT] * len(task_ids) for pk in pks[1:]})
    del newest
    extra: list[tuple[int, str]] = []
    placed: dict[str, tuple[int, int]] = {}
    """Where each task only older runs have goes: (the newest run that has it, its place there)."""
    age = {pk: n for n, pk in enumerate(pks)}
    known = len(task_ids)
    for part in chunks(pks[1:], 100):
        for pk, task_id, state, ordinal in _fast_rows(
            conn, sa.select(ti.c.run_pk, ti.c.task_id, ti.c.state, ti.c.ordinal).where(ti.c.run_pk.in_(part))
        ):
            i = index.get(task_id)
            if i is None:
                extra.append((pk, task_id))
                i = index[task_id] = len(task_ids)
                task_ids.append(task_id)
                groups.append(None)
                for column in columns.values():
                    column.append(ABSENT)
            if i >= known:
                where = (age[pk], ordinal or 0)
                placed[task_id] = min(placed.get(task_id, where), where)
            columns[pk][i] = code(state, UNKNOWN)
    if extra:
        _fill_groups(conn, extra, index, groups)
        task_ids, groups, columns = _in_order(task_ids, groups, columns, known, placed)
    return Grid(task_ids, groups, {pk: "".join(column) for pk, column in columns.items()})


def _in_order(
    task_ids: list[str],
    groups: list[str | None],
    columns: dict[int, list[str]],
    start: int,
    placed: Mapping[str, tuple[int, int]],
) -> tuple[list[str], list[str | None], dict[int, list[str]]]:
    """The rows from ``start`` on (tasks only older runs have, in the order the database gave
    them: ``show[0], show[2], show[1]``) in the order of the newest run that has each."""
    tail = sorted(range(start, len(task_ids)), key=lambda i: placed[task_ids[i]])
    order = [*range(start), *tail]
    return (
        [task_ids[i] for i in order],
        [groups[i] for i in order],
        {pk: [column[i] for i in order] for pk, column in columns.items()},
    )


def _fill_groups(
    conn: Connection, extra: list[tuple[int, str]], index: Mapping[str, int], groups: list[str | None]
) -> None:
    by_run: dict[int, list[str]] = defaultdict(list)
    for pk, task_id in extra:
        by_run[pk].append(task_id)
    for pk, ids in by_run.items():
        for part in chunks(ids):
            stmt = sa.select(ti.c.task_id, ti.c.group_id).where(ti.c.run_pk == pk, ti.c.task_id.in_(part))
            for task_id, group in conn.execute(stmt):
                groups[index[task_id]] = group


# --- one run: graph, states, Gantt -------------------------------------------------------------
@dataclass(frozen=True)
class RunGraphView:
    task_ids: list[str]
    upstream: list[list[int]]
    """Indexes (into ``task_ids``) of each task's upstream tasks."""
    groups: list[str | None]
    operators: list[str]
    codes: str
    tries: list[int]


def run_graph(conn: Connection, run_pk: int) -> RunGraphView:
    rows = _fast_rows(
        conn,
        sa.select(ti.c.task_id, ti.c.upstream, ti.c.group_id, ti.c.operator, ti.c.state, ti.c.try_number)
        .where(ti.c.run_pk == int(run_pk))
        .order_by(ti.c.ordinal),
    )
    index = {r[0]: i for i, r in enumerate(rows)}
    # Each distinct upstream text is parsed once (tasks fanned out from one task share theirs),
    # and all of them in one ``json.loads`` call: 100,000 calls cost more than the parsing.
    texts = list(dict.fromkeys(r[1] for r in rows))
    lists = json.loads("[" + ",".join(texts) + "]") if texts else []
    parsed = {text: [index[u] for u in ups if u in index] for text, ups in zip(texts, lists, strict=True)}
    upstream = [parsed[r[1]] for r in rows]
    code = STATE_CODES.get
    return RunGraphView(
        task_ids=[r[0] for r in rows],
        upstream=upstream,
        groups=[r[2] for r in rows],
        operators=[r[3] for r in rows],
        codes="".join(code(r[4], UNKNOWN) for r in rows),
        tries=[int(r[5]) for r in rows],
    )


def run_codes(conn: Connection, run_pk: int) -> str:
    """A run's task states as codes in graph order (what a live graph polls)."""
    rows = _fast_rows(conn, sa.select(ti.c.state).where(ti.c.run_pk == int(run_pk)).order_by(ti.c.ordinal))
    code = STATE_CODES.get
    return "".join(code(r[0], UNKNOWN) for r in rows)


@dataclass(frozen=True, slots=True)
class GanttBar:
    task_id: str
    try_number: int
    state: str
    start: dt.datetime | None
    end: dt.datetime | None


def gantt(conn: Connection, run_pk: int) -> list[GanttBar]:
    """Every try of a run that started, by start time."""
    tt = task_tries
    stmt = (
        sa.select(tt.c.task_id, tt.c.try_number, tt.c.state, tt.c.start_date, tt.c.end_date)
        .where(tt.c.run_pk == run_pk, tt.c.start_date.is_not(None))
        .order_by(tt.c.start_date, tt.c.task_id, tt.c.try_number)
    )
    return [GanttBar(r.task_id, r.try_number, r.state, r.start_date, r.end_date) for r in conn.execute(stmt)]


# --- flows at a glance -------------------------------------------------------------------------
def recent_run_states(conn: Connection, flow_ids: Sequence[str], per_flow: int = 10) -> dict[str, list[RunState]]:
    """The states of each flow's latest runs, newest first (one query)."""
    ranked = sa.select(
        runs.c.flow_id,
        runs.c.state,
        sa.func.row_number()
        .over(partition_by=runs.c.flow_id, order_by=(runs.c.logical_date.desc(), runs.c.id.desc()))
        .label("n"),
    ).subquery()
    found: dict[str, list[RunState]] = {f: [] for f in flow_ids}
    for part in chunks(list(flow_ids)):
        stmt = (
            sa.select(ranked.c.flow_id, ranked.c.state)
            .where(ranked.c.flow_id.in_(part), ranked.c.n <= per_flow)
            .order_by(ranked.c.flow_id, ranked.c.n)
        )
        for flow_id, state in conn.execute(stmt):
            found[flow_id].append(RunState(state))
    return found


# --- Luigi's view ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LuigiTask:
    flow_id: str
    run_id: str
    task_id: str
    family: str
    state: str
    luigi_state: str
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    hostname: str | None
    pid: int | None


def scope_runs(conn: Connection, *, since: dt.datetime, limit: int = 200) -> list[int]:
    """The runs Luigi's view covers: every active run, and runs that ended after ``since``."""
    active = sa.or_(
        runs.c.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
        runs.c.end_date >= since,
    )
    stmt = sa.select(runs.c.id).where(active).order_by(runs.c.id.desc()).limit(limit)
    return list(conn.execute(stmt).scalars())


def _family(operator: str, node: Any) -> str:
    if operator in CLASS_TASK_KINDS and isinstance(node, Mapping):
        return str(node.get("family") or operator)
    return operator


def _scope(run_pks: Sequence[int]) -> Any:
    """Task instances of ``run_pks`` joined with their run and (if still known) their flow."""
    return ti.join(runs, runs.c.id == ti.c.run_pk).outerjoin(flows, flows.c.flow_id == runs.c.flow_id)


_PAUSED = sa.func.coalesce(flows.c.is_paused, sa.false())


def family_counts(conn: Connection, run_pks: Sequence[int]) -> dict[str, dict[str, int]]:
    """Family (a class task's family, else its operator) to counts per Luigi state, every state
    present. Counted by the database, except class tasks, whose family is read from their
    recorded definition."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for part in chunks(list(run_pks), 100):
        grouped = (
            sa.select(ti.c.operator, ti.c.state, _PAUSED.label("paused"), sa.func.count().label("n"))
            .select_from(_scope(part))
            .where(ti.c.run_pk.in_(part), ti.c.operator.not_in(CLASS_TASK_KINDS))
            .group_by(ti.c.operator, ti.c.state, _PAUSED)
        )
        for r in conn.execute(grouped):
            counts[r.operator][luigi_state(r.state, paused=bool(r.paused))] += int(r.n)
        classes = (
            sa.select(ti.c.operator, ti.c.node, ti.c.state, _PAUSED.label("paused"))
            .select_from(_scope(part))
            .where(ti.c.run_pk.in_(part), ti.c.operator.in_(CLASS_TASK_KINDS))
        )
        for r in conn.execute(classes):
            counts[_family(r.operator, r.node)][luigi_state(r.state, paused=bool(r.paused))] += 1
    return {family: {s: c.get(s, 0) for s in LUIGI_STATES} for family, c in sorted(counts.items())}


def _luigi_filter(state: str) -> Any:
    """The SQL condition for tasks in one Luigi state."""
    waiting = [s for s, name in _LUIGI_OF.items() if name == "pending"]
    if state == "pending":
        return sa.and_(ti.c.state.in_(waiting), sa.not_(_PAUSED))
    if state == "disabled":
        return sa.and_(ti.c.state.in_(waiting), _PAUSED)
    return ti.c.state.in_([s for s, name in _LUIGI_OF.items() if name == state])


def luigi_tasks(
    conn: Connection,
    run_pks: Sequence[int],
    *,
    family: str | None = None,
    state: str | None = None,
    flow_id: str | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LuigiTask], int]:
    """A page of the task instances of ``run_pks`` (newest run first, graph order) filtered by
    family, Luigi state, flow and text in the task id; and how many match in all."""
    where: list[Any] = [ti.c.run_pk.in_(list(run_pks))]
    if family is not None:  # an operator, or a class family (found in the definition's JSON text)
        marker = f'"family":{json.dumps(family, ensure_ascii=False)}'
        where.append(
            sa.or_(
                sa.and_(ti.c.operator == family, ti.c.operator.not_in(CLASS_TASK_KINDS)),
                sa.and_(
                    ti.c.operator.in_(CLASS_TASK_KINDS),
                    sa.type_coerce(ti.c.node, sa.Text).contains(marker, autoescape=True),
                ),
            )
        )
    if state is not None:
        where.append(_luigi_filter(state))
    if flow_id is not None:
        where.append(runs.c.flow_id == flow_id)
    if search:
        where.append(sa.func.lower(ti.c.task_id).contains(search.lower(), autoescape=True))
    if not run_pks:
        return [], 0
    total = conn.execute(sa.select(sa.func.count()).select_from(_scope(run_pks)).where(*where)).scalar_one()
    node = sa.case((ti.c.operator.in_(CLASS_TASK_KINDS), ti.c.node), else_=sa.null())
    stmt = (
        sa.select(
            runs.c.flow_id,
            runs.c.run_id,
            ti.c.task_id,
            ti.c.operator,
            ti.c.state,
            ti.c.start_date,
            ti.c.end_date,
            ti.c.hostname,
            ti.c.pid,
            _PAUSED.label("paused"),
            sa.type_coerce(node, ti.c.node.type).label("node"),
        )
        .select_from(_scope(run_pks))
        .where(*where)
        .order_by(ti.c.run_pk.desc(), ti.c.ordinal)
        .limit(limit)
        .offset(offset)
    )
    found = [
        LuigiTask(
            r.flow_id,
            r.run_id,
            r.task_id,
            _family(r.operator, r.node),
            r.state,
            luigi_state(r.state, paused=bool(r.paused)),
            r.start_date,
            r.end_date,
            r.hostname,
            r.pid,
        )
        for r in conn.execute(stmt)
    ]
    return found, int(total)


@dataclass(frozen=True)
class Worker:
    hostname: str
    pid: int | None
    tasks: list[LuigiTask] = field(default_factory=list)
    last_heartbeat: dt.datetime | None = None


def running_tasks(conn: Connection) -> list[tuple[LuigiTask, dt.datetime | None]]:
    """Task instances running now, with their heartbeat (what each worker is doing)."""
    stmt = (
        sa.select(
            runs.c.flow_id,
            runs.c.run_id,
            ti.c.task_id,
            ti.c.operator,
            ti.c.node,
            ti.c.state,
            ti.c.start_date,
            ti.c.hostname,
            ti.c.pid,
            ti.c.heartbeat_at,
        )
        .select_from(ti.join(runs, runs.c.id == ti.c.run_pk))
        .where(ti.c.state == S.RUNNING.value)
        .order_by(ti.c.hostname, ti.c.pid, ti.c.start_date)
    )
    return [
        (
            LuigiTask(
                r.flow_id,
                r.run_id,
                r.task_id,
                _family(r.operator, r.node),
                r.state,
                "running",
                r.start_date,
                None,
                r.hostname,
                r.pid,
            ),
            r.heartbeat_at,
        )
        for r in conn.execute(stmt)
    ]


def workers(conn: Connection) -> list[Worker]:
    """Worker processes that are running tries, grouped by host and pid."""
    by_worker: dict[tuple[str, int | None], Worker] = {}
    for task, beat in running_tasks(conn):
        key = (task.hostname or "?", task.pid)
        worker = by_worker.setdefault(key, Worker(key[0], key[1]))
        worker.tasks.append(task)
        if beat is not None and (worker.last_heartbeat is None or beat > worker.last_heartbeat):
            by_worker[key] = Worker(worker.hostname, worker.pid, worker.tasks, beat)
    return list(by_worker.values())


@dataclass(frozen=True, slots=True)
class JobView:
    id: int
    kind: str
    hostname: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: str


def running_jobs(conn: Connection, *, limit: int = 20) -> list[JobView]:
    """Scheduler jobs that say they are running, newest heartbeat first."""
    sj = scheduler_jobs
    stmt = sa.select(sj).where(sj.c.state == "running").order_by(sj.c.heartbeat_at.desc()).limit(limit)
    return [JobView(r.id, r.kind, r.hostname, r.pid, r.started_at, r.heartbeat_at, r.state) for r in conn.execute(stmt)]


def resource_use(conn: Connection) -> dict[str, int]:
    """Luigi resources held by queued and running task instances, summed per resource."""
    used: Counter[str] = Counter()
    stmt = sa.select(ti.c.node).where(ti.c.state.in_([S.QUEUED.value, S.RUNNING.value]))
    for (node,) in conn.execute(stmt):
        for name, amount in (node.get("resources") or {}).items():
            used[str(name)] += int(amount)
    return dict(used)


# --- small reads for one run or task ---------------------------------------------------------
def run_groups(conn: Connection, run_pk: int) -> dict[str, str | None]:
    """A run's task groups as recorded with it: group id to parent group id."""
    meta = conn.execute(sa.select(runs.c.graph_meta).where(runs.c.id == run_pk)).scalar_one_or_none() or {}
    return {str(g): (info or {}).get("parent") for g, info in (meta.get("groups") or {}).items()}


def task_definition(conn: Connection, run_pk: int, task_id: str) -> dict[str, Any] | None:
    """The recorded definition of one task of a run (its ``NodeSpec`` as plain data)."""
    row = conn.execute(
        sa.select(ti.c.node, ti.c.upstream).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    ).first()
    if row is None:
        return None
    return {**row.node, "task_id": task_id, "upstream": list(row.upstream)}


def downstream_of(conn: Connection, run_pk: int, task_id: str) -> list[str]:
    """The tasks of a run that list ``task_id`` among their upstream tasks, in graph order."""
    rows = _fast_rows(
        conn, sa.select(ti.c.task_id, ti.c.upstream).where(ti.c.run_pk == int(run_pk)).order_by(ti.c.ordinal)
    )
    return [t for t, up in rows if task_id in json.loads(up)]


def run_revision(conn: Connection, run_pk: int) -> tuple[str, int]:
    """A run's state and revision (what a live page checks before asking for more)."""
    row = conn.execute(sa.select(runs.c.state, runs.c.revision).where(runs.c.id == run_pk)).one()
    return str(row.state), int(row.revision)
