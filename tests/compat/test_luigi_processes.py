"""Luigi's ``--workers N`` (N > 1) and ``[worker] force_multiprocessing``: each task's ``run()``
in a process of its own, as Luigi's worker forks one per task. Its output and errors reach the
try's log and record; a crash, a change of process-wide state, a timeout stay with that task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ductwork_process import process_env

MODULE = '''
import os
import signal
import time

import luigi


def _out(name):
    return luigi.LocalTarget(os.path.join("out", name))


class Burn(luigi.Task):
    n = luigi.IntParameter()

    def output(self):
        return _out(f"burn{self.n}")

    def run(self):
        print(f"burn {self.n} printed")
        import logging
        logging.getLogger("etl").warning("burn %s logged", self.n)
        with self.output().open("w") as f:
            f.write(f"{os.getpid()} {os.getppid()}")


class Wander(luigi.Task):
    """Changes the process's working directory, as careless code does."""

    def output(self):
        return _out("wander")

    def run(self):
        with self.output().open("w") as f:
            f.write(str(os.getpid()))
        os.chdir("/")


class AfterWander(luigi.Task):
    def requires(self):
        return Wander()

    def output(self):
        return _out("after")

    def run(self):
        with self.output().open("w") as f:  # relative: the build's directory, not "/"
            f.write("ok")


class Crash(luigi.Task):
    def run(self):
        os.kill(os.getpid(), signal.SIGKILL)


class Fine(luigi.Task):
    def output(self):
        return _out("fine")

    def run(self):
        with self.output().open("w") as f:
            f.write("ok")


class Both(luigi.WrapperTask):
    def requires(self):
        return [Crash(), Fine()]


class All(luigi.WrapperTask):
    def requires(self):
        return [Burn(n=i) for i in range(3)] + [AfterWander()]


class Odd(Exception):
    def __init__(self, row, why):
        super().__init__(f"row {row}: {why}")


class Raises(luigi.Task):
    def run(self):
        raise ValueError("bad row 7")


class RaisesOdd(luigi.Task):
    def run(self):
        raise Odd(7, "no date")


class Sleeps(luigi.Task):
    worker_timeout = 1

    def run(self):
        with open(os.path.join("out", "sleeper"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)


class Nap(luigi.Task):
    i = luigi.IntParameter()

    def run(self):
        with open(os.path.join("out", f"nap{self.i}"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)


class Naps(luigi.WrapperTask):
    def requires(self):
        return [Nap(i=i) for i in range(2)]


class Part(luigi.Task):
    i = luigi.IntParameter()

    def output(self):
        return _out(f"part{self.i}")

    def run(self):
        with self.output().open("w") as f:
            f.write(str(os.getpid()))


class Merge(luigi.Task):
    def output(self):
        return _out("merged")

    def run(self):
        parts = yield [Part(i=i) for i in range(3)]
        with self.output().open("w") as f:
            f.write(",".join(p.open().read() for p in parts))
'''


def _build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "jobs.py").write_text(MODULE)
    (tmp_path / "out").mkdir(exist_ok=True)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)})
    return subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "build", "--module", "jobs", "--no-progress", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _cli(tmp_path: Path, *args: str) -> str:
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home")})
    done = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _log(tmp_path: Path, flow: str, task_prefix: str) -> str:
    run_id = json.loads(_cli(tmp_path, "runs", "list", flow, "--json"))["runs"][0]["run_id"]
    shown = json.loads(_cli(tmp_path, "runs", "show", flow, run_id, "--json"))
    task_id = next(t for t in shown["tasks"] if t.startswith(task_prefix))
    return _cli(tmp_path, "tasks", "logs", flow, run_id, task_id)


def test_with_several_workers_each_task_runs_in_a_process_of_its_own(tmp_path: Path) -> None:
    built = _build(tmp_path, "All", "--workers", "2")
    assert built.returncode == 0, built.stderr
    out = tmp_path / "out"
    pids = [(out / f"burn{i}").read_text().split()[0] for i in range(3)] + [(out / "wander").read_text()]
    assert len(set(pids)) == 4, pids  # a process per task (threads would share the build's)
    # The chdir of one task did not move the next task's relative paths to "/".
    assert (out / "after").read_text() == "ok"
    log = _log(tmp_path, "build.All", "Burn_1")
    assert "burn 1 printed" in log and "WARNING etl: burn 1 logged" in log, log
    assert "Burn_1" in log and "succeeded" in log, log


def test_one_worker_runs_tasks_in_the_build_process_unless_forced(tmp_path: Path) -> None:
    built = _build(tmp_path, "Burn", "--n", "0")
    assert built.returncode == 0, built.stderr
    forced = _build(tmp_path, "Burn", "--n", "1", "--worker-force-multiprocessing")
    assert forced.returncode == 0, forced.stderr
    # A task run in the build's own process has this test as its parent; a forked one, the build.
    assert (tmp_path / "out" / "burn0").read_text().split()[1] == str(os.getpid())
    assert (tmp_path / "out" / "burn1").read_text().split()[1] != str(os.getpid())
    wrong = _build(tmp_path, "Burn", "--n", "2", "--worker-force-multiprocessing=perhaps")
    assert wrong.returncode == 2 and "force" in wrong.stderr and "perhaps" in wrong.stderr, wrong.stderr


def test_a_task_whose_process_dies_fails_and_the_others_go_on(tmp_path: Path) -> None:
    built = _build(tmp_path, "Both", "--workers", "2")
    assert built.returncode != 0
    assert (tmp_path / "out" / "fine").read_text() == "ok"
    shown = json.loads(_cli(tmp_path, "runs", "show", "build.Both", _last_run(tmp_path, "build.Both"), "--json"))
    crash = next(t for task_id, t in shown["tasks"].items() if task_id.startswith("Crash"))
    assert crash["state"] == "failed"
    assert "was killed by SIGKILL" in json.dumps(crash), crash


def _last_run(tmp_path: Path, flow: str) -> str:
    return str(json.loads(_cli(tmp_path, "runs", "list", flow, "--json"))["runs"][0]["run_id"])


def test_an_error_in_a_task_process_is_reported_with_its_own_traceback(tmp_path: Path) -> None:
    built = _build(tmp_path, "Raises", "--workers", "2")
    assert built.returncode != 0
    log = _log(tmp_path, "build.Raises", "Raises")
    assert "ValueError: bad row 7" in log and 'jobs.py", line' in log and "in run" in log, log
    # An exception that cannot travel back as it is (its __init__ takes other arguments) is
    # still told, by its class and message.
    odd = _build(tmp_path, "RaisesOdd", "--workers", "2")
    assert odd.returncode != 0
    log = _log(tmp_path, "build.RaisesOdd", "RaisesOdd")
    assert "jobs.Odd: row 7: no date" in log, log


def test_a_task_process_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    began = time.monotonic()
    built = _build(tmp_path, "Sleeps", "--workers", "2")
    assert built.returncode != 0
    assert time.monotonic() - began < 50  # not the task's 60 s sleep
    assert "timed out after 1s" in built.stdout + built.stderr
    pid = int((tmp_path / "out" / "sleeper").read_text())
    deadline = time.monotonic() + 15  # SIGTERM now, SIGKILL after a grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet by an init that is slow) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_dynamic_requirements_from_a_task_process(tmp_path: Path) -> None:
    built = _build(tmp_path, "Merge", "--workers", "2")
    assert built.returncode == 0, built.stderr
    pids = (tmp_path / "out" / "merged").read_text().split(",")
    assert len(pids) == 3 and len(set(pids)) == 3, pids


def test_luigi_build_with_workers_forks_too(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(MODULE)
    (tmp_path / "out").mkdir()
    script = "import luigi, os, jobs\nprint(luigi.build([jobs.All()], workers=2, local_scheduler=True), os.getpid())\n"
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    ok, own = done.stdout.split()[-2:]
    assert ok == "True", done.stdout
    ran = [(tmp_path / "out" / f"burn{i}").read_text().split() for i in range(3)]
    assert len({pid for pid, _ in ran}) == 3 and all(parent == own for _, parent in ran), (ran, own)


def test_a_terminated_build_stops_its_task_processes(tmp_path: Path) -> None:
    """SIGTERM to the build (a supervisor stopping it): the tasks' processes are stopped with
    it, the command says so once and exits 143, without a traceback per task."""
    import signal

    (tmp_path / "jobs.py").write_text(MODULE)
    (tmp_path / "out").mkdir()
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)})
    build = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "build", "--module", "jobs", "Naps", "--workers", "2", "--no-progress"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        naps = [tmp_path / "out" / f"nap{i}" for i in range(2)]
        while not all(n.exists() and n.read_text() for n in naps):
            assert time.monotonic() < deadline and build.poll() is None, build.communicate()
            time.sleep(0.1)
        build.send_signal(signal.SIGTERM)
        out, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert build.returncode == 143, err
    assert "Traceback" not in out + err, err
    pids = [int(n.read_text()) for n in naps]
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_a_build_killed_with_kill_9_leaves_no_task_process_running(tmp_path: Path) -> None:
    """The next build finishes a killed one's record and runs its tasks again: an orphan of the
    killed one must not go on writing the same outputs beside them."""
    import signal

    (tmp_path / "jobs.py").write_text(MODULE)
    (tmp_path / "out").mkdir()
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)})
    build = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "build", "--module", "jobs", "Naps", "--workers", "2", "--no-progress"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    naps = [tmp_path / "out" / f"nap{i}" for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        while not all(n.exists() and n.read_text() for n in naps):
            assert time.monotonic() < deadline and build.poll() is None
            time.sleep(0.1)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait()
    pids = [int(n.read_text()) for n in naps]
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not any(_alive(p) for p in pids)
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


MOCKED = """
import os
import luigi
from luigi.mock import MockFileSystem, MockTarget

class Make(luigi.Task):
    i = luigi.IntParameter()
    def output(self):
        return MockTarget(f"/made/{self.i}")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(os.getpid()))

class Both(luigi.WrapperTask):
    def requires(self):
        return [Make(i=0), Make(i=1)]

MockFileSystem().clear()
ok = luigi.build([Both()], workers=2, local_scheduler=True)
data = MockFileSystem().get_all_data()
children = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split()[3] == str(os.getpid())]
print(ok, sorted(data), len({data[k] for k in data}), len(children))
"""


def test_mock_targets_written_in_task_processes_reach_the_build_and_no_process_is_left(tmp_path: Path) -> None:
    """Luigi keeps MockTarget data in a multiprocessing manager so that forked tasks share it;
    here it is shared for the build only: what the tasks wrote is there after it, and the
    manager's process is gone (a process left behind stayed until the interpreter ended)."""
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home")})
    done = subprocess.run(
        [sys.executable, "-c", MOCKED], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "True ['/made/0', '/made/1'] 2 0", done.stdout
