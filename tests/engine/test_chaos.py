"""Chaos for the scheduler and its local worker pool, bounded in time (issue 9's acceptance).

Seventeen blows in a random order, a random 0.4-1.4 s apart (the seed is printed, so a failure
can be replayed with CHAOS_SEED): five ``kill -9`` of the ``ductwork scheduler`` (started again
half a second later), eight ``kill -9`` of one of its workers, four restarts of its PostgreSQL (a
private server, really stopped and started). Then the runs must end (about 40 s in all). Judged by side effects: every execution of a task
leaves a file named by run, task and try number. Per task: the try the database records as its
last succeeded and left exactly one file, no try number left two files (no try ever ran twice:
not after a scheduler restart, not after a database restart), and no file is newer than the
successful try. Only a killed worker may cost a task a try (the try it was running).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from private_services import private_postgres

RUNS = 2

FLOW = textwrap.dedent(
    """
    import os, time, uuid
    from ductwork import Flow, PythonOperator

    MARKS = os.environ["DUCTWORK_TEST_MARKS"]

    def step(task_id, ti):
        time.sleep(0.1 + 0.1 * (int(task_id[-1]) % 3))
        name = f"{ti.run_id}~{task_id}~{ti.try_number}~{uuid.uuid4().hex}"
        os.close(os.open(os.path.join(MARKS, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))

    with Flow("chaos", schedule=None, max_active_runs=5) as chaos:
        for chain in range(4):
            previous = None
            for n in range(12):
                task_id = f"c{chain}_{n}"
                op = PythonOperator(task_id=task_id, python_callable=step, op_args=[task_id], retries=10,
                                    retry_delay=0.1)
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
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.cli", "scheduler", "--workers", "3", "--poll-interval", "0.2"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def workers(self) -> list[int]:
        """The worker processes of the running scheduler (forked by its forkserver)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found = []
        for child in children.get(self.proc.pid, []):
            try:
                if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found += children.get(child, [])
            except OSError:
                continue
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ductwork.cli", *args], env=env, capture_output=True, text=True)


@pytest.mark.timeout(240)
def test_kill_9_of_scheduler_and_workers_and_database_restarts_lose_and_repeat_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    print(f"chaos seed {seed} (CHAOS_SEED={seed} replays these choices)")
    chance = random.Random(seed)
    flows, marks = tmp_path / "flows", tmp_path / "marks"
    flows.mkdir()
    marks.mkdir()
    (flows / "chaos.py").write_text(FLOW)
    with private_postgres() as pg:
        url = pg.create_database("chaos")
        env = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": url,
            "DUCTWORK_TEST_MARKS": str(marks),
            "PYTHONUNBUFFERED": "1",
        }
        scheduler = Scheduler(env, tmp_path / "scheduler.log")
        done: Counter[str] = Counter()
        engine = create_engine(url)
        try:
            scheduler.start()
            for n in range(RUNS):
                deadline = time.monotonic() + 60
                while _cli(env, "trigger", "chaos", "--run-id", f"r{n}").returncode != 0:
                    assert time.monotonic() < deadline, "could not trigger the runs"
                    time.sleep(0.5)
            actions = ["scheduler"] * 5 + ["worker"] * 8 + ["database"] * 4
            chance.shuffle(actions)
            for action in actions:
                time.sleep(chance.uniform(0.4, 1.4))
                if action == "scheduler":
                    scheduler.kill9()
                    time.sleep(0.5)
                    scheduler.start()
                elif action == "worker":
                    give_up = time.monotonic() + 10  # a scheduler just started has no workers yet
                    while not (workers := scheduler.workers()) and time.monotonic() < give_up:
                        time.sleep(0.2)
                    if not workers:
                        continue
                    os.kill(chance.choice(workers), signal.SIGKILL)
                else:
                    pg.restart()
                done[action] += 1

            def finished() -> bool:
                try:
                    with read_transaction(engine) as conn:
                        runs = run_repo.list_runs(conn, flow_id="chaos", limit=10).items
                except Exception:
                    return False
                return len(runs) == RUNS and all(r.state.is_terminal for r in runs)

            deadline = time.monotonic() + 120
            while not finished():
                assert time.monotonic() < deadline, "the runs did not end after the chaos"
                assert scheduler.proc is not None and scheduler.proc.poll() is None, "the scheduler exited"
                time.sleep(0.5)
            with read_transaction(engine) as conn:
                runs = run_repo.list_runs(conn, flow_id="chaos", limit=10).items
                tries = {(r.run_id, t.task_id): t for r in runs for t in task_repo.list_task_instances(conn, r.pk)}
        finally:
            scheduler.stop()
            engine.dispose()
    log = (tmp_path / "scheduler.log").read_text(errors="replace")
    print(f"chaos: {dict(done)}, {scheduler.starts} scheduler starts")
    assert done["scheduler"] == 5 and done["database"] == 4 and done["worker"] >= 4, done
    assert {r.state.value for r in runs} == {"success"}, log[-4000:]
    effects = Counter(tuple(name.split("~")[:3]) for name in os.listdir(marks))
    doubled = {key: n for key, n in effects.items() if n > 1}
    assert doubled == {}, f"tries that ran twice: {doubled} (seed {seed})"
    for (run_id, task_id), instance in tries.items():
        assert instance.state.value == "success", (run_id, task_id, instance)
        mine = sorted(int(t) for r, k, t in effects if (r, k) == (run_id, task_id))
        assert mine and mine[-1] == instance.try_number, (run_id, task_id, mine, instance.try_number, seed)
    assert len(tries) == RUNS * 48
