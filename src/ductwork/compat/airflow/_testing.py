"""``dag.test()``: run every task of a DAG once, in this process, printing as it goes."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ductwork.core.events import EngineEvent, StateChanged, TryEnded


class _Printer:
    """Prints each try's end and each state the tracker decides (skips, upstream failures)."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def record(self, events: Sequence[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, TryEnded):
                outcome = event.outcome
                line = f"[dag.test] {event.task_id}: {outcome.state.value}"
                if outcome.error:
                    line += f" ({outcome.error})"
                print(line, file=self.out, flush=True)
            elif (
                isinstance(event, StateChanged)
                and event.change.new.value in ("skipped", "upstream_failed")
                and event.change.old.value in ("none", "scheduled")
            ):
                print(f"[dag.test] {event.change.task_id}: {event.change.new.value}", file=self.out, flush=True)


def run_dag_test(dag: Any, logical_date: dt.datetime | None, run_conf: Mapping[str, Any] | None) -> Any:
    from ductwork.engine.local import run_locally

    conf = dict(run_conf or {})
    params = {k: v for k, v in conf.items() if k in dag.params}
    summary = run_locally(
        dag,
        params=params,
        logical_date=logical_date,
        conf=conf,
        run_type="manual",
        sinks=[_Printer(sys.stdout)],
    )
    for (task_id, try_number), text in sorted(summary.logs.items()):
        if text.strip():
            print(f"--- {task_id}, try {try_number} ---\n{text.rstrip()}", flush=True)
    print(f"[dag.test] run {summary.run_id}: {summary.state.value}", flush=True)
    return summary
