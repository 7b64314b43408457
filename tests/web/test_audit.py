"""The audit log through the API and the UI: who changed what, from where; never a secret; dry
runs and refused requests record nothing; only admins read it. This module has its own seeded
database (``web_env`` is per module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD, Seeded

CONN_PASSWORD = "s3cr3t-conn-pw"
VAR_SECRET = "var-secret-value-42"
USER_PASSWORD = "new-user-password-77"


@pytest.fixture(scope="module")
def app(web_env: tuple[Engine, Seeded, Path]) -> Any:
    """The application with a Fernet key, so connections and variables can hold secrets."""
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.crypto import generate_key

    engine, _seeded, tmp = web_env
    return create_app(Settings(home=tmp / "home", fernet_key=generate_key()), engine)


def _register(engine: Engine, flow_file: Path) -> None:
    """What the scheduler's parser does with a flow file (the API only reads the store)."""
    from ductwork.loading import load_flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    flow = load_flow(f"{flow_file}:render_me", flow_file.parent)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph(), fileloc=str(flow_file))


def _entries(admin: Api, **params: Any) -> list[dict[str, Any]]:
    response = admin.get("/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _everything(engine: Engine) -> str:
    with engine.connect() as conn:
        return json.dumps([list(r) for r in conn.execute(sa.text("SELECT * FROM audit_log"))], default=str)


def test_changes_through_the_api_are_recorded_with_who_and_what(
    admin: Api, operator: Api, viewer: Api, seeded: Seeded
) -> None:
    run = f"/flows/demo/runs/{quote(seeded.running_run, safe='')}"
    assert operator.post("/flows/demo/runs", json={"params": {"n": 5}, "run_id": "audited"}).status_code == 201
    assert (
        operator.post(run + "/tasks/mark", json={"task_ids": ["load"], "state": "success", "dry_run": True}).status_code
        == 200
    )
    assert operator.post(run + "/tasks/mark", json={"task_ids": ["nope"], "state": "success"}).status_code == 404
    assert viewer.post("/flows/demo/runs", json={}).status_code == 403
    assert operator.patch("/flows/demo", json={"is_paused": True}).status_code == 200
    assert admin.put("/pools/gpu", json={"slots": 2}).status_code == 200

    entries = _entries(admin)
    assert [(e["actor"], e["via"], e["action"], e["target"]) for e in entries] == [
        ("admin", "api", "pool.set", "gpu"),
        ("operator", "api", "flow.pause", "demo"),
        ("operator", "api", "run.trigger", "demo"),
    ]
    trigger = entries[-1]
    assert trigger["details"]["body"] == {"params": {"n": 5}, "run_id": "audited"}
    assert trigger["details"]["status"] == 201 and trigger["origin"] == "testclient"
    assert [e["action"] for e in _entries(admin, action="run.")] == ["run.trigger"]
    assert [e["action"] for e in _entries(admin, action="run")] == ["run.trigger"]  # the family, without its dot
    assert [e["action"] for e in _entries(admin, actor="admin")] == ["pool.set"]
    assert "needs admin" in operator.get("/audit").json()["detail"]


def test_secrets_never_reach_the_audit_log(admin: Api, engine: Engine) -> None:
    made = admin.post("/users", json={"username": "newbie", "password": USER_PASSWORD, "role": "viewer"})
    assert made.status_code == 201, made.text
    assert admin.patch("/users/newbie", json={"role": "operator"}).json()["role"] == "operator"
    token = admin.post("/tokens", json={"name": "ci"}).json()["token"]
    uri = f"postgresql://etl:{CONN_PASSWORD}@db.internal:5432/warehouse"
    put = admin.put("/connections/warehouse", json={"uri": uri, "extra": {"api_key": "k-123456"}})
    assert put.status_code == 200, put.text
    assert put.json()["password"] == "***" and put.json()["host"] == "db.internal"
    assert admin.put("/variables/api_token", json={"value": VAR_SECRET}).status_code == 200
    assert admin.put("/variables/region", json={"value": "eu-west-1"}).status_code == 200

    actions = [e["action"] for e in _entries(admin)]
    for action in ("user.create", "user.change", "token.create", "connection.set", "variable.set"):
        assert action in actions
    stored = _everything(engine)
    for secret in (USER_PASSWORD, token, CONN_PASSWORD, VAR_SECRET, "k-123456"):
        assert secret not in stored
    (connection,) = _entries(admin, action="connection.set")
    assert connection["details"]["body"]["uri"] == "***" and connection["target"] == "warehouse"
    (created,) = _entries(admin, action="user.create")
    (issued,) = _entries(admin, action="token.create")
    assert (created["target"], issued["target"]) == ("newbie", "ci")  # named in the body, not the path


def test_the_ui_is_recorded_as_ui_and_the_page_is_for_admins(client: Any, seeded: Seeded) -> None:
    csrf = login(client, "admin", PASSWORD)
    response = client.post(
        "/flows/demo/trigger",
        data={"csrf_token": csrf, "param.n": "7", "param.mode": "fast", "param.label": "x", "run_id": "from-the-form"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/audit", params={"via": "ui"})
    assert page.status_code == 200
    table = page.text.split('id="audit-table"')[1]
    assert 'data-action="run.trigger"' in table and "from-the-form" in table and csrf not in table
    assert "Audit log</a>" in client.get("/flows").text
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "viewer", PASSWORD)
    assert client.get("/audit").status_code == 403
    assert "Audit log</a>" not in client.get("/flows").text


def test_secrets_in_the_trigger_forms_conf_never_reach_the_audit_log(
    client: Any, admin: Api, operator: Api, engine: Engine
) -> None:
    """The form posts conf as JSON text: its secret-looking keys are redacted as the API's are."""
    csrf = login(client, "operator", PASSWORD)
    conf = {"password": "hunter2-FORM", "api_key": "AKIA-FORM", "region": "eu", "nested": [{"token": "tok-FORM"}]}
    response = client.post(
        "/flows/demo/trigger",
        data={"csrf_token": csrf, "param.n": "1", "conf": json.dumps(conf), "run_id": "form-secrets"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.post("/logout", data={"csrf_token": csrf})
    api_conf = {"password": "hunter2-API", "api_key": "AKIA-API"}
    assert operator.post("/flows/demo/runs", json={"conf": api_conf, "run_id": "api-secrets"}).status_code == 201

    stored = _everything(engine)
    for secret in ("hunter2-FORM", "AKIA-FORM", "tok-FORM", "hunter2-API", "AKIA-API"):
        assert secret not in stored
    by_ui = next(e for e in _entries(admin, via="ui") if e["target"] == "demo" and "form-secrets" in str(e))
    assert json.loads(by_ui["details"]["body"]["conf"]) == {
        "password": "***",
        "api_key": "***",
        "region": "eu",
        "nested": [{"token": "***"}],
    }
    by_api = next(e for e in _entries(admin, via="api") if "api-secrets" in str(e))
    assert by_api["details"]["body"]["conf"] == {"password": "***", "api_key": "***"}


def test_connections_variables_and_render_through_the_api(
    admin: Api, operator: Api, viewer: Api, web_env: tuple[Engine, Seeded, Path]
) -> None:
    listed = {c["conn_id"]: c for c in operator.get("/connections").json()}
    assert listed["warehouse"]["password"] == "***" and listed["warehouse"]["extra"] == {"api_key": "***"}
    assert operator.get("/connections/warehouse").json()["schema"] == "warehouse"
    assert viewer.get("/connections").status_code == 403
    assert operator.put("/connections/x", json={"conn_type": "http"}).status_code == 403
    assert "give a uri or at least conn_type" in admin.put("/connections/x", json={}).json()["detail"]
    # extra holding NaN was stored as null (JSON has no NaN): refused, as a run's conf is
    raw = b'{"conn_type": "http", "extra": {"timeout": NaN}}'
    nan = admin.put("/connections/x", content=raw, headers={"Content-Type": "application/json"})
    assert nan.status_code == 422 and "body field 'extra'" in nan.json()["detail"] and "finite" in nan.json()["detail"]
    assert admin.get("/connections/x").status_code == 404
    variables = {v["key"]: v["value"] for v in operator.get("/variables").json()}
    assert variables == {"api_token": "***", "region": "eu-west-1"}
    assert operator.get("/variables/api_token").json()["value"] == "***"
    assert admin.get("/variables/api_token").json()["value"] == VAR_SECRET

    flow_file = web_env[2] / "render_me.py"
    flow_file.write_text(
        "from ductwork import BashOperator, Flow, IntParameter\n"
        "with Flow('render_me', schedule='@daily', params={'n': IntParameter(default=2)}) as f:\n"
        "    BashOperator(task_id='say', bash_command='echo {{ ds }} {{ params.n }} {{ var.value.region }}')\n"
    )
    _register(web_env[0], flow_file)
    rendered = viewer.get(
        "/flows/render_me/tasks/say/rendered", params={"logical_date": "2024-01-31", "params": '{"n": 5}'}
    )
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["bash_command"] == "echo 2024-01-31 5 eu-west-1"
    assert "no task 'sya'" in viewer.get("/flows/render_me/tasks/sya/rendered").json()["detail"]
    bad = viewer.get("/flows/render_me/tasks/say/rendered", params={"params": '{"n": "many"}'})
    assert bad.status_code == 422 and "'n'" in bad.json()["detail"]
    assert viewer.get("/flows/render_me/tasks/say/rendered", params={"params": "{"}).status_code == 422
    assert admin.delete("/variables/region").status_code == 204
    assert admin.get("/variables/region").status_code == 404
    assert admin.delete("/connections/warehouse").status_code == 204
    assert operator.get("/connections/warehouse").status_code == 404


def test_logging_in_and_out_is_not_a_change(client: Any, admin: Api) -> None:
    before = admin.get("/audit").json()["total"]
    csrf = login(client, "operator", PASSWORD)
    client.post("/logout", data={"csrf_token": csrf})
    assert admin.get("/audit").json()["total"] == before


def test_a_finished_run_cannot_be_cancelled_and_the_refusal_is_not_recorded(
    admin: Api, operator: Api, viewer: Api, seeded: Seeded
) -> None:
    finished = f"/flows/demo/runs/{quote(seeded.success_run, safe='')}"
    before_run = viewer.get(finished).json()
    before_tasks = viewer.get(finished + "/tasks").json()
    before_events = viewer.get(finished + "/events").json()
    before_audit = admin.get("/audit").json()["total"]

    for params in ({}, {"dry_run": "true"}):
        refused = operator.post(finished + "/cancel", params=params)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert f"run demo {seeded.success_run} already finished (success)" in detail
        assert "nothing to cancel" in detail

    assert viewer.get(finished).json() == before_run
    assert before_run["state"] == "success"
    assert viewer.get(finished + "/tasks").json() == before_tasks
    assert viewer.get(finished + "/events").json() == before_events
    assert admin.get("/audit").json()["total"] == before_audit

    running = f"/flows/demo/runs/{quote(seeded.running_run, safe='')}"
    assert operator.post(running + "/cancel").json()["state"] == "failed"
    assert [(e["action"], e["target"]) for e in _entries(admin, action="run.cancel")] == [
        ("run.cancel", f"demo/{seeded.running_run}")
    ]
    again = operator.post(running + "/cancel")
    assert again.status_code == 409 and "already finished (failed)" in again.json()["detail"]
    assert admin.get("/audit").json()["total"] == before_audit + 1


def test_the_page_filters_by_user_action_object_and_day(client: Any, engine: Engine) -> None:
    """The page offered who, action and target boxes without labels or suggestions, and no days
    (the API had since/until): an admin looking for "what did dana delete last Tuesday" had to
    read the whole log. The boxes are labelled and suggest users and actions, from/until take UTC
    days (both included), and a click on a name, action or target narrows the page to it."""
    import datetime as dt

    from ductwork.services import audit

    dana = audit.Actor("dana_audit", "ui", "10.0.0.9")
    audit.record(engine, dana, "run.delete", "etl_days/old_run")
    audit.record(engine, dana, "pool.set", "etl_days_pool")
    audit.record(engine, audit.Actor("lee_audit", "api", "10.0.0.8"), "run.delete", "etl_days/other_run")
    days = {
        "old_run": dt.datetime(2024, 6, 4, 23, 59),
        "etl_days_pool": dt.datetime(2024, 6, 5, 8),
        "other_run": dt.datetime(2024, 6, 6),
    }
    with engine.begin() as conn:
        for needle, at in days.items():
            conn.execute(sa.text("UPDATE audit_log SET at = :at WHERE target LIKE :t"), {"at": at, "t": f"%{needle}"})

    login(client, "admin", PASSWORD)

    def targets(**query: str) -> set[str]:
        page = client.get("/audit", params=query)
        assert page.status_code == 200, page.text
        table = page.text.split('id="audit-table"')[1]
        return {t for t in ("etl_days/old_run", "etl_days_pool", "etl_days/other_run") if f">{t}</a>" in table}

    assert targets(actor="dana_audit") == {"etl_days_pool", "etl_days/old_run"}
    assert targets(action="run.delete", target="etl_days") == {"etl_days/other_run", "etl_days/old_run"}
    assert targets(since="2024-06-04", until="2024-06-04") == {"etl_days/old_run"}  # the whole day, 23:59 too
    assert targets(since="2024-06-05") == {"etl_days/other_run", "etl_days_pool"}
    assert targets(until="2024-06-05", actor="dana_audit") == {"etl_days_pool", "etl_days/old_run"}

    page = client.get("/audit", params={"action": "run.delete", "target": "etl_days"}).text
    assert 'href="/audit?action=run.delete&amp;target=etl_days&amp;actor=lee_audit"' in page  # narrows, keeps the rest
    for box in ("audit-actor", "audit-action", "audit-target", "audit-since", "audit-until"):
        assert f'id="{box}"' in page
    assert '<option value="run.">' in page and '<option value="admin">' in page  # suggestions
    assert '<option value="db.reset">' in page  # recorded by the CLI alone, found by its name too
    refused = client.get("/audit", params={"since": "last tuesday"})
    assert refused.status_code in (400, 422) and "from &#39;last tuesday&#39;: expected a day" in refused.text


def test_a_clean_through_the_api_names_its_flow_or_everything_as_the_cli_does(admin: Api) -> None:
    """The API's db.clean was recorded with an empty target: ``?target=demo`` (or ``*``) found
    the CLI's cleans of a flow, never the API's. It is the flow the clean was limited to, else
    ``*``, as ``ductwork db clean`` records it."""
    assert admin.post("/db/clean", json={"older_than": "36500d", "flow_id": "demo"}).status_code == 200
    assert admin.post("/db/clean", json={"older_than": "36500d"}).status_code == 200
    assert [e["target"] for e in _entries(admin, action="db.clean")] == ["*", "demo"]
    assert [e["action"] for e in _entries(admin, target="demo", action="db")] == ["db.clean"]
