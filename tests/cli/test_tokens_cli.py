"""``ductwork tokens list`` and ``tokens revoke``: a token could be created from the CLI but
not seen or revoked there, so a leaked one stayed valid until someone logged in to the web UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import Cli

if TYPE_CHECKING:
    from sqlalchemy import Engine


def _engine(tmp_path: Path) -> Engine:
    from ductwork.store.engine import create_engine

    return create_engine(f"sqlite:///{tmp_path / 'ductwork-home' / 'ductwork.db'}")


def test_tokens_are_listed_without_secrets_and_revoked_by_id(cli: Cli, tmp_path: Path) -> None:
    from ductwork.services import accounts

    assert cli("users", "create", "dana", "--role", "admin", "--generate").exit_code == 0
    assert cli("users", "create", "eve", "--generate").exit_code == 0
    made = cli("tokens", "create", "dana", "--name", "ci")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert cli("tokens", "create", "eve").exit_code == 0

    listed = cli("tokens", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["username"], r["name"]) for r in rows] == [("dana", "ci"), ("eve", "cli")]
    assert secret not in listed.stdout and all(secret.startswith(r["prefix"]) for r in rows[:1])
    ci = rows[0]["id"]
    only = json.loads(cli("tokens", "list", "--user", "eve", "--json").stdout)
    assert [r["username"] for r in only] == ["eve"]
    table = cli("tokens", "list")
    assert table.exit_code == 0 and "dana" in table.output and "ci" in table.output and secret not in table.output

    engine = _engine(tmp_path)
    try:
        assert accounts.user_for_token(engine, secret) is not None
        revoked = cli("tokens", "revoke", str(ci))
        assert revoked.exit_code == 0 and f"API token {ci} revoked" in revoked.output, revoked.output
        assert accounts.user_for_token(engine, secret) is None
    finally:
        engine.dispose()
    assert [r["username"] for r in json.loads(cli("tokens", "list", "--json").stdout)] == ["eve"]
    entries = json.loads(cli("audit", "list", "--action", "token.delete", "--json").stdout)["entries"]
    assert [e["target"] for e in entries] == [str(ci)], entries


def test_revoking_or_listing_what_does_not_exist_is_refused(cli: Cli) -> None:
    assert cli("users", "create", "dana", "--generate").exit_code == 0
    gone = cli("tokens", "revoke", "42")
    assert gone.exit_code == 2 and "no API token 42" in gone.output, gone.output
    nobody = cli("tokens", "list", "--user", "nobody")
    assert nobody.exit_code == 2 and "no user 'nobody'" in nobody.output, nobody.output
    assert cli("tokens", "revoke", "abc").exit_code == 2


def test_a_token_name_with_a_control_character_is_refused(cli: Cli) -> None:
    """``tokens create dana --name $'ci\\nnightly'`` was stored, and ``tokens list`` showed it
    over two rows, the second one a token of nobody."""
    assert cli("users", "create", "dana", "--generate").exit_code == 0
    refused = cli("tokens", "create", "dana", "--name", "ci\nnightly")
    assert refused.exit_code == 2, refused.output
    assert "token name 'ci\\nnightly': it may not hold control characters" in refused.output, refused.output
    assert json.loads(cli("tokens", "list", "--json").stdout) == []
