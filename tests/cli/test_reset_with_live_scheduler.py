"""`ductwork db reset --yes` while a scheduler ran on the database dropped its tables under it:
the scheduler died in a "FOREIGN KEY constraint failed" traceback (or a missing table), its
runs lost. `db upgrade` already names the schedulers still heartbeating; a reset, which
destroys everything, is refused while one is, naming them, with nothing changed."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa

from ductwork.store.engine import create_engine
from ductwork_process import ductwork_process, scheduler_process
from tests.conftest import Cli

FLOW = textwrap.dedent(
    """
    from ductwork import Flow, PythonOperator

    with Flow("kept", schedule=None, start_date="2024-01-01") as f:
        PythonOperator(task_id="work", python_callable=lambda: None)
    """
)


def _runs(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())
    finally:
        engine.dispose()


def test_db_reset_is_refused_while_a_scheduler_runs_on_the_database(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "kept.py").write_text(FLOW)
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": url,
        "DUCTWORK_METRICS_PORT": "0",
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        ran = ductwork_process("trigger", "kept", "--run-id", "before_reset", "--wait", env=env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stdout + ran.stderr + log.read_text()
        refused = ductwork_process("db", "reset", "--yes", env=env, cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"scheduler pid {scheduler.pid} on" in refused.stderr, refused.stderr
        assert "Stop them" in refused.stderr and "Traceback" not in refused.stderr
        assert _runs(url) == 1  # nothing dropped
        time.sleep(0.5)
        assert scheduler.poll() is None, log.read_text()  # and the scheduler goes on
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=60) == 0, log.read_text()
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    assert "Traceback" not in log.read_text(), log.read_text()
    # Stopped, it no longer heartbeats: the reset goes ahead.
    done = ductwork_process("db", "reset", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _runs(url) == 0


def test_db_reset_deletes_the_try_logs_of_the_runs_it_drops(cli: Cli, tmp_path: Path) -> None:
    """`db reset` dropped the runs and left their log folders: the next run with the same id
    (a manual run of the same date, the first scheduled run) appended to the old pack, and
    `tasks logs` of its succeeded try showed the dropped run's failure and traceback first."""
    (tmp_path / "fails.py").write_text(
        textwrap.dedent(
            """
            import os
            from ductwork import Flow, PythonOperator

            def work():
                if os.environ.get("BREAK_IT"):
                    raise ValueError("the dropped run's failure")
                print("the new run's work")

            with Flow("fails", schedule=None) as f:
                PythonOperator(task_id="work", python_callable=work)
            """
        )
    )
    args = ("run", "fails.py", "--date", "2024-01-01", "--no-progress")
    assert cli(*args, env={"BREAK_IT": "1"}).exit_code == 1
    logs = tmp_path / "ductwork-home" / "logs" / "fails"
    assert len(list(logs.iterdir())) == 1
    reset = cli("db", "reset", "--yes")
    assert reset.exit_code == 0, reset.output
    assert "deleted the try logs of 1 run(s)" in reset.output, reset.output
    assert list(logs.iterdir()) == []
    assert cli(*args).exit_code == 0
    shown = cli("tasks", "logs", "fails", "manual__2024-01-01T00:00:00+00:00", "work")
    assert "the new run's work" in shown.output and "dropped run" not in shown.output, shown.output


def test_db_reset_is_refused_while_a_triggerer_runs_on_the_database(tmp_path: Path) -> None:
    """``ductwork triggerer`` wrote no heartbeat: ``db reset`` (and ``db upgrade``'s warning)
    took the database for one nothing ran on, and dropped the tables under its listeners,
    though the README says a triggerer is named and the reset refused. It also said nothing of
    the schedulers listening as well while ``triggerer = "separate"`` was not set."""
    import subprocess

    from ductwork_process import ductwork_command, process_env

    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_DATABASE_URL": url, "DUCTWORK_METRICS_PORT": "0"}
    assert ductwork_process("db", "init", env=env, cwd=tmp_path).returncode == 0
    log = tmp_path / "triggerer.log"
    with log.open("wb") as out:
        triggerer = subprocess.Popen(
            ductwork_command("triggerer"),
            env=process_env(env),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        engine = create_engine(url)
        try:
            for _ in range(600):  # until it has recorded itself (or died)
                with engine.connect() as conn:
                    if conn.execute(sa.text("SELECT count(*) FROM scheduler_jobs WHERE kind = 'triggerer'")).scalar():
                        break
                assert triggerer.poll() is None, log.read_text()
                time.sleep(0.1)
        finally:
            engine.dispose()
        refused = ductwork_process("db", "reset", "--yes", env=env, cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"triggerer pid {triggerer.pid} on" in refused.stderr, refused.stderr
        triggerer.send_signal(signal.SIGTERM)
        assert triggerer.wait(timeout=60) == 0, log.read_text()
    finally:
        if triggerer.poll() is None:
            os.killpg(triggerer.pid, signal.SIGKILL)
            triggerer.wait()
    said = log.read_text()
    assert 'warning: triggerer = "scheduler"' in said and "Traceback" not in said, said
    # Stopped, it is recorded ended: the reset goes ahead.
    done = ductwork_process("db", "reset", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_reset_not_confirmed_says_nothing_was_deleted(cli: Cli, tmp_path: Path) -> None:
    """Answered no, or run where nobody can answer (stdin closed: cron, CI), ``db reset`` said
    only "Aborted!": neither whether the data was still there nor how a script says yes."""
    (tmp_path / "ok.py").write_text(
        "from ductwork import EmptyOperator, Flow\n\nwith Flow('ok', schedule=None) as f:\n    EmptyOperator(task_id='a')\n"
    )
    assert cli("run", "ok.py", "--no-progress").exit_code == 0
    for answer in ("n\n", ""):
        kept = cli("db", "reset", input=answer)
        assert kept.exit_code == 1, kept.output
        assert "Nothing was deleted (answer y, or give --yes where nobody can answer)" in kept.output
        assert "Aborted!" not in kept.output
    assert '"total": 1' in cli("runs", "list", "--json").output
