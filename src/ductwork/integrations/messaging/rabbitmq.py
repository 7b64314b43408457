"""RabbitMQ: a durable queue (or a flow's own queue bound to an exchange), consumed with manual
acknowledgements (pika). Unacknowledged messages go back to the queue when the connection drops."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any

from ductwork.core.connections import Secrets
from ductwork.core.triggers import RabbitMQ
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message, content_id_on

log = logging.getLogger("ductwork.triggerer")

OWN_QUEUE_EXPIRY = 7 * 24 * 3600
"""Seconds a flow's own queue (``ductwork.<flow>``) outlives its last listener, as an MQTT
session does (``mqtt.SESSION_EXPIRY``): a paused flow, a file that fails to import or a
scheduler stopped for a day keep their messages, but a removed flow's queue is deleted by the
broker instead of staying bound and filling for ever."""


class RabbitMQListener(Listener):
    trigger: RabbitMQ

    def __init__(self, trigger: RabbitMQ, flow_id: str, secrets: Secrets | None = None) -> None:
        super().__init__(trigger, flow_id, secrets)
        self._warned: set[tuple[str, str]] = set()
        """The old bindings already warned of (one line each, not one per message)."""
        self._warned_old_queue = False
        """Whether the flow's own queue, made without an expiry, was warned of."""

    def queue_name(self) -> str:
        return self.trigger.queue_for(self.flow_id)

    @property
    def url(self) -> str:
        """The trigger's ``url``, or its connection's URI with the virtual host as AMQP writes it.

        AMQP's path is one segment, the vhost with its ``/`` written ``%2F``; a connection's URI
        keeps a schema's slashes, so ``amqp://...:5672/%2F`` (the default vhost, as the README
        shows it) came back as ``...:5672//``, which pika reads as the vhost ``""``: the broker
        refused it (530, vhost not found) and the listener reconnected for ever."""
        url = super().url
        if not self.trigger.conn_id:
            return url
        assert self.secrets is not None  # super().url raised without one
        vhost = self.secrets.get_connection(self.trigger.conn_id).schema
        if not vhost:
            return url
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))

    def consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        pika: Any = require("pika", extra="messaging", what=f"flow {self.flow_id!r}: RabbitMQ trigger")
        params = pika.URLParameters(self.url)
        params.heartbeat = 30
        params.blocked_connection_timeout = 30
        params.connection_attempts = 1
        params.socket_timeout = 5
        quiet = logging.getLogger("pika")
        if quiet.level == logging.NOTSET:  # pika logs a traceback per failed attempt and pages per connection
            quiet.setLevel(logging.CRITICAL)
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:  # str() of a refused connection is empty
            from ductwork.settings import redact_url

            reason = str(exc) or "; ".join(str(arg) or repr(arg) for arg in exc.args) or type(exc).__name__
            raise ConnectionError(f"cannot connect to {redact_url(self.url)}: {reason}") from None
        try:
            queue = self.queue_name()
            channel = self._declare(pika, connection, queue)
            if self.trigger.exchange:
                channel = self._declare_exchange(pika, connection, channel)
                channel.queue_bind(queue=queue, exchange=self.trigger.exchange, routing_key=self.trigger.routing_key)
            channel.basic_qos(prefetch_count=max(1, self.trigger.prefetch))
            self.connected.set()
            backoff.reset()
            for method, properties, body in channel.consume(queue, inactivity_timeout=0.5):
                if stop.is_set():
                    break
                if method is None:
                    continue
                if self._stale(connection, queue, method.exchange, method.routing_key):
                    channel.basic_ack(method.delivery_tag)
                    continue
                message_id = getattr(properties, "message_id", None) or ""
                if not message_id:
                    self.without_id("the AMQP message_id property")
                    if method.exchange and (method.exchange, method.routing_key) != (
                        self.trigger.exchange,
                        self.trigger.routing_key,
                    ):  # taken by a wildcard binding (or another binding of a named queue)
                        message_id = content_id_on(f"{method.exchange}/{method.routing_key}", bytes(body))
                handle(Message(str(message_id), bytes(body), self.trigger.source))
                channel.basic_ack(method.delivery_tag)
            channel.cancel()
        finally:
            self.connected.clear()
            if connection.is_open:
                try:
                    connection.close()
                except Exception:
                    pass

    def _declare(self, pika: Any, connection: Any, queue: str) -> Any:
        """Declare the queue and return a channel to consume it on. A queue named in the trigger
        that exists is taken as it is: declared with no arguments, a quorum queue (or one with a
        message TTL or a dead-letter exchange) was refused by the broker (406, inequivalent
        argument) and the listener reconnected every 5 s for ever, as if the broker were away.
        The flow's own queue is made with an expiry (``OWN_QUEUE_EXPIRY``); one made before
        without it is used as it is, with a warning that it outlives the flow."""
        channel = connection.channel()
        if self.trigger.queue:
            try:
                channel.queue_declare(queue=queue, passive=True)
                return channel
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
            channel = connection.channel()
            channel.queue_declare(queue=queue, durable=True)
            return channel
        try:
            channel.queue_declare(queue=queue, durable=True, arguments={"x-expires": OWN_QUEUE_EXPIRY * 1000})
            return channel
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:
                raise
            reason = exc.reply_text
        channel = connection.channel()
        channel.queue_declare(queue=queue, passive=True)
        if not self._warned_old_queue:
            self._warned_old_queue = True
            log.warning(
                "flow %s: the queue %r was made without the expiry Ductwork gives a flow's own queue now (%s), "
                "so it stays bound to %r and fills if the flow is removed. To give it one, set a policy: "
                "rabbitmqctl set_policy ductwork-queues '^ductwork\\.' '{\"expires\": %d}' --apply-to queues",
                self.flow_id,
                queue,
                reason,
                self.trigger.exchange,
                OWN_QUEUE_EXPIRY * 1000,
            )
        return channel

    def _declare_exchange(self, pika: Any, connection: Any, channel: Any) -> Any:
        """Make sure the trigger's exchange exists and return a channel to go on with. One that
        exists is taken as it is: declared as a topic exchange, a fanout, direct or headers
        exchange of the user's was refused by the broker (406, inequivalent type) and the listener
        reconnected for ever. One that does not exist is made a durable topic exchange."""
        try:
            channel.exchange_declare(exchange=self.trigger.exchange, passive=True)
            return channel
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        channel = connection.channel()  # the broker closed the one the passive declaration was on
        channel.exchange_declare(exchange=self.trigger.exchange, exchange_type="topic", durable=True)
        return channel

    def _stale(self, connection: Any, queue: str, exchange: str, routing_key: str) -> bool:
        """Whether a message reached the flow's own queue through a binding the trigger no
        longer has. A queue keeps its bindings when the trigger's routing key or exchange
        changes, so the messages of the old one went on starting runs. Such a message is
        acknowledged without a run, and the old binding is removed when it was this routing key
        exactly; one with wildcards cannot be found over AMQP, so the warning says how to
        remove it. A queue named in the trigger (``queue=...``) is the user's, with whatever
        bindings they gave it: its messages are all taken."""
        trigger = self.trigger
        if trigger.queue or not trigger.exchange or not exchange:  # the default exchange: sent to this queue by name
            return False
        if exchange == trigger.exchange and topic_matches(trigger.routing_key, routing_key):
            return False
        try:  # on a channel of its own: an exchange deleted since closes the channel it is named on
            side = connection.channel()
            try:
                side.queue_unbind(queue=queue, exchange=exchange, routing_key=routing_key)
            finally:
                if side.is_open:
                    side.close()
        except Exception as exc:  # the exchange is gone: nothing to unbind
            log.debug("flow %s: unbinding %s/%s from %s: %s", self.flow_id, exchange, routing_key, queue, exc)
        if (exchange, routing_key) not in self._warned:
            self._warned.add((exchange, routing_key))
            log.warning(
                "flow %s: a message from exchange %r with routing key %r reached the queue %r through an old "
                "binding (the trigger binds %r with %r): acknowledged without a run, and the binding %r removed "
                "if it was one; a binding with wildcards stays until removed by hand (rabbitmqctl list_bindings, "
                "then rabbitmqadmin delete binding, or the management UI)",
                self.flow_id,
                exchange,
                routing_key,
                queue,
                trigger.exchange,
                trigger.routing_key,
                routing_key,
            )
        return True


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic exchange routes ``routing_key`` to a binding of ``pattern`` (``*`` one
    word, ``#`` none or more)."""
    words, keys = pattern.split("."), routing_key.split(".")
    # reachable[j]: the first i words of the pattern can take the first j words of the key
    reachable = [True] + [False] * len(keys)
    for word in words:
        if word == "#":
            for j in range(1, len(keys) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            reachable = [False] + [
                reachable[j - 1] and (word == "*" or word == keys[j - 1]) for j in range(1, len(keys) + 1)
            ]
    return reachable[len(keys)]
