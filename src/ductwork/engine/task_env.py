"""Ductwork's own secrets stay out of the environment tasks run in.

A worker, and the process of an in-process run, may be started with the Fernet key, the
database URL (with its password), the mail server URL and ``DUCTWORK_CONN_*``/``DUCTWORK_VAR_*``
in its environment. Ductwork needs them; the tasks it runs do not, and whatever is in
``os.environ`` reaches every program a task starts and every environment dump in a log. So
before user code runs they are moved out of ``os.environ`` into a private mapping; Ductwork's
environment secrets backend reads them from there (``secrets_environ``), so a task still gets a
connection or a variable through the API made for it, masked in its log.

This hides the values from the environment only: code running inside the worker process could
still find them in its memory. It keeps them out of subprocesses, ``env`` dumps and crash
reports, which is where they leak in practice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

WITHHELD_NAMES = frozenset(
    {
        "DUCTWORK_FERNET_KEY",
        "DUCTWORK_DATABASE_URL",
        "DUCTWORK_SMTP_URL",
        "DUCTWORK_RESULTS_OFFLOAD_URL",
        "DUCTWORK_METRICS_TOKEN",
    }
)
WITHHELD_PREFIXES = ("DUCTWORK_CONN_", "DUCTWORK_VAR_")

_withheld: dict[str, str] = {}
"""What was moved out of this process's ``os.environ`` (one process, one environment)."""


def is_withheld(name: str) -> bool:
    """Whether an environment variable is one of Ductwork's secrets, kept from tasks."""
    return name in WITHHELD_NAMES or name.startswith(WITHHELD_PREFIXES)


def withhold(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Move Ductwork's secrets out of ``environ`` (``os.environ``); returns what was moved."""
    environ = os.environ if environ is None else environ
    moved = {name: environ[name] for name in list(environ) if is_withheld(name)}
    for name in moved:
        del environ[name]
    _withheld.update(moved)
    return moved


def restore(moved: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> None:
    """Put back what ``withhold`` moved (a value set meanwhile wins)."""
    environ = os.environ if environ is None else environ
    for name, value in moved.items():
        environ.setdefault(name, value)
        if _withheld.get(name) == value:
            del _withheld[name]


@contextmanager
def withheld() -> Iterator[dict[str, str]]:
    """Ductwork's secrets out of ``os.environ`` for the block (an in-process run)."""
    moved = withhold()
    try:
        yield moved
    finally:
        restore(moved)


class _SecretsEnviron(Mapping[str, str]):
    """``os.environ`` as it is now, plus what was withheld from it."""

    def __getitem__(self, name: str) -> str:
        if name in _withheld:
            return _withheld[name]
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        yield from _withheld
        yield from (name for name in os.environ if name not in _withheld)

    def __len__(self) -> int:
        return len(_withheld) + sum(1 for name in os.environ if name not in _withheld)


def secrets_environ() -> Mapping[str, str]:
    """The environment Ductwork's secrets backend reads: withheld values included."""
    return _SecretsEnviron()
