"""Hiding secrets in values the server shows but did not produce: the results tasks returned.

A worker masks what a try logs with the secrets that try looked up, but a task's return value
is stored as it is (the tasks downstream need the real value). The web server, showing that
value later in another process, masks it with every secret it can know of: the passwords and
secret-looking extras of the connections in the database and in its environment, the values of
variables with secret-looking names, as they are at the time it is shown. A dict entry
whose key looks secret (``password``, ``token``...) is hidden whole, whatever its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from ductwork.core.connections import (
    AIRFLOW_CONN_ENV_PREFIX,
    AIRFLOW_VAR_ENV_PREFIX,
    CONN_ENV_PREFIX,
    VAR_ENV_PREFIX,
    Connection,
    connection_from_env,
)
from ductwork.core.masking import MASK, SecretsMasker, is_secret_name
from ductwork.settings import Settings


def _add_connection(masker: SecretsMasker, connection: Connection) -> None:
    if connection.password:
        masker.add(connection.password)
    for key, value in connection.extra.items():
        if is_secret_name(key):
            masker.add(value)


def known_secrets(settings: Settings, engine: Engine) -> SecretsMasker:
    """A masker holding every secret this server can find (see the module docstring)."""
    from ductwork.engine.task_env import secrets_environ

    masker = SecretsMasker()
    _add_environment(masker, secrets_environ())
    _add_stored(masker, settings, engine)
    return masker


def _add_environment(masker: SecretsMasker, environ: Mapping[str, str]) -> None:
    """The environment's connections and secret-looking variables, under Ductwork's names and
    Airflow's (both are read by the environment backend)."""
    for key in list(environ):
        value = environ[key]
        if (name := _after(key, CONN_ENV_PREFIX, AIRFLOW_CONN_ENV_PREFIX)) is not None:
            try:
                _add_connection(masker, connection_from_env(name, key, value.strip()))
            except Exception:  # an unreadable value is not a reason to show anything in clear
                masker.add(value)
        elif (name := _after(key, VAR_ENV_PREFIX, AIRFLOW_VAR_ENV_PREFIX)) is not None and is_secret_name(name):
            masker.add(value)


def _after(key: str, *prefixes: str) -> str | None:
    """``key`` without the first of ``prefixes`` it starts with; None if it starts with none."""
    for prefix in prefixes:
        if key.startswith(prefix):
            return key.removeprefix(prefix)
    return None


def _add_stored(masker: SecretsMasker, settings: Settings, engine: Engine) -> None:
    from ductwork.store.crypto import Cipher
    from ductwork.store.secrets import DatabaseSecrets

    stored = DatabaseSecrets(engine, Cipher(settings.fernet_key))
    try:
        connections = stored.list_connections()
    except Exception:  # encrypted and no key here: this server cannot know them (nor show them)
        connections = []
    for connection in connections:
        _add_connection(masker, connection)
    try:
        names = [v.key for v in stored.list_variables() if is_secret_name(v.key)]
    except Exception:
        names = []
    for name in names:
        try:
            value = stored.get_variable(name)
        except Exception:
            continue
        if value:
            masker.add(value)


def mask_shown(masker: SecretsMasker, key: str, value: Any) -> Any:
    """``value`` (stored under result key ``key``) as it may be shown, masked with ``masker``
    (``known_secrets``: what is stored and set now). Not with the process's ``MASKER`` too: in a
    web server that one only grows (every connection and secret variable looked up through
    the API lands in it), so a deleted connection's or a changed password's old value, often
    a plain word, stayed ``***`` in every result shown until the server was restarted."""
    if is_secret_name(key) and value not in (None, ""):
        return MASK
    return masker.mask_value(value)
