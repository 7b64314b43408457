"""``GET /metrics``: Prometheus metrics of the web server's process and of the store, for a
scraper without a session (``metrics_token`` makes it ask for a bearer token instead).

The store's figures are read at scrape time, in one short read transaction, so any web server
of an installation shows the same numbers whichever scheduler is running: runs by flow and
state, the task instances and tries of active runs by flow and state (what moves while runs
run), pool slots in use, import errors, and how long ago a scheduler last heartbeat (alive or not). In
``ductwork standalone`` the scheduler's own metrics (``ductwork_*``: loop, tries, queue,
database writes, parses) follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ductwork.api.context import WebContext
from ductwork.api.errors import error_body, schema_mismatch
from ductwork.api.security import same_token
from ductwork.core.states import RunState
from ductwork.store.engine import database_unavailable, read_transaction
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.tables import runs, scheduler_jobs, task_instances, task_tries, workers
from ductwork.store.types import utcnow

PATH = "/metrics"
ACTIVE = (RunState.QUEUED.value, RunState.RUNNING.value)


class StoreCollector:
    """A Prometheus collector over the metadata database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        """The store's figures and ``ductwork_store_up`` (1; 0 without the others when the
        database does not answer: the scrape still succeeds, with the process metrics, and an
        alert can say what is wrong instead of the web server looking down)."""
        from prometheus_client.core import GaugeMetricFamily

        help_text = "1 when the metadata database answered this scrape, 0 when it did not"
        try:
            families = list(self._collect())
        except Exception as exc:
            if not database_unavailable(exc) and schema_mismatch(self.engine, exc) is None:
                raise  # not the database's state (no schema counts: dropped, or a newer one's)
            yield GaugeMetricFamily("ductwork_store_up", help_text, value=0)
            return
        yield GaugeMetricFamily("ductwork_store_up", help_text, value=1)
        yield from families

    def _collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with read_transaction(self.engine) as conn:
            run_counts = conn.execute(
                sa.select(runs.c.flow_id, runs.c.state, sa.func.count()).group_by(runs.c.flow_id, runs.c.state)
            ).all()
            active = sa.select(runs.c.id, runs.c.flow_id).where(runs.c.state.in_(ACTIVE)).subquery()
            ti_counts = conn.execute(
                sa.select(active.c.flow_id, task_instances.c.state, sa.func.count())
                .select_from(task_instances.join(active, active.c.id == task_instances.c.run_pk))
                .group_by(active.c.flow_id, task_instances.c.state)
            ).all()
            try_counts = conn.execute(
                sa.select(active.c.flow_id, task_tries.c.state, sa.func.count())
                .select_from(task_tries.join(active, active.c.id == task_tries.c.run_pk))
                .group_by(active.c.flow_id, task_tries.c.state)
            ).all()
            pools = pool_repo.pool_usage(conn)
            errors = len(error_repo.list_import_errors(conn))
            # The newest heartbeat of any scheduler, alive or not: once none runs, the age grows
            # (what an alert on it needs) instead of turning NaN.
            last_beat = conn.execute(
                sa.select(sa.func.max(scheduler_jobs.c.heartbeat_at)).where(scheduler_jobs.c.kind == "scheduler")
            ).scalar()
            remote = conn.execute(
                sa.select(
                    workers.c.name, workers.c.state, workers.c.concurrency, workers.c.slots_used, workers.c.heartbeat_at
                ).where(workers.c.state != "stopped")
            ).all()
        by_run = GaugeMetricFamily(
            "ductwork_store_runs", "Runs in the database, by flow and state", labels=["flow", "state"]
        )
        for flow, state, count in run_counts:
            by_run.add_metric([flow, state], count)
        yield by_run
        tasks = GaugeMetricFamily(
            "ductwork_store_task_instances",
            "Task instances of queued and running runs, by flow and state",
            labels=["flow", "state"],
        )
        for flow, state, count in ti_counts:
            tasks.add_metric([flow, state], count)
        yield tasks
        tries = GaugeMetricFamily(
            "ductwork_store_tries", "Tries of queued and running runs, by flow and state", labels=["flow", "state"]
        )
        for flow, state, count in try_counts:
            tries.add_metric([flow, state], count)
        yield tries
        used = GaugeMetricFamily("ductwork_store_pool_slots_in_use", "Pool slots queued or running", labels=["pool"])
        total = GaugeMetricFamily("ductwork_store_pool_slots", "Pool slots", labels=["pool"])
        for pool in pools:
            used.add_metric([pool.name], pool.queued_slots + pool.running_slots)
            total.add_metric([pool.name], pool.slots)
        yield used
        yield total
        yield GaugeMetricFamily("ductwork_store_import_errors", "Flow files that fail to import", value=errors)
        slots = GaugeMetricFamily(
            "ductwork_store_worker_slots", "Slots of each remote worker (ductwork worker)", labels=["worker", "state"]
        )
        busy = GaugeMetricFamily(
            "ductwork_store_worker_slots_in_use", "Slots in use of each remote worker", labels=["worker", "state"]
        )
        beat = GaugeMetricFamily(
            "ductwork_store_worker_heartbeat_age_seconds",
            "Seconds since each remote worker's heartbeat",
            labels=["worker"],
        )
        now = utcnow()
        for name, state, concurrency, used, heartbeat in remote:
            slots.add_metric([name, state], concurrency)
            busy.add_metric([name, state], used)
            beat.add_metric([name], (now - heartbeat).total_seconds())
        yield slots
        yield busy
        yield beat
        age = (utcnow() - last_beat).total_seconds() if last_beat is not None else float("nan")
        yield GaugeMetricFamily(
            "ductwork_store_scheduler_heartbeat_age_seconds",
            "Seconds since a scheduler last heartbeat, alive or stopped since (NaN: there never was one)",
            value=age,
        )


def install(app: FastAPI, ctx: WebContext) -> None:
    """Serve ``/metrics`` (public unless the ``metrics_token`` setting is set)."""
    state: dict[str, Any] = {}

    def render() -> bytes:
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

        registry = state.get("registry")
        if registry is None:
            registry = state["registry"] = CollectorRegistry()
            registry.register(StoreCollector(ctx.engine))
        parts = [generate_latest(registry), generate_latest(REGISTRY)]
        scheduler = getattr(app.state, "scheduler", None)
        extra = getattr(scheduler, "metrics_registry", None)
        if extra is not None:
            parts.append(generate_latest(extra))
        return b"".join(parts)

    @app.get(PATH, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        expected = ctx.settings.metrics_token
        if expected:
            scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not same_token(given.strip(), expected):
                return JSONResponse(
                    error_body("this server's /metrics needs its metrics token as a bearer token", "unauthenticated"),
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        from prometheus_client import CONTENT_TYPE_LATEST

        body = await run_in_threadpool(render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
