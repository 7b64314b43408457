"""Message sources that start runs: what a flow declares with ``Flow(triggers=[...])``.

Each class here is plain data (the listener that uses it lives in
``ductwork.integrations.messaging``, imported only by the process that listens): where to
listen, and a ``source`` name that, with the flow id and the message id, identifies a message
for de-duplication. Every message's payload (a JSON object) becomes the run's parameters,
validated against the flow's typed parameters; a message that does not fit is dead-lettered
with the reason (ADR 0014).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from ductwork.errors import DefinitionError

MQTT_CLIENT_ID_MAX = 64
"""The longest client id a listener makes up (brokers may refuse longer ones)."""


@dataclass(frozen=True)
class MessageTrigger:
    """A source of messages; subclasses name the broker and where to listen on it."""

    kind: ClassVar[str] = ""
    conn_id: str = ""
    """A connection (``ductwork connections``, ``DUCTWORK_CONN_<ID>``) whose URI replaces ``url``,
    so that no password is written in the flow (or recorded with its graph)."""

    @property
    def source(self) -> str:
        """A short, stable name of the place messages come from (``rabbitmq:orders``)."""
        raise NotImplementedError

    def _check(self, url_text: str, schemes: tuple[str, ...], example: str) -> None:
        """Refuse, where the flow is defined, an option of the wrong type and a ``url`` its
        listener cannot use. Taken as written, they failed only in the scheduler's listener:
        ``prefetch="10"``, an ``http://`` URL or a port that is not a number were logged as a
        lost connection, retried every 5 s for ever, and the flow started nothing."""
        name = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            wanted = {"str": str, "int": int}.get(str(f.type))
            if wanted is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
                raise DefinitionError(
                    f"{name} trigger: {f.name} must be {'text' if wanted is str else 'a whole number'}, got {value!r}"
                )
        url = urllib.parse.urlsplit(url_text) if "://" in url_text else None
        if url is None or url.scheme not in schemes:
            starts = " or ".join(f"{scheme}://" for scheme in schemes)
            raise DefinitionError(f"{name} trigger: url {url_text!r} must start with {starts} ({example})")
        try:
            url.port  # noqa: B018  (raises for a port that is not a number)
        except ValueError:
            raise DefinitionError(
                f"{name} trigger: url {url_text!r} has a port that is not a number ({example})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def describe(self) -> str:
        return self.source

    shared_hint: ClassVar[str] = ""
    """What to write so that each of several flows gets a place of its own on the broker."""

    def held(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        """What the flow's listener holds on the broker (a queue, a consumer group, a durable
        consumer, a session), as a key and as words naming it; None when nothing."""
        return None

    def owned_by(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        """What the flow's listener holds on the broker on its own (a queue, a durable consumer,
        a session), as a key and as words naming it and the option that gives another; None
        when nothing. Two triggers of one flow with one key would share it (ADR 0014)."""
        return None


@dataclass(frozen=True)
class RabbitMQ(MessageTrigger):
    """A RabbitMQ queue, or an exchange binding (the flow gets a durable queue of its own,
    ``queue`` or ``ductwork.<flow id>``, bound with ``routing_key``). The message id is the
    AMQP ``message_id`` property (a message without one is identified by its content)."""

    kind: ClassVar[str] = "rabbitmq"
    queue: str = ""
    exchange: str = ""
    routing_key: str = "#"
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    prefetch: int = 10

    def __post_init__(self) -> None:
        self._check(self.url, ("amqp", "amqps"), "amqp://user:password@host:5672/%2F")
        if not self.queue and not self.exchange:
            raise DefinitionError("RabbitMQ trigger: give a queue, or an exchange to bind to")

    @property
    def source(self) -> str:
        return f"rabbitmq:{self.queue}" if self.queue else f"rabbitmq:exchange/{self.exchange}/{self.routing_key}"

    def queue_for(self, flow_id: str) -> str:
        """The queue the flow's listener consumes: ``queue``, else one of the flow's own."""
        return self.queue or f"ductwork.{flow_id}"

    shared_hint: ClassVar[str] = (
        "bind each flow to the exchange the messages are published to instead "
        "(RabbitMQ(exchange=..., routing_key=...)): each flow then gets a queue of its own and every message"
    )

    def held(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        queue = self.queue_for(flow_id)
        return ("rabbitmq", self.conn_id or self.url, queue), f"the queue {queue!r}"

    def owned_by(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        key, words = self.held(flow_id) or ((), "")
        return key, f"{words} (give queue=...)"


@dataclass(frozen=True)
class RedisStream(MessageTrigger):
    """A Redis stream read through a consumer group (created when missing). The message id is
    the entry's ``message_id`` field, else the entry id; entries stay pending until their run is
    recorded, so a listener that dies re-reads them."""

    kind: ClassVar[str] = "redis"
    stream: str = ""
    group: str = ""
    consumer: str = "ductwork"
    url: str = "redis://127.0.0.1:6379/0"
    field: str = "payload"
    """The entry field holding the JSON payload; without it, the entry's fields are the payload."""

    def __post_init__(self) -> None:
        self._check(self.url, ("redis", "rediss", "unix"), "redis://host:6379/0")
        if not self.stream:
            raise DefinitionError("RedisStream trigger: give the stream's name")

    @property
    def source(self) -> str:
        return f"redis:{self.stream}"

    def group_for(self, flow_id: str) -> str:
        """The consumer group the flow's listener reads with: ``group``, else ``ductwork.<flow id>``."""
        return self.group or f"ductwork.{flow_id}"

    shared_hint: ClassVar[str] = (
        "leave group out (each flow then reads with a group of its own, 'ductwork.<flow id>', and gets every "
        "entry) or give each flow its own group"
    )

    def held(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        group = self.group_for(flow_id)
        return ("redis", self.conn_id or self.url, self.stream, group), (
            f"the consumer group {group!r} of stream {self.stream!r}"
        )


@dataclass(frozen=True)
class NatsJetStream(MessageTrigger):
    """A NATS JetStream subject, read by a durable pull consumer. The stream is created with
    that subject when it does not exist. The message id is the ``Nats-Msg-Id`` header, else the
    stream sequence number with the stream's creation time. A stream or durable consumer deleted
    on the server is made again."""

    kind: ClassVar[str] = "nats"
    subject: str = ""
    stream: str = ""
    durable: str = ""
    url: str = "nats://127.0.0.1:4222"

    def __post_init__(self) -> None:
        self._check(self.url, ("nats", "tls", "ws", "wss"), "nats://host:4222")
        if not self.subject or not self.stream:
            raise DefinitionError("NatsJetStream trigger: give a subject and the stream that holds it")
        tokens = self.subject.split(".")
        if (
            any(ch.isspace() for ch in self.subject)
            or "" in tokens
            or any(("*" in t or ">" in t) and t not in ("*", ">") for t in tokens)
            or ">" in tokens[:-1]
        ):
            raise DefinitionError(
                f"NatsJetStream trigger: subject {self.subject!r} is not a NATS subject: words joined by '.', "
                "no spaces, '*' for one whole word, '>' only as the last word ('orders.*', 'orders.>')"
            )
        bad = sorted({ch for ch in self.stream if ch.isspace() or ch in ".*>/\\"})
        if bad:
            raise DefinitionError(
                f"NatsJetStream trigger: stream {self.stream!r} is not a NATS stream name: it may not hold "
                f"{' '.join(repr(ch) for ch in bad)} (write 'ORDERS_EU' for 'orders.eu')"
            )

    @property
    def source(self) -> str:
        return f"nats:{self.stream}/{self.subject}"

    def durable_for(self, flow_id: str) -> str:
        """The durable consumer's name: ``durable``, else ``ductwork_<flow id>``. A flow id with
        characters NATS does not take in a name (``.``) gets them as ``_`` and a hash of the
        whole id after them: made ``_`` alone, ``orders.eu`` and ``orders_eu`` had one durable,
        and each message of the stream started a run of one of the two flows only. Ids without
        such characters keep the name they had (``legacy_durable_for`` is the old one of the
        others, which a listener starts its new durable from, so nothing is read twice)."""
        if self.durable:
            return _nats_name(self.durable)
        name = _nats_name(f"ductwork_{flow_id}")
        if name == f"ductwork_{flow_id}":
            return name
        return f"{name}_{hashlib.sha256(flow_id.encode()).hexdigest()[:8]}"

    def legacy_durable_for(self, flow_id: str) -> str | None:
        """The durable name that earlier versions made up for ``flow_id`` when it differs from
        ``durable_for``'s (a flow id with ``.``, no ``durable``); else None."""
        if self.durable:
            return None
        old = _nats_name(f"ductwork_{flow_id}")
        return old if old != self.durable_for(flow_id) else None

    shared_hint: ClassVar[str] = (
        "leave durable out (each flow then gets a durable consumer of its own, 'ductwork_<flow id>', and every "
        "message) or give each flow its own durable"
    )

    def held(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        durable = self.durable_for(flow_id)
        return (
            ("nats", self.conn_id or self.url, self.stream, durable),
            f"the durable consumer {durable!r} of stream {self.stream!r}",
        )

    def owned_by(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        key, words = self.held(flow_id) or ((), "")
        return key, f"{words} (give durable=..., or listen on one subject that covers both, such as 'orders.>')"


def _nats_name(name: str) -> str:
    """``name`` with the characters NATS does not take in a consumer name as ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


@dataclass(frozen=True)
class MqttTopic(MessageTrigger):
    """An MQTT topic (filters with ``+``/``#`` allowed), subscribed with QoS 1 in a persistent
    session, so messages published while the listener is away are kept by the broker. The
    message id is the MQTT 5 user property ``message-id``, else the message's content."""

    kind: ClassVar[str] = "mqtt"
    topic: str = ""
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = ""

    def __post_init__(self) -> None:
        # a typo in the scheme must not fall back to something else unnoticed
        self._check(self.url, ("mqtt", "tcp"), "TLS, mqtts://, is not supported")
        if not self.topic:
            raise DefinitionError("MqttTopic trigger: give a topic")
        levels = self.topic.split("/")
        if (
            "\0" in self.topic
            or any(("#" in lv or "+" in lv) and lv not in ("#", "+") for lv in levels)
            or "#" in levels[:-1]
        ):
            # paho raised this in its network thread, which died: the listener said it was
            # listening and received nothing, for ever.
            raise DefinitionError(
                f"MqttTopic trigger: topic {self.topic!r} is not an MQTT topic filter: '+' stands for one whole "
                "level, '#' only for the last ('sensors/+/temperature', 'sensors/#')"
            )

    @property
    def source(self) -> str:
        return f"mqtt:{self.topic}"

    def client_id_for(self, flow_id: str) -> str:
        """The MQTT client id, which names the persistent session: ``client_id``, else
        ``ductwork-<flow id>``. Past 64 characters it is cut and ends with a hash of the whole
        flow id: cut alone, two flows whose ids begin alike got one id, so one session, and their
        listeners took it from each other for ever (each flow got the other's messages too)."""
        if self.client_id:
            return self.client_id
        name = f"ductwork-{flow_id}"
        if len(name) <= MQTT_CLIENT_ID_MAX:
            return name
        tag = hashlib.sha256(flow_id.encode()).hexdigest()[:8]
        return f"{name[: MQTT_CLIENT_ID_MAX - len(tag) - 1]}-{tag}"

    shared_hint: ClassVar[str] = (
        "leave client_id out (each flow then gets a session of its own, 'ductwork-<flow id>', and every "
        "message) or give each flow its own client_id"
    )

    def held(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        client = self.client_id_for(flow_id)
        return ("mqtt", self.conn_id or self.url, client), f"the MQTT client id {client!r}"

    def owned_by(self, flow_id: str) -> tuple[tuple[str, ...], str] | None:
        key, words = self.held(flow_id) or ((), "")
        return key, (
            f"{words}, which is one session: they would disconnect each other "
            "(give client_id=..., or listen on one topic filter that covers both, such as 'sensors/#')"
        )


_KINDS: dict[str, type[MessageTrigger]] = {cls.kind: cls for cls in (RabbitMQ, RedisStream, NatsJetStream, MqttTopic)}


def trigger_from_dict(data: Mapping[str, Any]) -> MessageTrigger:
    kind = data.get("kind")
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise DefinitionError(f"unknown message trigger kind {kind!r}; known: {', '.join(sorted(_KINDS))}")
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def as_triggers(value: Sequence[Any] | None, *, where: str, flow_id: str = "") -> tuple[MessageTrigger, ...]:
    if not value:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    out: list[MessageTrigger] = []
    for item in items:
        if not isinstance(item, MessageTrigger):
            raise DefinitionError(
                f"{where}: triggers must be RabbitMQ(...), RedisStream(...), NatsJetStream(...) or MqttTopic(...), "
                f"got {item!r}"
            )
        out.append(item)
    sources = [t.source for t in out]
    duplicate = next((s for s in sources if sources.count(s) > 1), None)
    if duplicate:
        raise DefinitionError(f"{where}: two triggers listen on {duplicate}")
    _refuse_shared_broker_state(out, where, flow_id)
    return tuple(out)


def _refuse_shared_broker_state(triggers: Sequence[MessageTrigger], where: str, flow_id: str) -> None:
    """Two triggers whose listeners would hold one queue, durable consumer or MQTT session
    each take the other's messages under their own source, so a message delivered again to the
    other one starts a second run (and two MQTT connections of one client id close each other
    for ever): refused where the flow is defined."""
    seen: dict[tuple[str, ...], MessageTrigger] = {}
    for trigger in triggers:
        owned = trigger.owned_by(flow_id)
        if owned is None:
            continue
        key, words = owned
        first = seen.setdefault(key, trigger)
        if first is not trigger:
            raise DefinitionError(f"{where}: the triggers on {first.source} and {trigger.source} would share {words}")


@dataclass(frozen=True)
class SharedBetweenFlows:
    """A queue, consumer group, durable consumer or MQTT client id that the triggers of several
    flows name (``shared_between_flows``)."""

    trigger: MessageTrigger
    """One of the triggers (each names the same place on the same broker)."""
    words: str
    """What it is, as ``the queue 'orders'``."""
    flow_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        kind = self.trigger.kind
        what = {
            "rabbitmq": "RabbitMQ hands each message of a queue to one of its consumers",
            "redis": "a consumer group hands each entry to one of its readers",
            "nats": "a durable consumer hands each message to one of its readers",
            "mqtt": "one client id is one session, so their listeners disconnect each other",
        }.get(kind, "the broker hands each message to one of them")
        flows = ", ".join(repr(f) for f in self.flow_ids[:-1]) + f" and {self.flow_ids[-1]!r}"
        return (
            f"flows {flows} share {self.words}: {what}, so only one of them listens there (the others start no "
            f"run from it); {self.trigger.shared_hint}"
        )


def shared_between_flows(triggers_by_flow: Mapping[str, Sequence[MessageTrigger]]) -> list[SharedBetweenFlows]:
    """The places on a broker that the listeners of more than one flow would hold. A receipt is
    kept per flow (ADR 0014) so that one message starts a run of each flow bound to it; but two
    flows naming one queue (``RabbitMQ(queue="orders")`` in both), one consumer group, one
    durable consumer or one MQTT client id are competing consumers on the broker, which gives
    each message to one of them: each flow quietly got about half of the messages. Only a
    check across flows finds this (``as_triggers`` refuses it within one flow)."""
    holders: dict[tuple[str, ...], tuple[MessageTrigger, str, list[str]]] = {}
    for flow_id in sorted(triggers_by_flow):
        for trigger in triggers_by_flow[flow_id]:
            held = trigger.held(flow_id)
            if held is None:
                continue
            key, words = held
            _, _, flows = holders.setdefault(key, (trigger, words, []))
            if flow_id not in flows:
                flows.append(flow_id)
    return [
        SharedBetweenFlows(trigger, words, tuple(flows)) for trigger, words, flows in holders.values() if len(flows) > 1
    ]
