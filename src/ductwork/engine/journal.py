"""The try journal: where a worker makes its tries durable without writing to the database.

Each worker process appends one line when it starts a try and one when the try ends, to a file
of its own, with a single ``write`` on a file opened ``O_APPEND`` (no buffering): once the call
returns, the line survives the worker, or the scheduler, being killed. The scheduler is then
the database's only writer (no lock contention between processes, one transaction per step),
and after a restart it replays the journals: an ended try is recorded, a started try whose
worker is still alive is adopted and waited for, a started try whose worker died is lost (and
retried or failed by its policy).

A worker starts a new segment file every ``SEGMENT_ENTRIES`` lines; the scheduler deletes
segments it no longer needs (every try in them reported to it and recorded long ago, or their
worker gone and their content replayed).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any

from ductwork.core.events import TryOutcome
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState

SEGMENT_ENTRIES = 20_000
_SUFFIX = ".journal"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (to tell a live worker from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` runs (and is the process that started at ``started``, when given). A
    zombie is not alive: a scheduler killed -9 whose parent (a shell, a test, a supervisor) has
    not reaped it yet holds its pid, and counted as a live scheduler on this host."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] in ("Z", "X"):
        return False
    return started is None or fields[19] == started


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def encode_outcome(outcome: TryOutcome) -> dict[str, Any]:
    """The outcome as JSON-ready data; fields at their default are left out (a line per try
    end is written on the hot path)."""
    data: dict[str, Any] = {
        "state": outcome.state.value,
        "started_at": _time(outcome.started_at),
        "ended_at": _time(outcome.ended_at),
    }
    optional: dict[str, Any] = {
        "error": outcome.error,
        "traceback": outcome.traceback,
        "next_try_at": _time(outcome.next_try_at),
        "skip": list(outcome.skip),
        "skip_recursive": outcome.skip_recursive,
        "new_nodes": [n.to_dict() for n in outcome.new_nodes],
        "rendered": outcome.rendered,
        "result_keys": list(outcome.result_keys),
        **({"asset_events": outcome.asset_events} if outcome.asset_events else {}),
        "reused_from": outcome.reused_from,
        "alerts_due": outcome.alerts_due,
    }
    data.update((k, v) for k, v in optional.items() if v)
    return data


def decode_outcome(data: dict[str, Any]) -> TryOutcome:
    started = _parse_time(data["started_at"])
    ended = _parse_time(data["ended_at"])
    assert started is not None and ended is not None
    return TryOutcome(
        TaskState(data["state"]),
        started,
        ended,
        error=data.get("error"),
        traceback=data.get("traceback"),
        next_try_at=_parse_time(data.get("next_try_at")),
        skip=tuple(data.get("skip", ())),
        skip_recursive=bool(data.get("skip_recursive")),
        new_nodes=tuple(NodeSpec.from_dict(n) for n in data.get("new_nodes", ())),
        rendered=dict(data.get("rendered") or {}),
        result_keys=tuple(data.get("result_keys", ())),
        asset_events=dict(data.get("asset_events") or {}),
        alerts_due=bool(data.get("alerts_due")),
        reused_from=data.get("reused_from"),
    )


def start_line(run_key: str, task_id: str, try_number: int, at: dt.datetime, pid: int, log_path: str | None) -> bytes:
    """The journal line of a try's start: the JSON object ``json.dumps`` would write, put
    together directly (every try writes one; a third of the time of ``json.dumps``)."""
    log = "null" if log_path is None else _quote(log_path)
    return (
        f'{{"e":"start","run":{_quote(run_key)},"task":{_quote(task_id)},"try":{int(try_number)},'
        f'"at":"{at.isoformat()}","pid":{int(pid)},"log":{log}}}\n'
    ).encode()


class JournalWriter:
    """The journal of one process: a worker's, or an in-process run's (whose tries run in
    several threads, hence the lock)."""

    def __init__(self, folder: str | Path, pid: int | None = None) -> None:
        self.folder = Path(folder)
        self.pid = pid or os.getpid()
        self.started = process_start_time(self.pid) or ""
        self.segment = 0
        self.entries = 0
        self.fd: int | None = None
        self.paths: list[Path] = []
        self._lock = threading.Lock()
        self._torn = False

    def _open(self) -> int:
        if self.fd is None or self.entries >= SEGMENT_ENTRIES:
            if self.fd is not None:
                os.close(self.fd)
                self.segment += 1
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.pid}-{self.started}-{self.segment:06d}{_SUFFIX}"
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self.paths.append(path)
            self.entries = 0
        return self.fd

    def _append(self, record: dict[str, Any]) -> None:
        self._append_line((json.dumps(record, default=repr, separators=(",", ":")) + "\n").encode())

    def _append_line(self, line: bytes) -> None:
        with self._lock:
            if self._torn:  # a line cut short by a full disk: end it, or this one would merge into it
                line = b"\n" + line
            fd = self._open()
            written = os.write(fd, line)  # nothing written when it raises (O_APPEND)
            if written < len(line):
                self._torn = True
                raise OSError(errno.ENOSPC, "a journal line was cut short (a full disk?)", str(self.paths[-1]))
            self._torn = False
            self.entries += 1

    def began_run(self, run_key: str) -> None:
        """This process drives ``run_key`` (an in-process run): if it dies, whoever replays the
        journal ends the run."""
        self._append({"e": "run", "run": run_key})

    def started_try(self, run_key: str, task_id: str, try_number: int, at: dt.datetime, log_path: str | None) -> None:
        self._append_line(start_line(run_key, task_id, try_number, at, self.pid, log_path))

    def ended_try(self, run_key: str, task_id: str, try_number: int, outcome: TryOutcome) -> None:
        self._append(
            {"e": "end", "run": run_key, "task": task_id, "try": try_number, "outcome": encode_outcome(outcome)}
        )

    def close(self) -> None:
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def remove(self) -> None:
        """Close and delete every segment written: for a writer whose tries are all recorded."""
        self.close()
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths.clear()


@dataclass
class JournalEntry:
    """What the journals say about one try."""

    run_key: str
    task_id: str
    try_number: int
    pid: int
    process_started: str
    started_at: dt.datetime | None = None
    log_path: str | None = None
    outcome: TryOutcome | None = None

    @property
    def worker_alive(self) -> bool:
        return alive(self.pid, self.process_started)


@dataclass
class JournalState:
    entries: dict[tuple[str, str, int], JournalEntry] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    runs: dict[str, tuple[int, str]] = field(default_factory=dict)
    """In-process runs by run key: the (pid, process start time) that drove them."""


def _file_owner(path: Path) -> tuple[int, str]:
    pid, started, _segment = path.name[: -len(_SUFFIX)].split("-")
    return int(pid), started


def read_journals(folder: str | Path, files: Iterable[Path] | None = None) -> JournalState:
    """Everything the journals in ``folder`` record, by (run key, task id, try number)."""
    folder = Path(folder)
    state = JournalState()
    paths = sorted(files) if files is not None else sorted(folder.glob(f"*{_SUFFIX}"))
    for path in paths:
        try:
            pid, started = _file_owner(path)
            text = path.read_text()
        except (OSError, ValueError):
            continue
        state.files.append(path)
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write: the try was not reported either
            if record["e"] == "run":
                state.runs[record["run"]] = (pid, started)
                continue
            key = (record["run"], record["task"], int(record["try"]))
            entry = state.entries.get(key)
            if entry is None:
                entry = state.entries[key] = JournalEntry(key[0], key[1], key[2], pid, started)
            if record["e"] == "start":
                entry.started_at = _parse_time(record.get("at"))
                entry.log_path = record.get("log")
                entry.pid, entry.process_started = pid, started
            elif record["e"] == "end":
                entry.outcome = decode_outcome(record["outcome"])
    return state


def dead_segments(folder: str | Path) -> list[Path]:
    """Segments in ``folder`` whose process is gone."""
    out = []
    for path in Path(folder).glob(f"*{_SUFFIX}"):
        try:
            pid, started = _file_owner(path)
        except ValueError:
            continue
        if not alive(pid, started):
            out.append(path)
    return sorted(out)


def removable_segments(folder: str | Path, *, older_than: float, now: float) -> list[Path]:
    """Segments whose worker has moved on to a newer one (or died), untouched for a while."""
    folder = Path(folder)
    by_owner: dict[tuple[int, str], list[Path]] = {}
    for path in folder.glob(f"*{_SUFFIX}"):
        try:
            by_owner.setdefault(_file_owner(path), []).append(path)
        except ValueError:
            continue
    out: list[Path] = []
    for (pid, started), paths in by_owner.items():
        paths.sort()
        candidates = paths if not alive(pid, started) else paths[:-1]
        for path in candidates:
            try:
                if now - path.stat().st_mtime > older_than:
                    out.append(path)
            except OSError:
                continue
    return out
