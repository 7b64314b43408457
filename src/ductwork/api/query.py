"""Refusing query parameters an API endpoint does not take.

FastAPI ignores a query parameter no route declares, so a typo'd filter (``/runs?stat=failed``,
``?run_typ=manual``) answered every run, as though it had matched: a script deleting or
clearing what a filter selected would act on everything. Each API request's query is checked
against its route's parameters (of the route and its dependencies), and a stray one is a 422
that names it, the closest parameter the endpoint takes, and the others.
"""

from __future__ import annotations

import difflib

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError

from ductwork.api.slashes import SLASH_IN_SEGMENT


def _taken(dependant: Dependant) -> set[str]:
    """The query parameter names a route (with its dependencies) reads, by their aliases."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _taken(sub)
    return names


async def known_query_parameters(request: Request) -> None:
    """Raises a validation error (422) naming each query parameter the route does not take."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    taken = _taken(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in taken]
    if not unknown:
        return
    endpoint = f"{request.method} {request.url.path.replace(SLASH_IN_SEGMENT, '%2F')}"  # as it was sent
    takes = f"it takes: {', '.join(sorted(taken))}" if taken else "it takes no query parameters"
    issues = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(taken), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        issues.append(
            {
                "type": "extra_forbidden",
                "loc": ("query", name),
                "msg": f"not a parameter of {endpoint} ({hint}{takes})",
                "input": request.query_params.get(name),
            }
        )
    raise RequestValidationError(issues)
