"""Names people give things (pools, variables, connections): the same rule at every door.

The REST API addresses each of them by a path parameter of 1 to 250 characters without NUL
(``api.routes._common.Name``); the CLI stored any text, so ``ductwork pools set '' 3`` made a
pool that every list showed and no API path, page or ``delete`` could name again.
"""

from __future__ import annotations

from ductwork.errors import ParameterError

NAME_MAX = 250
"""As the API's ``Name`` path parameter."""


def check_name(kind: str, name: str) -> str:
    """``name`` if the API can address it; else ``ParameterError`` naming ``kind`` and why."""
    if not name.strip() or len(name) > NAME_MAX or "\x00" in name:
        shown = name if len(name) <= 40 else f"{name[:37]}..."
        raise ParameterError(
            f"{kind} name {shown!r}: it must have 1 to {NAME_MAX} characters, not only spaces "
            "(the REST API and the web UI could not name it again)"
        )
    return name
