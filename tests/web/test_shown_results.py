"""A task's return value is shown with every secret the server knows of masked (issue 9,
item 11): connection passwords from the database and the environment, secret variables, and
dict entries whose key looks secret."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from ductwork.core.connections import Connection
from ductwork.services import accounts
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import results as result_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.serializers import JsonSerializer
from tests.web.seed import Seeded

KEY = "Y2hhbmdlLW1lLXRoaXMtaXMtYS10ZXN0LWtleS0xMjM="
STORED_PASSWORD = "stored-pw-5Tg1"
ENV_PASSWORD = "env-pw-8Rf3"
SECRET_VARIABLE = "api-token-3Wq7"


def test_results_are_shown_with_secrets_masked(engine: Any, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.crypto import Cipher
    from ductwork.store.secrets import DatabaseSecrets

    stored = DatabaseSecrets(engine, Cipher(KEY))
    stored.put_connection(Connection("warehouse", "postgres", host="db", login="etl", password=STORED_PASSWORD))
    stored.set_variable("partner_api_token", SECRET_VARIABLE)
    stored.set_variable("region", "eu-west-1")
    monkeypatch.setenv("DUCTWORK_CONN_MAILER", f"smtp://bot:{ENV_PASSWORD}@mail.example:587")
    value = {
        "dsn": f"postgres://etl:{STORED_PASSWORD}@db/x",
        "note": f"mail with {ENV_PASSWORD}, call with {SECRET_VARIABLE}",
        "password": "whatever-it-is",
        "region": "eu-west-1",
        "rows": [1, 2, 3],
    }
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, "demo", seeded.success_run)
    assert record is not None
    with transaction(engine) as conn:
        result_repo.put_result(
            conn, record.pk, "load", "return_value", JsonSerializer().dumps(value), serializer="json"
        )
        result_repo.put_result(
            conn, record.pk, "load", "db_password", JsonSerializer().dumps("plain"), serializer="json"
        )
    app = create_app(Settings(fernet_key=KEY), engine)
    token = accounts.issue_token(engine, "viewer", "results").token
    with TestClient(app) as client:
        response = client.get(
            f"/api/v1/flows/demo/runs/{quote(seeded.success_run, safe='')}/tasks/load/results",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    shown = {r["key"]: r for r in response.json()}
    text = response.text
    for secret in (STORED_PASSWORD, ENV_PASSWORD, SECRET_VARIABLE, "whatever-it-is", "plain"):
        assert secret not in text, f"{secret!r} shown in {text}"
    assert shown["return_value"]["value"] == {
        "dsn": "postgres://etl:***@db/x",
        "note": "mail with ***, call with ***",
        "password": "***",
        "region": "eu-west-1",
        "rows": [1, 2, 3],
    }
    assert shown["db_password"]["value"] == "***"


def test_a_result_holding_the_runs_secret_conf_is_shown_masked(engine: Any, viewer: Any) -> None:
    """``echo {{ conf }}`` returns the conf as text: the run page shows its ``password`` as ``***``
    but the task's results showed it in full to the same viewers."""
    import datetime as dt

    from ductwork.core.states import RunState
    from tests.web.seed import demo_flow

    with transaction(engine) as conn:
        record = run_repo.create_run(
            conn,
            demo_flow().to_graph(),
            run_id="results__conf_secret",
            logical_date=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
            params={"n": 3, "db_password": "param-pw-4Ns8"},
            conf={"target": {"api_token": "conf-tok-6Yh2"}, "region": "eu-north-1"},
            state=RunState.SUCCESS,
        )
        said = "users {api_token: conf-tok-6Yh2, region: eu-north-1} param-pw-4Ns8"
        result_repo.put_result(conn, record.pk, "load", "return_value", JsonSerializer().dumps(said), serializer="json")
    response = viewer.get(f"/flows/demo/runs/{quote('results__conf_secret', safe='')}/tasks/load/results")
    assert response.status_code == 200, response.text
    assert response.json()[0]["value"] == "users {api_token: ***, region: eu-north-1} ***"


def test_a_deleted_connections_password_is_no_longer_masked_in_results(engine: Any) -> None:
    """Looking a connection up through the API registered its password with the web server's
    process-wide masker, which only grows: once the connection was deleted (or its password
    changed), the old password, often a plain word, stayed masked in every result the server
    showed until it was restarted. Results are masked with the secrets stored now."""
    import datetime as dt

    from ductwork.api.app import create_app
    from ductwork.core.states import RunState
    from ductwork.settings import Settings
    from tests.web.seed import demo_flow

    with transaction(engine) as conn:
        record = run_repo.create_run(
            conn,
            demo_flow().to_graph(),
            run_id="results__old_password",
            logical_date=dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
            state=RunState.SUCCESS,
        )
        said = "fetched orders for 2024-03-02"
        result_repo.put_result(conn, record.pk, "load", "return_value", JsonSerializer().dumps(said), serializer="json")
    path = f"/api/v1/flows/demo/runs/{quote('results__old_password', safe='')}/tasks/load/results"
    admin = {"Authorization": f"Bearer {accounts.issue_token(engine, 'admin', 'old-password').token}"}
    with TestClient(create_app(Settings(fernet_key=KEY), engine)) as client:
        body = {"conn_type": "postgres", "host": "db", "password": "orders"}
        made = client.put("/api/v1/connections/orders_db", json=body, headers=admin)
        assert made.status_code == 200, made.text
        assert client.get("/api/v1/connections/orders_db", headers=admin).status_code == 200
        assert client.get(path, headers=admin).json()[0]["value"] == "fetched *** for 2024-03-02"
        assert client.delete("/api/v1/connections/orders_db", headers=admin).status_code == 204
        assert client.get(path, headers=admin).json()[0]["value"] == "fetched orders for 2024-03-02"
