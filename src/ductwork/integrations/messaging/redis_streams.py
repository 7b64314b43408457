"""Redis Streams through a consumer group (redis-py). An entry stays in the group's pending list
until it is acknowledged after its run was recorded; on every (re)connection the listener reads
its own pending entries first, so nothing read before a crash or a restart is skipped. The
message id is the entry's ``message_id`` field when it has one (a publisher that retries an
``XADD`` sets it), else the entry id. Entries another listener of the group read and left
unacknowledged for ``claim_after`` seconds (it died) are taken over (``XAUTOCLAIM``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from ductwork.core.triggers import RedisStream
from ductwork.integrations._deps import require
from ductwork.integrations.messaging import Backoff, Handler, Listener, Message

log = logging.getLogger("ductwork.triggerer")


class RedisStreamListener(Listener):
    trigger: RedisStream

    claim_after = 30.0
    """Seconds after which an entry another consumer of the group read and never acknowledged
    (its listener died with it, and may never come back) is taken over and handled here. A
    listener reads its own pending entries only when it connects: without this, the entries a
    dead scheduler had read started no run while the other schedulers went on listening."""
    claim_every = 5.0
    """Seconds between two looks for such entries."""

    def group_name(self) -> str:
        return self.trigger.group_for(self.flow_id)

    def consume(self, handle: Handler, stop: threading.Event, backoff: Backoff) -> None:
        redis: Any = require("redis", extra="messaging", what=f"flow {self.flow_id!r}: RedisStream trigger")
        client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        stream, group, consumer = self.trigger.stream, self.group_name(), self.trigger.consumer
        try:
            try:
                client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.connected.set()
            backoff.reset()
            cursor = "0"  # our pending entries first, then new ones (">")
            next_claim = time.monotonic() + self.claim_every
            while not stop.is_set():
                if cursor == ">" and time.monotonic() >= next_claim:
                    try:
                        claimed = client.xautoclaim(
                            stream, group, consumer, min_idle_time=int(self.claim_after * 1000), count=10
                        )
                    except redis.ResponseError as exc:  # XAUTOCLAIM came with Redis 6.2
                        log.warning(
                            "flow %s: %s: cannot take over entries of dead listeners (%s)", self.flow_id, stream, exc
                        )
                        next_claim = float("inf")
                        continue
                    entries = claimed[1] if claimed else []
                    # a full batch: there may be more to take over, at once
                    next_claim = time.monotonic() + (0 if len(entries) >= 10 else self.claim_every)
                    self._deliver(client, handle, entries)
                    continue
                block = None if cursor == "0" else 500
                replies = client.xreadgroup(group, consumer, {stream: cursor}, count=10, block=block)
                entries = replies[0][1] if replies else []
                if cursor == "0" and not entries:
                    cursor = ">"
                    continue
                self._deliver(client, handle, entries)
        finally:
            self.connected.clear()
            client.close()

    def _deliver(self, client: Any, handle: Handler, entries: list[Any]) -> None:
        """Hand each entry over, then acknowledge it (an entry trimmed away while pending has
        nothing left to run: acknowledged at once)."""
        stream, group = self.trigger.stream, self.group_name()
        for entry_id, fields in entries:
            if not fields:
                client.xack(stream, group, entry_id)
                continue
            given = fields.get(b"message_id") or fields.get("message_id")
            message_id = _id_text(given) if given else _id_text(entry_id)
            handle(Message(message_id, self._payload(fields), self.trigger.source))
            client.xack(stream, group, entry_id)

    def _payload(self, fields: dict[Any, Any]) -> bytes:
        """The entry's payload field as it is, else its fields as a JSON object. Fields that are
        not UTF-8 are kept byte for byte (``surrogateescape``), so the payload is not UTF-8 either
        and is dead-lettered as such: raising here would leave the entry pending, read again at
        every reconnection, and the entries behind it would never run."""
        decoded = {_text(k): v for k, v in fields.items() if _text(k) != "message_id"}
        if self.trigger.field in decoded:
            value = decoded[self.trigger.field]
            return value if isinstance(value, bytes) else str(value).encode()
        text = json.dumps({k: _text(v) for k, v in decoded.items()}, ensure_ascii=False)
        return text.encode("utf-8", errors="surrogateescape")


def _text(value: Any) -> str:
    """A field name or value as text; bytes that are not UTF-8 as lone surrogates, which
    encode back to the same bytes."""
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else str(value)


def _id_text(value: Any) -> str:
    """A message id as text the database can keep (bytes that are not UTF-8 escaped as ``\\xff``)."""
    return value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else str(value)
