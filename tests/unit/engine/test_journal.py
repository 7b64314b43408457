"""The try journal: lines survive their writer, replay tells ended, running and lost tries apart."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.core.events import TryOutcome
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine import journal
from ductwork.engine.journal import JournalWriter, decode_outcome, encode_outcome, read_journals, removable_segments

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_outcomes_round_trip_through_the_journal_format() -> None:
    outcome = TryOutcome(
        TaskState.UP_FOR_RETRY,
        T0,
        T0 + dt.timedelta(seconds=2),
        error="boom",
        traceback="tb",
        next_try_at=T0 + dt.timedelta(minutes=5),
        skip=("b",),
        skip_recursive=True,
        new_nodes=(NodeSpec("x", ("y",), retries=2),),
        rendered={"cmd": "echo 1"},
        result_keys=("k",),
    )
    assert decode_outcome(encode_outcome(outcome)) == outcome


def test_started_and_ended_tries_are_read_back(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.started_try("f/r", "a", 1, T0, "/logs/a.1.log")
    writer.ended_try("f/r", "a", 1, TryOutcome(TaskState.SUCCESS, T0, T0))
    writer.started_try("f/r", "b", 1, T0, None)
    writer.close()
    state = read_journals(tmp_path)
    a, b = state.entries[("f/r", "a", 1)], state.entries[("f/r", "b", 1)]
    assert a.outcome is not None and a.outcome.state == TaskState.SUCCESS and a.log_path == "/logs/a.1.log"
    assert b.outcome is None and b.pid == os.getpid() and b.worker_alive


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.started_try("f/r", "a", 1, T0, None)
    writer.close()
    (path,) = tmp_path.iterdir()
    with path.open("a") as fh:
        fh.write('{"e":"end","run":"f/r","task":"a","try":1,"outc')
    assert read_journals(tmp_path).entries[("f/r", "a", 1)].outcome is None


def test_a_killed_writer_leaves_its_lines_and_is_known_dead(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal
        from ductwork.engine.journal import JournalWriter
        w = JournalWriter({str(tmp_path)!r})
        w.started_try("f/r", "a", 1, dt.datetime.now(dt.UTC), None)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    entry = read_journals(tmp_path).entries[("f/r", "a", 1)]
    assert entry.outcome is None and not entry.worker_alive


def test_segments_rotate_and_old_ones_are_removable(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(journal, "SEGMENT_ENTRIES", 2)
    writer = JournalWriter(tmp_path)
    for i in range(5):
        writer.started_try("f/r", f"t{i}", 1, T0, None)
    writer.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3
    assert set(removable_segments(tmp_path, older_than=0, now=time.time() + 1)) == set(files[:2])
    assert len(read_journals(tmp_path).entries) == 5


@settings(max_examples=300, deadline=None)
@given(
    run_key=st.text(min_size=1),
    task_id=st.text(min_size=1),
    try_number=st.integers(min_value=1, max_value=10_000),
    pid=st.integers(min_value=1, max_value=2**22),
    log_path=st.none() | st.text(),
    at=st.datetimes(timezones=st.just(dt.UTC)),
)
def test_a_start_line_is_the_json_of_its_record(
    run_key: str, task_id: str, try_number: int, pid: int, log_path: str | None, at: dt.datetime
) -> None:
    """The start line is put together by hand (it is written for every try): for any names,
    quotes, new lines and non-ASCII text included, it is one line that reads back as the record."""
    line = journal.start_line(run_key, task_id, try_number, at, pid, log_path)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = {"e": "start", "run": run_key, "task": task_id, "try": try_number, "at": at.isoformat(), "pid": pid}
    assert json.loads(line) == {**record, "log": log_path}


def test_a_killed_process_not_yet_reaped_is_not_alive() -> None:
    """A scheduler killed -9 whose parent has not reaped it yet is a zombie holding its pid:
    it counted as a live scheduler on this host (a second one with another executor was
    refused, naming it)."""
    import signal

    from ductwork.engine.journal import alive, process_start_time

    child = subprocess.Popen(["sleep", "60"])
    try:
        started = process_start_time(child.pid)
        assert alive(child.pid, None) and alive(child.pid, started)
        assert not alive(child.pid, "0")  # another process that reused the pid
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not alive(child.pid, None) and not alive(child.pid, started)
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid, None)
