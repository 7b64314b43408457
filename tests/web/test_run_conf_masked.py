"""A run's conf is shown with what sits under a secret-looking key as ``***`` by the REST API
too, as on the run page: viewers read every run, and a trigger's conf often carries a password or
a token. (The API showed it in full to every viewer while the run page masked it.)"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from sqlalchemy.engine import Engine

from tests.web.conftest import Api

CONF = {
    "password": "conf-pw-7Hq2",
    "target": {"db": "warehouse", "api_token": "tok-3Lm9", "rows": [1, 2]},
    "region": "eu-west-1",
    "secret_key": "",
}


def test_a_runs_conf_is_shown_masked_by_the_api(operator: Api, viewer: Api) -> None:
    created = operator.post("/flows/demo/runs", json={"run_id": "api__conf_secrets", "conf": CONF})
    assert created.status_code == 201, created.text
    expected = {
        "password": "***",
        "target": {"db": "warehouse", "api_token": "***", "rows": [1, 2]},
        "region": "eu-west-1",
        "secret_key": "",
    }
    assert created.json()["conf"] == expected
    one = viewer.get(f"/flows/demo/runs/{quote('api__conf_secrets', safe='')}")
    listed = viewer.get("/flows/demo/runs", params={"limit": 100})
    everywhere = viewer.get("/runs", params={"limit": 100})
    for response in (one, listed, everywhere):
        assert response.status_code == 200, response.text
        assert "conf-pw-7Hq2" not in response.text and "tok-3Lm9" not in response.text, response.text
    assert one.json()["conf"] == expected


def test_a_secret_looking_run_parameter_is_shown_masked_by_the_api(engine: Engine, viewer: Api) -> None:
    """A parameter named like a secret (AWS Data Pipeline's ``*myPassword``) as ``***``, as conf."""
    from ductwork.core.states import RunState
    from ductwork.store.engine import transaction
    from ductwork.store.repo import runs as run_repo
    from tests.web.seed import demo_flow

    with transaction(engine) as conn:
        run_repo.create_run(
            conn,
            demo_flow().to_graph(),
            run_id="api__param_secrets",
            logical_date=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
            params={"n": 3, "myRDSPassword": "rds-pw-2Wq6"},
            state=RunState.QUEUED,
        )
    one = viewer.get(f"/flows/demo/runs/{quote('api__param_secrets', safe='')}")
    assert one.status_code == 200, one.text
    assert one.json()["params"] == {"n": 3, "myRDSPassword": "***"}
    listed = viewer.get("/runs", params={"limit": 100})
    assert "rds-pw-2Wq6" not in listed.text
