"""The telemetry port: what the engine tells metrics and tracing, and nothing else.

The scheduler holds a ``Telemetry`` only when metrics or tracing are configured, and then calls
it at a few places: it is one of the supervisor's event sinks (so everything derived from state
changes and tries is computed from the events the engine emits anyway, once per recorded step),
and it hears how long the scheduler's looks at the store, its database writes and its parses
took, and a sample of queue depth and slots at every poll. With telemetry off there is no sink
and no call: the engine's hot path does not change. ``ductwork.telemetry`` has the adapters
(Prometheus, StatsD, OpenTelemetry traces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ductwork.core.events import EngineEvent


@dataclass(frozen=True)
class Sample:
    """What the scheduler holds at one moment (taken at each poll)."""

    tasks: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(flow id, task state) to how many task instances of active runs are in it."""
    runs: Mapping[str, int] = field(default_factory=dict)
    """Flow id to active runs."""
    queue_depth: int = 0
    """Tasks ready or handed to the executor that have not started."""
    slots_in_use: int = 0
    slots_total: int = 0
    pools_in_use: Mapping[str, int] = field(default_factory=dict)
    pools_total: Mapping[str, int] = field(default_factory=dict)
    workers: int = 0


class Telemetry(Protocol):
    def record(self, events: Sequence[EngineEvent]) -> None:
        """One recorded step's events (the port is an ``EventSink``)."""
        ...

    def poll_took(self, seconds: float) -> None:
        """The scheduler looked at the store (new, due, changed runs) for this long."""
        ...

    def db_write_took(self, seconds: float) -> None:
        """One step was written to the database in this long."""
        ...

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        """A flow file was parsed in this long, with this many import errors."""
        ...

    def sample(self, sample: Sample) -> None: ...


class NoTelemetry:
    """Telemetry that records nothing (the default; the scheduler does not even call it)."""

    def record(self, events: Sequence[EngineEvent]) -> None:
        return None

    def poll_took(self, seconds: float) -> None:
        return None

    def db_write_took(self, seconds: float) -> None:
        return None

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        return None

    def sample(self, sample: Sample) -> None:
        return None


class Fanout:
    """Several adapters behind one port (Prometheus and StatsD and traces)."""

    def __init__(self, parts: Sequence[Telemetry]) -> None:
        self.parts = list(parts)

    def record(self, events: Sequence[EngineEvent]) -> None:
        for part in self.parts:
            part.record(events)

    def poll_took(self, seconds: float) -> None:
        for part in self.parts:
            part.poll_took(seconds)

    def db_write_took(self, seconds: float) -> None:
        for part in self.parts:
            part.db_write_took(seconds)

    def parsed(self, file: str, seconds: float, errors: int) -> None:
        for part in self.parts:
            part.parsed(file, seconds, errors)

    def sample(self, sample: Sample) -> None:
        for part in self.parts:
            part.sample(sample)
