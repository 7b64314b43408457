"""Message receipts and asset queues on every backend (SQLite, PostgreSQL, MariaDB): a message is
turned into one run however often and however concurrently it is delivered; a bad one into one
dead letter; asset updates start one run per condition met, even with two schedulers racing."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork import Asset, Flow, IntParameter, JsonParameter, PythonOperator
from ductwork.services import assets as asset_service
from ductwork.services import cleanup, messages
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import assets as asset_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.tables import dead_letters, message_receipts
from ductwork.store.types import utcnow

ORDERS, CUSTOMERS = Asset("s3://lake/orders"), Asset("s3://lake/customers")


def _register(engine: Engine, *flows: Flow) -> None:
    with transaction(engine) as conn:
        for flow in flows:
            flow_repo.upsert_flow(conn, flow.to_graph())


def _flow(flow_id: str, **kwargs: Any) -> Flow:
    with Flow(flow_id, params={"n": IntParameter(default=1)}, **kwargs) as flow:
        PythonOperator(task_id="t", python_callable=lambda: None, outlets=[ORDERS])
    return flow


def _runs(engine: Engine, flow_id: str) -> list[Any]:
    with read_transaction(engine) as conn:
        return list(run_repo.list_runs(conn, flow_id=flow_id, limit=1000).items)


def test_a_message_received_twice_starts_one_run(db_engine: Engine) -> None:
    _register(db_engine, _flow("orders"))
    first = messages.receive(db_engine, "orders", source="rabbitmq:q", message_id="m1", payload=b'{"n": 4}')
    again = messages.receive(db_engine, "orders", source="rabbitmq:q", message_id="m1", payload=b'{"n": 4}')
    other = messages.receive(db_engine, "orders", source="redis:q", message_id="m1", payload=b"{}")
    assert (first.status, again.status, other.status) == ("started", "duplicate", "started")
    assert first.run is not None and first.run.params == {"n": 4} and first.run.run_type == "event"
    assert sorted(r.params["n"] for r in _runs(db_engine, "orders")) == [1, 4]
    with read_transaction(db_engine) as conn:
        linked = conn.execute(sa.select(message_receipts.c.run_pk).where(message_receipts.c.message_id == "m1")).all()
    assert {row.run_pk for row in linked} == {r.pk for r in _runs(db_engine, "orders")}


def test_a_bad_message_is_dead_lettered_once_with_the_reason(db_engine: Engine) -> None:
    _register(db_engine, _flow("orders"))
    for _ in range(2):
        messages.receive(db_engine, "orders", source="mqtt:t", message_id="bad", payload=b'{"n": "x"}')
    letters = messages.list_dead_letters(db_engine, "orders")
    assert len(letters) == 1 and letters[0].message_id == "bad"
    assert "parameter 'n' wants int, got 'x'" in letters[0].reason and letters[0].payload == '{"n": "x"}'
    assert _runs(db_engine, "orders") == []
    gone = messages.receive(db_engine, "nope", source="mqtt:t", message_id="x", payload=b"{}")
    assert gone.status == "dead_lettered" and "no flow 'nope'" in (gone.reason or "")


def test_a_payload_nested_deeper_than_python_follows_is_dead_lettered(db_engine: Engine) -> None:
    """Parsing it, or checking it against a JSON parameter, hits Python's recursion limit: raised
    out of a listener, the message would be delivered again for ever and block those behind it."""
    with Flow("deep", params={"j": JsonParameter(default=None)}) as flow:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, flow)
    for depth in (600, 100_000):
        payload = b'{"j": ' + b"[" * depth + b"]" * depth + b"}"
        got = messages.receive(db_engine, "deep", source="redis:s", message_id=f"d{depth}", payload=payload)
        assert got.status == "dead_lettered" and "nested too deeply" in (got.reason or ""), got.reason
    ok = messages.receive(db_engine, "deep", source="redis:s", message_id="ok", payload=b'{"j": [[1]]}')
    assert ok.status == "started"


def test_a_message_with_a_nul_character_is_handled_not_raised(db_engine: Engine) -> None:
    """PostgreSQL's text cannot hold NUL: a payload (or message id) carrying one made ``receive``
    raise, so the listener acknowledged nothing and was handed the message for ever, the
    messages behind it in a Redis stream never read. Every backend now records it, once."""
    _register(db_engine, _flow("orders"))
    for message_id, payload in (("m1", b"\x00garbage"), ("m2", b'{"n": "\x00"}'), ("id\x00nul", b'{"n": 2}')):
        first = messages.receive(db_engine, "orders", source="redis:s", message_id=message_id, payload=payload)
        again = messages.receive(db_engine, "orders", source="redis:s", message_id=message_id, payload=payload)
        assert first.status in ("dead_lettered", "started") and again.status == "duplicate", (first, again)
    without_id = messages.receive(db_engine, "orders", source="mqtt:t", message_id="", payload=b"\x00")
    assert without_id.status == "dead_lettered"
    assert messages.receive(db_engine, "orders", source="mqtt:t", message_id="", payload=b"\x00").status == "duplicate"
    letters = {d.message_id: d for d in messages.list_dead_letters(db_engine, "orders")}
    assert letters["m1"].payload == "\\x00garbage" and "not valid JSON" in letters["m1"].reason
    assert "\x00" not in letters["m2"].payload and "\x00" not in letters["m2"].reason
    (run,) = _runs(db_engine, "orders")
    assert run.params == {"n": 2} and run.triggered_by["message_id"] == "id\\x00nul"


def test_retention_deletes_dead_letters_with_runs_and_receipts_once_no_broker_redelivers(db_engine: Engine) -> None:
    _register(db_engine, _flow("orders"), _flow("refunds"))
    now = utcnow()

    def deliver(flow_id: str, message_id: str, days_ago: float, payload: bytes = b"{}") -> str:
        at = now - dt.timedelta(days=days_ago)
        return messages.receive(
            db_engine, flow_id, source="mqtt:t", message_id=message_id, payload=payload, now=at
        ).status

    bad = b'{"n": "x"}'
    deliver("orders", "bad-40d", 40, bad)
    deliver("orders", "bad-5d", 5, bad)
    deliver("refunds", "bad-40d", 40, bad)
    for message_id, days_ago in (("ok-40d", 40), ("ok-10d", 10), ("ok-5d", 5)):
        deliver("orders", message_id, days_ago)

    def left() -> tuple[set[str], set[str]]:
        with read_transaction(db_engine) as conn:
            letters = {f"{r.flow_id}/{r.message_id}" for r in conn.execute(sa.select(dead_letters))}
            receipts = {f"{r.flow_id}/{r.message_id}" for r in conn.execute(sa.select(message_receipts))}
        return letters, receipts

    before = left()
    month = dt.timedelta(days=30)
    dry = cleanup.clean(db_engine, older_than=month, logs=None, flow_id="orders", dry_run=True, now=now)
    assert (dry.dead_letters, dry.message_receipts) == (1, 2) and left() == before

    done = cleanup.clean(db_engine, older_than=month, logs=None, flow_id="orders", now=now)
    assert (done.dead_letters, done.message_receipts) == (1, 2)
    letters, receipts = left()
    assert letters == {"orders/bad-5d", "refunds/bad-40d"}  # another flow's are not this clean's
    assert receipts == {"orders/bad-5d", "orders/ok-10d", "orders/ok-5d", "refunds/bad-40d"}

    # A day's retention takes the dead letters of the day before, but a receipt stays as long as
    # a broker may deliver its message again (a week for MQTT), so a redelivery starts nothing.
    day = cleanup.clean(db_engine, older_than=dt.timedelta(days=1), logs=None, now=now)
    assert (day.dead_letters, day.message_receipts) == (2, 2)
    assert day.receipts_cutoff == now - messages.RECEIPTS_KEPT
    assert left() == (set(), {"orders/bad-5d", "orders/ok-5d"})
    assert deliver("orders", "ok-5d", 0) == "duplicate" and deliver("orders", "bad-5d", 0) == "duplicate"
    assert len(messages.list_dead_letters(db_engine)) == 0


def test_concurrent_deliveries_of_one_message_start_one_run(db_engine: Engine) -> None:
    _register(db_engine, _flow("orders"))
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        try:
            results.append(
                messages.receive(db_engine, "orders", source="nats:s", message_id="same", payload=b'{"n": 2}').status
            )
        except Exception as exc:  # a lock conflict: the listener would not ack, and the broker redelivers
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("started") == 1
    assert len(_runs(db_engine, "orders")) == 1
    with read_transaction(db_engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dead_letters)).scalar() == 0
    assert len(results) + len(errors) == 4


def test_asset_updates_start_runs_for_any_and_all_conditions(db_engine: Engine) -> None:
    with Flow("on_any", schedule=ORDERS | CUSTOMERS) as on_any:
        PythonOperator(task_id="t", python_callable=lambda: None)
    with Flow("on_all", schedule=[ORDERS, CUSTOMERS]) as on_all:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, on_any, on_all)
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(ORDERS.uri, {"rows": 3}, "p", "r1", "write")])
    created = asset_service.create_asset_runs(db_engine)
    assert [r.flow_id for r in created] == ["on_any"]
    assert created[0].triggered_by["asset_events"][0]["extra"] == {"rows": 3}
    assert asset_service.create_asset_runs(db_engine) == []  # consumed: nothing more to start
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(CUSTOMERS.uri, {}, "p", "r2", "write")])
    started = sorted(r.flow_id for r in asset_service.create_asset_runs(db_engine))
    assert started == ["on_all", "on_any"]
    (all_run,) = _runs(db_engine, "on_all")
    assert sorted(e["uri"] for e in all_run.triggered_by["asset_events"]) == [CUSTOMERS.uri, ORDERS.uri]


def test_a_run_gets_only_the_updates_of_the_assets_its_schedule_names_now(db_engine: Engine) -> None:
    """An update queued while the flow waited on ``[orders, customers]`` stayed queued once its
    schedule became ``[customers, refunds]``, and rode along in the next run's triggering events
    (and its note) though the flow no longer names ``orders``; Airflow gives a run the events of
    the assets its schedule names."""
    refunds = Asset("s3://lake/refunds")
    with Flow("consumer", schedule=[ORDERS, CUSTOMERS]) as before:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, before)
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(ORDERS.uri, {"old": True}, "p", "r1", "write")])
    assert asset_service.create_asset_runs(db_engine) == []  # waits for customers
    with Flow("consumer", schedule=[CUSTOMERS, refunds]) as after:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, after)
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(CUSTOMERS.uri, {}, "p", "r2", "write")])
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(refunds.uri, {}, "p", "r2", "write")])
    (run,) = asset_service.create_asset_runs(db_engine)
    assert sorted(e["uri"] for e in run.triggered_by["asset_events"]) == [CUSTOMERS.uri, refunds.uri]
    assert ORDERS.uri not in (run.note or "")
    with read_transaction(db_engine) as conn:
        assert asset_repo.queued(conn) == {}  # the orders update is not left queued either


def test_asset_updates_wait_for_a_scheduler_that_schedules_the_flow(db_engine: Engine) -> None:
    """A scheduler starts asset runs only for the flows of its folders (ADR 0024); the updates
    of another flow stay queued for the scheduler that does."""
    with Flow("elsewhere", schedule=ORDERS) as elsewhere:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, elsewhere)
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(ORDERS.uri, {}, "p", "r1", "write")])
    assert asset_service.create_asset_runs(db_engine, schedules=lambda _flow_id, _file: False) == []
    started = asset_service.create_asset_runs(db_engine, schedules=lambda flow_id, _file: flow_id == "elsewhere")
    assert [r.flow_id for r in started] == ["elsewhere"]


def test_the_schedulers_triggerer_listens_only_for_the_flows_it_schedules(db_engine: Engine) -> None:
    from ductwork.core.triggers import RedisStream
    from ductwork.engine.triggerer import TriggererService

    _register(db_engine, _flow("listened", triggers=[RedisStream(stream="orders")]))
    assert TriggererService(db_engine, schedules=lambda _flow_id, _file: False).wanted() == {}
    assert list(TriggererService(db_engine).wanted()) == [("listened", "redis:orders")]


def test_two_schedulers_racing_on_one_update_start_one_run(db_engine: Engine) -> None:
    with Flow("consumer", schedule=[ORDERS]) as consumer:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, consumer)
    with transaction(db_engine) as conn:
        asset_repo.record_events(conn, [asset_repo.NewAssetEvent(ORDERS.uri)])
    barrier = threading.Barrier(2)

    def schedule() -> None:
        barrier.wait()
        try:
            asset_service.create_asset_runs(db_engine)
        except Exception:
            pass  # a lock conflict: that scheduler tries again at its next poll

    threads = [threading.Thread(target=schedule) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    asset_service.create_asset_runs(db_engine)
    assert len(_runs(db_engine, "consumer")) == 1


def test_the_triggerer_says_when_it_drops_a_message_received_before(db_engine: Engine, caplog: Any) -> None:
    """A redelivered message starts nothing: the log said so for a started run and a dead
    letter, and said nothing at all for a duplicate (a user looking for their message saw none)."""
    import logging

    from ductwork.engine.triggerer import TriggererService
    from ductwork.integrations.messaging import Message

    _register(db_engine, _flow("orders"))
    handle = TriggererService(db_engine)._handler("orders")
    message = Message(source="rabbitmq:q", message_id="m7", payload=b'{"n": 2}')
    with caplog.at_level(logging.INFO, logger="ductwork"):
        assert handle(message).status == "started"
        assert handle(message).status == "duplicate"
    said = [r.getMessage() for r in caplog.records if "m7" in r.getMessage()]
    assert len(said) == 2 and "started run" in said[0]
    assert "received before" in said[1] and "rabbitmq:q" in said[1] and "no new run" in said[1]


def test_the_triggerer_asks_whether_it_listens_only_for_flows_with_triggers(db_engine: Engine) -> None:
    """The scheduler's answer for a flow outside its flows folder comes with a warning that its
    schedule does not run here: asked for every flow (a `ductwork build` of class tasks, a flow
    with no schedule), it warned at every start about flows that have nothing to start."""
    from ductwork import MqttTopic
    from ductwork.engine.triggerer import TriggererService

    with Flow("listens", triggers=[MqttTopic(topic="qa/orders")]) as listens:
        PythonOperator(task_id="t", python_callable=lambda: None)
    _register(db_engine, _flow("plain"), listens)
    asked: list[str] = []
    service = TriggererService(db_engine, schedules=lambda flow_id, _fileloc: asked.append(flow_id) or True)
    assert set(service.wanted()) == {("listens", "mqtt:qa/orders")}
    assert asked == ["listens"]
