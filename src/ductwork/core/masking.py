"""Hide secret values in what a try writes: its log lines and its recorded rendered fields.

Secrets are registered as they are used: a connection's password and extra when it is looked
up, a variable whose name looks secret (``password``, ``secret``, ``token``, ``api_key``...)
when it is read, and anything a task hands to ``mask_secret(value)``. From then on every log
line of every try in the process, and every rendered field recorded with a try, shows ``***``
in their place.

There is one masker per process, like the logging configuration it plugs into: a secret seen
by one try must stay hidden in every later try of the same worker, and tries run in threads
(in-process runs) or in warm workers, which share nothing else. The set only grows; tests
that need a clean one call ``MASKER.clear()``.

What is masked is what passes through Python: ``print``, ``sys.stdout``/``sys.stderr`` and
``logging`` inside a try (``ductwork.engine.logcapture``). A subprocess that writes to file
descriptor 1 or 2 directly bypasses Python and is not masked; operators that relay a
program's output line by line through ``print`` (``BashOperator`` does) are masked.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
MIN_LENGTH = 3
"""Shorter values are not masked: hiding every ``"a"`` or ``"1"`` in a log would hide the log."""

SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "authorization",
    "fernet",
)
"""Names containing one of these (case-insensitive, ``-`` read as ``_``) hold secrets."""


def is_secret_name(name: str) -> bool:
    """Whether a variable or field called ``name`` should be treated as a secret."""
    lowered = name.lower().replace("-", "_")
    return any(part in lowered for part in SECRET_NAME_PARTS)


class SecretsMasker:
    """A set of secret strings and a compiled pattern that replaces them with ``***``."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        """Register a secret (strings; the strings inside lists and dicts; other values as text).
        Its URL-quoted form is registered too, since passwords often travel inside URLs."""
        new = {v for v in _strings(value) if len(v) >= MIN_LENGTH}
        new |= {q for v in new if (q := urllib.parse.quote(v, safe="", errors="surrogateescape")) != v}
        with self._lock:
            if new <= self._secrets:
                return
            self._secrets |= new
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial reveals
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def mask(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_value(self, value: Any) -> Any:
        """Strings inside lists, tuples and dicts masked too (dict values whose key looks secret
        are masked whole); other values unchanged."""
        if isinstance(value, str):
            return self.mask(value)
        if value is None or type(value) in (int, float, bool):
            return value
        if isinstance(value, list | tuple):
            return type(value)(self.mask_value(v) for v in value)
        if type(value) is dict or isinstance(value, Mapping):
            return {
                k: (MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else self.mask_value(v))
                for k, v in value.items()
            }
        return value

    def __contains__(self, value: str) -> bool:
        return value in self._secrets

    def __len__(self) -> int:
        return len(self._secrets)

    def after_fork(self) -> None:
        """In a child forked while another thread of the parent may have held the lock."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None


def _strings(value: Any) -> Iterable[str]:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)


MASKER = SecretsMasker()
"""The process's masker (see the module docstring for why there is one)."""


def mask_secret(value: Any) -> None:
    """Hide ``value`` in every log line and rendered field from now on."""
    MASKER.add(value)


def mask_values_under_secret_keys(value: Any, masker: SecretsMasker = MASKER) -> None:
    """Hide in logs and rendered fields the text held under a secret-looking key of ``value``
    (a run's params or conf), at any depth: ``{"db": {"password": "..."}}``.

    The API, the CLI and the run page show these as ``***`` (``mask_secret_keys``), but a try's
    log and its rendered fields are read by the same viewers: ``echo {{ conf }}`` or
    ``print(dag_run.conf)`` showed them in full there. Only strings are registered: a number
    under ``max_tokens`` is no secret, and masking ``1000`` in every later log line of the
    process would hide real output. ``masker``: the process's, or a server's for what it shows."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key):
                masker.add(list(_texts(item)))
            else:
                mask_values_under_secret_keys(item, masker)
    elif isinstance(value, list | tuple):
        for item in value:
            mask_values_under_secret_keys(item, masker)


def _texts(value: Any) -> Iterable[str]:
    """The strings in ``value`` (inside dicts and lists too), not its numbers or flags."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def mask_secret_keys(value: Any) -> Any:
    """``value`` with what sits under a secret-looking key (password, token, api_key...) as
    ``***``, at any depth: for what is shown to every reader, a run's conf."""
    if isinstance(value, Mapping):
        return {
            k: MASK if is_secret_name(str(k)) and v not in (None, "") else mask_secret_keys(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secret_keys(v) for v in value]
    return value


def redact(text: str) -> str:
    """``text`` with the process's registered secrets masked."""
    return MASKER.mask(text)
