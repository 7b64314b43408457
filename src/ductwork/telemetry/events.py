"""What the metric adapters derive from the engine's events, computed once for all of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ductwork.core.events import EngineEvent, RunEnded, StateChanged, TryBegan, TryEnded
from ductwork.core.states import TaskState

READY = TaskState.SCHEDULED


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing to count or time: ``kind`` is transition, try, run or ready_to_start."""

    kind: str
    flow: str
    state: str = ""
    seconds: float = 0.0


class Deriver:
    """Turns events into facts; remembers when each ready task became ready, so that the wait
    until it started can be measured (one entry per task waiting, dropped when it starts or its
    run ends)."""

    def __init__(self) -> None:
        self._ready: dict[tuple[str, str], dt.datetime] = {}

    def facts(self, events: Sequence[EngineEvent]) -> Iterator[Fact]:
        for event in events:
            flow = event.run_key.partition("/")[0]
            if isinstance(event, StateChanged):
                new = event.change.new
                yield Fact("transition", flow, new.value)
                key = (event.run_key, event.change.task_id)
                if new == READY:
                    self._ready[key] = event.at
                elif new == TaskState.RUNNING:
                    ready = self._ready.pop(key, None)
                    if ready is not None:
                        yield Fact("ready_to_start", flow, seconds=max(0.0, (event.at - ready).total_seconds()))
            elif isinstance(event, TryBegan):
                ready = self._ready.pop((event.run_key, event.task_id), None)
                if ready is not None:
                    yield Fact("ready_to_start", flow, seconds=max(0.0, (event.at - ready).total_seconds()))
            elif isinstance(event, TryEnded):
                outcome = event.outcome
                yield Fact("try", flow, outcome.state.value, max(0.0, outcome.duration))
            elif isinstance(event, RunEnded):
                yield Fact("run", flow, event.state.value)
                prefix = event.run_key
                for key in [k for k in self._ready if k[0] == prefix]:
                    del self._ready[key]
