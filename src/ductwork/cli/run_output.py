"""A run's live progress and its summary (tables and JSON), for the commands that run flows."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ductwork.cli.output import styled
from ductwork.cli.tables import DataTable, run_table
from ductwork.core.states import TaskState
from ductwork.core.task_order import instances_under_their_task, reorder
from ductwork.engine.recorder import RunSummary
from ductwork.engine.supervisor import EngineEvent, StateChanged


class ProgressSink:
    """A live progress bar of finished tasks, fed by the supervisor's events.

    Its console writes to the real stderr, chosen once: tries' output is routed by replacing
    ``sys.stdout``/``sys.stderr`` (``engine.logcapture``), and a console that looked up
    ``sys.stderr`` at every write would draw into that routing, which hands the drawing back to
    the live display, which draws again (the bar froze and wrote thousands of redraws). The
    bar is redrawn by its own thread a few times a second, never per event.
    """

    REFRESH_PER_SECOND = 4

    def __init__(self, total: int, title: str, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        stream = sys.stderr
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 160),
            transient=True,
            disable=not enabled,
            refresh_per_second=self.REFRESH_PER_SECOND,
        )
        self.task = self.progress.add_task(escape(title), total=total, detail="")
        self.counts: dict[str, int] = {}

    def __enter__(self) -> ProgressSink:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def record(self, events: Sequence[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, StateChanged):
                change = event.change
                if change.new.is_terminal and not change.old.is_terminal:
                    self.done += 1
                    self.counts[change.new.value] = self.counts.get(change.new.value, 0) + 1
                elif change.old.is_terminal and not change.new.is_terminal:
                    self.done -= 1
        self.total = max(self.total, self.done)
        detail = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        self.progress.update(self.task, completed=self.done, total=self.total, detail=detail)


ALL_ROWS = 25
"""A run of up to this many tasks lists every one; a larger run lists those that did not succeed
(a hundred green lines would hide the one red, and cost the command 40 ms to draw)."""


def summary_table(summary: RunSummary, *, max_rows: int = 200) -> Table:
    table = run_table(summary.flow_id, summary.run_id, styled(summary.state.value), sep="  ")
    table.add_column("task")
    table.add_column("state")
    table.add_column("tries", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("note", overflow="fold", max_width=70)
    rows = list(summary.tasks.values())
    order = instances_under_their_task([row.task_id for row in rows])
    if order is not None:  # a mapped task's instances under their task, as the UI lists them
        rows = reorder(rows, order)
    shown = rows if len(rows) <= ALL_ROWS else [r for r in rows if r.state != TaskState.SUCCESS][:max_rows]
    for task in shown:
        durations = [t.duration for t in task.tries if t.duration is not None]
        # A rescheduled sensor's pokes are entries of one try (same try number): count tries.
        tries = str(len({t.try_number for t in task.tries}))
        note = task.reason if task.state != TaskState.SUCCESS or task.already_complete else ""
        if task.tries and task.tries[-1].error:
            note = task.tries[-1].error
        elif task.state == TaskState.SUCCESS and task.reused_from:
            note = f"up to date (cache): reused run {task.reused_from}"
        label = next((t.rendered.get("rendered_map_index") for t in reversed(task.tries) if t.rendered), None)
        table.add_row(  # the id and note as text: an error or label holding '[/bold]' is not markup
            Text(f"{task.task_id} {label}" if label else task.task_id),  # a mapped instance's map_index_template
            styled(task.state.value),
            tries,
            f"{sum(durations):.2f}s" if durations else "",
            Text(note),
        )
    if len(shown) < len(rows):
        succeeded = sum(1 for r in rows if r.state == TaskState.SUCCESS)  # none of them is shown
        others = len(rows) - len(shown) - succeeded
        hidden = [f"{succeeded} successful tasks"] if succeeded else []
        hidden += [f"{others} more tasks that did not succeed"] if others else []
        table.caption = f"{' and '.join(hidden)} not shown (all: ductwork runs show {summary.flow_id} {summary.run_id})"
    return table


def tries_table(summary: RunSummary) -> Table | None:
    """Every try of the tasks that needed more than one, or failed."""
    rows = [
        (task.task_id, t)
        for task in summary.tasks.values()
        if len(task.tries) > 1 or task.state.value == "failed"
        for t in task.tries
    ]
    if not rows:
        return None
    table = DataTable(title="tries", title_justify="left")
    for column in ("task", "try", "state", "duration", "error"):
        table.add_column(column, overflow="fold", max_width=80 if column == "error" else None)
    for task_id, t in rows:
        duration = f"{t.duration:.2f}s" if t.duration is not None else ""
        table.add_row(Text(task_id), str(t.try_number), styled(t.state.value), duration, Text(t.error or ""))
    return table


def summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "flow_id": summary.flow_id,
        "run_id": summary.run_id,
        "state": summary.state.value,
        "reason": summary.reason or None,
        "counts": summary.counts(),
        "tasks": {
            t.task_id: {
                "state": t.state.value,
                "already_complete": t.already_complete,
                "reused_from": t.reused_from,
                "tries": [
                    {
                        "try_number": x.try_number,
                        "state": x.state.value,
                        "duration": x.duration,
                        "error": x.error,
                        "log": x.log_path,
                        "log_range": list(x.log_range) if x.log_range else None,
                        "reused_from": x.reused_from,
                    }
                    for x in t.tries
                ],
            }
            for t in summary.tasks.values()
        },
    }
