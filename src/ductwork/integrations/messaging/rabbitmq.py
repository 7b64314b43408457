"""RabbitMQ: a durable queue (or a flow's own queue bound to an exchange), consumed with manual
acknowledgements (pika). Unacknowledged messages go back to the queue when the connection drops."""

from __future__ import annotations

import logging
import threading
from typing import Any

from ductwork.core.triggers import RabbitMQ
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message


class RabbitMQListener(Listener):
    trigger: RabbitMQ

    def queue_name(self) -> str:
        return self.trigger.queue_for(self.flow_id)

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
            channel = connection.channel()
            queue = self.queue_name()
            channel.queue_declare(queue=queue, durable=True)
            if self.trigger.exchange:
                channel.exchange_declare(exchange=self.trigger.exchange, exchange_type="topic", durable=True)
                channel.queue_bind(queue=queue, exchange=self.trigger.exchange, routing_key=self.trigger.routing_key)
            channel.basic_qos(prefetch_count=max(1, self.trigger.prefetch))
            self.connected.set()
            backoff.reset()
            for method, properties, body in channel.consume(queue, inactivity_timeout=0.5):
                if stop.is_set():
                    break
                if method is None:
                    continue
                message_id = getattr(properties, "message_id", None) or ""
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
