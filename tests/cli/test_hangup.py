"""SIGHUP (the terminal or ssh session a scheduler was started from closed; `kill -HUP` meant as
a reload) stops `ductwork scheduler` as SIGTERM does: it says so, lets the running try end and
exits 0. Left to Python's default, the hang-up killed it at once, without a word, and its worker
processes ran on, orphaned, with the runs left `running`."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from ductwork_process import ductwork_command, ductwork_process, process_env, scheduler_process

FLOW = textwrap.dedent(
    """
    import pathlib, time
    from ductwork import Flow, PythonOperator

    OUT = pathlib.Path(__file__).parent.parent / "out"

    def work():
        (OUT / "started").write_text("yes")
        time.sleep(2)
        (OUT / "done").write_text("yes")

    with Flow("hup", schedule=None, start_date="2024-01-01") as hup:
        PythonOperator(task_id="work", python_callable=work)
    """
)


def test_sighup_stops_the_scheduler_cleanly(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "flows" / "hup.py").write_text(FLOW)
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "DUCTWORK_METRICS_PORT": "0",
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        triggered = ductwork_process("trigger", "hup", env=env, cwd=tmp_path)
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        deadline = time.monotonic() + 60
        while not (tmp_path / "out" / "started").exists():
            assert time.monotonic() < deadline, log.read_text()
            assert scheduler.poll() is None, log.read_text()
            time.sleep(0.1)
        scheduler.send_signal(signal.SIGHUP)
        code = scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    text = log.read_text()
    assert code == 0, text
    assert "received SIGHUP: stopping" in text
    assert (tmp_path / "out" / "done").exists(), "the running try was not let finish"


@pytest.mark.parametrize("stop", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_ends_the_web_server_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    """uvicorn stops on SIGINT and SIGTERM only: a hang-up killed `ductwork webserver` at once
    (status -SIGHUP), cutting the requests under way, without a word. And after its clean stop
    uvicorn raised the signal again, so SIGTERM (systemd's, Kubernetes') ended the process
    killed by it (status -15, 143 in a shell: "Error" in `kubectl get pods`) and Ctrl-C with 130,
    where `ductwork scheduler` and `standalone` exit 0 on each of them."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path)}
    assert ductwork_process("db", "init", env=env, cwd=tmp_path).returncode == 0
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            ductwork_command("webserver", "--port", str(port)),
            env=process_env(env),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        web.send_signal(stop)
        code = web.wait(timeout=30)
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
    assert code == 0, log.read_text()
    if stop == signal.SIGHUP:
        assert "received SIGHUP: stopping" in log.read_text()


def test_sigterm_stops_a_scheduler_whose_tries_cannot_start(tmp_path: Path) -> None:
    """With an unwritable log folder no try can start (a platform fault: each goes back to the
    line, uncharged); SIGTERM then waited for them for good ("waiting for 1 running tries to
    end"), so only SIGKILL stopped the scheduler. The try is left queued, and runs once the
    next scheduler can write its logs."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "flows" / "hup.py").write_text(FLOW.replace("time.sleep(2)", ""))
    (tmp_path / "a-file").write_text("")
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "DUCTWORK_METRICS_PORT": "0",
        "DUCTWORK_LOG_DIR": str(tmp_path / "a-file" / "logs"),
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        triggered = ductwork_process("trigger", "hup", env=env, cwd=tmp_path)
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        deadline = time.monotonic() + 60
        while "could not start" not in log.read_text():
            assert time.monotonic() < deadline and scheduler.poll() is None, log.read_text()
            time.sleep(0.1)
        scheduler.send_signal(signal.SIGTERM)
        code = scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    text = log.read_text()
    assert code == 0, text
    assert "1 tries could not start" in text and "left queued for the next scheduler" in text
    assert not (tmp_path / "out" / "started").exists()

    env["DUCTWORK_LOG_DIR"] = str(tmp_path / "logs")
    scheduler = scheduler_process(env, tmp_path, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "out" / "done").exists():
            assert time.monotonic() < deadline and scheduler.poll() is None, (tmp_path / "second.log").read_text()
            time.sleep(0.1)
    finally:
        os.killpg(scheduler.pid, signal.SIGKILL)
        scheduler.wait()
