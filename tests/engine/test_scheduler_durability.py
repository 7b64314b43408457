"""The scheduler survives kill -9: a 200-task run completes with every task executed exactly once.

Each task leaves one file per execution (created with O_EXCL under a unique name), so counting
files per task counts executions, whatever the scheduler's records say. Run for SQLite and
PostgreSQL; the scheduler is a real ``ductwork scheduler`` process with its worker pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo

FLOW = textwrap.dedent(
    """
    import os, time, uuid
    from ductwork import Flow, PythonOperator

    MARKS = os.environ["DUCTWORK_TEST_MARKS"]

    def work(task_id):
        time.sleep(0.04)
        fd = os.open(os.path.join(MARKS, f"{task_id}.{uuid.uuid4().hex}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)

    with Flow("durable", schedule=None) as durable:
        for chain in range(10):
            previous = None
            for step in range(20):
                task_id = f"c{chain}_s{step}"
                op = PythonOperator(task_id=task_id, python_callable=work, op_args=[task_id])
                if previous is not None:
                    previous >> op
                previous = op
    """
)


class Scheduler:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "scheduler", "--workers", "2", "--poll-interval", "0.2"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str], Path]]:
    backend = request.param
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "durable.py").write_text(FLOW)
    marks = tmp_path / "marks"
    marks.mkdir()
    with temporary_database(backend, tmp_path) as url:
        env = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": url,
            "DUCTWORK_TEST_MARKS": str(marks),
            "PYTHONUNBUFFERED": "1",
        }
        yield url, env, marks


def _trigger(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "trigger", "durable", "--run-id", "r1"],
        env=env,
        check=True,
        capture_output=True,
    )


def _marks(marks: Path) -> Counter[str]:
    return Counter(p.name.split(".")[0] for p in marks.iterdir())


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("setup", ["sqlite", "postgres"], indirect=True)
def test_killing_the_scheduler_mid_run_loses_and_repeats_nothing(
    setup: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, env, marks = setup
    scheduler = Scheduler(env, tmp_path / "scheduler.log")
    scheduler.start()
    try:
        _trigger(env)
        _wait(lambda: sum(_marks(marks).values()) >= 60, 120, "60 tasks to run")
        scheduler.kill9()
        done_at_kill = sum(_marks(marks).values())
        assert done_at_kill < 200
        time.sleep(0.5)  # orphaned workers finish the try they had and exit
        scheduler.start()
        engine = create_engine(url)

        def finished() -> bool:
            with read_transaction(engine) as conn:
                run = run_repo.get_run(conn, "durable", "r1")
            return run is not None and run.state.is_terminal

        _wait(finished, 180, "the run to finish after the restart")
        with read_transaction(engine) as conn:
            run = run_repo.get_run(conn, "durable", "r1")
            assert run is not None
            states = task_repo.task_states(conn, run.pk)
        engine.dispose()
    finally:
        scheduler.stop()
    log = (tmp_path / "scheduler.log").read_text()
    executions = _marks(marks)
    assert run.state == "success", log[-3000:]
    assert set(states.values()) == {"success"}
    assert len(executions) == 200
    repeated = {task: n for task, n in executions.items() if n != 1}
    assert repeated == {}, f"tasks executed more than once: {repeated}"
    assert "took over run durable/r1" in log


WORKER_FLOW = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from ductwork import Flow, PythonOperator

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    def slow():
        attempt = len(list(MARKS.glob("slow.*"))) + 1
        (MARKS / f"slow.{attempt}.{os.getpid()}").write_text("")
        if attempt == 1:
            time.sleep(60)
        return attempt

    with Flow("victim", schedule=None) as victim:
        PythonOperator(task_id="slow", python_callable=slow, retries=1, retry_delay=0)
    """
)


def _start_victim(env: dict[str, str], marks: Path, tmp_path: Path) -> tuple[Scheduler, int]:
    """A scheduler running ``WORKER_FLOW``'s run r1, and the pid of the worker running its first try."""
    flows = Path(env["DUCTWORK_FLOWS_FOLDER"])
    (flows / "durable.py").unlink()
    (flows / "victim.py").write_text(WORKER_FLOW)
    scheduler = Scheduler(env, tmp_path / "scheduler.log")
    scheduler.start()
    try:
        subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "trigger", "victim", "--run-id", "r1"],
            env=env,
            check=True,
            capture_output=True,
        )
        _wait(lambda: any(p.name.startswith("slow.1.") for p in marks.iterdir()), 60, "the first try to start")
    except BaseException:
        scheduler.stop()
        raise
    return scheduler, int(next(p for p in marks.iterdir() if p.name.startswith("slow.1.")).name.split(".")[2])


def _victim_when_finished(url: str) -> tuple[Any, list[Any]]:
    """The run r1 of ``WORKER_FLOW`` once it has ended, and its task's tries."""
    engine = create_engine(url)
    try:

        def finished() -> bool:
            with read_transaction(engine) as conn:
                run = run_repo.get_run(conn, "victim", "r1")
            return run is not None and run.state.is_terminal

        _wait(finished, 60, "the run to finish")
        with read_transaction(engine) as conn:
            run = run_repo.get_run(conn, "victim", "r1")
            assert run is not None
            return run, task_repo.list_tries(conn, run.pk, "slow")
    finally:
        engine.dispose()


@pytest.mark.parametrize("setup", ["sqlite", "postgres"], indirect=True)
def test_a_killed_worker_is_detected_and_its_task_retried(
    setup: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, env, marks = setup
    scheduler, worker_pid = _start_victim(env, marks, tmp_path)
    try:
        killed_at = time.monotonic()
        os.kill(worker_pid, signal.SIGKILL)
        run, tries = _victim_when_finished(url)
        detected_in = time.monotonic() - killed_at
    finally:
        scheduler.stop()
    assert run.state == "success"
    assert [t.state for t in tries] == ["up_for_retry", "success"]
    assert "killed by SIGKILL" in (tries[0].error or "")
    assert detected_in < 15


@pytest.mark.parametrize("setup", ["sqlite"], indirect=True)
def test_a_try_lost_with_its_scheduler_keeps_its_real_start_after_the_restart(
    setup: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    """The scheduler and the worker running a try are killed -9 together (a machine's crash):
    the next scheduler finds the try running with no end journaled, and records it lost from
    its real start, with a reason that says what happened (it was given the restart's time,
    a try of several seconds recorded as lasting a millisecond, "a worker that left no
    journal" when its journal had been recorded and removed), then retries it."""
    url, env, marks = setup
    scheduler, worker_pid = _start_victim(env, marks, tmp_path)
    try:
        time.sleep(2)  # the try has run for a while
        os.kill(worker_pid, signal.SIGKILL)
        scheduler.kill9()
        scheduler.stop()  # (the rest of its process group)
        restarted = time.monotonic()
        scheduler.start()
        run, tries = _victim_when_finished(url)
    finally:
        scheduler.stop()
    assert run.state == "success"
    assert [t.state for t in tries] == ["up_for_retry", "success"], tries
    lost = tries[0]
    # Its worker's journal may still be there (the pid is named) or already recorded and gone.
    assert lost.error is not None and "died before it ended" in lost.error, lost
    assert "left no journal" not in lost.error
    assert lost.start_date is not None and lost.end_date is not None
    assert (lost.end_date - lost.start_date).total_seconds() >= 2, lost
    assert time.monotonic() - restarted < 30


HANGING_FLOW = textwrap.dedent(
    """
    import datetime as dt, os, time
    from ductwork import Flow, PythonOperator

    MARKS = os.environ["DUCTWORK_TEST_MARKS"]

    def hang():
        open(os.path.join(MARKS, f"started.{os.getpid()}"), "w").close()
        time.sleep(25)
        open(os.path.join(MARKS, "finished"), "w").close()

    with Flow("hangs", schedule=None) as hangs:
        PythonOperator(task_id="slow", python_callable=hang, execution_timeout=dt.timedelta(seconds=4))
    """
)


@pytest.mark.parametrize("setup", ["sqlite"], indirect=True)
def test_a_try_adopted_after_a_restart_still_stops_at_its_timeout(
    setup: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    """The deadline lived in the dead scheduler's pool: the orphaned try ran its 25 s and was
    recorded success."""
    url, env, marks = setup
    flows = Path(env["DUCTWORK_FLOWS_FOLDER"])
    (flows / "durable.py").unlink()
    (flows / "hangs.py").write_text(HANGING_FLOW)
    scheduler = Scheduler(env, tmp_path / "scheduler.log")
    scheduler.start()
    try:
        subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "trigger", "hangs", "--run-id", "r1"],
            env=env,
            check=True,
            capture_output=True,
        )
        _wait(lambda: any(p.name.startswith("started.") for p in marks.iterdir()), 60, "the try to start")
        scheduler.kill9()
        scheduler.start()
        engine = create_engine(url)

        def ended() -> bool:
            with read_transaction(engine) as conn:
                run = run_repo.get_run(conn, "hangs", "r1")
            return run is not None and run.state.is_terminal

        _wait(ended, 20, "the run to end")
        with read_transaction(engine) as conn:
            run = run_repo.get_run(conn, "hangs", "r1")
            assert run is not None
            tries = task_repo.list_tries(conn, run.pk, "slow")
        engine.dispose()
        time.sleep(1)
        worker = int(next(p for p in marks.iterdir() if p.name.startswith("started.")).name.split(".")[1])
        assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
    finally:
        scheduler.stop()
    assert run.state == "failed"
    assert [t.state for t in tries] == ["failed"]
    assert "timed out after 4s" in (tries[0].error or "")
    assert not (marks / "finished").exists()
