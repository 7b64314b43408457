"""Telemetry from the settings: which adapters a scheduler gets, and its metrics port."""

from __future__ import annotations

from typing import Any

from ductwork.core.telemetry import Fanout, Telemetry
from ductwork.errors import DefinitionError
from ductwork.settings import Settings

TRACING = ("", "otlp", "console", "global")


def build_telemetry(
    settings: Settings, *, prometheus: bool = False, service: str = "ductwork-scheduler", scraped: bool = True
) -> tuple[Telemetry | None, Any]:
    """The scheduler's telemetry (None when nothing is configured: the engine then makes no
    telemetry call at all) and its Prometheus registry (None without Prometheus). Prometheus is
    on with ``metrics_port`` or ``prometheus`` (the web server of ``ductwork standalone``
    shows the scheduler's metrics), unless not ``scraped`` (a command that ends with its run:
    nothing would scrape it, while StatsD and traces are sent). ``service``: the traces'
    ``service.name``."""
    parts: list[Telemetry] = []
    registry = None
    if scraped and (settings.metrics_port or prometheus):
        from ductwork.telemetry.prometheus import PrometheusTelemetry

        metrics = PrometheusTelemetry()
        registry = metrics.registry
        parts.append(metrics)
    if settings.statsd_address:
        from ductwork.telemetry.statsd import StatsdTelemetry

        parts.append(StatsdTelemetry(settings.statsd_address, settings.statsd_prefix))
    if settings.tracing:
        if settings.tracing not in TRACING:
            raise DefinitionError(f"tracing must be one of otlp, console, global, got {settings.tracing!r}")
        from ductwork.telemetry.tracing import TracingTelemetry, install_provider

        try:
            install_provider(settings.tracing, service=service)
            parts.append(TracingTelemetry())
        except ImportError as exc:
            raise DefinitionError(f"tracing needs OpenTelemetry ({exc}): pip install 'ductwork[otel]'") from exc
    if not parts:
        return None, None
    return (parts[0] if len(parts) == 1 else Fanout(parts)), registry
