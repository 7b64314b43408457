"""OpenTelemetry traces (``tracing`` setting): a run is a trace, each try a span of it.

Spans are made from the engine's events after the fact, with the times the events carry
(a try's span starts when the try started and ends when it ended), so tracing adds nothing to
the path of a try. A run's span starts with its first recorded event and ends when the run
ends; a try's span is its child, named after the task, with ``ductwork.flow``,
``ductwork.run``, ``ductwork.task``, ``ductwork.try_number`` and ``ductwork.state``. After a
scheduler restart, the tries of a run that was already running go to a new trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ductwork.core.events import EngineEvent, RunEnded, TryEnded
from ductwork.core.states import RunState, TaskState
from ductwork.core.telemetry import Sample

TRACER_NAME = "ductwork"


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


class TracingTelemetry:
    def __init__(self, tracer: Any = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self.tracer = tracer if tracer is not None else trace.get_tracer(TRACER_NAME)
        self._runs: dict[str, Any] = {}

    def _run_span(self, run_key: str, at: dt.datetime) -> Any:
        span = self._runs.get(run_key)
        if span is None:
            flow, _, run_id = run_key.partition("/")
            span = self.tracer.start_span(
                f"run {run_key}",
                start_time=_ns(at),
                attributes={"ductwork.flow": flow, "ductwork.run": run_id},
            )
            self._runs[run_key] = span
        return span

    def record(self, events: Sequence[EngineEvent]) -> None:
        from opentelemetry.trace import Status, StatusCode

        for event in events:
            at = getattr(event, "at", None)
            if isinstance(event, TryEnded):
                outcome = event.outcome
                run = self._run_span(event.run_key, outcome.started_at)
                flow, _, run_id = event.run_key.partition("/")
                span = self.tracer.start_span(
                    event.task_id,
                    context=self._trace.set_span_in_context(run),
                    start_time=_ns(outcome.started_at),
                    attributes={
                        "ductwork.flow": flow,
                        "ductwork.run": run_id,
                        "ductwork.task": event.task_id,
                        "ductwork.try_number": event.try_number,
                        "ductwork.state": outcome.state.value,
                    },
                )
                if outcome.state in (TaskState.FAILED, TaskState.UP_FOR_RETRY):
                    span.set_status(Status(StatusCode.ERROR, outcome.error or outcome.state.value))
                span.end(end_time=_ns(outcome.ended_at))
            elif isinstance(event, RunEnded):
                run = self._run_span(event.run_key, event.at)
                run.set_attribute("ductwork.state", event.state.value)
                if event.state == RunState.FAILED:
                    run.set_status(Status(StatusCode.ERROR, "the run failed"))
                run.end(end_time=_ns(event.at))
                del self._runs[event.run_key]
            elif at is not None:
                self._run_span(event.run_key, at)

    def poll_took(self, seconds: float) -> None:
        return None

    def db_write_took(self, seconds: float) -> None:
        return None

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        return None

    def sample(self, sample: Sample) -> None:
        return None


def install_provider(kind: str, *, service: str = "ductwork-scheduler") -> None:
    """Set up the global tracer provider for ``kind`` (otlp, console); ``global`` uses the one
    the process already has (set by ``opentelemetry-instrument`` or by the embedding program).
    The provider sends what it holds when the process exits (its own ``atexit``)."""
    if kind == "global":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: Any = OTLPSpanExporter()  # endpoint and headers from the standard OTEL_EXPORTER_OTLP_* variables
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
