"""Private database and broker servers for tests that stop, restart or kill them.

The shared servers on this machine (PostgreSQL 5432, MariaDB 3306, Redis 6379, RabbitMQ 5672,
Mosquitto 1883, NATS 4222) serve every test run at once, so a test must never restart them.
A test that injects a fault into a server starts its own here: a fresh data folder in a
temporary directory, a free port, the machine's own server binary. Each server can be stopped
(cleanly), killed (``kill -9``), started again on the same port and data, and restarted;
leaving the ``with`` block stops it and removes its folder.

A missing binary skips the test locally and fails it under ``DUCTWORK_REQUIRE_SERVICES=1``,
like an unreachable shared service (``tests/conftest.py``).

    with private_postgres() as pg:
        url = pg.url()                  # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        ...
        pg.restart()                    # or pg.stop(); ...; pg.start(); or pg.kill()
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("DUCTWORK_REQUIRE_SERVICES") == "1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing(what: str) -> None:
    message = f"{what} is not installed on this machine"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and DUCTWORK_REQUIRE_SERVICES=1 makes it mandatory")
    pytest.skip(message)


def _find(*candidates: str) -> str:
    for pattern in candidates:
        for path in sorted(glob.glob(pattern), reverse=True):
            if os.access(path, os.X_OK):
                return path
        found = shutil.which(pattern)
        if found:
            return found
    _missing(candidates[0])
    raise AssertionError("unreachable")


class PrivateServer:
    """One server process of our own: start, stop, kill, restart, on a fixed port and folder."""

    name = "server"
    start_timeout = 30.0

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.root = root
        self.host = host
        self.port = port or free_port(host if host != "0.0.0.0" else "127.0.0.1")
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{self.name}.log"

    # What a kind of server defines.
    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def user(self) -> str | None:
        """Run the server as this system user (PostgreSQL refuses root)."""
        return None

    def ready(self) -> bool:
        return port_open(self.host if self.host != "0.0.0.0" else "127.0.0.1", self.port)

    # Life cycle.
    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        command = list(self.command())
        user = self.user()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes it until it stops
        if user:
            shutil.chown(self.log_path, user)
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        finally:
            log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"private {self.name} exited with {self.process.returncode}: {self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"private {self.name} did not start in {self.start_timeout:.0f} s: {self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM to the server's process group), waited for."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """``kill -9`` of the server and everything it started."""
        self._signal(signal.SIGKILL, 30.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, sig: int, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        deadline = time.monotonic() + 10
        while self.ready() and time.monotonic() < deadline:  # its children may hold the port a moment
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class PrivatePostgres(PrivateServer):
    name = "postgres"

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(root, host, port)
        self.bin = Path(_find("/usr/lib/postgresql/*/bin/postgres")).parent
        self.data = root / "data"
        self.socket_dir = root / "socket"
        if not self.data.exists():
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            shutil.chown(root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
            subprocess.run(
                ["runuser", "-u", "postgres", "--", str(self.bin / "initdb"), "-D", str(self.data),
                 "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                check=True, capture_output=True,
            )  # fmt: skip

    def user(self) -> str | None:
        return "postgres"

    def command(self) -> Sequence[str]:
        return [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", self.host,
            "-k", str(self.socket_dir), "-c", "fsync=off", "-c", "max_connections=200",
        ]  # fmt: skip

    def ready(self) -> bool:
        if not super().ready():
            return False
        probe = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", self.host if self.host != "0.0.0.0" else "127.0.0.1",
             "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
        )  # fmt: skip
        return probe.returncode == 0

    def stop(self, timeout: float = 30.0) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: connections are cut, the data stays consistent.
        self._signal(signal.SIGINT, timeout)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            admin.dispose()
        return self.url(name)


class PrivateMariaDB(PrivateServer):
    name = "mariadb"

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(root, host, port)
        self.binary = _find("mariadbd", "/usr/sbin/mariadbd")
        self.data = root / "data"
        if not self.data.exists():
            subprocess.run(
                [_find("mariadb-install-db"), "--no-defaults", f"--datadir={self.data}", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                check=True, capture_output=True,
            )  # fmt: skip

    def command(self) -> Sequence[str]:
        return [
            self.binary, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
            f"--bind-address={self.host}", f"--socket={self.root / 'mysqld.sock'}",
            f"--pid-file={self.root / 'mysqld.pid'}", "--user=root",
            "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
        ]  # fmt: skip

    def url(self, database: str = "mysql") -> str:
        return f"mysql+pymysql://root@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            admin.dispose()
        return self.url(name)


class PrivateRedis(PrivateServer):
    name = "redis"

    def command(self) -> Sequence[str]:
        return [
            _find("redis-server"), "--port", str(self.port), "--bind", self.host, "--dir", str(self.root),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
        ]  # fmt: skip

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


class PrivateNats(PrivateServer):
    name = "nats"

    def command(self) -> Sequence[str]:
        return [_find("nats-server"), "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.root / "js")]

    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class PrivateMosquitto(PrivateServer):
    name = "mosquitto"

    def command(self) -> Sequence[str]:
        config = self.root / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.root}/\n"
        )
        # Started as root, mosquitto drops to its own user: that user must be able to save its
        # persistence file here (a broker restarted without it forgets persistent sessions).
        try:
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, "mosquitto", "mosquitto")
        except (LookupError, PermissionError):
            pass
        return [_find("mosquitto", "/usr/sbin/mosquitto"), "-c", str(config)]

    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


class PrivateRabbitMQ(PrivateServer):
    """A RabbitMQ node of its own: own node name, ports, database folder and Erlang cookie."""

    name = "rabbitmq"
    start_timeout = 90.0

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(root, host, port)
        # The real script, not Debian's wrapper (which su's and so hides the server's pid).
        self.binary = _find("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
        self.node = f"ductwork_t_{os.getpid()}_{self.port}@localhost"
        self.dist_port = free_port()
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.local = {self.host}:{self.port}\nloopback_users = none\n")
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        (root / "mnesia").mkdir(exist_ok=True)
        (root / "log").mkdir(exist_ok=True)
        # The server runs as the rabbitmq user, as Debian's own service does: the folder is its.
        for path in [root, *root.rglob("*")]:
            shutil.chown(path, "rabbitmq", "rabbitmq")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_NODE_IP_ADDRESS=self.host,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.root / "rabbitmq.pid"),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),
            HOME=str(self.root),
        )
        return env

    def user(self) -> str | None:
        return "rabbitmq"

    def command(self) -> Sequence[str]:
        return [self.binary]

    def url(self, vhost: str = "") -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/{vhost}"


def _root(kind: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"ductwork-{kind}-"))
    os.chmod(root, 0o755)
    return root


@contextmanager
def _running(server: PrivateServer) -> Iterator[PrivateServer]:
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(server.root, ignore_errors=True)


@contextmanager
def private_postgres(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivatePostgres]:
    with _running(PrivatePostgres(_root("postgres"), host, port)) as server:
        assert isinstance(server, PrivatePostgres)
        yield server


@contextmanager
def private_mariadb(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivateMariaDB]:
    with _running(PrivateMariaDB(_root("mariadb"), host, port)) as server:
        assert isinstance(server, PrivateMariaDB)
        yield server


@contextmanager
def private_redis(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivateRedis]:
    with _running(PrivateRedis(_root("redis"), host, port)) as server:
        assert isinstance(server, PrivateRedis)
        yield server


@contextmanager
def private_nats(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivateNats]:
    with _running(PrivateNats(_root("nats"), host, port)) as server:
        assert isinstance(server, PrivateNats)
        yield server


@contextmanager
def private_mosquitto(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivateMosquitto]:
    with _running(PrivateMosquitto(_root("mosquitto"), host, port)) as server:
        assert isinstance(server, PrivateMosquitto)
        yield server


@contextmanager
def private_rabbitmq(host: str = "127.0.0.1", port: int | None = None) -> Iterator[PrivateRabbitMQ]:
    with _running(PrivateRabbitMQ(_root("rabbitmq"), host, port)) as server:
        assert isinstance(server, PrivateRabbitMQ)
        yield server


class PrivateOpenRedis(PrivateRedis):
    """A private Redis that accepts clients from other hosts (a network-namespace test host):
    without a password Redis otherwise answers only on the loopback interface."""

    def command(self) -> Sequence[str]:
        return [*super().command(), "--protected-mode", "no"]


@contextmanager
def private_open_redis(host: str, port: int | None = None) -> Iterator[PrivateRedis]:
    with _running(PrivateOpenRedis(_root("redis"), host, port)) as server:
        assert isinstance(server, PrivateRedis)
        yield server
