"""NATS JetStream (nats-py): a durable pull consumer on a stream (created with the subject when
it does not exist). A message is acknowledged after its run was recorded; one whose recording
failed is negatively acknowledged, so JetStream delivers it again at once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from ductwork.core.triggers import NatsJetStream
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message, url_credentials

log = logging.getLogger("ductwork.triggerer")

ACK_WAIT = 30.0
CONNECT_WITHIN = 10.0
"""Seconds the first connection may take before the listener says it failed and backs off."""
CHECK_EVERY = 5.0
"""Seconds between two looks, while nothing arrives, at whether the durable consumer is still
there: a fetch from a consumer (or stream) deleted on the server only times out, as from an idle
one, so a listener would wait on nothing for ever."""


class NatsListener(Listener):
    trigger: NatsJetStream

    def durable_name(self) -> str:
        return self.trigger.durable_for(self.flow_id)

    def consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        require("nats", extra="messaging", what=f"flow {self.flow_id!r}: NatsJetStream trigger")
        asyncio.run(self._consume(handle, stop, backoff))

    async def _consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        import nats
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import ConsumerConfig, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        lost: list[str] = []
        errors: list[BaseException] = []

        async def disconnected() -> None:
            lost.append("disconnected")

        async def failed(exc: BaseException) -> None:  # the client's own log is a traceback per attempt
            errors.append(exc)

        address = self.url  # a connection's is looked up once
        user, password = url_credentials(address)
        # Given decoded, they take the place of the URL's (which nats-py sends as written, %40 and all).
        auth: dict[str, str] = {}
        if user and password is not None:
            auth = {"user": user, "password": password}
        elif user:
            auth = {"token": user}  # nats://TOKEN@host
        try:
            nc = await asyncio.wait_for(
                nats.connect(
                    address,
                    **auth,
                    connect_timeout=5,
                    allow_reconnect=False,
                    disconnected_cb=disconnected,
                    error_cb=failed,
                    max_reconnect_attempts=0,
                ),
                timeout=CONNECT_WITHIN,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:  # it retries the first connect for ever
            from ductwork.settings import redact_url

            reason = errors[-1] if errors else exc
            raise ConnectionError(f"cannot connect to {redact_url(self.url)}: {reason}") from None
        try:
            js = nc.jetstream(timeout=5)
            stream, durable = self.trigger.stream, self.durable_name()
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                info = await js.add_stream(
                    StreamConfig(name=stream, subjects=[self.trigger.subject], storage=StorageType.FILE)
                )
            else:
                await self._hold_subject(js, info)
            await self._take_over_legacy(js, stream, durable)
            await self._follow_subject(js, stream, durable)
            made = _made_at(info)
            sub = await js.pull_subscribe(
                self.trigger.subject, durable=durable, stream=stream, config=ConsumerConfig(ack_wait=ACK_WAIT)
            )
            self.connected.set()
            backoff.reset()
            next_check = time.monotonic() + CHECK_EVERY
            while not stop.is_set():
                if lost or not nc.is_connected:
                    raise ConnectionError("lost the connection to NATS")
                try:
                    batch = await sub.fetch(10, timeout=0.5)
                except (TimeoutError, NatsTimeout):  # nothing to read for now, or nothing left to read from
                    if time.monotonic() >= next_check:
                        next_check = time.monotonic() + CHECK_EVERY
                        try:
                            await js.consumer_info(stream, durable)
                        except NotFoundError:
                            raise ConnectionError(
                                f"the stream {stream!r} or its durable consumer {durable!r} was deleted on the server"
                            ) from None
                    continue
                for msg in batch:
                    try:
                        handle(Message(_message_id(msg, made), bytes(msg.data), self.trigger.source))
                    except Exception:
                        await msg.nak()
                        raise
                    await msg.ack()
        finally:
            self.connected.clear()
            try:
                await nc.close()
            except Exception:
                pass

    async def _hold_subject(self, js: Any, info: Any) -> None:
        """Add the trigger's subject to a stream that does not hold it. The stream was made
        with the subject the trigger had then: after the subject changed, what was published on
        the new one went to no stream (publishers got "no responders") while the listener said
        it listened."""
        subject, subjects = self.trigger.subject, list(info.config.subjects or [])
        if not subjects or any(_covers(held, subject) for held in subjects):
            return  # a stream with no subjects of its own (a mirror, sources) is left as it is
        info.config.subjects = [*subjects, subject]
        try:
            await js.update_stream(info.config)
        except Exception as exc:
            raise ConnectionError(
                f"the stream {self.trigger.stream!r} does not hold the subject {subject!r} (its subjects: "
                f"{', '.join(subjects)}) and it could not be added ({exc}): add it to the stream, or name a "
                "stream that holds it"
            ) from None
        log.warning(
            "flow %s: the stream %r did not hold the subject %r (its subjects: %s); added it",
            self.flow_id,
            self.trigger.stream,
            subject,
            ", ".join(subjects),
        )

    async def _take_over_legacy(self, js: Any, stream: str, durable: str) -> None:
        """Make the flow's durable, when it has none yet, start where the durable of its
        earlier name had acknowledged up to (``NatsJetStream.legacy_durable_for``): made new,
        it would start from the stream's first message and run again every message the flow
        had already been started by (those older than their receipts). The old durable is left
        as it is: another flow (``orders_eu`` for ``orders.eu``) may be the one that uses it."""
        from nats.js.api import ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        legacy = self.trigger.legacy_durable_for(self.flow_id)
        if legacy is None:
            return
        try:
            await js.consumer_info(stream, durable)
            return  # taken over before
        except NotFoundError:
            pass
        try:
            old = await js.consumer_info(stream, legacy)
        except NotFoundError:
            return  # a new flow: its durable starts from the stream's first message
        start = old.ack_floor.stream_seq + 1
        await js.add_consumer(
            stream,
            config=ConsumerConfig(
                durable_name=durable,
                filter_subject=self.trigger.subject,
                ack_wait=ACK_WAIT,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
            ),
        )
        log.warning(
            "flow %s: its durable consumer of stream %r is now %r (the name %r is shared by flows whose ids "
            "differ only in '.' and '_'); it starts from message %d, after the last one %r acknowledged",
            self.flow_id,
            stream,
            durable,
            legacy,
            start,
            legacy,
        )

    async def _follow_subject(self, js: Any, stream: str, durable: str) -> None:
        """Point a durable consumer made for an earlier subject at the trigger's subject. It
        kept its filter when the trigger's subject changed, so messages on the old subject went
        on starting runs and those on the new one started none."""
        from nats.js.api import DeliverPolicy
        from nats.js.errors import NotFoundError

        subject = self.trigger.subject
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            return  # made with the subject by pull_subscribe
        config = info.config
        old = (
            repr(config.filter_subject or ", ".join(config.filter_subjects or []))
            if (config.filter_subject or config.filter_subjects)
            else "everything in the stream"
        )
        if config.filter_subject == subject and not config.filter_subjects:
            return
        config.filter_subject, config.filter_subjects = subject, None
        try:
            await js.add_consumer(stream, config=config)  # an update, where the server allows it
        except Exception:
            # A server that will not change a filter: made again, from where the old one was.
            await js.delete_consumer(stream, durable)
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = info.ack_floor.stream_seq + 1
            await js.add_consumer(stream, config=config)
        log.warning(
            "flow %s: the durable consumer %r of stream %r followed %s; it now follows %r",
            self.flow_id,
            durable,
            stream,
            old,
            subject,
        )


def _covers(held: str, subject: str) -> bool:
    """Whether the subject filter ``held`` (a stream's) takes every subject ``subject`` (a
    filter too, ``*`` one token and ``>`` the rest) does."""
    outer, inner = held.split("."), subject.split(".")
    for i, token in enumerate(outer):
        if token == ">":
            return len(inner) > i
        if i >= len(inner) or inner[i] == ">":
            return False
        if token != "*" and token != inner[i]:
            return False
    return len(inner) == len(outer)


def _made_at(info: Any) -> str:
    """When the stream was created, as the id of this stream among those of its name: a stream
    deleted and made again numbers its messages from 1 again."""
    created = getattr(info, "created", None)
    return created.strftime("%Y%m%dT%H%M%S.%fZ") if created is not None else ""


def _message_id(msg: Any, made: str = "") -> str:
    """The publisher's ``Nats-Msg-Id`` header, else the message's sequence in its stream, with
    the stream's creation time: ``seq:7`` of a stream made again is another message than the
    ``seq:7`` of the one before, whose receipt would have made it a duplicate."""
    headers = msg.headers or {}
    if headers.get("Nats-Msg-Id"):
        return str(headers["Nats-Msg-Id"])
    sequence = f"seq:{msg.metadata.sequence.stream}"
    return f"{sequence}@{made}" if made else sequence
