"""Issue 9 (item 6): one API backfill call cannot create an unbounded number of runs; the
limit is the ``backfill_max_runs`` setting, shared with the CLI through the services layer."""

from __future__ import annotations

from sqlalchemy import Engine

from ductwork.store.engine import read_transaction
from ductwork.store.repo import runs as run_repo
from tests.web.conftest import Api


def _runs(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return run_repo.list_runs(conn, flow_id="demo", limit=1).total


def test_a_backfill_back_to_1970_is_refused_with_the_number_it_would_create(operator: Api, engine: Engine) -> None:
    before = _runs(engine)
    for dry_run in (True, False):
        body = {"start": "1970-01-01", "end": "2025-12-31", "dry_run": dry_run}
        response = operator.post("/flows/demo/backfill", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "would create more than 10,000 runs, more than backfill_max_runs (1,000) allows" in detail
    body = {"start": "2020-01-01", "end": "2022-12-31", "dry_run": True}  # 1,096 days
    response = operator.post("/flows/demo/backfill", json=body)
    assert response.status_code == 422 and "would create 1,096 runs" in response.json()["detail"]
    assert _runs(engine) == before
    fits = operator.post("/flows/demo/backfill", json={"start": "2020-01-01", "end": "2020-01-03", "dry_run": True})
    assert fits.status_code == 200 and len(fits.json()["planned"]) == 3
