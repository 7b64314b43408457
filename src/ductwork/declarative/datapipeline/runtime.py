"""What the tasks of a compiled pipeline share while they run: the scope of a try, and shell
commands run with their output in the try's log."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock
from ductwork.core.subprocesses import command_ended, start_command
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.scope import Scope

if TYPE_CHECKING:
    from ductwork.declarative.datapipeline.plan import PipelineInfo


def try_scope(
    info: PipelineInfo,
    context: TaskContext,
    *,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Scope:
    """The scope of one try: the run's scheduled times, the try's start, the run's parameters."""
    run = context["ti"].run
    start, end = info.scheduled_times(run.data_interval_start, run.data_interval_end)
    if info.schedule_type == "ondemand":
        start = end = run.logical_date
    shared: dict[str, Any] = {
        "@scheduledStartTime": start.astimezone(dt.UTC),
        "@scheduledEndTime": end.astimezone(dt.UTC),
        "@actualStartTime": context_clock(context).now().astimezone(dt.UTC),
        "@attemptCount": context["ti"].try_number,
    }
    runtime: dict[str, Mapping[str, Any]] = {"": shared}
    if extra:
        runtime.update(extra)
    return Scope(info.definition, dict(run.params), runtime, pipeline_id=info.flow_id)


class ShellRun:
    """A shell command whose output goes line by line to the try's log (and, if asked, to files),
    stoppable from another thread (timeouts and cancels call ``stop``)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def run(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdout_path: str | None = None,
        stderr_path: str | None = None,
    ) -> tuple[int, list[str]]:
        """Run ``bash -c command`` with ``args`` as ``$1``, ``$2``...; (exit code, stdout lines)."""
        from ductwork.declarative.datapipeline.storage import open_for_write

        with self._lock:
            if self._stopped:
                return -signal.SIGTERM, []
            self._proc = start_command(
                ["bash", "-c", command, "ductwork", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **(env or {})},
                cwd=cwd,
            )
        proc = self._proc
        lines: list[str] = []
        errors: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
        reader.start()
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                lines.append(line)
                print(line, flush=True)
            code = proc.wait()
        finally:
            command_ended(proc)
        reader.join()
        for line in errors:
            print(line, flush=True)
        for path, content in ((stdout_path, lines), (stderr_path, errors)):
            if path:
                with open_for_write(path, append=True) as fh:
                    fh.write("".join(f"{line}\n" for line in content))
        return code, lines

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _drain(stream: Any, into: list[str]) -> None:
    for raw in stream:
        into.append(raw.decode("utf-8", errors="replace").rstrip("\n"))


def describe_object(obj: PipelineObject) -> str:
    return f"{obj.type} {obj.id!r}"


STATUS_KEY = "dp_status"
"""Result key under which a pipeline object's task records its status, times and error, for
the actions that refer to it (``#{node.@status}``, ``#{node.errorMessage}``...)."""

TERMINATE_KEY = "dp_terminate"
"""Result key, under the object's own task id, by which a ``Terminate`` action asks a late
object to stop."""


def record_status(context: TaskContext, status: str, **values: Any) -> None:
    ti = context["ti"]
    now = context_clock(context).now().astimezone(dt.UTC).isoformat()
    record = {"status": status, "attempt": ti.try_number, **values}
    record.setdefault("actualStartTime", now)
    if status != "RUNNING":
        record["actualEndTime"] = now
    ti.xcom_push(STATUS_KEY, record)


def recorded_status(context: TaskContext, task_id: str) -> dict[str, Any] | None:
    value = context["ti"].xcom_pull(task_ids=task_id, key=STATUS_KEY)
    return value if isinstance(value, dict) else None


def engine_state(context: TaskContext, task_id: str) -> str | None:
    """The engine's state of another task of this run, when the try was given the store (the
    scheduler's workers are); None otherwise."""
    store = context.get("store")
    if store is None:
        return None
    run = context["ti"].run
    try:
        view = store.get_run(run.flow_id, run.run_id)
    except Exception:
        return None
    return None if view is None else view.task_states.get(task_id)


def terminate_requested(context: TaskContext, task_id: str) -> Any:
    ti = context["ti"]
    from ductwork.core.results import MISSING

    value = ti.results.pull(ti.run.key, task_id, TERMINATE_KEY)
    return None if value is MISSING else value
