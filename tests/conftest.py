"""Shared fixtures: an isolated DUCTWORK_HOME per test, clean memory targets, a CLI runner,
and the rule for tests that need a real service (skip locally, fail on CI)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from ductwork.core.targets import MEMORY_FS

REQUIRE_SERVICES = os.environ.get("DUCTWORK_REQUIRE_SERVICES") == "1"

# Hypothesis checks behaviour, not speed: no per-example deadline and no "too slow" health
# check, which fail property tests on a busy machine (speed is measured in benchmarks/).
settings.register_profile(
    "ductwork", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("ductwork")

# Real-database fixtures (db_url, db_engine) for every test module.
pytest_plugins = ("dbfixtures",)


def pytest_configure(config: pytest.Config) -> None:
    """Every process a test starts runs the ductwork under test: ``pythonpath = ["src"]`` puts
    the checkout first for this process only, and a child started with ``{**os.environ, ...}``
    (``python -m ductwork.cli scheduler`` in test_chaos, test_outage, test_login_throttle...)
    imported whichever copy the environment had installed."""
    from ductwork_process import process_env

    os.environ["PYTHONPATH"] = process_env({})["PYTHONPATH"]


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (under DUCTWORK_REQUIRE_SERVICES=1) when a service is down."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and DUCTWORK_REQUIRE_SERVICES=1 makes it mandatory")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path / "ductwork-home"
    monkeypatch.setenv("DUCTWORK_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("DUCTWORK_") and key not in ("DUCTWORK_HOME", "DUCTWORK_REQUIRE_SERVICES"):
            monkeypatch.delenv(key)
    MEMORY_FS.clear()
    yield
    MEMORY_FS.clear()


class Cli:
    """Runs the real ``ductwork`` command group in-process, from a working directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        from ductwork.cli.main import cli

        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.cwd)
        try:
            return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)
