"""``ductwork connections rotate-key``: with ``fernet_key = "NEW,OLD"`` the values stored with
OLD stayed OLD's, so OLD could never be dropped (setting NEW alone made every connection and
secret variable unreadable). The command re-encrypts them with the first key, in one
transaction."""

from __future__ import annotations

import json

from conftest import Cli


def _keys(cli: Cli, n: int) -> list[str]:
    return [cli("connections", "generate-key").output.strip() for _ in range(n)]


def test_rotating_lets_the_old_key_go(cli: Cli) -> None:
    new, old = _keys(cli, 2)
    with_old = {"DUCTWORK_FERNET_KEY": old}
    both = {"DUCTWORK_FERNET_KEY": f"{new},{old}"}
    only_new = {"DUCTWORK_FERNET_KEY": new}
    added = cli(
        "connections", "add", "wh", "postgres://etl:pg-pw-1@db:5432/a", "--extra", '{"api_key": "k-1"}', env=with_old
    )
    assert added.exit_code == 0, added.output
    assert cli("variables", "set", "api_token", "tok-1", env=with_old).exit_code == 0
    assert cli("variables", "set", "region", "eu").exit_code == 0  # stored without a key: plain, left as it is

    preview = cli("connections", "rotate-key", "--dry-run", "--json", env=both)
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.output) == {"dry_run": True, "connections": ["wh"], "variables": ["api_token"]}
    assert cli("variables", "get", "api_token", env=only_new).exit_code == 2  # the dry run changed nothing

    rotated = cli("connections", "rotate-key", env=both)
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1 connection(s) and 1 variable(s)" in rotated.output
    audited = json.loads(cli("audit", "list", "--action", "connection.rotate_key", "--json").output)
    assert audited["total"] == 1  # the rotation, not its dry run

    read = cli("variables", "get", "api_token", env=only_new)
    assert read.exit_code == 0 and read.output.strip() == "tok-1"
    assert cli("variables", "get", "region", env=only_new).output.strip() == "eu"
    from ductwork.store.crypto import Cipher
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import connections as conn_repo

    engine = create_engine(f"sqlite:///{cli.cwd / 'ductwork-home' / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            row = conn_repo.get_connection(conn, "wh")
    finally:
        engine.dispose()
    assert row is not None and row.password is not None and row.extra is not None
    assert Cipher(new).decrypt(row.password, why="test") == "pg-pw-1"
    assert json.loads(Cipher(new).decrypt(row.extra, why="test")) == {"api_key": "k-1"}


def test_a_value_no_key_reads_stops_the_rotation_before_any_change(cli: Cli) -> None:
    first, second, stranger = _keys(cli, 3)
    assert cli("variables", "set", "a_token", "tok-a", env={"DUCTWORK_FERNET_KEY": first}).exit_code == 0
    assert cli("variables", "set", "b_token", "tok-b", env={"DUCTWORK_FERNET_KEY": second}).exit_code == 0

    refused = cli("connections", "rotate-key", env={"DUCTWORK_FERNET_KEY": f"{stranger},{first}"})
    assert refused.exit_code == 2 and "variable 'b_token' is encrypted" in refused.output
    # a_token, read before b_token stopped it, is still first's: the transaction was rolled back
    kept = cli("variables", "get", "a_token", env={"DUCTWORK_FERNET_KEY": first})
    assert kept.exit_code == 0 and kept.output.strip() == "tok-a"
