"""The audit log: every change made through the CLI, the API or the UI, with who, when, from where
and what; never a secret.

The CLI and the web server each record their changes in one place (``cli.audit_hook`` wraps
the mutating commands, ``api.audit`` follows every write request), so a new command or route
is audited without anyone remembering to. What they record passes through ``redact`` here:
keys that name a secret (passwords, tokens, keys, connection extras, variable values...) lose
their values, and a URL keeps its password out.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ductwork.core.masking import MASK, is_secret_name
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import Page
from ductwork.store.repo import audit as repo
from ductwork.store.repo.audit import AuditEntry, AuditRecord
from ductwork.store.types import utcnow

log = logging.getLogger("ductwork.audit")

ALWAYS_SECRET = frozenset({"password", "value", "extra", "token", "secret", "fernet_key", "uri", "conn_uri"})
"""Keys whose values are never recorded, whatever their content (a variable's value, a
connection's extra: they may hold anything)."""

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")
_NAME_VALUE = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<value>.*)$", re.S)
"""A ``NAME=VALUE`` text, as the CLI's ``--param`` options are recorded."""
MAX_TEXT = 500
"""Longer values are cut: the log says what changed, it does not copy what was sent."""


@dataclass(frozen=True)
class Actor:
    """Who made a change and through what: ``via`` is cli, api (a token), ui (a session) or
    scheduler; ``origin`` the client's address or the host the command ran on."""

    name: str
    via: str
    origin: str


def cli_actor() -> Actor:
    """The person at the terminal, as the operating system knows them."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        name = "unknown"
    return Actor(name, "cli", socket.gethostname())


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret removed: values under secret-looking keys become ``***``,
    and so does a ``NAME=VALUE`` text whose name looks secret (``--param api_key=...``),
    passwords in URLs go, long texts are cut. Containers are walked, and so is a text holding a
    JSON object or array (a form's conf, a dict parameter typed into a box): it stays text."""
    if key and (key.lower() in ALWAYS_SECRET or is_secret_name(key)):
        return MASK if value not in (None, "", [], {}) else value
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        inside = _json_container(value)
        if inside is not None:
            value = json.dumps(redact(inside), ensure_ascii=False)
        named = _NAME_VALUE.match(value)
        if named and (named["name"].lower() in ALWAYS_SECRET or is_secret_name(named["name"])):
            # ``--param api_key=...`` arrives as this text, not under a key of its own
            return f"{named['name']}={MASK}" if named["value"] else value
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return redact(str(value))


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def record(
    engine: Engine,
    actor: Actor,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> None:
    """Write one entry. A failure to write is logged, not raised: the change it describes has
    happened already, and the person who made it must hear about the change, not the log.
    ``at``: when the change was asked for, when the entry is written only after the command
    that made it ended (``trigger --wait``); now by default."""
    entry = AuditEntry(actor.name, actor.via, actor.origin, action, target, redact(dict(details or {})), at or utcnow())
    try:
        with transaction(engine) as conn:
            repo.add_entry(conn, entry)
    except Exception as exc:
        log.error("could not write the audit log entry %s %s by %s: %s", action, target, actor.name, exc)


def entries(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    via: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[AuditRecord]:
    """Entries matching every filter given, newest first. ``action`` is an action
    (``run.delete``) or a family of them, with or without its dot (``run.`` or ``run``)."""
    with read_transaction(engine) as conn:
        return repo.list_entries(
            conn,
            actor=actor,
            action=action_filter(action),
            via=via,
            target=target,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )


def action_filter(action: str | None) -> str | None:
    """``action`` as the store matches it: every action is ``family.verb`` (``run.trigger``), so
    a name without a dot can only mean a family. ``--action run`` and ``?action=pool`` matched
    nothing (only ``run.`` did), and an empty list read as "no such changes were made"."""
    action = (action or "").strip()
    if not action:
        return None
    return action if "." in action else f"{action}."


def trim(engine: Engine, *, keep_days: int, batch: int = 5000, now: dt.datetime | None = None) -> int:
    """Delete entries older than ``keep_days`` (0 keeps everything), ``batch`` per transaction;
    how many went."""
    if keep_days <= 0:
        return 0
    cutoff = (now or utcnow()) - dt.timedelta(days=keep_days)
    total = 0
    while True:
        with transaction(engine) as conn:
            deleted = repo.delete_before(conn, cutoff, limit=batch)
        total += deleted
        if deleted < batch:
            return total
