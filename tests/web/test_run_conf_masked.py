"""A run's conf is shown with what sits under a secret-looking key as ``***`` by the REST API
too, as on the run page: viewers read every run, and a trigger's conf often carries a password or
a token. (The API showed it in full to every viewer while the run page masked it.)"""

from __future__ import annotations

from urllib.parse import quote

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
