"""``ductwork users``, ``ductwork tokens``, and the web commands' registration."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli


def test_users_create_list_password_delete(cli: Cli) -> None:
    made = cli("users", "create", "alice", "--role", "operator", "--password-stdin", input="a-long-password\n")
    assert made.exit_code == 0, made.output
    assert "alice created with the operator role" in made.output
    generated = cli("users", "create", "bob", "--generate")
    assert generated.exit_code == 0 and "password (shown once): " in generated.output
    listed = json.loads(cli("users", "list", "--json").output)
    assert [(u["username"], u["role"]) for u in listed] == [("alice", "operator"), ("bob", "viewer")]
    again = cli("users", "create", "alice", "--password-stdin", input="a-long-password\n")
    assert again.exit_code == 2 and "already exists" in again.output
    spaced = cli("users", "create", "carol ", "--password-stdin", input="a-long-password\n")
    assert spaced.exit_code == 2 and "spaces before or after it" in spaced.output and "write 'carol'" in spaced.output
    weak = cli("users", "create", "carol", "--password-stdin", input="short\n")
    assert weak.exit_code == 2 and "at least 8 characters" in weak.output
    assert cli("users", "password", "alice", "--password-stdin", input="another-long-one\n").exit_code == 0
    assert cli("users", "delete", "bob").exit_code == 0
    missing = cli("users", "delete", "bob")
    assert missing.exit_code == 2 and "no user 'bob'" in missing.output


def test_tokens_create_prints_a_working_token_once(cli: Cli) -> None:
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    cli("users", "create", "robot", "--role", "viewer", "--password-stdin", input="a-long-password\n")
    result = cli("tokens", "create", "robot", "--name", "nightly", "--expires-in-days", "7")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("dwt_")
    engine = create_engine(Settings.load().db_url)
    user = accounts.user_for_token(engine, token)
    engine.dispose()
    assert user is not None and user.username == "robot"
    assert cli("tokens", "create", "nobody").exit_code == 2
    blank = cli("tokens", "create", "robot", "--name", " ")
    assert blank.exit_code == 2 and "token name ' ': it needs a character other than spaces" in blank.output


def test_web_commands_are_registered(cli: Cli) -> None:
    for command in ("webserver", "standalone"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "--port" in result.output


def _login_works(username: str, password: str) -> bool:
    from ductwork.errors import DuctworkError
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    engine = create_engine(Settings.load().db_url)
    try:
        accounts.authenticate(engine, username, password)
        return True
    except DuctworkError:
        return False
    finally:
        engine.dispose()


def test_users_create_takes_the_password_from_a_prompt_or_stdin_never_argv(cli: Cli) -> None:
    on_argv = cli("users", "create", "alice", "--password", "a-long-password")
    assert on_argv.exit_code == 2
    assert "shell history" in on_argv.output and "--password-stdin" in on_argv.output
    assert "--password " not in cli("users", "create", "--help").output  # not offered any more
    prompted = cli("users", "create", "alice", input="a-long-password\na-long-password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "a-long-password" not in prompted.output  # typed, not echoed
    assert _login_works("alice", "a-long-password")
    piped = cli("users", "create", "bob", "--password-stdin", input="bobs-long-password\n")
    assert piped.exit_code == 0, piped.output
    assert _login_works("bob", "bobs-long-password")
    none = cli("users", "create", "dave", input="")  # a script with no terminal: it said "Aborted!"
    assert none.exit_code == 2 and "no password was typed" in none.output and "--password-stdin" in none.output
    mismatch = cli("users", "create", "carol", input="one-long-password\nanother-password\n")
    assert mismatch.exit_code != 0
    assert cli("users", "password", "bob", "--password", "x" * 12).exit_code == 2
    empty = cli("users", "password", "bob", "--password-stdin", input="")
    assert empty.exit_code == 2 and "nothing was read" in empty.output
    assert _login_works("bob", "bobs-long-password")


@pytest.mark.parametrize("command", ["standalone", "webserver"])
def test_a_web_server_on_a_port_another_process_holds_exits_saying_so(tmp_path: Path, command: str) -> None:
    """standalone logged uvicorn's bind error and went on running its scheduler without a web UI,
    so a service manager saw it running and nobody could reach the UI; webserver said it served
    the UI on that port, then failed with uvicorn's error (exit 3)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    (tmp_path / "flows").mkdir()
    env = {**os.environ, "DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", command, "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        held.close()
    assert done.returncode == 2, done.stderr
    assert f"Error: cannot serve the web UI on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr and "scheduler started" not in done.stderr
    assert "web UI on http" not in done.stderr


def test_users_create_with_no_terminal_says_what_to_do_without_a_warning(tmp_path: Path) -> None:
    """``ductwork users create bob </dev/null`` printed getpass's ``GetPassWarning`` with its
    source line (read as a traceback) and "Password input may be echoed" before its error."""
    from tests.ductwork_process import ductwork_process

    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    # a session of its own: no controlling terminal, as under cron or in a container
    empty = ductwork_process(
        "users", "create", "bob", env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, start_new_session=True
    )
    assert empty.returncode == 2, empty.stderr
    assert "Warning" not in empty.stderr and "getpass" not in empty.stderr, empty.stderr
    assert "no password was typed" in empty.stderr and "--password-stdin" in empty.stderr, empty.stderr
    piped = ductwork_process(
        "users", "create", "bob", env=env, cwd=tmp_path, input="a-long-password\n", start_new_session=True
    )
    assert piped.returncode == 0 and "Warning" not in piped.stderr, piped.stderr
    differ = ductwork_process(
        "users", "create", "eve", env=env, cwd=tmp_path, input="a-long-password\nanother-pass\n", start_new_session=True
    )
    assert differ.returncode == 2 and "differ" in differ.stderr, differ.stderr


def test_a_web_server_on_an_ipv6_address_says_a_url_a_browser_opens(tmp_path: Path) -> None:
    """``--host ::1`` printed ``http://::1:PORT/``, which no browser or curl takes."""
    import signal
    import time
    import urllib.error
    import urllib.request

    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = probe.getsockname()[1]
    probe.close()
    from tests.ductwork_process import ductwork_command, process_env

    server = subprocess.Popen(
        ductwork_command("webserver", "--host", "::1", "--port", str(port)),
        env=process_env({"DUCTWORK_HOME": str(tmp_path / "home")}),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        banner = server.stderr.readline()
        url = f"http://[::1]:{port}/"
        assert f"Ductwork web UI on {url} " in banner, banner
        for _ in range(60):  # the URL as said works, once the server listens (just after the banner)
            try:
                with urllib.request.urlopen(url + "api/v1/health", timeout=30) as answer:
                    assert answer.status == 200
                    break
            except urllib.error.URLError:
                time.sleep(0.5)
        else:
            pytest.fail(f"nothing answered on {url}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_users_list_json_says_when_each_user_last_logged_in_as_the_table_does(cli: Cli) -> None:
    """The table had a "last login" column and ``--json`` had nothing of it: a script looking for
    accounts nobody uses could not find them."""
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    cli("users", "create", "alice", "--password-stdin", input="a-long-password\n")
    cli("users", "create", "bob", "--password-stdin", input="a-long-password\n")
    engine = create_engine(Settings.load().db_url)
    accounts.authenticate(engine, "alice", "a-long-password")
    engine.dispose()
    listed = {u["username"]: u for u in json.loads(cli("users", "list", "--json").output)}
    assert listed["alice"]["last_login_at"] is not None and listed["alice"]["last_login_at"].startswith("20")
    assert "last_login_at" in listed["bob"] and listed["bob"]["last_login_at"] is None
