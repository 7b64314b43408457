"""The one rule for the names a user types that other places use as keys: flow ids, task ids,
task group ids, connection ids and variable names.

Airflow refuses a task or DAG id that is not letters, digits, ``_``, ``.`` and ``-``
(``KEY_REGEX``); Ductwork held flow ids to that and stored any other name. A task named
``my task`` or ``x/y`` then ran, but ``x/y``'s log went to a subfolder ``x``, a REST or page
URL holding it named another resource, ``t[1]`` read as instance 1 of a mapped task ``t``, and
a variable ``my var`` or connection ``a/b`` could not be written ``{{ var.value.my var }}``
or ``{{ conn.a/b.host }}`` in a template nor ``DUCTWORK_VAR_...`` in the environment. So these
names follow Airflow's rule, and not starting with ``-`` (the shell would take ``-x`` for an
option of ``ductwork variables get``). Luigi class tasks keep their generated ids
(``Report(date=2024-01-31)``): nobody types those.
"""

from __future__ import annotations

import re

KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
"""Letters, digits, ``_``, ``.`` and ``-``, not starting with ``-``."""

KEY_MAX = 250
"""Airflow's ``ID_LEN``, and the REST API's ``Name`` path parameter."""

KEY_RULE = "use letters, digits, '_', '.' and '-' (not starting with '-'), as Airflow's task and DAG ids"


def is_key(name: object) -> bool:
    """Whether ``name`` follows the rule (a string, 1 to ``KEY_MAX`` characters)."""
    return isinstance(name, str) and len(name) <= KEY_MAX and KEY.match(name) is not None


def key_like(name: str) -> str:
    """A name that follows the rule, made from ``name``: to suggest in a refusal."""
    made = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name.strip()).lstrip("-")[:KEY_MAX]
    return made or "name"
