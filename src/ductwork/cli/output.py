"""How the CLI shows things: a Rich console, state colours and JSON.

Every command imports this module, so it imports nothing of the engine: a run's live progress
and its summary tables are ``cli.run_output``'s, imported by the commands that run flows.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from ductwork.cli.markup import Markup

STATE_STYLES = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "dark_orange",
    "skipped": "grey62",
    "running": "cyan",
    "queued": "grey50",
    "scheduled": "grey50",
    "up_for_retry": "yellow",
    "up_for_reschedule": "turquoise2",
    "none": "white",
}


CLOSED_PIPE = 141
"""The exit status of a command whose output's reader went away: 128 + SIGPIPE, as a shell
reports ``git log | head -1``. Click and Rich gave 1, which says "the run failed" (the status
``ductwork run`` gives a failed run) of a run that had succeeded and been recorded."""


def reader_gone() -> int:
    """Point standard output at /dev/null (the flush at exit would fail again and print
    ``Exception ignored ... BrokenPipeError``) and give ``CLOSED_PIPE``."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):  # no file descriptor behind it (a test's captured output)
        pass
    return CLOSED_PIPE


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (poll says POLLERR), so
    that a broken pipe to another program the command writes to keeps its traceback."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor (captured output), no poll()
        return False


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich's own ends the process with status 1."""
        self.quiet = True
        raise SystemExit(reader_gone())


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # piped output: wide enough not to wrap ids
    return _Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


@contextlib.contextmanager
def flow_output_to_stderr(active: bool) -> Iterator[None]:
    """While a ``--json`` command imports and runs the user's code, what that code writes to
    standard output goes to standard error, so that standard output holds the JSON document
    alone: a ``print`` at a flow file's top level, ``os.write(1, ...)`` or a program a task
    started put text before ``ductwork run --json``'s document and ``json.load`` of it failed.
    Both the file descriptor and ``sys.stdout`` are pointed at standard error."""
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no standard output or error to move: nothing to keep apart
        saved = -1
    python_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = python_stdout
        if saved >= 0:
            os.dup2(saved, 1)
            os.close(saved)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_output(path: Any, data: str | bytes) -> None:
    """Write a command's ``--output`` file; a folder that does not exist, a permission or a full
    disk is one line naming the file (a ``DuctworkError``), not a traceback."""
    from ductwork.errors import DuctworkError

    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    except OSError as exc:
        raise DuctworkError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def waited_run_json(
    run: dict[str, Any],
    tasks: list[tuple[str, str, int, float | None]],
    reason: str,
    errors: Mapping[str, str] | None = None,
) -> Any:
    """``trigger --wait --json``: the run as ``runs show --json`` gives it, with its task states,
    why each failed task failed (``errors``, by task id) and why it ended (the table ``--wait``
    prints without ``--json``)."""
    shown: dict[str, Any] = {}
    for task, state, try_number, _ in tasks:
        shown[task] = {"state": state, "try_number": try_number}
        first = first_line((errors or {}).get(task))
        if first:
            shown[task]["error"] = first
    return {**run, "reason": reason or None, "tasks": shown}


def first_line(error: str | None) -> str:
    """An error's first line that says something (the log has the rest)."""
    return next((line.strip() for line in (error or "").splitlines() if line.strip()), "")


def short_error(error: str | None, width: int = 120) -> str:
    """The first line of an error, cut to ``width`` characters, as a table cell shows it."""
    first = first_line(error)
    return first if len(first) <= width else first[: width - 1] + "…"


def error_notes(errors: Mapping[str, str] | None) -> dict[str, str]:
    """The notes of ``print_run_states`` that say why tasks failed."""
    return {task: short_error(error) for task, error in (errors or {}).items()}


def styled(state: str) -> Markup:
    return Markup(f"[{STATE_STYLES.get(state, 'white')}]{escape(state)}[/]")


def print_run_states(
    flow_id: str,
    run_id: str,
    state: str,
    tasks: list[tuple[str, str, int, float | None]],
    reason: str,
    notes: Mapping[str, str] | None = None,
) -> None:
    """A run's task states as ``trigger --wait`` shows them: one row per (task, state, try,
    duration in seconds), then why the run ended, if it ended for a reason. ``notes`` (by task
    id) adds a column, such as which tasks were up to date and did not run."""
    from rich.text import Text

    from ductwork.cli.tables import run_table
    from ductwork.core.task_order import instances_under_their_task, reorder

    table = run_table(flow_id, run_id, styled(state), "task", "state", "try", "duration")
    if notes:
        table.add_column("note", overflow="fold", max_width=70)
    order = instances_under_their_task([task[0] for task in tasks])
    if order is not None:  # a mapped task's instances under their task, as the UI lists them
        tasks = reorder(tasks, order)
    for task_id, task_state, try_number, duration in tasks:
        cells = [task_id, styled(task_state), str(try_number), f"{duration:.2f}s" if duration is not None else ""]
        # The note (a task's error) as text: an exception saying '[/bold]' is not rich markup.
        table.add_row(*cells, *([Text(notes.get(task_id, ""))] if notes else []))
    console().print(table)
    if reason:
        console().print(f"{state}: {reason}", markup=False)


def task_state_json(instance: Any, error: str | None = None) -> dict[str, Any]:
    """A task instance's state and try for ``--json``; a task up for retry (or a sensor up for
    reschedule) also says when it starts again (``next_try_at``, ISO 8601 in UTC): without it,
    ``up_for_retry`` does not say whether that is in a second or in an hour. ``error``: why
    its last try failed, given as ``error`` (its first line, whole: the log has the rest)."""
    out: dict[str, Any] = {"state": instance.state.value, "try_number": instance.try_number}
    first = first_line(error)
    if first:
        out["error"] = first
    at = instance.next_try_at
    if at is not None and instance.state.value in ("up_for_retry", "up_for_reschedule"):
        import datetime as dt

        from ductwork.core.schedule import as_aware

        out["next_try_at"] = as_aware(at, dt.UTC).isoformat(timespec="seconds")  # stored in UTC
    return out
