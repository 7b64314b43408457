"""What metrics and traces cost the scheduler, per task, in CPU time.

With telemetry off the scheduler makes no telemetry call (there is no sink to call), so the
cost is zero by construction; this measures what each adapter costs when it is on, fed the
events of a chain of N tasks exactly as the supervisor emits them (scheduled, queued, running,
try began, try ended, success; then the run's end), and what a poll's sample of N task states
costs. CPU time of this process, so other work on the machine moves it less than wall time.

    python benchmarks/telemetry.py [--tasks 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import time
from collections.abc import Callable
from typing import Any

from ductwork.core.context import RunInfo
from ductwork.core.events import EngineEvent, RunEnded, StateChanged, TryBegan, TryEnded, TryOutcome
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.engine.supervisor import Supervisor
from ductwork.engine.telemetry_hooks import sample_of
from ductwork.engine.tracker import Change

S = TaskState
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def chain_events(n: int) -> list[list[EngineEvent]]:
    """One recorded step per task, as the supervisor hands them to its sinks."""
    key = "bench/run_1"
    steps = []
    for i in range(n):
        task = f"t{i}"
        at = T0 + dt.timedelta(milliseconds=i)
        outcome = TryOutcome(S.SUCCESS, at, at + dt.timedelta(microseconds=300))
        steps.append(
            [
                StateChanged(key, Change(task, S.NONE, S.SCHEDULED, ""), at, 0),
                StateChanged(key, Change(task, S.SCHEDULED, S.QUEUED, "dispatched"), at, 1),
                StateChanged(key, Change(task, S.QUEUED, S.RUNNING, "started"), at, 1),
                TryBegan(key, task, 1, at, "host:1"),
                TryEnded(key, task, 1, outcome),
                StateChanged(key, Change(task, S.RUNNING, S.SUCCESS, ""), at, 1),
            ]
        )
    steps[-1].append(RunEnded(key, RunState.SUCCESS, T0 + dt.timedelta(milliseconds=n)))
    return steps


def cpu_us_per_task(make: Callable[[], Any], steps: list[list[EngineEvent]]) -> float:
    best = float("inf")
    for _ in range(3):
        telemetry = make()
        started = time.process_time()
        for events in steps:
            telemetry.record(events)
        best = min(best, time.process_time() - started)
    return best / len(steps) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    steps = chain_events(args.tasks)
    from ductwork.telemetry.prometheus import PrometheusTelemetry
    from ductwork.telemetry.statsd import StatsdTelemetry
    from ductwork.telemetry.tracing import TracingTelemetry

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{sink.getsockname()[1]}"

    def tracer() -> Any:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Drop()))
        return TracingTelemetry(tracer=provider.get_tracer("bench"))

    rows = [
        ("off (no sink, no call)", 0.0),
        ("prometheus", cpu_us_per_task(PrometheusTelemetry, steps)),
        ("statsd (UDP to localhost)", cpu_us_per_task(lambda: StatsdTelemetry(address), steps)),
        ("opentelemetry (SDK, spans dropped)", cpu_us_per_task(tracer, steps)),
    ]
    nodes = {f"t{i}": NodeSpec(f"t{i}", (f"t{i - 1}",) if i else ()) for i in range(args.tasks)}
    supervisor = Supervisor(executor=None, clock=None)  # type: ignore[arg-type]
    info = RunInfo("bench", "run_1", T0, T0, T0)
    supervisor.add_run(info, FlowGraph(FlowMeta("bench"), nodes))
    started = time.process_time()
    for _ in range(20):
        sample_of(supervisor, None)
    sample_ms = (time.process_time() - started) / 20 * 1000
    print(f"# telemetry CPU cost, chain of {args.tasks:,} tasks (one recorded step per task)")
    print("| adapter | CPU us per task |")
    print("|---|---|")
    for name, cost in rows:
        print(f"| {name} | {cost:.1f} |")
    print(f"# one poll's sample of {args.tasks:,} task states: {sample_ms:.2f} ms CPU (once per poll_interval)")
    sink.close()


if __name__ == "__main__":
    main()
