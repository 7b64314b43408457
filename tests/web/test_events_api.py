"""The webhook that starts runs (``POST /api/v1/flows/{id}/events``), dead letters, and the asset
and why endpoints, through the REST API with real tokens."""

from __future__ import annotations

from tests.web.conftest import Api


def test_an_event_starts_a_run_once_and_a_bad_one_is_dead_lettered(operator: Api, viewer: Api, anonymous: Api) -> None:
    assert anonymous.post("/flows/demo/events", json={"n": 5}).status_code == 401
    assert viewer.post("/flows/demo/events", json={"n": 5}).status_code == 403

    first = operator.post("/flows/demo/events", json={"n": 5}, headers={"Idempotency-Key": "order-77"})
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "started" and body["params"]["n"] == 5 and body["message_id"] == "order-77"
    run = operator.get(f"/flows/demo/runs/{body['run_id']}").json()
    assert run["run_type"] == "event" and run["params"]["n"] == 5

    again = operator.post("/flows/demo/events", json={"n": 5}, headers={"Idempotency-Key": "order-77"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    runs = operator.get("/flows/demo/runs", params={"limit": 500}).json()["items"]
    assert [r["run_id"] for r in runs].count(body["run_id"]) == 1
    assert sum(1 for r in runs if r["run_type"] == "event") == 1

    bad = operator.post("/flows/demo/events", content=b'{"n": "seven"}', headers={"Idempotency-Key": "order-78"})
    assert bad.status_code == 422 and "'n' wants int" in bad.json()["detail"]
    garbled = operator.post("/flows/demo/events", content=b"{not json")
    assert garbled.status_code == 422 and "not valid JSON" in garbled.json()["detail"]
    letters = viewer.get("/flows/demo/dead-letters").json()["items"]
    assert {d["message_id"] for d in letters} >= {"order-78"}
    assert next(d for d in letters if d["message_id"] == "order-78")["payload"] == '{"n": "seven"}'

    assert operator.post("/flows/dem/events", json={}).status_code == 404


def test_assets_and_why_answer(viewer: Api, seeded: object) -> None:
    assert viewer.get("/assets").json() == {"items": [], "total": 0}
    assert viewer.get("/assets/lineage").json() == {"nodes": [], "edges": []}
    assert viewer.get("/assets/detail", params={"uri": "s3://nothing/here"}).status_code == 404
    assert viewer.get("/assets/detail", params={"uri": "no scheme"}).status_code == 400


def test_an_event_nested_too_deeply_is_dead_lettered_not_a_server_error(operator: Api, viewer: Api) -> None:
    deep = b'{"n": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    answer = operator.post("/flows/demo/events", content=deep, headers={"Idempotency-Key": "deep-1"})
    assert answer.status_code == 422, answer.text
    assert "nested too deeply" in answer.json()["detail"]
    letters = viewer.get("/flows/demo/dead-letters").json()["items"]
    assert letters[0]["message_id"] == "deep-1"  # newest first
    assert operator.post("/flows/demo/events", json={"n": 6}).status_code == 202  # and the next one starts
