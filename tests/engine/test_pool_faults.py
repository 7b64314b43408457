"""Issue 9 (items 4 and 5): what is the platform's fault is not charged to a task.

A try whose log or journal cannot be written (a full disk, a read-only file system: made for
real here) has not started: it goes back to the line uncharged, is tried again after a backoff,
and the worker it hit gets no tries meanwhile. A worker killed before it recorded the start of
its try hands that try back too; only a started try is charged.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from journaled_runtime import GatedJournalRuntime, JournaledRuntime
from test_pool_executor import OPERATORS, collect, finished, run_info, wait_until

from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.executor import ExecutorEvent, TryFinished, TryKey, TryRequest
from ductwork.engine.executors.pool import PoolExecutor
from ductwork.engine.journal import read_journals
from ductwork.engine.packed_logs import read_log
from faultfs import bind_mount, small_disk

S = TaskState


@pytest.fixture
def pools() -> Iterator[Callable[..., PoolExecutor]]:
    made: list[PoolExecutor] = []

    def make(runtime: JournaledRuntime, **options: object) -> PoolExecutor:
        pool = PoolExecutor(
            runtime,
            parallelism=1,
            kill_grace=2.0,
            flow_files={"pass_results": str(OPERATORS)},
            fault_backoff=(0.2, 1.0),
            **options,  # type: ignore[arg-type]
        )
        pool.start()
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.shutdown(wait=False)


def _request(log_path: Path | None, retries: int = 0) -> TryRequest:
    run = run_info("pass_results")
    return TryRequest(
        TryKey(run.key, "first", 1),
        NodeSpec("first", retries=retries),
        run,
        log_path=str(log_path) if log_path else None,
    )


def _events_for(pool: PoolExecutor, seconds: float) -> list[ExecutorEvent]:
    events: list[ExecutorEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events += pool.wait(0.2) + pool.heartbeat()
    return events


def test_a_full_disk_under_the_logs_is_the_platforms_fault_and_charges_nothing(
    pools: Callable[..., PoolExecutor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "logs") as disk:
        disk.fill()
        pool = pools(JournaledRuntime("sqlite://", tmp_path / "journal"))
        req = _request(tmp_path / "logs" / "first" / "1.log")
        with caplog.at_level(logging.WARNING, logger="ductwork.pool"):
            pool.submit(req)
            assert not [e for e in _events_for(pool, 2.0) if isinstance(e, TryFinished)], "the try was charged"
        assert pool.fault is not None and "(ENOSPC)" in pool.fault and str(req.log_path) in pool.fault
        faults = [r.getMessage() for r in caplog.records if "platform fault" in r.getMessage()]
        assert len(faults) >= 2, "tried again (with a backoff)"
        assert all("No space left on device (ENOSPC)" in m and "is not charged" in m for m in faults)
        assert not read_journals(tmp_path / "journal").entries, "a try that never started was journaled"
        disk.free()
        done = collect(pool, finished(req.key), timeout=30)[-1]
        assert isinstance(done, TryFinished) and done.outcome.state == S.SUCCESS, done.outcome.error
        assert "starting first, try 1 of 1" in (read_log(Path(str(req.log_path))) or "")
        assert pool.fault is None


def test_a_read_only_journal_is_the_platforms_fault_and_charges_nothing(
    pools: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    with bind_mount(tmp_path / "journal-source", tmp_path / "journal") as view:
        view.read_only(True)
        pool = pools(JournaledRuntime("sqlite://", tmp_path / "journal"))
        req = _request(tmp_path / "logs" / "1.log")
        pool.submit(req)
        assert not [e for e in _events_for(pool, 1.5) if isinstance(e, TryFinished)], "the try was charged"
        assert pool.fault is not None and "cannot record the start of the try" in pool.fault
        assert "Read-only file system (EROFS)" in pool.fault
        view.read_only(False)
        done = collect(pool, finished(req.key), timeout=30)[-1]
        assert isinstance(done, TryFinished) and done.outcome.state == S.SUCCESS, done
        (entry,) = read_journals(tmp_path / "journal").entries.values()
        assert entry.try_number == 1 and entry.outcome is not None


def test_a_worker_killed_before_it_started_its_try_charges_nothing(
    pools: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    pool = pools(GatedJournalRuntime("sqlite://", tmp_path / "journal", gate=gate))
    req = _request(tmp_path / "logs" / "1.log", retries=0)
    pool.submit(req)
    waiting = Path(f"{gate}.waiting")
    assert wait_until(waiting.exists, 20), "the worker never got the try"
    victim = int(waiting.read_text())
    waiting.unlink()
    os.kill(victim, signal.SIGKILL)
    events = _events_for(pool, 1.0)
    assert not [e for e in events if isinstance(e, TryFinished)], "a try that never started was charged"
    assert wait_until(waiting.exists, 20), "the try was not handed to the new worker"
    gate.write_text("go")
    done = collect(pool, finished(req.key), timeout=30)[-1]
    assert isinstance(done, TryFinished) and done.outcome.state == S.SUCCESS, done
    (entry,) = read_journals(tmp_path / "journal").entries.values()
    assert entry.pid != victim


def test_a_worker_killed_after_it_started_its_try_charges_it(
    pools: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """The other half: a started try whose worker dies is charged, with the cause."""
    gate = tmp_path / "gate"
    gate.write_text("open")
    pool = pools(GatedJournalRuntime("sqlite://", tmp_path / "journal", gate=gate), report_started_after=30)
    run = run_info("prefetch", root=str(tmp_path), nap=30)
    req = TryRequest(TryKey(run.key, "long", 1), NodeSpec("long", retries=0), run)
    pool.flow_files["prefetch"] = str(OPERATORS)
    pool.submit(req)
    assert wait_until(lambda: bool(read_journals(tmp_path / "journal").entries), 20)
    (victim,) = pool.worker_pids()
    os.kill(victim, signal.SIGKILL)
    done = collect(pool, finished(req.key), timeout=30)[-1]
    assert isinstance(done, TryFinished) and done.outcome.state == S.FAILED
    assert f"worker pid {victim} was killed by SIGKILL while running the try" in (done.outcome.error or "")
