"""Bad input around remote workers: each gives one clear line, and nothing waits silently."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbfixtures import temporary_database
from private_services import free_port, private_redis


def _own_env(**env: str) -> dict[str, str]:
    """The test's environment without its ``DUCTWORK_*`` settings, with ``env`` added and the
    ductwork under test first on the path: without it, a test run from a clone with another
    checkout's virtual environment started that checkout's ``ductwork worker``, not the code
    under test (``ductwork_process.process_env`` would merge the ``DUCTWORK_*`` back in)."""
    from ductwork_process import SOURCE

    environ = {k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")}
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE, environ.get("PYTHONPATH", "")) if p)
    return environ


def _worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "worker", "--queues", "default"],
        env=_own_env(DUCTWORK_HOME=str(tmp_path / "home"), **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error:")]


def test_worker_with_an_unreachable_broker_says_so_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = _worker(tmp_path, DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{port}/0")
    assert done.returncode == 2
    assert len(_error_lines(done)) == 1
    assert _error_lines(done)[0].startswith(f"Error: cannot reach the broker at redis://127.0.0.1:{port}/0:")


@pytest.mark.parametrize("url", ["http://example.com/queue", "redis-cluster:6379", ""])
def test_worker_with_a_wrong_broker_url_says_so_in_one_line(tmp_path: Path, url: str) -> None:
    done = _worker(tmp_path, DUCTWORK_BROKER_URL=url)
    assert done.returncode == 2
    (line,) = _error_lines(done)
    if url:
        assert f"broker_url {url!r} is not a broker URL Ductwork supports" in line
    else:
        assert "no broker: set broker_url (DUCTWORK_BROKER_URL)" in line


def test_worker_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    with private_redis() as redis:
        done = _worker(
            tmp_path,
            DUCTWORK_BROKER_URL=redis.url(),
            DUCTWORK_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing",
        )
    assert done.returncode == 2
    (line,) = _error_lines(done)
    assert f"127.0.0.1:{port}" in line and "postgresql" in line


def test_worker_on_a_database_without_the_schema_says_how_to_create_it(tmp_path: Path) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        done = _worker(tmp_path, DUCTWORK_BROKER_URL=redis.url(), DUCTWORK_DATABASE_URL=db_url)
    assert done.returncode == 2
    (line,) = _error_lines(done)
    assert "ductwork db init" in line


def test_unknown_executor_setting_is_refused(tmp_path: Path) -> None:
    from ductwork.errors import DefinitionError
    from ductwork.settings import Settings

    with pytest.raises(DefinitionError, match="executor must be one of local, celery, kubernetes, got 'spark'"):
        Settings.load(environ={"DUCTWORK_EXECUTOR": "spark"})
    shown = dict(
        (n, v)
        for n, v, _ in Settings.load(
            environ={"DUCTWORK_EXECUTOR": "celery", "DUCTWORK_BROKER_URL": "amqp://etl:s3cret@rabbit:5672//"}
        ).describe()
    )
    assert shown["executor"] == "celery"
    assert shown["broker_url"] == "amqp://etl:***@rabbit:5672//"


def test_tries_per_message_is_a_positive_integer_shown_by_config(tmp_path: Path) -> None:
    import dataclasses

    from ductwork.engine.remote.executor import CeleryExecutor
    from ductwork.engine.remote.kube_executor import KubernetesExecutor
    from ductwork.errors import DefinitionError
    from ductwork.settings import Settings

    for bad, message in (("0", "tries_per_message must be at least 1, got 0"), ("many", "must be an integer")):
        with pytest.raises(DefinitionError, match=message):
            Settings.load(environ={"DUCTWORK_TRIES_PER_MESSAGE": bad})
    config = tmp_path / "ductwork.toml"
    config.write_text("[ductwork]\ntries_per_message = 4\n")
    settings = Settings.load(environ={}, config_path=config)
    rows = {name: (value, source) for name, value, source in settings.describe()}
    assert rows["tries_per_message"] == ("4", "config_file") and settings.tries_per_message == 4
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CeleryExecutor(dataclasses.replace(settings, database_url=url)).batch_limit == 4
    alone = Settings.load(environ={"DUCTWORK_TRIES_PER_MESSAGE": "1", "DUCTWORK_DATABASE_URL": url})
    assert CeleryExecutor(alone).batch_limit == 1
    pods = KubernetesExecutor(dataclasses.replace(settings, database_url=url), api=object())
    assert pods.batch_limit == 1  # one pod per try, whatever the setting


def test_a_second_live_worker_under_one_name_is_refused(tmp_path: Path) -> None:
    """Two `ductwork worker --name gpu-box` shared one row: `workers list` showed one worker,
    and when one died its tries were not seen lost with it. A namesake that is gone (restarted
    after kill -9 on the same host) is replaced as before."""
    import socket

    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.repo import remote as remote_repo

    url = f"sqlite:///{tmp_path / 'dw.db'}"
    engine = create_engine(url)
    ensure_schema(engine)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    with transaction(engine) as conn:
        for name, host, pid in (("gpu-box@render-7", "render-7", 4242), (f"old@{here}", here, int(gone.stdout))):
            remote_repo.register_worker(
                conn, name, hostname=host, pid=pid, kind="celery", queues=["gpu"], concurrency=1, version="1"
            )
    engine.dispose()
    broker = f"redis://127.0.0.1:{free_port()}/0"  # never reached when the name is refused
    env = {"DUCTWORK_DATABASE_URL": url, "DUCTWORK_BROKER_URL": broker}
    assert Settings.load(environ=env).worker_lost_after > 5  # the rows' heartbeats stay fresh meanwhile

    def start(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "worker", "--queues", "gpu", "--name", name],
            env=_own_env(DUCTWORK_HOME=str(tmp_path / "home"), **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    refused = start("gpu-box@render-7")
    assert refused.returncode == 2
    (line,) = _error_lines(refused)
    assert "a worker named 'gpu-box@render-7' is running on render-7 (pid 4242" in line
    assert "give this one another --name" in line
    replaced = start("old")  # same host, its process gone: on to the broker
    assert replaced.returncode == 2
    (line,) = _error_lines(replaced)
    assert line.startswith("Error: cannot reach the broker")


def test_a_worker_started_again_while_its_killed_namesake_is_a_zombie_is_not_refused(tmp_path: Path) -> None:
    """`kill -9` of a worker, then `ductwork worker --name w1` at once: the dead worker's process
    stays a zombie until its parent reaps it (seconds here, for ever under a parent that never
    waits), its row's heartbeat is still fresh, and the new worker was refused with "a worker
    named 'w1@host' is running": ``kill(pid, 0)`` succeeds on a zombie."""
    import socket

    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.repo import remote as remote_repo

    if not Path("/proc/self/stat").exists():
        pytest.skip("zombies are told apart by /proc (Linux)")
    url = f"sqlite:///{tmp_path / 'dw.db'}"
    engine = create_engine(url)
    ensure_schema(engine)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    try:
        deadline = time.monotonic() + 30
        while b") Z" not in Path(f"/proc/{dead.pid}/stat").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        here = socket.gethostname()
        with transaction(engine) as conn:
            remote_repo.register_worker(
                conn,
                f"w1@{here}",
                hostname=here,
                pid=dead.pid,
                kind="celery",
                queues=["default"],
                concurrency=1,
                version="1",
            )
        engine.dispose()
        environ = _own_env(
            DUCTWORK_HOME=str(tmp_path / "home"),
            DUCTWORK_DATABASE_URL=url,
            DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",  # never reached when refused
        )
        started = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "worker", "--name", "w1"],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert b") Z" in Path(f"/proc/{dead.pid}/stat").read_bytes()  # still a zombie meanwhile
    finally:
        dead.wait()
    (line,) = _error_lines(started)
    assert line.startswith("Error: cannot reach the broker"), line


def test_a_worker_name_with_celerys_host_sequence_names_the_host_it_runs_on(tmp_path: Path) -> None:
    """`ductwork worker --name 'gpu@%h'` on every host, as Celery's and Airflow's guides write
    a worker's name: the name was kept as written, so the second host's worker was refused as a
    namesake of the first ("a worker named 'gpu@%h' is running on render-7"). `%h` is this host."""
    import socket

    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.repo import remote as remote_repo

    url = f"sqlite:///{tmp_path / 'dw.db'}"
    engine = create_engine(url)
    ensure_schema(engine)
    here = socket.gethostname()
    with transaction(engine) as conn:
        # what a worker on another host started with the same command line wrote before
        for name, host, pid in (("gpu@%h", "render-7", 4242), (f"cpu@{here}", here, os.getpid())):
            remote_repo.register_worker(
                conn, name, hostname=host, pid=pid, kind="celery", queues=["default"], concurrency=1, version="1"
            )
    engine.dispose()
    environ = _own_env(
        DUCTWORK_HOME=str(tmp_path / "home"),
        DUCTWORK_DATABASE_URL=url,
        DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",  # never reached when refused
    )

    def start(name: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "worker", "--name", name],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        return _error_lines(done)

    (line,) = start("gpu@%h")  # not the other host's worker: on to the broker
    assert line.startswith("Error: cannot reach the broker"), line
    (line,) = start("cpu@%h")  # this host's live cpu worker (the test's own process) is its namesake
    assert f"a worker named 'cpu@{here}' is running on {here}" in line


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("gpu@", "'gpu@' is not NAME or NAME@HOST"),
        ("@render-7", "'@render-7' is not NAME or NAME@HOST"),
        ("gpu-%z", "'gpu-%z' holds %z, which Celery does not know: use %h"),
    ],
)
def test_a_worker_name_that_names_no_worker_is_refused_naming_the_option(tmp_path: Path, name: str, says: str) -> None:
    environ = _own_env(
        DUCTWORK_HOME=str(tmp_path / "home"),
        DUCTWORK_DATABASE_URL=f"sqlite:///{tmp_path / 'dw.db'}",
        DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "worker", "--name", name],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = _error_lines(done)
    assert line.startswith(f"Error: Invalid value for --name: {says}"), line


@pytest.mark.parametrize(
    ("setting", "url", "says"),
    [
        ("REMOTE_LOG_URL", "nope://bucket/logs", "fsspec knows no protocol 'nope'"),
        ("REMOTE_LOG_URL", "abfs://container/logs", "abfs:// cannot be opened on this host: Install adlfs"),
        ("BUNDLE_URL", "simplecache::nope://bucket/bundles", "fsspec knows no protocol 'nope'"),
    ],
)
def test_a_store_url_this_host_cannot_open_is_refused_at_start(
    tmp_path: Path, setting: str, url: str, says: str
) -> None:
    """`DUCTWORK_REMOTE_LOG_URL=nope://...` (or `s3://` on a host with fsspec but no s3fs, as the
    deployment guide's `ductwork[fs]` gave): the scheduler and the workers started, every try
    was claimed, failed to open its log on the worker (a traceback in the worker's output only),
    sat running, and was failed as "the worker running this try stopped heartbeating and is
    lost" with its retries. The scheduler, `standalone` and `ductwork worker` now refuse it in
    one line naming the setting, before anything starts."""
    pytest.importorskip("fsspec")
    if "abfs" in url and importlib.util.find_spec("adlfs") is not None:
        pytest.skip("adlfs is installed here")
    env = {
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'dw.db'}",
        "DUCTWORK_EXECUTOR": "celery",
        "DUCTWORK_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        f"DUCTWORK_{setting}": url,
    }
    (tmp_path / "flows").mkdir()
    for command in (["scheduler"], ["standalone", "--port", str(free_port())], ["worker", "--name", "w"]):
        done = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", *command],
            env=_own_env(DUCTWORK_HOME=str(tmp_path / "home"), **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        (line,) = _error_lines(done)
        name = setting.lower()
        assert line.startswith(f"Error: {name} '{url}' (DUCTWORK_{setting}): "), (command, line)
        assert says in line, (command, line)
        assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["scheduler"],
        ["standalone", "--port", "0"],
        ["run", "big"],
        ["worker", "--name", "w"],
    ],
    ids=lambda c: c[0],
)
def test_a_results_offload_url_this_host_cannot_open_is_refused_at_start(tmp_path: Path, command: list[str]) -> None:
    """`results_offload_url = "s4://..."` (a typo): the scheduler (with its local workers as with
    Celery) started, and every try whose result passed the threshold failed with fsspec's
    `ValueError: Protocol not known: s4`, its retries spent; `ductwork run` ended its run in a
    traceback after recording it a success, the result lost. It is refused in one line naming
    the setting, before anything starts, as `remote_log_url` is."""
    pytest.importorskip("fsspec")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "big.py").write_text(
        "from ductwork import Flow, PythonOperator\n"
        "with Flow('big', schedule=None, start_date='2024-01-01') as f:\n"
        "    PythonOperator(task_id='make', python_callable=lambda: 'x' * 200000)\n"
    )
    if command[0] == "standalone":
        command = ["standalone", "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", *command],
        env=_own_env(
            DUCTWORK_HOME=str(tmp_path / "home"),
            DUCTWORK_DATABASE_URL=f"sqlite:///{tmp_path / 'dw.db'}",
            DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
            DUCTWORK_FLOWS_FOLDER=str(tmp_path / "flows"),
            DUCTWORK_RESULTS_OFFLOAD_URL="s4://bucket/results",
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (command, done.stdout, done.stderr)
    (line,) = _error_lines(done)
    assert line == (
        "Error: results_offload_url 's4://bucket/results' (DUCTWORK_RESULTS_OFFLOAD_URL): fsspec knows no "
        "protocol 's4' (s3://bucket/path, gs://bucket/path, file:///shared/path...)"
    ), (command, line)
    assert "Traceback" not in done.stdout + done.stderr


def test_an_s3_log_store_on_a_host_without_s3fs_names_the_extra(tmp_path: Path) -> None:
    """The deployment guide installed `ductwork[postgres,celery,fs]` and set
    `DUCTWORK_REMOTE_LOG_URL=s3://...`: fsspec without s3fs, and every try failed on the workers
    as "lost". The worker now refuses to start, naming the extra that brings s3fs."""
    pytest.importorskip("fsspec")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['s3fs'] = None\n")  # a host without s3fs
    environ = _own_env(
        DUCTWORK_HOME=str(tmp_path / "home"),
        DUCTWORK_DATABASE_URL=f"sqlite:///{tmp_path / 'dw.db'}",
        DUCTWORK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        DUCTWORK_REMOTE_LOG_URL="s3://etl-bucket/logs",
    )
    environ["PYTHONPATH"] = os.pathsep.join([environ["PYTHONPATH"], str(site)])
    done = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "worker"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert _error_lines(done) == [
        "Error: remote_log_url 's3://etl-bucket/logs' (DUCTWORK_REMOTE_LOG_URL): s3:// needs the Python "
        "package 's3fs', which is not installed: pip install 'ductwork[s3]'"
    ]
