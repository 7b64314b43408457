"""``ductwork standalone`` makes a Fernet key on its first start, as Airflow's standalone does.

Without one, the first connection with a password (or a variable named like a secret) saved
from the UI was refused with "no Fernet key is configured", on a one-machine setup meant to
work out of the box. The key goes into the home (``fernet.key``, mode 0600), the start-up output
says where, every command on that home reads it, and an existing key is never replaced.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.web.test_browser import free_port

pytestmark = pytest.mark.timeout(300)


def _env(home: Path, flows: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(home),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def _standalone(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, str]]:
    """A standalone until the block ends: its URL and what it printed before it was healthy."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "standalone", "--port", str(port), "-w", "1", "--log-level", "warning"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while not any("Ductwork standalone: web UI on" in line for line in lines):
            line = process.stdout.readline()
            assert line or process.poll() is None, "standalone ended:\n" + "".join(lines)
            lines.append(line)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, "".join(lines)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ductwork.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_first_start_makes_a_key_that_the_ui_api_and_cli_use_and_no_start_replaces(tmp_path: Path) -> None:
    home, flows = tmp_path / "home", tmp_path / "flows"
    flows.mkdir()
    env = _env(home, flows)
    key_file = home / "fernet.key"
    with _standalone(env, tmp_path) as (url, said):
        assert "Fernet key" in said and str(key_file) in said, said
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        from cryptography.fernet import Fernet

        Fernet(key)  # a valid key
        assert key not in said, "the key itself is not printed"
        token = _cli(env, tmp_path, "tokens", "create", "admin").stdout.strip()
        answer = httpx.put(
            url + "/api/v1/connections/warehouse",
            json={"uri": "postgres://etl:s3cret@db:5432/analytics"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        added = _cli(env, tmp_path, "variables", "set", "api_token", "abc123")
        assert added.returncode == 0 and "encrypted" in added.stdout, added.stdout + added.stderr
        config = _cli(env, tmp_path, "config")
        assert "fernet_key" in config.stdout and str(key_file) in config.stdout.replace("\n", ""), config.stdout
    with _standalone(env, tmp_path) as (url, said):
        assert key_file.read_text().strip() == key, "a second start replaced the key"
        assert "Generated" not in said, said
        shown = _cli(env, tmp_path, "variables", "get", "api_token")
        assert shown.stdout.strip() == "abc123", shown.stdout + shown.stderr


def test_a_key_from_the_environment_or_ductwork_toml_is_used_and_none_made(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    home, flows = tmp_path / "home", tmp_path / "flows"
    flows.mkdir()
    env = _env(home, flows, DUCTWORK_FERNET_KEY=Fernet.generate_key().decode())
    with _standalone(env, tmp_path) as (_url, said):
        assert not (home / "fernet.key").exists()
        assert "Generated" not in said
    other = tmp_path / "other"
    (other / "flows").mkdir(parents=True)
    (other / "ductwork.toml").write_text(f'[ductwork]\nfernet_key = "{Fernet.generate_key().decode()}"\n')
    with _standalone(_env(other / "home", other / "flows"), other) as (_url, said):
        assert not (other / "home" / "fernet.key").exists()


def test_no_key_is_made_over_values_encrypted_with_another(tmp_path: Path) -> None:
    """A home whose database holds values encrypted with a key set before (now unset): a new key
    could not read them, and what was stored next would need another key than what was before."""
    from cryptography.fernet import Fernet

    from ductwork.services.home_key import ensure_home_key
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.crypto import Cipher
    from ductwork.store.engine import create_engine
    from ductwork.store.secrets import DatabaseSecrets

    settings = Settings.load(environ={"DUCTWORK_HOME": str(tmp_path / "home")})
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    DatabaseSecrets(engine, Cipher(Fernet.generate_key().decode())).set_variable("api_token", "abc")
    made = ensure_home_key(settings, engine)
    engine.dispose()
    assert made.settings.fernet_key == "" and not (tmp_path / "home" / "fernet.key").exists()
    assert made.said is not None and "1 encrypted connection(s) or variable(s)" in made.said, made.said
