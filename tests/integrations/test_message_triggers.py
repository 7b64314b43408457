"""Runs started by messages, on the real brokers of this machine (RabbitMQ, Redis Streams, NATS
JetStream, Mosquitto) and on private ones that the tests restart.

- Under a running scheduler (which hosts the listeners): a published message starts a run with
  its payload as the parameters; the same message published again starts nothing; a malformed
  payload is dead-lettered with the reason and the listener carries on.
- A listener that records a message and dies before acknowledging it: the broker delivers the
  message again and no second run starts.
- A private broker restarted while messages flow: every message starts exactly one run.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ductwork import Flow, IntParameter, PythonOperator
from ductwork.core.triggers import MessageTrigger, MqttTopic, NatsJetStream
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.integrations.messaging import Message, listener_for
from ductwork.services import messages
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.tables import message_receipts
from tests.integrations.brokers import KINDS, cleanup, publish, require_broker, trigger_for, wait_until

pytestmark = pytest.mark.timeout(300)

SUFFIX = uuid.uuid4().hex[:8]

FLOWS = """
    import os
    from ductwork import Flow, IntParameter, MqttTopic, NatsJetStream, PythonOperator, RabbitMQ, RedisStream

    S = os.environ["DUCTWORK_TEST_SUFFIX"]
    TRIGGERS = {
        "rabbitmq": RabbitMQ(queue=f"ductwork-test-{S}"),
        "redis": RedisStream(stream=f"ductwork-test-{S}"),
        "nats": NatsJetStream(subject=f"ductworktest.{S}", stream=f"DUCTWORKTEST_{S}"),
        "mqtt": MqttTopic(topic=f"ductwork-test/{S}/#", client_id=f"ductwork-test-{S}"),
    }
    for kind, trigger in TRIGGERS.items():
        with Flow(f"from_{kind}", params={"n": IntParameter(default=1)}, triggers=[trigger]) as flow:
            PythonOperator(task_id="double", python_callable=lambda params: params["n"] * 2)
        globals()[f"flow_{kind}"] = flow
"""


class Env:
    def __init__(self, tmp: Path, service: SchedulerService) -> None:
        self.url = f"sqlite:///{tmp / 'ductwork.db'}"
        self.service = service
        self.engine = service.engine

    def runs(self, flow_id: str) -> list[Any]:
        with read_transaction(self.engine) as conn:
            return list(run_repo.list_runs(conn, flow_id=flow_id, newest_first=False).items)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("messages")
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "message_flows.py").write_text(textwrap.dedent(FLOWS))
    old = os.environ.get("DUCTWORK_TEST_SUFFIX")
    os.environ["DUCTWORK_TEST_SUFFIX"] = SUFFIX
    url = f"sqlite:///{tmp / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    settings = Settings(home=tmp / "home", flows_folder=flows, database_url=url, parallelism=2)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.3), engine=engine)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield Env(tmp, service)
    finally:
        service.stop()
        thread.join(timeout=60)
        for kind in KINDS:
            cleanup(trigger_for(kind, suffix=SUFFIX), f"from_{kind}")
        if old is None:
            os.environ.pop("DUCTWORK_TEST_SUFFIX", None)
        else:
            os.environ["DUCTWORK_TEST_SUFFIX"] = old


def _listening(env: Env, flow_id: str, trigger: MessageTrigger) -> None:
    def ready() -> bool:
        triggerer = env.service.triggerer
        running = triggerer.listeners.get((flow_id, trigger.source)) if triggerer is not None else None
        return running is not None and running.listener.connected.is_set()

    assert wait_until(ready, timeout=60), f"the scheduler never started listening on {trigger.source}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_starts_a_run_once_and_a_bad_one_is_dead_lettered(env: Env, kind: str) -> None:
    require_broker(kind)
    flow_id = f"from_{kind}"
    trigger = trigger_for(kind, suffix=SUFFIX)
    _listening(env, flow_id, trigger)

    publish(trigger, "order-1", b'{"n": 5}')
    done = wait_until(lambda: [r for r in env.runs(flow_id) if r.state.is_terminal], timeout=30)
    assert len(done) == 1
    run = done[0]
    assert run.state.value == "success" and run.params == {"n": 5} and run.run_type == "event"
    assert run.triggered_by == {"kind": "message", "source": trigger.source, "message_id": "order-1"}

    publish(trigger, "order-1", b'{"n": 5}')  # the publisher retried: the same message again
    publish(trigger, "order-2", b'{"n": "five"}')
    publish(trigger, "order-3", b"not json")
    letters = wait_until(
        lambda: (
            messages.list_dead_letters(env.engine, flow_id)
            if len(messages.list_dead_letters(env.engine, flow_id)) == 2
            else None
        )
    )
    assert letters, "the malformed messages were not dead-lettered"
    reasons = {d.message_id: d.reason for d in letters}
    assert "parameter 'n' wants int, got 'five'" in reasons["order-2"]
    assert "not valid JSON" in reasons["order-3"]
    assert {d.payload for d in letters} == {'{"n": "five"}', "not json"}

    publish(trigger, "order-4", b'{"n": 7}')  # the listener carries on after bad messages
    done = wait_until(
        lambda: [r for r in env.runs(flow_id) if r.state.is_terminal] if len(env.runs(flow_id)) >= 2 else None
    )
    assert [r.params for r in env.runs(flow_id)] == [{"n": 5}, {"n": 7}]


# --- a listener that dies between recording a message and acknowledging it -------------------------
def _store(tmp: Path, flow_id: str) -> Any:
    engine = create_engine(f"sqlite:///{tmp / 'listener.db'}")
    migrate.upgrade(engine)
    with Flow(flow_id, params={"n": IntParameter(default=1)}) as flow:
        PythonOperator(task_id="t", python_callable=lambda: None)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())
    return engine


class Recorder:
    """A listener's handler that records messages like the triggerer does, and can crash once
    right after recording one (before the listener acknowledges it)."""

    def __init__(self, engine: Any, flow_id: str, crash_on: str | None = None) -> None:
        self.engine, self.flow_id, self.crash_on = engine, flow_id, crash_on
        self.deliveries: list[messages.Delivery] = []
        self.lock = threading.Lock()

    def __call__(self, message: Message) -> messages.Delivery:
        delivery = messages.receive(
            self.engine, self.flow_id, source=message.source, message_id=message.message_id, payload=message.payload
        )
        with self.lock:
            self.deliveries.append(delivery)
        if message.message_id == self.crash_on:
            self.crash_on = None
            raise RuntimeError("the listener died after recording the message, before acknowledging it")
        return delivery

    def statuses(self) -> list[str]:
        with self.lock:
            return [d.status for d in self.deliveries]


def _serve(trigger: MessageTrigger, flow_id: str, handle: Any) -> tuple[Any, threading.Event, threading.Thread]:
    listener = listener_for(trigger, flow_id)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(handle, stop), daemon=True)
    thread.start()
    assert wait_until(listener.connected.is_set, timeout=60), f"the listener never connected to {trigger.source}"
    return listener, stop, thread


def _run_count(engine: Any, flow_id: str) -> int:
    with read_transaction(engine) as conn:
        return run_repo.list_runs(conn, flow_id=flow_id).total


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_delivered_again_after_a_crash_starts_no_second_run(tmp_path: Path, kind: str) -> None:
    require_broker(kind)
    flow_id = "crashy"
    engine = _store(tmp_path, flow_id)
    trigger = trigger_for(kind)
    handle = Recorder(engine, flow_id, crash_on="m-1")
    _listener, stop, thread = _serve(trigger, flow_id, handle)
    try:
        publish(trigger, "m-1", b'{"n": 2}')
        assert wait_until(lambda: handle.statuses()[:2] == ["started", "duplicate"], timeout=60), handle.statuses()
        publish(trigger, "m-2", b'{"n": 3}')
        assert wait_until(lambda: handle.statuses().count("started") == 2, timeout=30), handle.statuses()
        time.sleep(0.5)
        assert _run_count(engine, flow_id) == 2
        assert handle.statuses().count("duplicate") == 1
    finally:
        stop.set()
        thread.join(timeout=30)
        cleanup(trigger, flow_id)
        engine.dispose()


# --- a private broker restarted mid-stream ----------------------------------------------------------
def _private(kind: str) -> Any:
    from tests import private_services as ps

    return {
        "rabbitmq": ps.private_rabbitmq,
        "redis": ps.private_redis,
        "nats": ps.private_nats,
        "mqtt": ps.private_mosquitto,
    }[kind]()


@pytest.mark.parametrize("kind", KINDS)
def test_a_broker_restarted_mid_stream_loses_no_message_and_runs_none_twice(tmp_path: Path, kind: str) -> None:
    flow_id = "restarted"
    engine = _store(tmp_path, flow_id)
    with _private(kind) as broker:
        trigger = trigger_for(kind, url=broker.url())
        handle = Recorder(engine, flow_id)
        _listener, stop, thread = _serve(trigger, flow_id, handle)
        try:
            ids = [f"msg-{i}" for i in range(20)]
            for message_id in ids[:10]:
                publish(trigger, message_id, json.dumps({"n": int(message_id[4:])}).encode())
            broker.restart()
            for message_id in ids[10:]:
                publish(trigger, message_id, json.dumps({"n": int(message_id[4:])}).encode())
            assert wait_until(lambda: handle.statuses().count("started") >= 20, timeout=120), handle.statuses()
            time.sleep(1.0)  # anything delivered again arrives now, and must start nothing
        finally:
            stop.set()
            thread.join(timeout=30)
    with read_transaction(engine) as conn:
        runs = run_repo.list_runs(conn, flow_id=flow_id, limit=1000).items
        receipts = conn.execute(sa.select(message_receipts.c.message_id)).scalars().all()
    assert sorted(r.triggered_by["message_id"] for r in runs) == sorted(ids)  # none lost, none twice
    assert sorted(receipts) == sorted(ids)
    assert sorted(r.params["n"] for r in runs) == list(range(20))
    engine.dispose()


def test_a_flow_bound_to_a_rabbitmq_exchange_gets_its_own_queue(tmp_path: Path) -> None:
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"bound_{suffix}"
    engine = _store(tmp_path, flow_id)
    trigger = RabbitMQ(exchange=f"ductwork-test-{suffix}", routing_key="orders.*")
    handle = Recorder(engine, flow_id)
    listener, stop, thread = _serve(trigger, flow_id, handle)
    connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for key, n in (("orders.eu", 1), ("invoices.eu", 2), ("orders.us", 3)):
            channel.basic_publish(
                trigger.exchange, key, json.dumps({"n": n}).encode(), properties=pika.BasicProperties(message_id=key)
            )
        assert wait_until(lambda: handle.statuses().count("started") == 2, timeout=30), handle.statuses()
        time.sleep(0.5)
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert sorted(r.params["n"] for r in runs) == [1, 3]  # only what the binding routes to the flow
        assert listener.queue_name() == f"ductwork.{flow_id}"
    finally:
        stop.set()
        thread.join(timeout=30)
        channel = connection.channel()
        channel.queue_delete(f"ductwork.{flow_id}")
        channel.exchange_delete(trigger.exchange)
        connection.close()
        engine.dispose()


def _queue_exists(url: str, queue: str) -> bool:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue=queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        connection.close()


def test_a_flow_on_an_existing_quorum_queue_of_its_users_consumes_it() -> None:
    """The listener declared the named queue with no arguments: the broker refused that for a
    quorum queue (406, inequivalent argument 'x-queue-type') and the listener said it "lost its
    connection" and tried again every 5 s for ever, taking no message."""
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ

    suffix = uuid.uuid4().hex[:8]
    trigger = RabbitMQ(queue=f"ductwork-test-quorum-{suffix}")
    connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
    connection.channel().queue_declare(trigger.queue, durable=True, arguments={"x-queue-type": "quorum"})
    got: list[str] = []
    _listener, stop, thread = _serve(trigger, "quorum", lambda m: got.append(m.message_id))
    try:
        connection.channel().basic_publish("", trigger.queue, b"{}", properties=pika.BasicProperties(message_id="q-1"))
        assert wait_until(lambda: got == ["q-1"], timeout=30), got
    finally:
        stop.set()
        thread.join(timeout=30)
        connection.channel().queue_delete(trigger.queue)
        connection.close()


def test_the_queue_of_a_removed_flow_is_deleted_by_the_broker_after_its_expiry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A flow bound to an exchange gets a queue of its own; once the flow was removed its queue
    stayed bound and every message sent to the exchange piled up in it for ever. It now expires
    when no listener has used it for OWN_QUEUE_EXPIRY (a week, as an MQTT session: a paused flow
    keeps collecting); a queue made before, without an expiry, is still consumed, with a warning."""
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ
    from ductwork.integrations.messaging import rabbitmq

    monkeypatch.setattr(rabbitmq, "OWN_QUEUE_EXPIRY", 2, raising=False)
    suffix = uuid.uuid4().hex[:8]
    trigger = RabbitMQ(exchange=f"ductwork-test-{suffix}", routing_key="orders.*")
    queue = trigger.queue_for(f"gone_{suffix}")
    _listener, stop, thread = _serve(trigger, f"gone_{suffix}", lambda m: None)
    stop.set()
    thread.join(timeout=30)
    time.sleep(4.0)  # a look is a declaration, which renews the queue's lease: one look, after the expiry
    assert not _queue_exists(trigger.url, queue), f"{queue} is still there"

    old_flow = f"old_{suffix}"
    old_queue = trigger.queue_for(old_flow)
    connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
    connection.channel().queue_declare(old_queue, durable=True)  # as made by an earlier version
    got: list[str] = []
    try:
        with caplog.at_level("WARNING", logger="ductwork.triggerer"):
            _listener, stop, thread = _serve(trigger, old_flow, lambda m: got.append(m.message_id))
            try:
                connection.channel().basic_publish(
                    trigger.exchange, "orders.eu", b"{}", properties=pika.BasicProperties(message_id="o-1")
                )
                assert wait_until(lambda: got == ["o-1"], timeout=30), got
            finally:
                stop.set()
                thread.join(timeout=30)
        warned = [r.getMessage() for r in caplog.records if "without the expiry" in r.getMessage()]
        assert len(warned) == 1 and old_queue in warned[0] and "set_policy" in warned[0], warned
    finally:
        channel = connection.channel()
        channel.queue_delete(old_queue)
        channel.exchange_delete(trigger.exchange)
        connection.close()


def test_one_reading_without_an_id_from_two_mqtt_topics_of_a_wildcard_is_two_messages() -> None:
    """Without a message-id a message was identified by the trigger's topic filter and its
    payload: the same reading from sensors/a and sensors/b was one message, the second started
    no run. The topic it came on is now part of it (and a message sent again on one topic is
    still one)."""
    require_broker("mqtt")
    import paho.mqtt.client as mqtt

    from ductwork.core.triggers import MqttTopic

    suffix = uuid.uuid4().hex[:8]
    trigger = MqttTopic(topic=f"ductwork-test/{suffix}/+", client_id=f"ductwork-test-{suffix}")
    got: list[str] = []
    _listener, stop, thread = _serve(trigger, "sensors", lambda m: got.append(m.message_id))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        for sensor in ("a", "b", "a"):
            client.publish(f"ductwork-test/{suffix}/{sensor}", b'{"v": 20.5}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: len(got) >= 3, timeout=30), got
    finally:
        client.loop_stop()
        client.disconnect()
        stop.set()
        thread.join(timeout=30)
        cleanup(trigger, "sensors")
    assert got[0] != got[1] and got[0] == got[2], got
    assert got[0].startswith(f"ductwork-test/{suffix}/a#sha256:"), got


def test_one_body_without_an_id_through_two_routing_keys_of_a_rabbitmq_binding_is_two_messages() -> None:
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ

    suffix = uuid.uuid4().hex[:8]
    trigger = RabbitMQ(exchange=f"ductwork-test-{suffix}", routing_key="orders.*")
    got: list[str] = []
    _listener, stop, thread = _serve(trigger, f"keys_{suffix}", lambda m: got.append(m.message_id))
    connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
    try:
        channel = connection.channel()
        for key in ("orders.eu", "orders.us", "orders.eu"):
            channel.basic_publish(trigger.exchange, key, b"{}")
        assert wait_until(lambda: len(got) >= 3, timeout=30), got
    finally:
        stop.set()
        thread.join(timeout=30)
        channel = connection.channel()
        channel.queue_delete(trigger.queue_for(f"keys_{suffix}"))
        channel.exchange_delete(trigger.exchange)
        connection.close()
    assert got[0] != got[1] and got[0] == got[2], got


def test_the_listeners_run_in_their_own_process_with_ductwork_triggerer(tmp_path: Path) -> None:
    """``triggerer = "separate"``: ``ductwork triggerer`` listens, and a message queues a run
    (for whichever scheduler runs it)."""
    import signal
    import subprocess
    import sys

    require_broker("redis")
    suffix = uuid.uuid4().hex[:8]
    flow_id = f"apart_{suffix}"
    engine = _store(tmp_path, flow_id)
    with transaction(engine) as conn:  # the flow as the scheduler's parser would have recorded it
        with Flow(flow_id, params={"n": IntParameter(default=1)}, triggers=[trigger_for("redis", suffix=suffix)]) as f:
            PythonOperator(task_id="t", python_callable=lambda: None)
        flow_repo.upsert_flow(conn, f.to_graph())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_DATABASE_URL": str(engine.url),
        "DUCTWORK_TRIGGERER": "separate",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "triggerer", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    trigger = trigger_for("redis", suffix=suffix)
    try:
        time.sleep(1.0)
        publish(trigger, "apart-1", b'{"n": 9}')
        assert wait_until(lambda: _run_count(engine, flow_id) == 1, timeout=30)
        with read_transaction(engine) as conn:
            (run,) = run_repo.list_runs(conn, flow_id=flow_id).items
        assert run.params == {"n": 9} and run.state.value == "queued"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        cleanup(trigger, flow_id)
        engine.dispose()
    assert process.returncode == 0


def test_a_trigger_reaches_its_broker_through_a_connection(tmp_path: Path) -> None:
    """``conn_id=``: the URL (and its password) comes from the secrets backends, not the flow."""
    require_broker("redis")
    from ductwork import RedisStream
    from ductwork.core.connections import EnvironmentSecrets, Secrets

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"via_conn_{suffix}"
    engine = _store(tmp_path, flow_id)
    trigger = RedisStream(stream=f"ductwork-test-{suffix}", url="redis://127.0.0.1:1/0", conn_id="events_cache")
    secrets = Secrets([EnvironmentSecrets({"DUCTWORK_CONN_EVENTS_CACHE": "redis://127.0.0.1:6379/0"})])
    listener = listener_for(trigger, flow_id, secrets)
    assert listener.url == "redis://127.0.0.1:6379/0"
    handle = Recorder(engine, flow_id)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(handle, stop), daemon=True)
    thread.start()
    try:
        publish(trigger_for("redis", suffix=suffix), "c-1", b'{"n": 4}')
        assert wait_until(lambda: handle.statuses() == ["started"], timeout=30), handle.statuses()
    finally:
        stop.set()
        thread.join(timeout=30)
        cleanup(trigger_for("redis", suffix=suffix), flow_id)
        engine.dispose()


def test_a_rabbitmq_trigger_reaches_the_default_vhost_through_a_connection(tmp_path: Path) -> None:
    """A connection ``amqp://...:5672/%2F`` (the default vhost, as the README writes it) came back
    from the secrets as ``...:5672//``, the vhost ``""`` to pika: the broker refused every
    connection (530) and no message of the queue ever started a run."""
    require_broker("rabbitmq")
    from ductwork import RabbitMQ
    from ductwork.core.connections import EnvironmentSecrets, Secrets

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"via_conn_{suffix}"
    engine = _store(tmp_path, flow_id)
    trigger = RabbitMQ(queue=f"ductwork-test-{suffix}", conn_id="events_mq")
    secrets = Secrets([EnvironmentSecrets({"DUCTWORK_CONN_EVENTS_MQ": "amqp://guest:guest@127.0.0.1:5672/%2F"})])
    listener = listener_for(trigger, flow_id, secrets)
    handle = Recorder(engine, flow_id)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(handle, stop), daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(30), "the listener never connected to the default vhost"
        publish(trigger_for("rabbitmq", suffix=suffix), "c-1", b'{"n": 4}')
        assert wait_until(lambda: handle.statuses() == ["started"], timeout=30), handle.statuses()
    finally:
        stop.set()
        thread.join(timeout=30)
        cleanup(trigger_for("rabbitmq", suffix=suffix), flow_id)
        engine.dispose()


def test_a_nats_url_nothing_answers_is_one_warning_naming_the_flow(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The NATS client retries a first connection for ever, logging a traceback each time: the
    listener gives up after a while and says which flow and address, as for the other brokers."""
    pytest.importorskip("nats")
    from ductwork.core.triggers import NatsJetStream
    from ductwork.integrations.messaging import nats_jetstream

    monkeypatch.setattr(nats_jetstream, "CONNECT_WITHIN", 1.0)
    listener = listener_for(NatsJetStream(subject="zz.*", stream="ZZ", url="nats://127.0.0.1:1"), "bad_nats")
    stop = threading.Event()
    with caplog.at_level("INFO"):
        thread = threading.Thread(target=listener.serve, args=(lambda _m: None, stop), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not any("bad_nats" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        thread.join(timeout=30)
    said = [r.getMessage() for r in caplog.records if "bad_nats" in r.getMessage()]
    assert said and "cannot connect to nats://127.0.0.1:1" in said[0], said
    assert not [r for r in caplog.records if r.name.startswith("nats")]  # no tracebacks of the client's


def test_a_rabbitmq_url_nothing_answers_is_one_warning_naming_the_flow_address_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A RabbitMQ trigger pointed at a wrong port said "lost its connection (AMQPConnectionError: )",
    with neither the address nor the reason, between pika's tracebacks: it names both now."""
    pytest.importorskip("pika")
    from ductwork.core.triggers import RabbitMQ

    listener = listener_for(RabbitMQ(queue="zz", url="amqp://guest:secret@127.0.0.1:1/%2F"), "bad_rabbit")
    stop = threading.Event()
    with caplog.at_level("INFO"):
        thread = threading.Thread(target=listener.serve, args=(lambda _m: None, stop), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not any("bad_rabbit" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        thread.join(timeout=30)
    said = [r.getMessage() for r in caplog.records if "bad_rabbit" in r.getMessage()]
    assert said and "cannot connect to amqp://guest:***@127.0.0.1:1/" in said[0], said
    assert "Connection refused" in said[0] and "secret" not in said[0], said
    assert not [r for r in caplog.records if r.name.startswith("pika")]  # no tracebacks of the client's


def test_an_mqtt_url_nothing_answers_is_one_warning_naming_the_address(caplog: pytest.LogCaptureFixture) -> None:
    """An MQTT trigger pointed at a wrong port said only "Connection refused": it names the broker."""
    pytest.importorskip("paho.mqtt.client")
    from ductwork.core.triggers import MqttTopic

    listener = listener_for(MqttTopic(topic="zz/#", url="mqtt://u:secret@127.0.0.1:1"), "bad_mqtt")
    stop = threading.Event()
    with caplog.at_level("INFO"):
        thread = threading.Thread(target=listener.serve, args=(lambda _m: None, stop), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not any("bad_mqtt" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        thread.join(timeout=30)
    said = [r.getMessage() for r in caplog.records if "bad_mqtt" in r.getMessage()]
    assert said and "cannot connect to mqtt://u:***@127.0.0.1:1" in said[0], said
    assert "Connection refused" in said[0] and "secret" not in said[0], said


def test_a_redis_entry_that_is_not_utf8_is_dead_lettered_and_the_entries_behind_it_run(tmp_path: Path) -> None:
    """An entry without a payload field is read as its fields; one whose value or id is not UTF-8
    made the listener raise at every reading of its pending entries, so nothing after it ran."""
    require_broker("redis")
    import redis

    flow_id = "binary"
    engine = _store(tmp_path, flow_id)
    trigger = trigger_for("redis", url="redis://127.0.0.1:6379/14")
    client = redis.Redis.from_url(trigger.url)
    handle = Recorder(engine, flow_id)
    _listener, stop, thread = _serve(trigger, flow_id, handle)
    try:
        client.xadd(trigger.stream, {"n": b"\xff\xfe"})
        client.xadd(trigger.stream, {"n": "4", "message_id": b"id-\xff"})
        client.xadd(trigger.stream, {"n": "5"})
        assert wait_until(lambda: len(handle.statuses()) == 3, timeout=30), handle.statuses()
        assert handle.statuses() == ["dead_lettered", "started", "started"]
        (letter,) = messages.list_dead_letters(engine, flow_id)
        assert "not UTF-8" in letter.reason and letter.payload == '{"n": "\\xff\\xfe"}'
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert sorted((r.params["n"], r.triggered_by["message_id"][:6]) for r in runs)[0] == (4, "id-\\xf")
    finally:
        stop.set()
        thread.join(timeout=30)
        client.delete(trigger.stream)
        client.close()
        engine.dispose()


def test_redis_entries_a_dead_listener_had_read_are_taken_over_by_a_live_one(tmp_path: Path) -> None:
    """With several schedulers on one stream, the entries one of them had read when it died
    stayed pending: the others read only their own pending entries, and only when they connect,
    so those messages started no run for as long as the dead one stayed away."""
    require_broker("redis")
    import redis

    from ductwork.core.triggers import RedisStream

    flow_id = "orphans"
    engine = _store(tmp_path, flow_id)
    trigger = RedisStream(stream=f"ductwork-test-{uuid.uuid4().hex[:8]}", url="redis://127.0.0.1:6379/14")
    client = redis.Redis.from_url(trigger.url)
    group = f"ductwork.{flow_id}"
    client.xgroup_create(trigger.stream, group, id="0", mkstream=True)
    for i in range(3):
        client.xadd(trigger.stream, {"payload": json.dumps({"n": i}), "message_id": f"o-{i}"})
    assert len(client.xreadgroup(group, "other-host", {trigger.stream: ">"}, count=10)[0][1]) == 3  # then it died
    listener = listener_for(trigger, flow_id)
    listener.claim_after, listener.claim_every = 0.5, 0.2  # type: ignore[attr-defined]
    handle = Recorder(engine, flow_id)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(handle, stop), daemon=True)
    thread.start()
    try:
        client.xadd(trigger.stream, {"payload": '{"n": 3}', "message_id": "o-3"})  # a new one runs meanwhile
        assert wait_until(lambda: handle.statuses().count("started") == 4, timeout=30), handle.statuses()
        assert wait_until(lambda: client.xpending(trigger.stream, group)["pending"] == 0, timeout=10)
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert sorted(r.params["n"] for r in runs) == [0, 1, 2, 3]
    finally:
        stop.set()
        thread.join(timeout=30)
        client.delete(trigger.stream)
        client.close()
        engine.dispose()


def test_a_nats_stream_deleted_and_made_again_is_listened_to_and_its_messages_start_runs(tmp_path: Path) -> None:
    """A listener whose stream (and so its durable consumer) was deleted fetched from nothing,
    silently, for ever: it makes them again now. And the messages of the new stream, numbered
    from 1 again, were taken for those of the old one (the receipt of ``seq:1``...): without a
    ``Nats-Msg-Id`` they started nothing, with no word in any log."""
    require_broker("nats")
    import asyncio

    import nats

    flow_id = "remade"
    engine = _store(tmp_path, flow_id)
    trigger = trigger_for("nats")
    assert isinstance(trigger, NatsJetStream)

    async def publish_without_id(*bodies: bytes) -> None:
        nc = await nats.connect(trigger.url)
        js = nc.jetstream(timeout=3)
        for body in bodies:
            await js.publish(trigger.subject, body)
        await nc.close()

    async def delete_stream() -> None:
        nc = await nats.connect(trigger.url)
        await nc.jetstream().delete_stream(trigger.stream)
        await nc.close()

    handle = Recorder(engine, flow_id)
    _listener, stop, thread = _serve(trigger, flow_id, handle)
    try:
        asyncio.run(publish_without_id(b'{"n": 1}', b'{"n": 2}'))
        assert wait_until(lambda: handle.statuses() == ["started"] * 2, timeout=30), handle.statuses()
        asyncio.run(delete_stream())

        def republished() -> bool:  # once the listener made the stream again, it takes messages
            try:
                asyncio.run(publish_without_id(b'{"n": 3}', b'{"n": 4}'))
            except Exception:
                return False
            return True

        assert wait_until(republished, timeout=60, interval=0.5), "the listener never made its stream again"
        assert wait_until(lambda: len(handle.statuses()) >= 4, timeout=30), handle.statuses()
        time.sleep(0.5)
        assert handle.statuses() == ["started"] * 4
    finally:
        stop.set()
        thread.join(timeout=30)
        cleanup(trigger, flow_id)
        engine.dispose()


def test_a_broker_away_is_one_warning_and_its_return_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """A listener whose broker was away logged a warning at every try to reconnect (every 5 s,
    for as long as the broker stayed away, per listener), and nothing when it was back: the
    log said only that the listener had lost its broker. It warns once per cause (and every
    minute it lasts), and says when it listens again.

    A broker it never reached is not one it lost: a listener whose URL was wrong from the start
    said "lost its connection" and, once the broker answered, "listening again", which read as a
    broker outage rather than a trigger's settings to check."""
    pytest.importorskip("redis")
    from tests.private_services import free_port, private_redis

    port = free_port()
    trigger = trigger_for("redis", url=f"redis://127.0.0.1:{port}/0")
    listener = listener_for(trigger, "away")
    stop = threading.Event()

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    with caplog.at_level("INFO", logger="ductwork.triggerer"):
        thread = threading.Thread(target=listener.serve, args=(lambda _m: None, stop), daemon=True)
        thread.start()
        try:
            time.sleep(4.0)  # tries at 0, 0.2, 0.6, 1.4 and 3.0 s
            warned = said("away")
            assert len(warned) == 1 and f"127.0.0.1:{port}" in warned[0], warned
            assert warned[0].startswith(f"flow away: listener on {trigger.source} cannot reach its broker ("), warned
            with private_redis(port=port) as server:
                assert wait_until(listener.connected.is_set, timeout=30)
                assert wait_until(lambda: said("reached after"), timeout=10), said("away")
                assert said("reached after")[0].startswith(f"flow away: listening on {trigger.source}, reached after ")
                server.stop()
                assert wait_until(lambda: said("lost its connection"), timeout=30), said("away")
                server.start()
                assert wait_until(lambda: said("listening again"), timeout=30), said("away")
                stop.set()
                thread.join(timeout=30)
        finally:
            stop.set()
            thread.join(timeout=30)
    back = said("listening again")[0]
    assert back.startswith(f"flow away: listening again on {trigger.source} after "), back


def test_two_flows_whose_long_ids_begin_alike_get_mqtt_sessions_of_their_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client id ``ductwork-<flow id>`` was cut at 64 characters: two flows whose ids share
    their first 55 had one id, so one persistent session. Their listeners disconnected each other
    for ever, and the session's subscriptions handed each flow the other's messages."""
    require_broker("mqtt")
    from ductwork.core.triggers import MqttTopic

    suffix = uuid.uuid4().hex[:8]
    prefix = f"warehouse_sensor_temperature_ingestion_pipeline_{suffix}_region_"
    flows = {region: prefix + region for region in ("north", "south")}
    triggers = {region: MqttTopic(topic=f"ductwork-test/{suffix}/{region}") for region in flows}
    ids = {region: triggers[region].client_id_for(flow_id) for region, flow_id in flows.items()}
    assert ids["north"] != ids["south"] and all(len(i) <= 64 for i in ids.values()), ids
    assert MqttTopic(topic="t").client_id_for("short") == "ductwork-short"  # short ids are kept as they were

    got: dict[str, list[str]] = {region: [] for region in flows}
    running = []
    with caplog.at_level("INFO", logger="ductwork.triggerer"):
        try:
            for region, flow_id in flows.items():
                running.append(_serve(triggers[region], flow_id, lambda m, r=region: got[r].append(m.message_id)))
            for n in range(3):
                for region in flows:
                    publish(triggers[region], f"{region}-{n}", b"{}")
            assert wait_until(lambda: sum(map(len, got.values())) >= 6, timeout=60), got
        finally:
            for _listener, stop, thread in running:
                stop.set()
                thread.join(timeout=30)
            for region, flow_id in flows.items():
                cleanup(MqttTopic(topic="t", client_id=ids[region]), flow_id)
    assert {region: sorted(set(seen)) for region, seen in got.items()} == {
        region: [f"{region}-{n}" for n in range(3)] for region in flows
    }
    assert not [r.getMessage() for r in caplog.records if "lost its connection" in r.getMessage()]


def test_a_nats_trigger_whose_subject_changed_listens_on_the_new_subject_only(tmp_path: Path) -> None:
    """The stream and the durable consumer were made with the first subject. After the flow's
    subject changed, messages on the old subject still started runs (the consumer kept its
    filter) and those on the new one went to no stream at all (publishers got "no responders")."""
    require_broker("nats")
    suffix = uuid.uuid4().hex[:8]
    flow_id = "renamed"
    engine = _store(tmp_path, flow_id)
    before = NatsJetStream(subject=f"ductworktest.{suffix}.old", stream=f"DUCTWORKTEST_{suffix}")
    after = NatsJetStream(subject=f"ductworktest.{suffix}.new", stream=f"DUCTWORKTEST_{suffix}")
    try:
        handle = Recorder(engine, flow_id)
        _listener, stop, thread = _serve(before, flow_id, handle)
        publish(before, "first", b'{"n": 1}')
        assert wait_until(lambda: handle.statuses() == ["started"], timeout=30), handle.statuses()
        stop.set()
        thread.join(timeout=30)

        handle = Recorder(engine, flow_id)
        _listener, stop, thread = _serve(after, flow_id, handle)
        try:
            publish(before, "stale", b'{"n": 2}')  # the stream still holds the old subject
            publish(after, "fresh", b'{"n": 3}', timeout=10)
            assert wait_until(lambda: "started" in handle.statuses(), timeout=30), handle.statuses()
        finally:
            stop.set()
            thread.join(timeout=30)
        # In stream order "stale" came first: had the consumer still taken it, it would be here.
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert sorted(r.triggered_by["message_id"] for r in runs) == ["first", "fresh"]
    finally:
        cleanup(after, flow_id)
        engine.dispose()


def test_flows_whose_ids_differ_in_a_dot_and_an_underscore_each_get_every_nats_message() -> None:
    """``orders.eu`` and ``orders_eu`` both had the durable ``ductwork_orders_eu``: the two
    listeners pulled from one consumer, so each message started a run of one flow or the other."""
    require_broker("nats")
    suffix = uuid.uuid4().hex[:8]
    trigger = NatsJetStream(subject=f"ductworktest.{suffix}", stream=f"DUCTWORKTEST_{suffix}")
    flows = (f"orders.{suffix}", f"orders_{suffix}")
    got: dict[str, list[str]] = {flow_id: [] for flow_id in flows}
    running = []
    try:
        for flow_id in flows:
            running.append(_serve(trigger, flow_id, lambda m, f=flow_id: got[f].append(m.message_id)))
        for n in range(6):
            publish(trigger, f"m-{n}", b"{}")
        assert wait_until(lambda: all(len(seen) >= 6 for seen in got.values()), timeout=30), got
    finally:
        for _listener, stop, thread in running:
            stop.set()
            thread.join(timeout=30)
        cleanup(trigger, flows[0])
    assert {flow_id: sorted(set(seen)) for flow_id, seen in got.items()} == {
        flow_id: [f"m-{n}" for n in range(6)] for flow_id in flows
    }


def test_a_dotted_flow_moving_to_its_own_nats_durable_reads_no_message_again() -> None:
    """The durable of a flow id with a '.' got a new name: made from nothing, it would start at
    the stream's first message and start a run again for every message older than its receipt."""
    require_broker("nats")
    suffix = uuid.uuid4().hex[:8]
    flow_id = f"orders.{suffix}"
    trigger = NatsJetStream(subject=f"ductworktest.{suffix}", stream=f"DUCTWORKTEST_{suffix}")
    legacy = trigger.legacy_durable_for(flow_id)
    assert legacy == f"ductwork_orders_{suffix}" and trigger.durable_for(flow_id) != legacy
    assert NatsJetStream(subject="s", stream="S").durable_for("orders_eu") == "ductwork_orders_eu"  # kept
    old = NatsJetStream(subject=trigger.subject, stream=trigger.stream, durable=legacy)  # as it was read before
    got: list[str] = []
    try:
        _listener, stop, thread = _serve(old, flow_id, lambda m: got.append(m.message_id))
        for n in range(3):
            publish(trigger, f"old-{n}", b"{}")
        assert wait_until(lambda: len(got) >= 3, timeout=30), got
        stop.set()
        thread.join(timeout=30)
        for n in range(2):
            publish(trigger, f"new-{n}", b"{}")
        got.clear()
        _listener, stop, thread = _serve(trigger, flow_id, lambda m: got.append(m.message_id))
        try:
            assert wait_until(lambda: len(got) >= 2, timeout=30), got
            time.sleep(1.0)
        finally:
            stop.set()
            thread.join(timeout=30)
    finally:
        cleanup(trigger, flow_id)
    assert got == ["new-0", "new-1"]


@pytest.mark.parametrize(
    ("held", "subject", "covers"),
    [
        ("orders.eu", "orders.eu", True),
        ("orders.*", "orders.eu", True),
        ("orders.>", "orders.eu.paid", True),
        ("orders.>", "orders.*", True),
        ("orders.*", "orders.>", False),
        ("orders.eu", "orders.*", False),
        ("orders.*", "orders.eu.paid", False),
        ("orders.>", "orders", False),
        ("orders.old", "orders.new", False),
    ],
)
def test_which_nats_subjects_a_stream_subject_holds(held: str, subject: str, covers: bool) -> None:
    from ductwork.integrations.messaging.nats_jetstream import _covers

    assert _covers(held, subject) is covers


def test_a_rabbitmq_binding_changed_starts_nothing_for_the_old_routing_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The flow's queue kept its first binding when the trigger's routing key changed, so the
    messages of the old key went on starting runs (under the new trigger's source)."""
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"rebound_{suffix}"
    engine = _store(tmp_path, flow_id)
    exchange = f"ductwork-test-{suffix}"
    connection = pika.BlockingConnection(pika.URLParameters(RabbitMQ(exchange=exchange).url))
    channel = connection.channel()
    channel.confirm_delivery()

    def send(key: str, message_id: str) -> None:
        channel.basic_publish(
            exchange, key, b"{}", properties=pika.BasicProperties(message_id=message_id), mandatory=True
        )

    try:
        for key in ("orders.eu", "invoices.*"):  # an exact key, then one with a wildcard
            _listener, stop, thread = _serve(RabbitMQ(exchange=exchange, routing_key=key), flow_id, lambda m: None)
            stop.set()
            thread.join(timeout=30)
        handle = Recorder(engine, flow_id)
        with caplog.at_level("WARNING", logger="ductwork.triggerer"):
            _listener, stop, thread = _serve(RabbitMQ(exchange=exchange, routing_key="orders.us"), flow_id, handle)
            try:
                send("orders.eu", "old-exact")
                send("invoices.x", "old-wildcard")
                send("orders.us", "new")
                assert wait_until(lambda: "started" in handle.statuses(), timeout=30), handle.statuses()
                with pytest.raises(pika.exceptions.UnroutableError):
                    send("orders.eu", "old-exact-again")  # that binding is gone: nothing routes it now
            finally:
                stop.set()
                thread.join(timeout=30)
        assert handle.statuses() == ["started"]  # in queue order the old ones came first: none ran
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert [r.triggered_by["message_id"] for r in runs] == ["new"]
        said = [r.getMessage() for r in caplog.records if "old binding" in r.getMessage()]
        assert len(said) == 2 and "'invoices.x'" in said[1] and "removed by hand" in said[1], said
    finally:
        channel = connection.channel()
        channel.queue_delete(f"ductwork.{flow_id}")
        channel.exchange_delete(exchange)
        connection.close()
        engine.dispose()


@pytest.mark.parametrize(
    ("pattern", "key", "routed"),
    [
        ("orders.eu", "orders.eu", True),
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders.eu.paid", False),
        ("orders.#", "orders", True),
        ("orders.#", "orders.eu.paid", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("#", "anything.at.all", True),
        ("orders.eu", "orders.us", False),
    ],
)
def test_which_routing_keys_a_rabbitmq_topic_binding_takes(pattern: str, key: str, routed: bool) -> None:
    from ductwork.integrations.messaging.rabbitmq import topic_matches

    assert topic_matches(pattern, key) is routed


def test_an_mqtt_topic_changed_starts_nothing_for_the_old_topic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The persistent session kept its first subscription when the trigger's topic changed, so
    messages on the old topic went on starting runs (under the new trigger's source)."""
    require_broker("mqtt")
    from ductwork.core.triggers import MqttTopic

    suffix = uuid.uuid4().hex[:8]
    flow_id = "retopic"
    engine = _store(tmp_path, flow_id)
    client_id = f"ductwork-test-{suffix}"

    def on(topic: str) -> MqttTopic:
        return MqttTopic(topic=f"ductwork-test/{suffix}/{topic}", client_id=client_id)

    try:
        for old in ("old", "wild/+"):  # an exact topic, then one with a wildcard
            _listener, stop, thread = _serve(on(old), flow_id, lambda m: None)
            stop.set()
            thread.join(timeout=30)
        handle = Recorder(engine, flow_id)
        with caplog.at_level("WARNING", logger="ductwork.triggerer"):
            _listener, stop, thread = _serve(on("new"), flow_id, handle)
            try:
                # brokers.publish sends to the trigger's topic with '+' as 'x'
                for topic, message_id in (("old", "old"), ("wild/+", "wild"), ("new", "new")):
                    publish(on(topic), message_id, b"{}")
                assert wait_until(lambda: "started" in handle.statuses(), timeout=30), handle.statuses()
                publish(on("old"), "old-again", b"{}")  # that subscription is gone: nothing delivers it
                publish(on("new"), "new-2", b"{}")
                assert wait_until(lambda: handle.statuses().count("started") == 2, timeout=30), handle.statuses()
            finally:
                stop.set()
                thread.join(timeout=30)
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id).items
        assert sorted(r.triggered_by["message_id"] for r in runs) == ["new", "new-2"]
        said = [r.getMessage() for r in caplog.records if "old subscription" in r.getMessage()]
        assert len(said) == 2 and "wild/x" in said[1] and "clean start" in said[1], said
    finally:
        cleanup(on("new"), flow_id)
        engine.dispose()


def test_two_mqtt_listeners_of_one_client_id_are_told_why_they_keep_disconnecting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two schedulers (or a scheduler and a triggerer) listening for one flow connect with one
    client id, and the broker closes the older connection each time: the warning said only
    "disconnected: Unspecified error", every second."""
    require_broker("mqtt")
    trigger = trigger_for("mqtt")
    running = []
    try:
        with caplog.at_level("WARNING", logger="ductwork.triggerer"):
            for _ in range(2):
                running.append(_serve(trigger, "twice", lambda m: None))

            def told() -> list[str]:
                return [r.getMessage() for r in caplog.records if "another client connects" in r.getMessage()]

            assert wait_until(told, timeout=60), [r.getMessage() for r in caplog.records]
        assert repr(trigger.client_id_for("twice")) in told()[0] and "ductwork triggerer" in told()[0]
    finally:
        for _listener, stop, thread in running:
            stop.set()
            thread.join(timeout=30)
        cleanup(trigger, "twice")


@pytest.mark.parametrize("kind", ["rabbitmq", "mqtt"])
def test_messages_without_an_id_are_said_once_to_be_identified_by_their_content(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A publisher that sets no message id and sends the same payload twice (``{}`` every day)
    got one run, then only "received before" lines: nothing said why."""
    require_broker(kind)
    flow_id = "anonymous"
    engine = _store(tmp_path, flow_id)
    trigger = trigger_for(kind)
    handle = Recorder(engine, flow_id)
    with caplog.at_level("WARNING", logger="ductwork.triggerer"):
        _listener, stop, thread = _serve(trigger, flow_id, handle)
        try:
            for _ in range(2):
                publish(trigger, "", b"{}")
            assert wait_until(lambda: len(handle.statuses()) == 2, timeout=30), handle.statuses()
        finally:
            stop.set()
            thread.join(timeout=30)
            cleanup(trigger, flow_id)
            engine.dispose()
    assert handle.statuses() == ["started", "duplicate"]  # as documented: the content is the id
    said = [r.getMessage() for r in caplog.records if "carry no message id" in r.getMessage()]
    assert len(said) == 1 and "Give each message an id" in said[0], said


BROKER_USER, BROKER_PASSWORD = "ductwork", "p@ss:w/rd"
"""A password with the characters a URL (and a connection's URI) writes percent-encoded."""
ENCODED_USERINFO = "ductwork:p%40ss%3Aw%2Frd"


@pytest.mark.parametrize("kind", ["mqtt", "nats"])
def test_a_password_percent_encoded_in_the_url_is_sent_decoded(tmp_path: Path, kind: str) -> None:
    """``mqtt://user:p%40ss@host`` (how a URL, and every connection's URI, writes ``p@ss``) was
    sent to the broker as ``p%40ss``: refused ("Not authorized") at every reconnection, so the
    flow's messages never started a run."""
    import shutil
    import subprocess

    from tests import private_services as ps

    if kind == "mqtt":

        class Locked(ps.PrivateMosquitto):
            def command(self) -> list[str]:
                command = list(super().command())
                passwd = self.root / "passwd"
                subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), BROKER_USER, BROKER_PASSWORD], check=True)
                os.chmod(passwd, 0o644)  # mosquitto reads it as its own user
                config = self.root / "mosquitto.conf"
                locked = f"allow_anonymous false\npassword_file {passwd}"
                config.write_text(config.read_text().replace("allow_anonymous true", locked))
                return command

        broker: Any = Locked(ps._root("mosquitto"), port=18650)
    else:

        class LockedNats(ps.PrivateNats):
            def command(self) -> list[str]:
                return [*super().command(), "--user", BROKER_USER, "--pass", BROKER_PASSWORD]

        broker = LockedNats(ps._root("nats"), port=18651)
    flow_id = f"locked_{kind}"
    engine = _store(tmp_path, flow_id)
    try:
        broker.start()
        url = broker.url().replace("://", f"://{ENCODED_USERINFO}@")
        trigger = trigger_for(kind, url=url)
        handle = Recorder(engine, flow_id)
        _listener, stop, thread = _serve(trigger, flow_id, handle)
        try:
            publish(trigger, "auth-1", b'{"n": 3}')
            assert wait_until(lambda: handle.statuses() == ["started"], timeout=30), handle.statuses()
        finally:
            stop.set()
            thread.join(timeout=30)
    finally:
        broker.kill()
        shutil.rmtree(broker.root, ignore_errors=True)
        engine.dispose()


def test_an_mqtt_retained_message_is_not_sent_again_at_each_reconnection(tmp_path: Path) -> None:
    """The listener subscribed again at every connection, so the broker sent the topic's
    retained message again at each reconnection and restart: "received before" every time,
    and a second run once its receipt was gone (retention)."""
    require_broker("mqtt")
    import paho.mqtt.client as mqtt

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"retained_{suffix}"
    engine = _store(tmp_path, flow_id)
    trigger = trigger_for("mqtt", suffix=suffix)
    assert isinstance(trigger, MqttTopic)
    handle = Recorder(engine, flow_id)
    retained = f"ductwork-test/{suffix}/state"

    def retain(body: bytes) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", 1883)
        client.loop_start()
        try:
            client.publish(retained, body, qos=1, retain=True).wait_for_publish(5)
        finally:
            client.loop_stop()
            client.disconnect()

    try:
        retain(b'{"n": 7}')
        for _ in range(3):  # a first connection, then two reconnections of the same session
            _listener, stop, thread = _serve(trigger, flow_id, handle)
            time.sleep(1.0)  # what the broker sends on subscribing comes at once
            stop.set()
            thread.join(timeout=30)
        assert handle.statuses() == ["started"], handle.statuses()
    finally:
        retain(b"")  # an empty retained message removes it
        cleanup(trigger, flow_id)
        engine.dispose()


@pytest.mark.parametrize(
    ("kind", "routing_key", "published"), [("fanout", "#", "anything"), ("direct", "orders", "orders")]
)
def test_a_flow_bound_to_an_existing_fanout_or_direct_exchange_gets_its_messages(
    tmp_path: Path, kind: str, routing_key: str, published: str
) -> None:
    """The listener declared the exchange as a topic exchange: an existing fanout or direct
    exchange (the usual way to fan events out) was refused by the broker (406, inequivalent
    type) and the listener reconnected for ever, starting nothing."""
    require_broker("rabbitmq")
    import pika

    from ductwork import RabbitMQ

    suffix = uuid.uuid4().hex[:8]
    flow_id = f"bound_{kind}_{suffix}"
    engine = _store(tmp_path, flow_id)
    trigger = RabbitMQ(exchange=f"ductwork-test-{kind}-{suffix}", routing_key=routing_key)
    connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
    channel = connection.channel()
    channel.exchange_declare(trigger.exchange, exchange_type=kind, durable=True)
    handle = Recorder(engine, flow_id)
    try:
        _listener, stop, thread = _serve(trigger, flow_id, handle)
        try:
            channel.confirm_delivery()
            channel.basic_publish(
                trigger.exchange, published, b'{"n": 5}', properties=pika.BasicProperties(message_id=f"{kind}-1")
            )
            assert wait_until(lambda: handle.statuses() == ["started"], timeout=30), handle.statuses()
        finally:
            stop.set()
            thread.join(timeout=30)
    finally:
        channel = connection.channel()
        channel.queue_delete(f"ductwork.{flow_id}")
        channel.exchange_delete(trigger.exchange)
        connection.close()
        engine.dispose()


SHARED_QUEUE_FLOWS = """
    import os
    from ductwork import EmptyOperator, Flow, RabbitMQ

    for fid in ("billing", "shipping"):
        with Flow(fid, triggers=[RabbitMQ(queue=os.environ["DUCTWORK_TEST_QUEUE"])]) as flow:
            EmptyOperator(task_id="t")
        globals()[fid] = flow
"""


def test_two_flows_on_one_named_queue_one_listens_and_gets_every_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both flows were consumers of the queue, and RabbitMQ handed each message to one of them:
    each started runs for about half of the messages, and nothing said so. One listens now (the
    first by id), every message starts its run, and the log says so once."""
    require_broker("rabbitmq")
    from ductwork import RabbitMQ

    queue = f"ductwork-test-shared-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DUCTWORK_TEST_QUEUE", queue)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "shared.py").write_text(textwrap.dedent(SHARED_QUEUE_FLOWS))
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=2)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.3), engine=engine)
    thread = threading.Thread(target=service.run, daemon=True)
    caplog.set_level("ERROR", logger="ductwork.engine.triggerer")
    thread.start()
    trigger = RabbitMQ(queue=queue)
    env = Env(tmp_path, service)
    try:
        _listening(env, "billing", trigger)
        for i in range(8):
            publish(trigger, f"m{i}", b"{}")
        assert wait_until(lambda: len(env.runs("billing")) == 8, timeout=60), len(env.runs("billing"))
        time.sleep(1.0)  # a second consumer would have taken some by now
        assert env.runs("shipping") == []
        assert env.service.triggerer is not None
        assert ("shipping", trigger.source) not in env.service.triggerer.listeners
        said = [r.getMessage() for r in caplog.records if "share the queue" in r.getMessage()]
        assert len(said) == 1 and "listening: 'billing'" in said[0], said
    finally:
        service.stop()
        thread.join(timeout=60)
        cleanup(trigger, "billing")
        engine.dispose()
