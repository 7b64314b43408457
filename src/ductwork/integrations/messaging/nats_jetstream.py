"""NATS JetStream (nats-py): a durable pull consumer on a stream (created with the subject when
it does not exist). A message is acknowledged after its run was recorded; one whose recording
failed is negatively acknowledged, so JetStream delivers it again at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ductwork.core.triggers import NatsJetStream
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message

ACK_WAIT = 30.0
CONNECT_WITHIN = 10.0
"""Seconds the first connection may take before the listener says it failed and backs off."""


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

        try:
            nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
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
            try:
                await js.stream_info(self.trigger.stream)
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(name=self.trigger.stream, subjects=[self.trigger.subject], storage=StorageType.FILE)
                )
            sub = await js.pull_subscribe(
                self.trigger.subject,
                durable=self.durable_name(),
                stream=self.trigger.stream,
                config=ConsumerConfig(ack_wait=ACK_WAIT),
            )
            self.connected.set()
            backoff.reset()
            while not stop.is_set():
                if lost or not nc.is_connected:
                    raise ConnectionError("lost the connection to NATS")
                try:
                    batch = await sub.fetch(10, timeout=0.5)
                except (TimeoutError, NatsTimeout):  # nothing to read for now
                    continue
                for msg in batch:
                    try:
                        handle(Message(_message_id(msg), bytes(msg.data), self.trigger.source))
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


def _message_id(msg: Any) -> str:
    """The publisher's ``Nats-Msg-Id`` header, else the message's sequence in its stream."""
    headers = msg.headers or {}
    if headers.get("Nats-Msg-Id"):
        return str(headers["Nats-Msg-Id"])
    return f"seq:{msg.metadata.sequence.stream}"
