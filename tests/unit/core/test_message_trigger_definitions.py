"""Message triggers refuse, where the flow is defined, what their listener could not use."""

from __future__ import annotations

import pytest

from ductwork.core.triggers import MqttTopic
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
