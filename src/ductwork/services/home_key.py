"""The home's Fernet key, made by ``ductwork standalone`` on its first start.

Connections with a password and secret-looking variables are stored only encrypted. Without a
key a one-machine setup refused the first such connection saved from the UI, where Airflow's
``standalone`` writes a ``fernet_key`` into its config. The key is written to
``<home>/fernet.key`` (mode 0600), which every command on that home reads
(``Settings.load``) when no ``fernet_key`` is set elsewhere; a key set elsewhere, or a key file
already there, is never replaced, since what was stored with a key is unreadable without it.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.errors import DuctworkError
from ductwork.settings import FERNET_KEY_FILE, Settings, read_key_file
from ductwork.store.engine import read_transaction
from ductwork.store.tables import connections, variables


@dataclass(frozen=True)
class HomeKey:
    settings: Settings
    """The settings to run with: ``fernet_key`` set when a key was made."""
    said: str | None
    """What to tell the person starting the server (None: nothing to say)."""


def new_key() -> str:
    """A Fernet key: 32 random bytes, URL-safe base64, as ``Fernet.generate_key()`` makes one
    (made here so that a start without the optional ``cryptography`` package still makes it)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _encrypted_rows(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return sum(
            conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.is_encrypted.is_(True))).scalar_one()
            for t in (connections, variables)
        )


def ensure_home_key(settings: Settings, engine: Engine) -> HomeKey:
    """Make the home's key unless one is configured; see the module's docstring."""
    if settings.fernet_key:
        return HomeKey(settings, None)
    path = settings.home / FERNET_KEY_FILE
    stored = _encrypted_rows(engine)
    if stored:
        return HomeKey(
            settings,
            f"No Fernet key is set, and the database holds {stored} encrypted connection(s) or variable(s): no new "
            f"key was made (it could not read them). Set fernet_key (DUCTWORK_FERNET_KEY) to the key they were "
            f"stored with, or put it in {path}.",
        )
    key = new_key()
    try:
        _write_new(path, key)
    except FileExistsError:  # made meanwhile (another start on this home): that one is the key
        key = read_key_file(path)
        if not key:
            raise DuctworkError(
                f"{path} holds no Fernet key: it is not replaced; put a key made by "
                "`ductwork connections generate-key` in it, or delete it for a new one to be made"
            ) from None
        return HomeKey(dataclasses.replace(settings, fernet_key=key, fernet_key_file=path), None)
    said = (
        f"Generated a Fernet key for stored connections and variables: {path} (readable by you only).\n"
        "Every command on this home reads it; keep it with the database (what it encrypted cannot be read without "
        "it), and give it to workers on other machines as DUCTWORK_FERNET_KEY."
    )
    return HomeKey(dataclasses.replace(settings, fernet_key=key, fernet_key_file=path), said)


def _write_new(path: Path, key: str) -> None:
    """Create ``path`` holding ``key``, mode 0600 from the start; ``FileExistsError`` if it is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (key + "\n").encode("ascii"))
    finally:
        os.close(fd)
