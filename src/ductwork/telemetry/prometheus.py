"""Prometheus metrics of a scheduler (and of the worker pool it drives), served on a port of
its own (``metrics_port``) and, in ``ductwork standalone``, with the web server's ``/metrics``.

Metric names start with ``ductwork_``; flows are a label, tasks are not (a flow of 10,000 tasks
would make 10,000 series). See ``deploy/grafana/ductwork.json`` for a dashboard.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

from ductwork.core.events import EngineEvent
from ductwork.core.telemetry import Sample
from ductwork.telemetry.events import Deriver

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - the metrics extra is part of "all"
        from ductwork.errors import DuctworkError

        raise DuctworkError(
            f"Prometheus metrics need prometheus_client ({exc}): pip install 'ductwork[metrics]'"
        ) from exc
    return prometheus_client


class PrometheusTelemetry:
    def __init__(self, registry: Any = None) -> None:
        pc = _client()
        self.registry = registry if registry is not None else pc.CollectorRegistry()
        r = self.registry
        self.transitions = pc.Counter(
            "ductwork_task_transitions",
            "Task state changes, by flow and the state entered",
            ["flow", "state"],
            registry=r,
        )
        self.tries = pc.Counter(
            "ductwork_tries", "Tries that ended, by flow and outcome", ["flow", "state"], registry=r
        )
        self.try_seconds = pc.Histogram(
            "ductwork_try_duration_seconds", "How long tries ran", ["flow", "state"], buckets=SECONDS, registry=r
        )
        self.runs = pc.Counter(
            "ductwork_runs_finished", "Runs that ended, by flow and state", ["flow", "state"], registry=r
        )
        self.ready_to_start = pc.Histogram(
            "ductwork_ready_to_start_seconds",
            "From a task becoming ready to its try starting",
            ["flow"],
            buckets=SECONDS,
            registry=r,
        )
        self.poll = pc.Histogram(
            "ductwork_scheduler_poll_seconds",
            "One look of the scheduler at the store (new, due and changed runs)",
            buckets=SECONDS,
            registry=r,
        )
        self.db_write = pc.Histogram(
            "ductwork_db_write_seconds", "Writing one scheduler step to the database", buckets=SECONDS, registry=r
        )
        self.parse = pc.Histogram("ductwork_parse_seconds", "Parsing one flow file", buckets=SECONDS, registry=r)
        self.parse_errors = pc.Counter(
            "ductwork_parse_errors", "Import errors found while parsing flow files", registry=r
        )
        self.tasks = pc.Gauge(
            "ductwork_tasks", "Task instances of active runs, by flow and state", ["flow", "state"], registry=r
        )
        self.active_runs = pc.Gauge("ductwork_active_runs", "Runs the scheduler drives, by flow", ["flow"], registry=r)
        self.queue_depth = pc.Gauge(
            "ductwork_queue_depth", "Tasks ready or handed to the executor that have not started", registry=r
        )
        self.slots_in_use = pc.Gauge("ductwork_slots_in_use", "Executor slots running or holding a try", registry=r)
        self.slots_total = pc.Gauge("ductwork_slots", "Executor slots", registry=r)
        self.pool_in_use = pc.Gauge("ductwork_pool_slots_in_use", "Pool slots in use", ["pool"], registry=r)
        self.pool_total = pc.Gauge("ductwork_pool_slots", "Pool slots", ["pool"], registry=r)
        self.workers = pc.Gauge("ductwork_workers", "Worker processes of the local pool", registry=r)
        self._deriver = Deriver()
        self._task_series: set[tuple[str, str]] = set()
        self._run_series: set[str] = set()

    def record(self, events: Sequence[EngineEvent]) -> None:
        for fact in self._deriver.facts(events):
            if fact.kind == "transition":
                self.transitions.labels(fact.flow, fact.state).inc()
            elif fact.kind == "try":
                self.tries.labels(fact.flow, fact.state).inc()
                self.try_seconds.labels(fact.flow, fact.state).observe(fact.seconds)
            elif fact.kind == "run":
                self.runs.labels(fact.flow, fact.state).inc()
            elif fact.kind == "ready_to_start":
                self.ready_to_start.labels(fact.flow).observe(fact.seconds)

    def poll_took(self, seconds: float) -> None:
        self.poll.observe(seconds)

    def db_write_took(self, seconds: float) -> None:
        self.db_write.observe(seconds)

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        self.parse.observe(seconds)
        if errors:
            self.parse_errors.inc(errors)

    def sample(self, sample: Sample) -> None:
        for key in self._task_series - set(sample.tasks):
            self.tasks.labels(*key).set(0)  # a state no task is in any more reads 0, not its last value
        for key, count in sample.tasks.items():
            self.tasks.labels(*key).set(count)
        self._task_series |= set(sample.tasks)
        for flow in self._run_series - set(sample.runs):
            self.active_runs.labels(flow).set(0)
        for flow, count in sample.runs.items():
            self.active_runs.labels(flow).set(count)
        self._run_series |= set(sample.runs)
        self.queue_depth.set(sample.queue_depth)
        self.slots_in_use.set(sample.slots_in_use)
        self.slots_total.set(sample.slots_total)
        for pool, used in sample.pools_in_use.items():
            self.pool_in_use.labels(pool).set(used)
        for pool, total in sample.pools_total.items():
            self.pool_total.labels(pool).set(total)
        self.workers.set(sample.workers)


def serve(
    registry: Any,
    port: int,
    host: str = "0.0.0.0",
    *,
    token: str = "",
    before: Callable[[], object] | None = None,
) -> Any:
    """Serve ``registry`` at ``http://host:port/metrics`` from a thread; returns the server (call
    ``shutdown()`` on it to stop).

    With ``token``, a scrape must send it as a bearer token (as the web server's ``/metrics``
    asks for ``metrics_token``). ``before`` runs ahead of each scrape, to bring figures that
    arrive in batches up to date. A port that cannot be bound is a ``DuctworkError`` naming it.
    """
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from ductwork.errors import DuctworkError

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes come every few seconds: no line per request."""

    metrics = _client().make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if token and not _bearer_matches(environ.get("HTTP_AUTHORIZATION", ""), token):
            body = {"detail": "these metrics need the metrics token as a bearer token", "error": "unauthenticated"}
            start_response("401 Unauthorized", [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")])
            return [json.dumps(body).encode()]
        if before is not None:
            before()
        return metrics(environ, start_response)

    try:
        server = make_server(host, port, app, server_class=Server, handler_class=Quiet)
    except OSError as exc:
        raise DuctworkError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; give this process another port "
            "(metrics_port, or --metrics-port of ductwork worker), or 0 for none"
        ) from None
    threading.Thread(target=server.serve_forever, name="ductwork-metrics", daemon=True).start()
    return server


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
