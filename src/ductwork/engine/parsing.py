"""Parsing flow files without letting user code into the scheduler's process (ADR 0001).

Each parse runs ``ductwork.engine.parse_child`` in a fresh Python process with a timeout: a
file that loops forever, exits the interpreter or crashes it becomes an import error with a
clear message, and the scheduler goes on. Files are re-parsed only when their modification
time changes (``FileWatcher``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ductwork.core.graph import FlowGraph
from ductwork.errors import DuctworkError, FlowImportError
from ductwork.loading import flow_files


@dataclass
class ParsedFile:
    fileloc: str
    graphs: list[FlowGraph] = field(default_factory=list)
    errors: list[FlowImportError] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    """The line each flow is defined on, by flow id."""
    stopped: bool = False
    """Its parse took too long (or the scheduler stopped) and was killed."""
    code: dict[str, Any] = field(default_factory=dict)
    """The code each flow was parsed from (``engine.code_info.flow_code``), by flow id."""
    code_paths: list[str] = field(default_factory=list)
    """Every file the flows' code comes from (absolute paths), to re-parse when one changes."""
    variables: list[str] = field(default_factory=list)
    """The variables its import looked up, to re-parse when one of them changes."""
    begun_at: dt.datetime | None = None
    """When its parse began (set by the scheduler): a variable changed after it may not be in it."""


def _run_child(
    args: list[str],
    payload: Mapping[str, Any] | None,
    timeout: float,
    cwd: str | None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run ``parse_child`` in a session of its own and return what it reported. Whatever the
    user's code started (subprocesses, daemons that stay in the session's process group) is
    killed with it when it times out, when ``stop`` is set, and when it exits."""
    with tempfile.TemporaryDirectory(prefix="ductwork-parse-") as tmp:
        out = Path(tmp) / "result.json"
        if payload is not None:
            out.write_text(json.dumps(payload, default=str))
        # Files, not pipes: a grandchild that keeps a pipe open would make reading it hang.
        with open(Path(tmp) / "stderr", "w+b") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.engine.parse_child", *args, str(out)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=cwd,
                env={**(os.environ if environ is None else environ), "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
            ended = _wait_then_kill_group(proc, timeout, stop)
            err.seek(0)
            stderr = err.read()
        if not ended:
            why = "the scheduler stopped" if stop is not None and stop.is_set() else f"it took longer than {timeout:g}s"
            return {"fatal": f"parsing was stopped because {why} (with the processes it started)"}
        data: dict[str, Any] = {}
        if out.exists():
            try:
                data = json.loads(out.read_text())
            except json.JSONDecodeError:
                data = {}
        if proc.returncode != 0 or not (
            {"graphs", "graph", "fatal", "called", "rendered", "error", "batch"} & set(data)
        ):
            tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
            detail = (": " + " | ".join(tail)) if tail else ""
            return {"fatal": f"the parsing process exited with status {proc.returncode} before reporting{detail}"}
        return data


def _wait_then_kill_group(proc: subprocess.Popen[bytes], timeout: float, stop: threading.Event | None) -> bool:
    """Wait for ``proc`` (at most ``timeout`` seconds, or until ``stop``), then SIGKILL its process
    group, leftovers included; whether it ended by itself. The group is killed while ``proc`` is
    not reaped yet, so its id cannot belong to anyone else."""
    deadline = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # no pidfd (old kernel): wait in slices
        pidfd = None
    ended = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            if pidfd is not None:
                if select.select([pidfd], [], [], min(left, 0.5))[0]:
                    ended = True
                    break
            elif _exited_unreaped(proc.pid, min(left, 0.1)):
                ended = True
                break
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    finally:
        if pidfd is not None:
            os.close(pidfd)
    proc.wait()
    return ended


def _exited_unreaped(pid: int, wait: float) -> bool:
    time.sleep(wait)
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def parse_file(
    path: str | Path,
    *,
    timeout: float = 60.0,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> ParsedFile:
    """Import one flow file in a child process; its flows as graphs, or its errors."""
    fileloc = str(Path(path).resolve())
    return _parsed_from(fileloc, _run_child(["parse", fileloc], None, timeout, cwd, environ, stop))


def parse_files(
    paths: list[str],
    *,
    timeout: float,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, ParsedFile]:
    """Import several flow files in one child process, one after the other: one interpreter
    start (and one import of Ductwork) for all of them, which is what lets a scheduler started
    on a folder of many files list them within a second. Each file's result is reported as it is
    done; the files not reported when the child ended (it timed out, was stopped, or died) are
    left out of the answer, for the caller to parse one by one."""
    files = [str(Path(p).resolve()) for p in paths]
    with tempfile.TemporaryDirectory(prefix="ductwork-parse-many-") as tmp:
        progress = Path(tmp) / "progress.jsonl"
        _run_child(["parse-many"], {"files": files, "progress": str(progress)}, timeout, cwd, environ, stop)
        reported: dict[str, ParsedFile] = {}
        if progress.exists():
            for line in progress.read_text().splitlines():
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the child died while writing it
                reported[data["file"]] = _parsed_from(data["file"], data)
    return {file: reported[file] for file in files if file in reported}


def _parsed_from(fileloc: str, data: Mapping[str, Any]) -> ParsedFile:
    parsed = ParsedFile(fileloc)
    if "fatal" in data:
        parsed.errors.append(FlowImportError(fileloc, None, data["fatal"], data.get("traceback", "")))
        parsed.stopped = "parsing was stopped" in data["fatal"]
        return parsed
    parsed.graphs = [FlowGraph.from_dict(g) for g in data["graphs"]]
    parsed.lines = {str(k): int(v) for k, v in data.get("lines", {}).items()}
    parsed.code = {str(k): v for k, v in (data.get("code") or {}).items() if v}
    parsed.code_paths = [str(p) for p in data.get("code_paths") or []]
    parsed.variables = [str(v) for v in data.get("variables") or []]
    parsed.errors = [FlowImportError(e["file"], e["line"], e["error"], e.get("traceback", "")) for e in data["errors"]]
    return parsed


def materialize(
    fileloc: str,
    flow_id: str,
    *,
    params: Mapping[str, Any],
    logical_date: str,
    timeout: float = 120.0,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> FlowGraph:
    """The graph of one run of a flow whose graph depends on the run (class-task flows)."""
    data = _run_child(
        ["materialize", fileloc, flow_id],
        {"params": dict(params), "logical_date": logical_date},
        timeout,
        cwd,
        environ,
        stop,
    )
    if "fatal" in data:
        raise DuctworkError(f"flow {flow_id!r} ({fileloc}): could not build the run's graph: {data['fatal']}")
    return FlowGraph.from_dict(data["graph"])


def render_task(
    fileloc: str,
    flow_id: str,
    task_id: str,
    *,
    logical_date: str | None,
    params: Mapping[str, Any],
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A task's templated fields rendered as a try would render them, by a child process (the
    flow's code is imported there, never here). Errors keep their kind: an unknown task is a
    ``NotFoundError``, a bad parameter a ``ParameterError``."""
    from ductwork.errors import NotFoundError, ParameterError

    request = {"task_id": task_id, "logical_date": logical_date, "params": dict(params)}
    data = _run_child(["render", fileloc, flow_id], request, timeout, None, environ)
    if "fatal" in data:
        raise DuctworkError(f"flow {flow_id!r} ({fileloc}): could not render task {task_id!r}: {data['fatal']}")
    if "error" in data:
        kind, message = data["error"].get("kind"), str(data["error"].get("message"))
        raise (
            NotFoundError(message)
            if kind == "not_found"
            else ParameterError(message)
            if kind == "parameter"
            else DuctworkError(message)
        )
    rendered: dict[str, Any] = data["rendered"]
    return rendered


FLOW_CALLBACKS = "callback"
"""A flow's success or failure callbacks for an ended run."""
TASK_ALERTS = "task-alerts"
"""The failure (or retry) callbacks and e-mail of a try that ended without running them (a
timeout, a worker that died)."""


def call_in_child(
    what: str,
    fileloc: str,
    flow_id: str,
    request: Mapping[str, Any],
    *,
    timeout: float = 120.0,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """Call user callbacks (``FLOW_CALLBACKS`` or ``TASK_ALERTS``) in a child process: they are
    user code, which the scheduler never imports. Returns an error message (the child could not
    call them, or the tracebacks of those that raised), or None."""
    data = _run_child([what, fileloc, flow_id], request, timeout, None, environ)
    if data.get("fatal"):
        return str(data["fatal"])
    errors = data.get("errors") or []
    return "\n".join(str(e) for e in errors) or None


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None


class FileWatcher:
    """Which flow files are new, changed or gone since the last look (by modification time);
    in the flows folder and any other folders given (the stored pipelines' folder)."""

    def __init__(self, folder: str | Path, *more: str | Path) -> None:
        self.folder = Path(folder)
        self.folders = [self.folder, *(Path(m) for m in more)]
        self.seen: dict[str, float] = {}
        self.depends: dict[str, dict[str, float | None]] = {}
        """Other files each flow file's flows take code from (helper modules), with their
        modification times when it was parsed: a change to one of them is a change to the flow."""

    def changes(self) -> tuple[list[str], list[str]]:
        """(changed or new files, removed files), as absolute paths."""
        current: dict[str, float] = {}
        for path in (p for folder in self.folders for p in flow_files(folder)):
            try:
                current[str(path.resolve())] = path.stat().st_mtime
            except FileNotFoundError:
                continue
        changed = [p for p, m in current.items() if self.seen.get(p) != m]
        changed += [p for p in current if p not in changed and self._dependency_changed(p)]
        removed = [p for p in self.seen if p not in current]
        self.seen = current
        return changed, removed

    def note_dependencies(self, file: str, paths: list[str]) -> None:
        """Remember the files ``file``'s flows take code from, as they are now."""
        self.depends[file] = {p: _mtime(p) for p in paths if p != file}

    def _dependency_changed(self, file: str) -> bool:
        deps = self.depends.get(file)
        if not deps:
            return False
        if any(_mtime(p) != m for p, m in deps.items()):
            del self.depends[file]  # noted again after the parse
            return True
        return False

    def forget(self, file: str) -> None:
        """Report ``file`` as changed at the next look (its parse could not be done)."""
        self.seen.pop(file, None)
