"""Publishing to the real brokers from tests (and the trigger benchmark): each message with an id,
retried until the broker confirms it (a publisher retry across a broker restart may publish a
message twice: the id is what makes that harmless)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from ductwork.core.triggers import MessageTrigger, MqttTopic, NatsJetStream, RabbitMQ, RedisStream
from tests.conftest import require_service

SHARED = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "redis": "redis://127.0.0.1:6379/0",
    "nats": "nats://127.0.0.1:4222",
    "mqtt": "mqtt://127.0.0.1:1883",
}
PORTS = {"rabbitmq": 5672, "redis": 6379, "nats": 4222, "mqtt": 1883}
KINDS = tuple(SHARED)


def require_broker(kind: str) -> None:
    require_service(kind, "127.0.0.1", PORTS[kind])


def trigger_for(kind: str, url: str | None = None, suffix: str | None = None) -> MessageTrigger:
    """A trigger on names of its own (``suffix``), so that test runs never share a queue."""
    suffix = suffix or uuid.uuid4().hex[:8]
    url = url or SHARED[kind]
    if kind == "rabbitmq":
        return RabbitMQ(queue=f"ductwork-test-{suffix}", url=url)
    if kind == "redis":
        return RedisStream(stream=f"ductwork-test-{suffix}", url=url)
    if kind == "nats":
        return NatsJetStream(subject=f"ductworktest.{suffix}", stream=f"DUCTWORKTEST_{suffix}", url=url)
    return MqttTopic(topic=f"ductwork-test/{suffix}/#", url=url, client_id=f"ductwork-test-{suffix}")


def publish(trigger: MessageTrigger, message_id: str, body: bytes, *, timeout: float = 60.0) -> None:
    """Publish once the broker accepts it; retries while the broker is away."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _publish(trigger, message_id, body)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _publish(trigger: MessageTrigger, message_id: str, body: bytes) -> None:
    if isinstance(trigger, RabbitMQ):
        import pika

        params = pika.URLParameters(trigger.url)
        params.connection_attempts = 1
        params.socket_timeout = 3
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare(queue=trigger.queue, durable=True)
            channel.basic_publish(
                "", trigger.queue, body, properties=pika.BasicProperties(message_id=message_id, delivery_mode=2)
            )
        finally:
            connection.close()
    elif isinstance(trigger, RedisStream):
        import redis

        client = redis.Redis.from_url(trigger.url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.xadd(trigger.stream, {"payload": body, "message_id": message_id})
        finally:
            client.close()
    elif isinstance(trigger, NatsJetStream):
        asyncio.run(_nats_publish(trigger, message_id, body))
    elif isinstance(trigger, MqttTopic):
        _mqtt_publish(trigger, message_id, body)


def _credentials(url: str) -> tuple[str | None, str | None]:
    """The URL's user name and password, percent-decoded (``urllib`` leaves them encoded)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return (
        unquote(parts.username) if parts.username is not None else None,
        unquote(parts.password) if parts.password is not None else None,
    )


async def _nats_publish(trigger: NatsJetStream, message_id: str, body: bytes) -> None:
    import nats

    user, password = _credentials(trigger.url)
    auth = {"user": user, "password": password} if user and password is not None else {}
    nc = await nats.connect(trigger.url, connect_timeout=3, allow_reconnect=False, **auth)
    try:
        js = nc.jetstream(timeout=3)
        await js.publish(trigger.subject, body, headers={"Nats-Msg-Id": message_id})
    finally:
        await nc.close()


def _mqtt_publish(trigger: MqttTopic, message_id: str, body: bytes) -> None:
    from urllib.parse import urlparse

    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    url = urlparse(trigger.url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    user, password = _credentials(trigger.url)
    if user:
        client.username_pw_set(user, password)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883, keepalive=10)
    client.loop_start()
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("message-id", message_id)
        topic = trigger.topic.replace("/#", "/orders").replace("+", "x")
        info = client.publish(topic, body, qos=1, properties=props)
        info.wait_for_publish(timeout=5)
        if not info.is_published():
            raise ConnectionError("the MQTT broker did not acknowledge the message")
    finally:
        client.loop_stop()
        client.disconnect()


def cleanup(trigger: MessageTrigger, flow_id: str) -> None:
    """Remove what a test created on a shared broker (best effort)."""
    try:
        _cleanup(trigger, flow_id)
    except Exception:
        pass


def _cleanup(trigger: MessageTrigger, flow_id: str) -> None:
    if isinstance(trigger, RabbitMQ):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(trigger.url))
        connection.channel().queue_delete(trigger.queue)
        connection.close()
    elif isinstance(trigger, RedisStream):
        import redis

        client = redis.Redis.from_url(trigger.url)
        client.delete(trigger.stream)
        client.close()
    elif isinstance(trigger, NatsJetStream):

        async def drop() -> None:
            import nats

            nc = await nats.connect(trigger.url)
            await nc.jetstream().delete_stream(trigger.stream)
            await nc.close()

        asyncio.run(drop())
    elif isinstance(trigger, MqttTopic):
        import paho.mqtt.client as mqtt

        # A clean session with the same client id ends the persistent one the listener kept.
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=trigger.client_id, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", 1883, clean_start=True)
        client.disconnect()


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
