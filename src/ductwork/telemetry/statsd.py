"""StatsD metrics (``statsd_address`` setting): the same facts as the Prometheus adapter, as
counters, timers and gauges named ``<prefix>.<metric>.<flow>.<state>`` (plain StatsD has no
labels)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ductwork.core.events import EngineEvent
from ductwork.core.telemetry import Sample
from ductwork.errors import DefinitionError
from ductwork.telemetry.events import Deriver

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _part(text: str) -> str:
    return _UNSAFE.sub("_", text) or "_"


def parse_address(address: str) -> tuple[str, int]:
    from ductwork.settings import host_port

    return host_port("statsd_address", address)


class StatsdTelemetry:
    def __init__(self, address: str, prefix: str = "ductwork", client: Any = None) -> None:
        if client is None:
            try:
                from statsd import StatsClient
            except ImportError as exc:  # pragma: no cover - the statsd extra is part of "all"
                raise DefinitionError(
                    f"StatsD metrics need the statsd package ({exc}): pip install 'ductwork[statsd]'"
                ) from exc
            host, port = parse_address(address)
            try:  # the client looks the host up once, here
                client = StatsClient(host, port, prefix=prefix)
            except OSError as exc:
                raise DefinitionError(
                    f"statsd_address {address!r}: cannot look up the host {host!r} ({exc.strerror or exc}); "
                    "check the name, or leave statsd_address empty to send no StatsD metrics"
                ) from None
        self.client = client
        self._deriver = Deriver()

    def record(self, events: Sequence[EngineEvent]) -> None:
        for fact in self._deriver.facts(events):
            flow = _part(fact.flow)
            if fact.kind == "transition":
                self.client.incr(f"task_transitions.{flow}.{fact.state}")
            elif fact.kind == "try":
                self.client.incr(f"tries.{flow}.{fact.state}")
                self.client.timing(f"try_duration.{flow}.{fact.state}", fact.seconds * 1000)
            elif fact.kind == "run":
                self.client.incr(f"runs_finished.{flow}.{fact.state}")
            elif fact.kind == "ready_to_start":
                self.client.timing(f"ready_to_start.{flow}", fact.seconds * 1000)

    def poll_took(self, seconds: float) -> None:
        self.client.timing("scheduler_poll", seconds * 1000)

    def db_write_took(self, seconds: float) -> None:
        self.client.timing("db_write", seconds * 1000)

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        self.client.timing("parse", seconds * 1000)
        if errors:
            self.client.incr("parse_errors", errors)

    def sample(self, sample: Sample) -> None:
        for (flow, state), count in sample.tasks.items():
            self.client.gauge(f"tasks.{_part(flow)}.{state}", count)
        for flow, count in sample.runs.items():
            self.client.gauge(f"active_runs.{_part(flow)}", count)
        self.client.gauge("queue_depth", sample.queue_depth)
        self.client.gauge("slots_in_use", sample.slots_in_use)
        self.client.gauge("slots", sample.slots_total)
        for pool, used in sample.pools_in_use.items():
            self.client.gauge(f"pool_slots_in_use.{_part(pool)}", used)
        self.client.gauge("workers", sample.workers)
