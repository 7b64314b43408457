"""Message triggers refuse, where the flow is defined, what their listener could not use."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ductwork.core.triggers import MqttTopic, NatsJetStream, RabbitMQ, RedisStream
from ductwork.errors import DefinitionError


@pytest.mark.parametrize("url", ["mqttx://127.0.0.1:1883", "mqtts://broker:8883", "127.0.0.1:1883"])
def test_an_mqtt_url_it_cannot_use_is_refused(url: str) -> None:
    """A misspelt scheme ran as plain MQTT; a TLS one would have too, unencrypted."""
    with pytest.raises(DefinitionError, match="must start with mqtt://"):
        MqttTopic(topic="a/b", url=url)


def test_mqtt_urls_it_uses_are_taken() -> None:
    assert MqttTopic(topic="a/b", url="mqtt://user:pw@127.0.0.1:1883").url.startswith("mqtt://")
    with pytest.raises(DefinitionError, match="give a topic"):
        MqttTopic(topic="")


def test_two_mqtt_triggers_of_a_flow_on_one_client_id_are_refused() -> None:
    """Both took the client id 'ductwork-<flow>': one client id is one MQTT session, so each
    connection closed the other's, for ever, and a message of one topic reached the listener of
    the other (a second run when it was delivered again to the right one)."""
    from ductwork import Flow

    with pytest.raises(DefinitionError, match=r"flow 'two_topics'.*client id.*client_id="):
        Flow("two_topics", triggers=[MqttTopic(topic="a/#"), MqttTopic(topic="b/#")])
    with pytest.raises(DefinitionError, match="client id 'same'"):
        Flow("two_named", triggers=[MqttTopic(topic="a/#", client_id="same"), MqttTopic(topic="b/#", client_id="same")])
    Flow("two_ids", triggers=[MqttTopic(topic="a/#", client_id="ca"), MqttTopic(topic="b/#", client_id="cb")])
    Flow("two_brokers", triggers=[MqttTopic(topic="a/#"), MqttTopic(topic="b/#", url="mqtt://other:1883")])


def test_two_nats_triggers_of_a_flow_on_one_durable_consumer_are_refused() -> None:
    """Both bound the durable 'ductwork_<flow>' of one stream: the second listener read the
    first one's subject under its own name, and its own subject was never added to the stream."""
    from ductwork import Flow
    from ductwork.core.triggers import NatsJetStream

    with pytest.raises(DefinitionError, match=r"flow 'two_subjects'.*durable consumer.*'S'.*durable="):
        Flow(
            "two_subjects",
            triggers=[NatsJetStream(subject="s.a", stream="S"), NatsJetStream(subject="s.b", stream="S")],
        )
    Flow(
        "two_durables",
        triggers=[
            NatsJetStream(subject="s.a", stream="S", durable="da"),
            NatsJetStream(subject="s.b", stream="S", durable="db"),
        ],
    )
    Flow("two_streams", triggers=[NatsJetStream(subject="s.a", stream="S"), NatsJetStream(subject="t.a", stream="T")])


def test_two_rabbitmq_bindings_of_a_flow_on_its_one_queue_are_refused() -> None:
    """Both bound the queue 'ductwork.<flow>': a message was handled under whichever binding's
    listener took it, so one delivered again to the other listener started a second run."""
    from ductwork import Flow
    from ductwork.core.triggers import RabbitMQ

    with pytest.raises(DefinitionError, match=r"flow 'two_keys'.*queue 'ductwork.two_keys'.*queue="):
        Flow(
            "two_keys",
            triggers=[RabbitMQ(exchange="ev", routing_key="a.*"), RabbitMQ(exchange="ev", routing_key="b.*")],
        )
    Flow(
        "two_queues",
        triggers=[
            RabbitMQ(exchange="ev", routing_key="a.*", queue="qa"),
            RabbitMQ(exchange="ev", routing_key="b.*", queue="qb"),
        ],
    )


def test_a_queue_group_durable_or_client_id_named_by_two_flows_is_found() -> None:
    """Two flows on RabbitMQ(queue="orders") were two competing consumers of one queue: the
    broker gave each message to one of them, so each flow started runs for about half of the
    messages, and nothing said so (the receipt is per flow, so both were meant to run)."""
    from ductwork.core.triggers import NatsJetStream, RabbitMQ, RedisStream, shared_between_flows

    orders = RabbitMQ(queue="orders")
    found = shared_between_flows({"shipping": [orders], "billing": [orders], "audit": [RabbitMQ(queue="other")]})
    assert [(s.words, s.flow_ids) for s in found] == [("the queue 'orders'", ("billing", "shipping"))]
    assert "RabbitMQ(exchange=..., routing_key=...)" in found[0].describe()
    assert "'billing' and 'shipping'" in found[0].describe()

    group = RedisStream(stream="s", group="g")
    durable = NatsJetStream(subject="o.*", stream="O", durable="d")
    client = MqttTopic(topic="a/#", client_id="c")
    found = shared_between_flows({"a": [group, durable, client], "b": [group, durable, client]})
    assert [s.words for s in found] == [
        "the consumer group 'g' of stream 's'",
        "the durable consumer 'd' of stream 'O'",
        "the MQTT client id 'c'",
    ]

    # What each flow gets of its own by default, or the same name on another broker, is shared by none.
    assert not shared_between_flows(
        {
            "a": [RabbitMQ(exchange="e"), RedisStream(stream="s"), NatsJetStream(subject="o.*", stream="O")],
            "b": [RabbitMQ(exchange="e"), RedisStream(stream="s"), MqttTopic(topic="a/#")],
            "c": [RabbitMQ(queue="orders", url="amqp://guest:guest@other:5672/%2F"), MqttTopic(topic="a/#")],
            "d": [RabbitMQ(queue="orders")],
        }
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: RabbitMQ(queue="orders", prefetch="10"), "prefetch must be a whole number, got '10'"),
        (lambda: RabbitMQ(queue="orders", url="http://mq:5672/"), "must start with amqp:// or amqps://"),
        (lambda: RedisStream(stream=7), "stream must be text, got 7"),
        (lambda: RedisStream(stream="s", url="redis://127.0.0.1:port/0"), "port that is not a number"),
        (lambda: RedisStream(stream="s", url="127.0.0.1:6379"), "must start with redis://"),
        (lambda: NatsJetStream(subject="orders.*", stream="S", url="http://x"), "must start with nats://"),
        (lambda: NatsJetStream(subject="orders new", stream="S"), "'orders new' is not a NATS subject"),
        (lambda: NatsJetStream(subject="orders..eu", stream="S"), "is not a NATS subject"),
        (lambda: NatsJetStream(subject="orders.>.eu", stream="S"), "is not a NATS subject"),
        (lambda: NatsJetStream(subject="orders.eu*", stream="S"), "is not a NATS subject"),
        (lambda: NatsJetStream(subject="orders.*", stream="orders.eu"), "stream 'orders.eu' is not a NATS stream"),
        (lambda: MqttTopic(topic="sensors/#/temperature"), "is not an MQTT topic filter"),
        (lambda: MqttTopic(topic="sensors/+x"), "is not an MQTT topic filter"),
    ],
)
def test_a_trigger_its_listener_cannot_use_is_refused_where_it_is_written(make: Any, says: str) -> None:
    """Taken as written, each failed only in the scheduler's listener: logged as a lost
    connection and retried every few seconds for ever (an MQTT filter killed paho's thread, and
    the listener said it was listening), while the flow started nothing and flows list was clean."""
    with pytest.raises(DefinitionError, match=re.escape(says)):
        make()


def test_triggers_as_the_readme_writes_them_are_taken() -> None:
    RabbitMQ(queue="orders", url="amqps://u:p@mq:5671/%2F", prefetch=1)
    RedisStream(stream="orders", url="rediss://cache:6380/1")
    RedisStream(stream="orders", url="unix:///run/redis.sock")
    NatsJetStream(subject="orders.*", stream="ORDERS", url="tls://nats:4222")
    NatsJetStream(subject=">", stream="ALL")
    NatsJetStream(subject="orders.*.created.>", stream="ORDERS_EU")
    MqttTopic(topic="sensors/+/temperature")
    MqttTopic(topic="#")
    MqttTopic(topic="sensors/+/+/#")
