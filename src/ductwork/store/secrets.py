"""The metadata database as a secrets backend: connections and variables, encrypted at rest.

A connection's password and extra, and every variable's value, are stored as Fernet tokens
when a key is configured (``ductwork.store.crypto``). Without a key, a connection with no
password and no extra, or a variable whose name does not look secret, is stored in clear
(``is_encrypted`` false); anything secret is refused with an error that says how to set a
key. Rows stay readable after a key is added: each row says whether it is encrypted.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.connections import Connection
from ductwork.core.masking import is_secret_name
from ductwork.store.crypto import Cipher, no_key
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import connections as conn_repo
from ductwork.store.repo import variables as var_repo
from ductwork.store.tables import connections as connections_table


class DatabaseSecrets:
    """Reads (the ``SecretsBackend`` port) and writes connections and variables in the store."""

    label = "database"

    def __init__(self, engine: Engine, cipher: Cipher) -> None:
        self.engine = engine
        self.cipher = cipher
        self._schema_ok = False

    def where(self, kind: str, name: str) -> str:
        return f"ductwork {'connections' if kind == 'connection' else 'variables'} get {name}"

    # --- reading (SecretsBackend) -------------------------------------------------------------
    def get_connection(self, name: str) -> Connection | None:
        if not self._has_schema():
            return None
        with read_transaction(self.engine) as conn:
            row = conn_repo.get_connection(conn, name)
        return self._decode(row) if row is not None else None

    def get_variable(self, name: str) -> str | None:
        if not self._has_schema():
            return None
        with read_transaction(self.engine) as conn:
            row = var_repo.get_variable(conn, name)
        if row is None:
            return None
        return self.cipher.decrypt(row.value, why=f"variable {name!r} is encrypted") if row.is_encrypted else row.value

    def list_connections(self) -> list[Connection]:
        with read_transaction(self.engine) as conn:
            rows = conn_repo.list_connections(conn)
        return [self._decode(r) for r in rows]

    def list_variables(self) -> list[var_repo.StoredVariable]:
        """Rows as stored (values may be tokens): for listing names, not for reading values."""
        with read_transaction(self.engine) as conn:
            return var_repo.list_variables(conn)

    def _has_schema(self) -> bool:
        """False when the database was never initialized (an in-process run on a fresh home)."""
        if not self._schema_ok:
            try:
                with self.engine.connect() as conn:
                    self._schema_ok = sa.inspect(conn).has_table(connections_table.name)
            except sa.exc.OperationalError:
                return False
        return self._schema_ok

    def _decode(self, row: conn_repo.StoredConnection) -> Connection:
        password, extra = row.password, row.extra
        if row.is_encrypted:
            why = f"connection {row.conn_id!r} is encrypted"
            password = self.cipher.decrypt(password, why=why) if password is not None else None
            extra = self.cipher.decrypt(extra, why=why) if extra is not None else None
        return Connection(
            conn_id=row.conn_id,
            conn_type=row.conn_type,
            host=row.host,
            login=row.login,
            password=password,
            schema=row.schema,
            port=row.port,
            extra=json.loads(extra) if extra else {},
            description=row.description,
        )

    # --- writing --------------------------------------------------------------------------------
    def put_connection(self, connection: Connection) -> None:
        extra = json.dumps(dict(connection.extra)) if connection.extra else None
        encrypt = self.cipher.has_key
        if (connection.password or extra) and not encrypt:
            raise no_key(f"connection {connection.conn_id!r} has a password or extra to store")
        why = f"connection {connection.conn_id!r}"

        def seal(value: str | None) -> str | None:
            return self.cipher.encrypt(value, why=why) if encrypt and value is not None else value

        row = conn_repo.StoredConnection(
            conn_id=connection.conn_id,
            conn_type=connection.conn_type,
            host=connection.host,
            schema=connection.schema,
            login=connection.login,
            password=seal(connection.password),
            port=connection.port,
            extra=seal(extra),
            is_encrypted=encrypt,
            description=connection.description,
        )
        with transaction(self.engine) as conn:
            conn_repo.put_connection(conn, row)

    def delete_connection(self, name: str) -> None:
        with transaction(self.engine) as conn:
            conn_repo.delete_connection(conn, name)

    def set_variable(self, name: str, value: str, *, description: str = "") -> bool:
        """Store a variable; whether it was encrypted."""
        encrypt = self.cipher.has_key
        if not encrypt and is_secret_name(name):
            raise no_key(f"variable {name!r} looks secret (by its name)")
        stored = self.cipher.encrypt(value, why=f"variable {name!r}") if encrypt else value
        with transaction(self.engine) as conn:
            var_repo.set_variable(conn, name, stored, is_encrypted=encrypt, description=description)
        return encrypt

    def delete_variable(self, name: str) -> None:
        with transaction(self.engine) as conn:
            var_repo.delete_variable(conn, name)
