"""Property-based: requests generated from the OpenAPI schema (valid ones, and invalid ones),
for every operation, never get a server error (5xx) back. Runs as an admin, so writes are
exercised too, on a seeded SQLite store.

(Schemathesis' own pytest fixture loader does not work with pytest 9, so the operations are
listed from the schema at collection time and each one is driven with Hypothesis here.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.seed import Seeded

EXAMPLES = 15
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
"""What the server answers is what its OpenAPI document says: documented status codes, content
types and body schemas (the 422 body included)."""


def _operations() -> list[tuple[str, str]]:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    spec = create_app(Settings(), create_engine("sqlite://")).openapi()  # builds the schema; connects to nothing
    return sorted((method.upper(), path) for path, item in spec["paths"].items() for method in item)


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def auth(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens['admin']}"}


@pytest.fixture(scope="module")
def api_schema(app: Any, auth: dict[str, str]) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=auth)


def test_every_operation_is_covered() -> None:
    assert len(OPERATIONS) >= 38


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(
    method: str, path: str, api_schema: Any, auth: dict[str, str], engine: Any, seeded: Seeded
) -> None:
    operation = api_schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
    )
    def check(case: Any) -> None:
        response = case.call(headers=auth, params={"follow": "false"} if path.endswith("/logs") else None)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
        )
        case.validate_response(response, checks=CONFORMANCE)
        if method == "DELETE" and path == "/api/v1/tokens/{token_id}" and response.status_code == 204:
            _keep_admin_token(engine, seeded, auth)

    check()


def _keep_admin_token(engine: Any, seeded: Seeded, auth: dict[str, str]) -> None:
    """The fuzzer may revoke the very token it uses; give it a new one so later cases still run."""
    from ductwork.services import accounts

    if accounts.user_for_token(engine, seeded.tokens["admin"]) is None:
        seeded.tokens["admin"] = accounts.issue_token(engine, "admin", "schemathesis").token
        auth["Authorization"] = f"Bearer {seeded.tokens['admin']}"
