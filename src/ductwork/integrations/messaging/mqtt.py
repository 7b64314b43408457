"""MQTT topics (paho-mqtt), QoS 1 in a persistent MQTT 5 session with manual acknowledgements:
the broker keeps messages published while the listener is away and delivers again those not
acknowledged, and a message is acknowledged only after its run was recorded."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any
from urllib.parse import urlparse

from ductwork.core.connections import Secrets
from ductwork.core.triggers import MqttTopic
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message, content_id_on, url_credentials

SESSION_EXPIRY = 7 * 24 * 3600
UNSPECIFIED = 128
SESSION_TAKEN_OVER = 142
"""MQTT 5 reason codes of a disconnection (128 is also what paho says when the socket closes)."""


log = logging.getLogger("ductwork.triggerer")


class MqttListener(Listener):
    trigger: MqttTopic

    def __init__(self, trigger: MqttTopic, flow_id: str, secrets: Secrets | None = None) -> None:
        super().__init__(trigger, flow_id, secrets)
        self._warned: set[str] = set()
        """The topics of old subscriptions already warned of (one line each)."""

    def client_id(self) -> str:
        return self.trigger.client_id_for(self.flow_id)

    def consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        mqtt: Any = require("paho.mqtt.client", extra="messaging", what=f"flow {self.flow_id!r}: MqttTopic trigger")
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        from paho.mqtt.subscribeoptions import SubscribeOptions

        address = self.url  # a connection's is looked up once
        url = urlparse(address)
        inbox: queue.Queue[Any] = queue.Queue()
        lost: list[str] = []
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id(),
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        user, password = url_credentials(address)
        if user:
            client.username_pw_set(user, password)
        topic = self.trigger.topic

        def on_connect(cl: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if getattr(reason, "is_failure", False):
                lost.append(f"connection refused: {reason}")
                return
            # Retained messages only when the session did not hold the subscription yet: re-made
            # at every connection, it had the broker send the topic's retained message again at
            # each reconnection and restart, a run again once its receipt was gone.
            cl.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))

        def on_disconnect(_cl: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
            lost.append(f"disconnected: {reason}{self._taken_over(reason)}")

        def on_subscribe(_cl: Any, _userdata: Any, _mid: Any, _reasons: Any, _props: Any) -> None:
            self.connected.set()  # from now on the broker keeps the topic's messages for us
            backoff.reset()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = lambda _cl, _ud, msg: inbox.put(msg)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY
        try:
            client.connect(
                url.hostname or "127.0.0.1", url.port or 1883, keepalive=15, clean_start=False, properties=props
            )
        except OSError as exc:  # "Connection refused" alone does not say where
            from ductwork.settings import redact_url

            raise ConnectionError(f"cannot connect to {redact_url(self.url)}: {exc}") from None
        client.loop_start()
        try:
            while not stop.is_set():
                if lost:
                    raise ConnectionError(lost[0])
                try:
                    msg = inbox.get(timeout=0.3)
                except queue.Empty:
                    continue
                if not self._stale(mqtt, client, msg.topic):
                    message_id = _message_id(msg)
                    if not message_id:
                        self.without_id("the MQTT 5 user property 'message-id'")
                        if msg.topic != self.trigger.topic:  # taken by a wildcard: the topic is part of it
                            message_id = content_id_on(msg.topic, bytes(msg.payload))
                    handle(Message(message_id, bytes(msg.payload), self.trigger.source))
                client.ack(msg.mid, msg.qos)
        finally:
            self.connected.clear()
            client.loop_stop()
            try:
                client.disconnect()
            except Exception:
                pass

    def _taken_over(self, reason: Any) -> str:
        """What to add to a disconnection that may be another client taking the session: a
        broker closes the older connection of a client id when a newer one connects (Mosquitto
        without a word, "Unspecified error"), so two schedulers or triggerers listening for one
        flow disconnected each other every second under a warning that did not say why."""
        if self.connected.is_set() and getattr(reason, "value", None) in (SESSION_TAKEN_OVER, UNSPECIFIED):
            return (
                f"; if this repeats, another client connects with the client id {self.client_id()!r} (one "
                "connection per client id: a second scheduler or triggerer listening for this flow? run the "
                "MQTT listeners in one `ductwork triggerer`, or give this trigger its own client_id)"
            )
        return ""

    def _stale(self, mqtt: Any, client: Any, topic: str) -> bool:
        """Whether a message came through a subscription the trigger no longer has. The
        persistent session keeps its subscriptions when the trigger's topic changes, so the
        messages of the old topic went on starting runs. Such a message is acknowledged without
        a run, and the old subscription dropped when it was this topic exactly; one with
        wildcards cannot be listed over MQTT, so the warning says how to end it."""
        if mqtt.topic_matches_sub(_filter_of(self.trigger.topic), topic):
            return False
        client.unsubscribe(topic)
        if topic not in self._warned:
            self._warned.add(topic)
            log.warning(
                "flow %s: a message on %r came through an old subscription of the session %r (the trigger "
                "subscribes to %r): acknowledged without a run, and that subscription dropped if it was this "
                "topic; one with wildcards stays until the session ends (connect once with this client id and "
                "a clean start, or give the trigger another client_id)",
                self.flow_id,
                topic,
                self.client_id(),
                self.trigger.topic,
            )
        return True


def _filter_of(topic: str) -> str:
    """The topic filter of a subscription: a shared one (``$share/<group>/<filter>``) without
    its group."""
    if topic.startswith("$share/"):
        return topic.split("/", 2)[2] if topic.count("/") >= 2 else topic
    return topic


def _message_id(msg: Any) -> str:
    """The MQTT 5 user property ``message-id``; else empty (the content identifies the message)."""
    props = getattr(msg, "properties", None)
    for key, value in getattr(props, "UserProperty", None) or []:
        if key == "message-id":
            return str(value)
    return ""
