"""Re-encrypting the stored connections and variables with the first Fernet key.

``fernet_key = "NEW,OLD"`` lets every process read what OLD encrypted while NEW encrypts what is
stored from then on; but the values stored before stayed OLD's for ever, so OLD could never be
dropped (Airflow has ``airflow rotate-fernet-key`` for this). ``rotate`` rewrites each encrypted
value with the first key, all in one transaction: a value no configured key can read stops it
before anything changes, naming that connection or variable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Engine

from ductwork.store.crypto import Cipher
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import connections as conn_repo
from ductwork.store.repo import variables as var_repo


@dataclass(frozen=True)
class Rotation:
    """What a rotation re-encrypted (or would, on a dry run): the names of the connections and
    variables whose stored values are encrypted; plain ones are left as they are."""

    connections: tuple[str, ...]
    variables: tuple[str, ...]
    dry_run: bool


def rotate(engine: Engine, cipher: Cipher, *, dry_run: bool = False) -> Rotation:
    """Re-encrypt every encrypted connection (password, extra) and variable with the first key
    of ``cipher``, each decrypted with whichever key reads it. On a dry run every value is still
    decrypted, so that one no key reads is reported before the real rotation is asked for. The
    rows keep their ``updated_at``: the values are the same, and a new time would make the
    scheduler parse again the flow files that read those variables."""
    done_connections: list[str] = []
    done_variables: list[str] = []
    with (read_transaction if dry_run else transaction)(engine) as conn:
        for row in conn_repo.list_connections(conn):
            if not row.is_encrypted:
                continue
            why = f"connection {row.conn_id!r} is encrypted"
            password = _again(cipher, row.password, why)
            extra = _again(cipher, row.extra, why)
            if not dry_run:
                conn_repo.put_connection(conn, replace(row, password=password, extra=extra), now=row.updated_at)
            done_connections.append(row.conn_id)
        for var in var_repo.list_variables(conn):
            if not var.is_encrypted:
                continue
            value = cipher.encrypt(cipher.decrypt(var.value, why=f"variable {var.key!r} is encrypted"), why=var.key)
            if not dry_run:
                var_repo.set_variable(
                    conn, var.key, value, is_encrypted=True, description=var.description, now=var.updated_at
                )
            done_variables.append(var.key)
    return Rotation(tuple(done_connections), tuple(done_variables), dry_run)


def _again(cipher: Cipher, token: str | None, why: str) -> str | None:
    """``token`` decrypted with any configured key and encrypted with the first."""
    if token is None:
        return None
    return cipher.encrypt(cipher.decrypt(token, why=why), why=why)
