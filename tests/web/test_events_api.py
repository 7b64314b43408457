"""The webhook that starts runs (``POST /api/v1/flows/{id}/events``), dead letters, and the asset
and why endpoints, through the REST API with real tokens."""

from __future__ import annotations

from typing import Any

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


def test_an_asset_asked_for_in_the_path_is_pointed_to_the_query(viewer: Api, seeded: object) -> None:
    """``GET /api/v1/assets/s3%3A%2F%2Flake%2Forders`` answered "no API route for GET
    /api/v1/assets/s3:\x00\x00lake\x00orders ... must be sent encoded as %2F": the NULs the server
    reads an encoded slash as, and advice the request had followed."""
    answer = viewer.get("/assets/s3%3A%2F%2Flake%2Forders")
    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert "\x00" not in detail and "GET /api/v1/assets/s3%3A%2F%2Flake%2Forders" in detail, detail
    assert "/api/v1/assets/detail?uri=" in detail, detail
    other = viewer.get("/flows/demo/nothing%2Fhere").json()["detail"]
    assert "\x00" not in other and "/api/v1/flows/demo/nothing%2Fhere" in other, other


def test_an_event_nested_too_deeply_is_dead_lettered_not_a_server_error(operator: Api, viewer: Api) -> None:
    deep = b'{"n": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    answer = operator.post("/flows/demo/events", content=deep, headers={"Idempotency-Key": "deep-1"})
    assert answer.status_code == 422, answer.text
    assert "nested too deeply" in answer.json()["detail"]
    letters = viewer.get("/flows/demo/dead-letters").json()["items"]
    assert letters[0]["message_id"] == "deep-1"  # newest first
    assert operator.post("/flows/demo/events", json={"n": 6}).status_code == 202  # and the next one starts


def test_an_asset_update_made_outside_any_flow_starts_the_flows_scheduled_on_it(
    operator: Api, viewer: Api, admin: Api, engine: Any
) -> None:
    """Airflow's "create asset event": there was no way to tell Ductwork that data a flow waits
    for was written by hand or by another system, short of a flow that writes it."""
    from ductwork import Asset, EmptyOperator, Flow
    from ductwork.services import assets as asset_service
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    with Flow("on_lake_orders", schedule=Asset("s3://lake/orders")) as flow:
        EmptyOperator(task_id="t")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())

    assert viewer.post("/assets/events", json={"uri": "s3://lake/orders"}).status_code == 403
    typo = operator.post("/assets/events", json={"uri": "s3://lake/order"})
    assert typo.status_code == 404 and "Did you mean 's3://lake/orders'?" in typo.json()["detail"]
    assert operator.post("/assets/events", json={"uri": "s3://lake/orders", "extra": [1]}).status_code == 422

    made = operator.post("/assets/events", json={"uri": "s3://lake/orders", "extra": {"rows": 7}})
    assert made.status_code == 201, made.text
    event = made.json()
    assert event["uri"] == "s3://lake/orders" and event["extra"] == {"rows": 7} and event["flow_id"] is None

    (run,) = asset_service.create_asset_runs(engine)
    assert run.flow_id == "on_lake_orders" and run.run_type == "asset_triggered"
    assert [e["extra"] for e in run.triggered_by["asset_events"]] == [{"rows": 7}]
    detail = viewer.get("/assets/detail", params={"uri": "s3://lake/orders"}).json()
    assert detail["events"][0]["started"] == [{"flow_id": "on_lake_orders", "run_id": run.run_id}]
    audit = admin.get("/audit").json()["items"][0]
    assert audit["action"] == "asset.update" and audit["target"] == "s3://lake/orders"


def test_a_long_idempotency_key_is_hashed_like_a_brokers_long_message_id(operator: Api) -> None:
    """A key past 200 characters (a URL, a signature) was refused with 422, where a broker's
    message id of the same length is hashed (ADR 0014); the same long key is still one event."""
    key = "https://shop.example/orders/" + "k" * 300
    first = operator.post("/flows/demo/events", json={"n": 8}, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert first.json()["message_id"].startswith("sha256:")
    again = operator.post("/flows/demo/events", json={"n": 8}, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    other = operator.post("/flows/demo/events", json={"n": 8}, headers={"Idempotency-Key": key + "2"})
    assert other.status_code == 202


def test_a_dead_letter_is_replayed_with_a_corrected_payload_and_dropped(operator: Api, viewer: Api, admin: Api) -> None:
    """Dead letters could be listed through the API and nothing else: no way to start the run
    a bad message could not once it is corrected, nor to clear them."""
    bad = operator.post("/flows/demo/events", content=b'{"n": "nine"}', headers={"Idempotency-Key": "order-90"})
    junk = operator.post("/flows/demo/events", content=b"{nope", headers={"Idempotency-Key": "order-91"})
    letter, other = bad.json()["dead_letter_id"], junk.json()["dead_letter_id"]

    assert viewer.post(f"/flows/demo/dead-letters/{letter}/replay").status_code == 403
    assert operator.post(f"/flows/other/dead-letters/{letter}/replay").status_code == 404
    still = operator.post(f"/flows/demo/dead-letters/{letter}/replay")
    assert still.status_code == 422 and "'n' wants int" in still.json()["detail"]
    fixed = operator.post(f"/flows/demo/dead-letters/{letter}/replay", json={"payload": {"n": 9}})
    assert fixed.status_code == 202, fixed.text
    assert fixed.json()["params"]["n"] == 9 and fixed.json()["message_id"] == "order-90"
    assert operator.post(f"/flows/demo/dead-letters/{letter}/replay").status_code == 404  # once
    again = operator.post("/flows/demo/events", json={"n": 9}, headers={"Idempotency-Key": "order-90"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    assert operator.delete(f"/flows/demo/dead-letters/{other}").status_code == 204
    assert operator.delete(f"/flows/demo/dead-letters/{other}").status_code == 404
    left = {d["id"] for d in viewer.get("/flows/demo/dead-letters").json()["items"]}
    assert not {letter, other} & left
    actions = [e["action"] for e in admin.get("/audit").json()["items"]]
    assert "dead_letter.replay" in actions and "dead_letter.drop" in actions


def test_an_event_or_a_run_for_a_flow_no_file_defines_now_is_refused(operator: Api, engine: Any) -> None:
    """The flow's file was removed: the webhook answered 202 "started" (and the API 201), and the
    run then failed at once with "could not load task: flow file ... does not exist", where
    ``ductwork trigger`` refused it with the reason."""
    from ductwork import EmptyOperator, Flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    with Flow("removed_since") as flow:
        EmptyOperator(task_id="t")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph(), fileloc="/nowhere/removed_since.py")
        assert flow_repo.deactivate_missing(conn, "/nowhere/removed_since.py", []) == ["removed_since"]

    event = operator.post("/flows/removed_since/events", json={}, headers={"Idempotency-Key": "late-1"})
    assert event.status_code == 404, event.text
    assert (
        "not defined by any file now" in event.json()["detail"]
        and "/nowhere/removed_since.py" in event.json()["detail"]
    )
    manual = operator.post("/flows/removed_since/runs", json={})
    assert manual.status_code == 404, manual.text
    assert operator.get("/flows/removed_since/runs").json()["items"] == []
    assert operator.post("/flows/demo/events", json={"n": 1}).status_code == 202  # an active flow still takes them


def test_the_asset_list_says_which_flows_write_start_on_and_read_each_asset(viewer: Api, engine: Any) -> None:
    """``GET /assets`` (and ``ductwork assets list``) gave only update counts: which flow writes
    an asset and which it starts was on the web UI's Assets page alone."""
    from ductwork import Asset, EmptyOperator, Flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    orders = Asset("s3://lineage/orders")
    with Flow("load_orders") as load:
        EmptyOperator(task_id="write", outlets=[orders])
    with Flow("report", schedule=orders) as report:
        EmptyOperator(task_id="read", inlets=[orders])
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, load.to_graph())
        flow_repo.upsert_flow(conn, report.to_graph())
    (item,) = [i for i in viewer.get("/assets").json()["items"] if i["uri"] == "s3://lineage/orders"]
    assert item["events"] == 0
    assert (item["producers"], item["consumers"], item["readers"]) == (["load_orders"], ["report"], ["report"])
