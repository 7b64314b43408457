"""Names people give things (pools, variables, connections, users): the same rule at every door.

The REST API addresses each of them by a path parameter of 1 to 250 characters without NUL
(``api.routes._common.Name``); the CLI stored any text, so ``ductwork pools set '' 3`` made a
pool that every list showed and no API path, page or ``delete`` could name again.

Spaces around a name are refused too, not trimmed: 'region ' stored from a script is another
variable than the 'region' a template reads (``{{ var.value.region }}``), and the variables
form trimmed it silently where the pools form refused it. Refused, with the name to write
instead, wherever it is typed: the web forms, the REST API and the CLI.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from ductwork.core.keys import KEY_RULE, is_key, key_like
from ductwork.errors import ParameterError

if TYPE_CHECKING:
    from sqlalchemy import Engine

NAME_MAX = 250
"""As the API's ``Name`` path parameter."""

_USED_AS = {
    "pool": "any task's pool name",
    "variable": "the key a task reads",
    "connection": "the conn_id a task names",
    "user": "the name one logs in with",
}
"""What a name with spaces around it would not match, by kind."""


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else f"{name[:37]}...")


def check_name(kind: str, name: str) -> str:
    """``name`` if the API can address it; else ``ParameterError`` naming ``kind`` and why."""
    if not name.strip():
        raise ParameterError(
            f"{kind} name {_shown(name)}: it needs a character other than spaces and control characters"
        )
    if len(name) > NAME_MAX or "\x00" in name:
        raise ParameterError(
            f"{kind} name {_shown(name)}: it must have 1 to {NAME_MAX} characters and no NUL "
            "(the REST API and the web UI could not name it again)"
        )
    return name


def control_character(text: str) -> str | None:
    """The first control character (``\\n``, ``\\t``, ESC...) or line/paragraph separator in
    ``text``, if any."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ch
    return None


def refuse_control_characters(what: str, text: str) -> None:
    """``ParameterError`` when ``text`` holds a control character. ``ductwork users create
    $'bob\\nx'`` or ``pools set $'etl\\t'`` stored the name: every table then showed it over two
    lines (a second row, a user ``x`` with no role), log lines and audit entries were broken,
    and a terminal read the escape sequences in one. Airflow's run ids and ids refuse them too."""
    found = control_character(text)
    if found is not None:
        raise ParameterError(
            f"{what} {_shown(text)}: it may not hold control characters such as {found!r} "
            "(tables, logs and terminals would show it broken)"
        )


def unseen_character(text: str) -> str | None:
    """The first character in ``text`` that a table shows as nothing or as a plain space but
    that is not one: a format character (zero-width space, joiners, byte order mark, the
    bidirectional overrides that show text backwards) or a space other than U+0020 (no-break,
    em, ideographic...)."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf" or (category == "Zs" and ch != " "):
            return ch
    return None


def refuse_unseen_characters(what: str, text: str) -> None:
    """``ParameterError`` when ``text`` holds a character no one sees or types. ``pools set
    'big\u200b' 2`` made a pool listed as ``big`` that a task's ``pool="big"`` did not name,
    and ``trigger --run-id 'fix\u00a0june'`` a run listed as ``fix june`` that ``runs show etl
    'fix june'`` did not find: pasted from a chat or a document, they look right everywhere."""
    found = unseen_character(text)
    if found is None:
        return
    seen = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text if unicodedata.category(ch) != "Cf")
    name = unicodedata.name(found, "unnamed")
    raise ParameterError(
        f"{what} {_shown(text)}: it holds U+{ord(found):04X} ({name}), which "
        f"{'looks like a space' if unicodedata.category(found) == 'Zs' else 'is invisible'} but is not what "
        f"anyone types to name it; write {seen.strip()!r}"
    )


def check_new_name(kind: str, name: str) -> str:
    """``check_name``, and no spaces before or after it: for a name being created or set
    (``pool``, ``variable``, ``connection``). Deleting or reading one made before this rule
    still takes it as it is."""
    check_name(kind, name)
    refuse_control_characters(f"{kind} name", name)
    refuse_unseen_characters(f"{kind} name", name)
    trimmed = name.strip()
    if name != trimmed:
        raise ParameterError(
            f"{kind} name {_shown(name)}: spaces before or after it are not part of "
            f"{_USED_AS.get(kind, 'the name')}; write {trimmed!r}"
        )
    return name


_READ_AS = {
    "variable": "a template ({{ var.value.NAME }}), DUCTWORK_VAR_NAME and a URL",
    "connection": "a template ({{ conn.NAME.host }}), DUCTWORK_CONN_NAME and a URL",
}
"""Where a key with a space, '/' or '{' could not be written, by kind."""


def check_new_key(kind: str, name: str, engine: Engine) -> str:
    """``check_new_name``, and for a ``variable`` or ``connection`` not stored yet, the rule of
    task and flow ids (``core.keys``): 'my var' or 'a/b' was stored and then could not be read
    where such names are used. One stored before the rule can still be set (its tasks and
    templates name it; refusing would leave a password that could not be changed) as well as
    read and deleted."""
    check_new_name(kind, name)
    if is_key(name) or _stored(kind, name, engine):
        return name
    raise ParameterError(
        f"{kind} name {_shown(name)}: {KEY_RULE}, so that {_READ_AS.get(kind, 'a URL')} can name it; "
        f"write {key_like(name)!r}"
    )


def _stored(kind: str, name: str, engine: Engine) -> bool:
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import connections, variables

    with read_transaction(engine) as conn:
        if kind == "connection":
            return connections.get_connection(conn, name) is not None
        return variables.get_variable(conn, name) is not None
