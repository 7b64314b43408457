"""Refusing query parameters an API endpoint does not take.

FastAPI ignores a query parameter no route declares, so a typo'd filter (``/runs?stat=failed``,
``?run_typ=manual``) answered every run, as though it had matched: a script deleting or
clearing what a filter selected would act on everything. Each API request's query is checked
against its route's parameters (of the route and its dependencies), and a stray one is a 422
that names it, the closest parameter the endpoint takes, and the others.

A parameter that takes one value, given twice (``?dry_run=true&dry_run=false``), is refused
the same way: FastAPI read the last one, so a URL a script built with ``dry_run=true`` and
another ``dry_run=false`` appended deleted what it was only asked to show.
"""

from __future__ import annotations

import difflib

from fastapi import Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError

from ductwork.api.slashes import SLASH_IN_SEGMENT


def _taken(dependant: Dependant) -> set[str]:
    """The query parameter names a route (with its dependencies) reads, by their aliases."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _taken(sub)
    return names


def _single(dependant: Dependant) -> set[str]:
    """The query parameters a route (with its dependencies) reads one value of (not a list)."""
    names = {p.alias for p in dependant.query_params if not field_annotation_is_sequence(p.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _single(sub)
    return names


def _repeated(request: Request, dependant: Dependant, endpoint: str) -> list[dict[str, object]]:
    """An issue for each one-value parameter the query gives more than once."""
    issues: list[dict[str, object]] = []
    for name in sorted(_single(dependant)):
        values = request.query_params.getlist(name)
        if len(values) > 1:
            given = ", ".join(f"{name}={v}" for v in values)
            issues.append(
                {
                    "type": "too_long",
                    "loc": ("query", name),
                    "msg": f"given {len(values)} times ({given}); {endpoint} takes it once",
                    "input": values,
                }
            )
    return issues


async def known_query_parameters(request: Request) -> None:
    """Raises a validation error (422) naming each query parameter the route does not take, or
    each one-value parameter given more than once."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    taken = _taken(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in taken]
    endpoint = f"{request.method} {request.url.path.replace(SLASH_IN_SEGMENT, '%2F')}"  # as it was sent
    repeated = _repeated(request, dependant, endpoint)
    if repeated and not unknown:
        raise RequestValidationError(repeated)
    if not unknown:
        return
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
