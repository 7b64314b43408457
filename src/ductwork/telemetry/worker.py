"""Prometheus metrics of one ``ductwork worker`` (a Celery worker group), served on its own
metrics port (``--metrics-port`` or ``metrics_port``).

The scheduler's metrics say what it handed out; these say what this worker group did with it:
its slots and how many are busy, the tries it started, dropped (redelivered or superseded
messages: nothing ran) and finished, by flow and outcome, how long they ran, and when its
heartbeat last reached the database. Names start with ``ductwork_worker_``; the scraper's
``instance`` label tells worker groups apart, and ``ductwork_worker_info`` names each one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ductwork.telemetry.prometheus import SECONDS, _client


class WorkerMetrics:
    """The registry of one worker group; an ``engine.remote.runner.TryObserver``."""

    def __init__(
        self,
        *,
        worker: str,
        queues: Sequence[str],
        concurrency: int,
        version: str,
        slots_in_use: Callable[[], float],
    ) -> None:
        pc = _client()
        self.registry = r = pc.CollectorRegistry()
        info = pc.Gauge(
            "ductwork_worker_info", "This worker group (always 1)", ["worker", "queues", "version"], registry=r
        )
        info.labels(worker, ",".join(queues), version).set(1)
        pc.Gauge("ductwork_worker_slots", "Tries this worker group runs at once", registry=r).set(concurrency)
        busy = pc.Gauge("ductwork_worker_slots_in_use", "Slots running a try now", registry=r)
        busy.set_function(slots_in_use)
        self.tries_started = pc.Counter(
            "ductwork_worker_tries_started", "Tries this worker group started, by flow", ["flow"], registry=r
        )
        self.tries_dropped = pc.Counter(
            "ductwork_worker_tries_dropped",
            "Messages for tries that had started, ended or been cleared (nothing ran), by flow",
            ["flow"],
            registry=r,
        )
        self.tries_finished = pc.Counter(
            "ductwork_worker_tries_finished",
            "Tries this worker group recorded the end of, by flow and outcome",
            ["flow", "state"],
            registry=r,
        )
        self.try_seconds = pc.Histogram(
            "ductwork_worker_try_duration_seconds",
            "How long this worker group's tries ran, by flow and outcome",
            ["flow", "state"],
            buckets=SECONDS,
            registry=r,
        )
        self.heartbeat_at = pc.Gauge(
            "ductwork_worker_heartbeat_timestamp_seconds",
            "When this worker group's heartbeat last reached the database (Unix time; 0: never)",
            registry=r,
        )
        self.heartbeat_failures = pc.Counter(
            "ductwork_worker_heartbeat_failures", "Heartbeats that could not be written", registry=r
        )

    def started(self, flow: str) -> None:
        self.tries_started.labels(flow).inc()

    def dropped(self, flow: str) -> None:
        self.tries_dropped.labels(flow).inc()

    def finished(self, flow: str, state: str, seconds: float) -> None:
        self.tries_finished.labels(flow, state).inc()
        self.try_seconds.labels(flow, state).observe(seconds)

    def heartbeat(self, at: float | None) -> None:
        """A heartbeat written at Unix time ``at``, or (None) one that failed."""
        if at is None:
            self.heartbeat_failures.inc()
        else:
            self.heartbeat_at.set(at)
