"""Processes for the remote-executor tests: schedulers and ``ductwork worker`` processes, each
with its own DUCTWORK_HOME, working folder and temporary folder, optionally in a network
namespace of its own (an ``ip netns`` test host on a veth pair).

Side effects are counted from files: every execution of a task creates one file with a unique
name in the effects folder, so counting files counts executions, whatever the database says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]

EFFECTS_FLOW = """
import logging, os, time, uuid
from ductwork import Flow, PythonOperator

EFFECTS = os.environ["DUCTWORK_TEST_EFFECTS"]

def work(task_id, seconds=0.0, run_id=None):
    time.sleep(seconds)
    print(f"working on {task_id}", flush=True)
    logging.getLogger("team.jobs").info("logged by %s", task_id)
    name = f"{run_id}.{task_id}.{uuid.uuid4().hex}"
    fd = os.open(os.path.join(EFFECTS, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return os.getpid()
"""


def count_effects(folder: Path) -> Counter[str]:
    """Executions per ``run.task`` (the part of each file name before the unique suffix)."""
    return Counter(p.name.rsplit(".", 1)[0] for p in folder.iterdir())


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    netns: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        command = [sys.executable, "-m", "ductwork.cli", *self.args]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        self.proc = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """kill -9 of the process and everything it started (a worker host dying)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        try:  # leftovers of its process group (pool processes)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """A scheduler's world: its folder (flows, home) and the settings every process shares."""

    root: Path
    db_url: str
    broker_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.flows = self.root / "scheduler" / "flows"
        self.flows.mkdir(parents=True, exist_ok=True)
        self.effects = self.root / "effects"
        self.effects.mkdir(exist_ok=True)
        os.chmod(self.effects, 0o777)
        self.remote_logs = self.root / "remote-logs"
        self.remote_logs.mkdir(exist_ok=True)

    def base_env(self) -> dict[str, str]:
        """The environment of every process of the cluster, with the ductwork under test first on
        the path: without it, each process started with ``python -m ductwork.cli`` from the
        cluster's folder imported the installed ductwork, not the one the test imported (in a
        clone, the main checkout's code), and the test passed or failed on that code."""
        from ductwork_process import process_env

        env = {k: v for k, v in process_env({}).items() if not k.startswith("DUCTWORK_")}
        env.update(
            DUCTWORK_DATABASE_URL=self.db_url,
            DUCTWORK_BROKER_URL=self.broker_url,
            DUCTWORK_EXECUTOR="celery",
            DUCTWORK_REMOTE_LOG_URL=f"file://{self.remote_logs}",
            DUCTWORK_WORKER_HEARTBEAT="0.5",
            DUCTWORK_WORKER_LOST_AFTER="4",
            DUCTWORK_TEST_EFFECTS=str(self.effects),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def write_flow(self, name: str, body: str) -> Path:
        path = self.flows / name
        path.write_text(EFFECTS_FLOW + body)
        return path

    def scheduler(self, *args: str, name: str = "scheduler") -> Proc:
        home = self.root / "scheduler" / f"home-{name}"
        home.mkdir(parents=True, exist_ok=True)
        env = self.base_env()
        env.update(DUCTWORK_HOME=str(home), DUCTWORK_FLOWS_FOLDER=str(self.flows))
        proc = Proc(
            name,
            ["scheduler", "--poll-interval", "0.2", *args],
            env,
            self.root / "scheduler",
            self.root / f"{name}.log",
        )
        self.procs.append(proc)
        return proc.start()

    def worker(
        self,
        name: str,
        *,
        queues: str = "default",
        concurrency: int = 2,
        netns: str | None = None,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> Proc:
        """A worker with a folder of its own (home, working folder, TMPDIR) and no flows folder;
        ``extra`` are more options of ``ductwork worker``."""
        folder = self.root / f"worker-{name}"
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        base = self.base_env()
        base.update(
            DUCTWORK_HOME=str(folder / "home"),
            TMPDIR=str(folder / "tmp"),
            DUCTWORK_FLOWS_FOLDER=str(folder / "no-flows-here"),
        )
        base.update(env or {})
        args = ["worker", "--queues", queues, "--concurrency", str(concurrency), "--name", name, *extra]
        proc = Proc(name, args, base, folder, self.root / f"worker-{name}.log", netns=netns)
        self.procs.append(proc)
        return proc.start()

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = self.base_env()
        env.update(DUCTWORK_HOME=str(self.root / "scheduler" / "home-cli"), DUCTWORK_FLOWS_FOLDER=str(self.flows))
        return subprocess.run(
            [sys.executable, "-m", "ductwork.cli", *args],
            env=env,
            cwd=self.root / "scheduler",
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_state(self, flow_id: str, run_id: str) -> str | None:
        """The run's state as ``ductwork runs show`` gives it; ``None`` while there is no such run."""
        shown = self.cli("runs", "show", flow_id, run_id, "--json")
        return json.loads(shown.stdout)["state"] if shown.returncode == 0 else None

    def wait_schema(self, timeout: float = 60) -> None:
        """Until a scheduler has brought the database to the code's schema."""
        from ductwork.store import migrate
        from ductwork.store.engine import create_engine

        engine = create_engine(self.db_url)
        try:
            wait_for(lambda: migrate.current_revision(engine) == migrate.head_revision(), timeout, "the schema", self)
        finally:
            engine.dispose()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=20)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.procs)


def wait_for(predicate, timeout: float, what: str, cluster: Cluster | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n" + (cluster.logs() if cluster else ""))


# --- network namespaces ---------------------------------------------------------------------------
@dataclass
class TestHost:
    """A network namespace joined to the root namespace by a veth pair: ``host_ip`` is the root
    side (servers for the test host listen there), ``ns_ip`` the test host's own address."""

    netns: str
    host_ip: str
    ns_ip: str


@contextmanager
def test_host() -> Iterator[TestHost]:
    """An ``ip netns`` test host; deleted (with its veth pair) at the end."""
    if os.geteuid() != 0 or (not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists()):
        message = "network namespaces need root and iproute2"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    suffix = uuid.uuid4().hex[:6]
    netns = f"dwt{suffix}"
    outer, inner = f"dwo{suffix}", f"dwi{suffix}"
    octet = 1 + int(suffix[:2], 16) % 250
    third = 1 + int(suffix[2:4], 16) % 250
    host_ip, ns_ip = f"10.{octet}.{third}.1", f"10.{octet}.{third}.2"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    ip("netns", "add", netns)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", netns)
        ip("addr", "add", f"{host_ip}/30", "dev", outer)
        ip("link", "set", outer, "up")
        ip("netns", "exec", netns, "ip", "addr", "add", f"{ns_ip}/30", "dev", inner)
        ip("netns", "exec", netns, "ip", "link", "set", inner, "up")
        ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        yield TestHost(netns, host_ip, ns_ip)
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
