"""``ductwork users``, ``ductwork tokens``, and the web commands' registration."""

from __future__ import annotations

import json

from tests.conftest import Cli


def test_users_create_list_password_delete(cli: Cli) -> None:
    made = cli("users", "create", "alice", "--role", "operator", "--password", "a-long-password")
    assert made.exit_code == 0, made.output
    assert "alice created with the operator role" in made.output
    generated = cli("users", "create", "bob", "--generate")
    assert generated.exit_code == 0 and "password (shown once): " in generated.output
    listed = json.loads(cli("users", "list", "--json").output)
    assert [(u["username"], u["role"]) for u in listed] == [("alice", "operator"), ("bob", "viewer")]
    again = cli("users", "create", "alice", "--password", "a-long-password")
    assert again.exit_code == 2 and "already exists" in again.output
    weak = cli("users", "create", "carol", "--password", "short")
    assert weak.exit_code == 2 and "at least 8 characters" in weak.output
    assert cli("users", "password", "alice", "--password", "another-long-one").exit_code == 0
    assert cli("users", "delete", "bob").exit_code == 0
    missing = cli("users", "delete", "bob")
    assert missing.exit_code == 2 and "no user 'bob'" in missing.output


def test_tokens_create_prints_a_working_token_once(cli: Cli) -> None:
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    cli("users", "create", "robot", "--role", "viewer", "--password", "a-long-password")
    result = cli("tokens", "create", "robot", "--name", "nightly", "--expires-in-days", "7")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("dwt_")
    engine = create_engine(Settings.load().db_url)
    user = accounts.user_for_token(engine, token)
    engine.dispose()
    assert user is not None and user.username == "robot"
    assert cli("tokens", "create", "nobody").exit_code == 2


def test_web_commands_are_registered(cli: Cli) -> None:
    for command in ("webserver", "standalone"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "--port" in result.output
