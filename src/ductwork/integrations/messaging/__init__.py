"""Listeners that turn broker messages into runs (``Flow(triggers=[...])``).

A ``Listener`` consumes one trigger of one flow and calls ``handle(message)`` for each message;
``handle`` commits the run (or the dead letter, or notices a duplicate) before it returns, and
only then does the listener acknowledge the message. When ``handle`` raises (the database is
unreachable), the message is not acknowledged and the broker delivers it again. A listener
whose broker goes away reconnects with a growing delay and carries on where the broker's
durable state says (queue, consumer group, durable consumer, persistent MQTT session).

The broker clients are optional (``pip install 'ductwork[messaging]'``) and imported only by the
listener that needs one.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from ductwork.core.connections import Secrets
from ductwork.core.triggers import MessageTrigger, MqttTopic, NatsJetStream, RabbitMQ, RedisStream
from ductwork.core.versioning import digest
from ductwork.errors import DefinitionError
from ductwork.integrations._deps import MissingDependencyError

log = logging.getLogger("ductwork.triggerer")


@dataclass(frozen=True)
class Message:
    message_id: str
    """The broker's (or sender's) id; empty when there is none (the content then identifies it)."""
    payload: bytes
    source: str


Handler = Callable[[Message], object]


def content_id_on(where: str, payload: bytes) -> str:
    """The id of a message without one that came on ``where`` (the MQTT topic, or the AMQP
    exchange and routing key it was published with) when that is not the trigger's own topic or
    routing key, but one a wildcard took: identified by its content alone (``source`` is the
    wildcard), two devices sending the same reading on ``sensors/a`` and ``sensors/b`` were one
    message, and the second started no run."""
    return f"{where}#sha256:{digest(payload)}"


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """The user name and password of ``url``, percent-decoded. A URL writes ``@``, ``:`` and
    ``/`` in a password as ``%40``, ``%3A``, ``%2F`` (a connection's URI always does), and
    ``urllib`` hands them back encoded: the MQTT and NATS clients sent them so, and the broker
    refused the password ("Not authorized") for ever."""
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return user, password


class Backoff:
    """Delays between reconnections: 0.2 s doubling to ``cap``, back to the start after a success
    (``reset``, which a listener calls once it consumes again, and which calls ``on_reset``)."""

    def __init__(self, first: float = 0.2, cap: float = 5.0, on_reset: Callable[[], None] | None = None) -> None:
        self.first, self.cap, self.current = first, cap, first
        self.on_reset = on_reset

    def next(self) -> float:
        delay = self.current
        self.current = min(self.cap, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first
        if self.on_reset is not None:
            self.on_reset()


REPEAT_WARNING = 60.0
"""Seconds between two warnings of a broker that stays away for the same reason: one per try to
reconnect (every 5 s) buried the scheduler's log under one line per listener."""


class Listener:
    """Consumes one trigger for one flow until ``stop`` is set; survives broker restarts."""

    def __init__(self, trigger: MessageTrigger, flow_id: str, secrets: Secrets | None = None) -> None:
        self.trigger = trigger
        self.flow_id = flow_id
        self.secrets = secrets
        self.connected = threading.Event()
        """Set while connected and consuming (tests and health checks look at it)."""
        self._told_no_id = False

    def without_id(self, where: str) -> None:
        """Say once that messages come without an id: each is then identified by its content,
        so a message with the payload of one received before starts no run. A publisher
        sending the same ``{}`` every day saw one run, and only "received before" lines after."""
        if self._told_no_id:
            return
        self._told_no_id = True
        log.warning(
            "flow %s: messages on %s carry no message id (%s), so each is identified by its content: one with "
            "the same payload as a message received before starts no run (for as long as receipts are kept: "
            "with the runs, and at least 8 days). Give each message an id to start one run per message",
            self.flow_id,
            self.trigger.source,
            where,
        )

    def serve(self, handle: Handler, stop: threading.Event) -> None:
        away: list[float] = []  # since when the broker is away (monotonic), while it is
        said: dict[str, float] = {}  # the cause last warned of, and when
        # Whether it ever got through: a listener whose URL, password or vhost is wrong from the
        # start said it had "lost its connection", and later that it listened "again", which sent
        # users looking for a broker outage rather than at the trigger's settings.
        reached: list[bool] = []

        def back() -> None:
            if away:
                log.info(
                    "flow %s: listening again on %s after %.0fs"
                    if reached
                    else "flow %s: listening on %s, reached after %.0fs of trying",
                    self.flow_id,
                    self.trigger.source,
                    time.monotonic() - away[0],
                )
            away.clear()
            said.clear()
            reached[:] = [True]

        backoff = Backoff(on_reset=back)
        while not stop.is_set():
            try:
                self.consume(handle, stop, backoff)
            except MissingDependencyError as exc:
                log.error("flow %s: listener on %s cannot start: %s", self.flow_id, self.trigger.source, exc)
                break
            except Exception as exc:
                self.connected.clear()
                if stop.is_set():
                    break
                delay = backoff.next()
                now = time.monotonic()
                away[:] = away or [now]
                cause = f"{type(exc).__name__}: {exc}"
                if said.get(cause, -REPEAT_WARNING) <= now - REPEAT_WARNING:
                    said.clear()
                    said[cause] = now
                    log.warning(
                        "flow %s: listener on %s lost its connection (%s); reconnecting%s"
                        if reached
                        else "flow %s: listener on %s cannot reach its broker (%s); trying again%s",
                        self.flow_id,
                        self.trigger.source,
                        cause,
                        f" (away for {now - away[0]:.0f}s)" if now - away[0] >= 1 else f" in {delay:.1f}s",
                    )
                stop.wait(delay)
        self.connected.clear()

    @property
    def url(self) -> str:
        """Where to connect: the trigger's ``conn_id`` connection when it names one, else its ``url``."""
        conn_id = self.trigger.conn_id
        if not conn_id:
            return str(getattr(self.trigger, "url", ""))
        if self.secrets is None:
            raise DefinitionError(f"flow {self.flow_id!r}: the trigger's conn_id {conn_id!r} needs a secrets backend")
        return self.secrets.get_connection(conn_id).get_uri()

    def consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        """Connect, consume until ``stop``; raise to be reconnected. Call ``backoff.reset()``
        once connected."""
        raise NotImplementedError


def listener_for(trigger: MessageTrigger, flow_id: str, secrets: Secrets | None = None) -> Listener:
    if isinstance(trigger, RabbitMQ):
        from ductwork.integrations.messaging.rabbitmq import RabbitMQListener

        return RabbitMQListener(trigger, flow_id, secrets)
    if isinstance(trigger, RedisStream):
        from ductwork.integrations.messaging.redis_streams import RedisStreamListener

        return RedisStreamListener(trigger, flow_id, secrets)
    if isinstance(trigger, NatsJetStream):
        from ductwork.integrations.messaging.nats_jetstream import NatsListener

        return NatsListener(trigger, flow_id, secrets)
    if isinstance(trigger, MqttTopic):
        from ductwork.integrations.messaging.mqtt import MqttListener

        return MqttListener(trigger, flow_id, secrets)
    raise DefinitionError(f"no listener for trigger {trigger!r}")
