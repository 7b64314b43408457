"""Runs started by messages: one place that turns a delivered message into a run, exactly once.

Every listener (RabbitMQ, Redis Streams, NATS JetStream, MQTT) and the webhook
(``POST /api/v1/flows/{id}/events``) call ``receive``. In one transaction it records a receipt
under the unique key (flow, source, message id) and either creates the run, its parameters
being the message's JSON payload validated against the flow's typed parameters, or, when the
payload does not fit, a dead letter with the reason. A message delivered again finds its
receipt and starts nothing. Listeners acknowledge a message only after ``receive`` returned, so
a crash between the two redelivers it, which the receipt makes harmless (ADR 0014).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ductwork.core.graph import FlowGraph
from ductwork.core.json_text import json_object
from ductwork.core.versioning import digest
from ductwork.errors import DuctworkError, NotFoundError, ParameterError
from ductwork.services.runs import CLASS_TASKS, make_run_id, validate_params
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.tables import dead_letters, message_receipts
from ductwork.store.types import utcnow

EVENT = "event"
MAX_ID = 200
MAX_PAYLOAD = 1 << 20

RECEIPTS_KEPT = dt.timedelta(days=8)
"""The least time a receipt is kept, whatever the retention: longer than any listener's broker
may hand the same message back (an MQTT persistent session lasts a week, ADR 0014), since a
message redelivered after its receipt is gone would start a second run."""

STARTED = "started"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

TOO_DEEP = "the payload's JSON is nested too deeply to be read"
"""The reason of a payload such as ``[[[[...]]]]``: raised out of a listener, Python's recursion
limit would be a message redelivered for ever, blocking the messages behind it."""


@dataclass(frozen=True)
class Delivery:
    """What became of a message."""

    status: str
    """``started``, ``duplicate`` or ``dead_lettered``."""
    run: RunRecord | None = None
    reason: str | None = None
    dead_letter_id: int | None = None
    message_id: str = ""


@dataclass(frozen=True)
class DeadLetter:
    id: int
    flow_id: str
    source: str
    message_id: str
    payload: str
    reason: str
    received_at: dt.datetime


def storable(text: str) -> str:
    """``text`` with its NUL characters written ``\\x00``: PostgreSQL's text columns cannot hold
    NUL, so a message carrying one (a payload, an id, a routing key) made ``receive`` raise, and
    the listener, acknowledging nothing, was handed the message again and again: a Redis stream
    or a RabbitMQ queue stopped at it for good. ``\\x00`` in a JSON string stays invalid JSON,
    as the raw character was."""
    return text.replace("\x00", "\\x00")


def content_id(*parts: bytes | str) -> str:
    """The id of a message that carries none: a hash of where it came from and what it holds."""
    data = b"\x00".join(p.encode() if isinstance(p, str) else p for p in parts)
    return "sha256:" + digest(data)


def message_id_of(given: str | None, *content: bytes | str) -> str:
    """The id to de-duplicate on: the broker's or sender's id (cut to fit), else the content's."""
    if given:
        text = storable(str(given))
        return text if len(text) <= MAX_ID else "sha256:" + digest(text.encode())
    return content_id(*content)


def parse_payload(payload: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    """The payload as run parameters: a JSON object (empty payload: no parameters)."""
    if payload is None:
        return {}
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, bytes):
        if len(payload) > MAX_PAYLOAD:
            raise ParameterError(f"the payload is {len(payload)} bytes; at most {MAX_PAYLOAD} are accepted")
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParameterError(f"the payload is not UTF-8 text ({exc})") from None
    return json_object(payload, "payload", example='{"key": "value"}')


def _text(payload: bytes | str | dict[str, Any] | None) -> str:
    """The payload as the text a dead letter keeps (and a message without an id is known by)."""
    if payload is None:
        return ""
    if isinstance(payload, dict):
        return json.dumps(payload, sort_keys=True, default=str)
    if isinstance(payload, bytes):
        return storable(payload[:MAX_PAYLOAD].decode("utf-8", errors="backslashreplace"))
    return storable(payload[:MAX_PAYLOAD])


def receive(
    engine: Engine,
    flow_id: str,
    *,
    source: str,
    message_id: str,
    payload: bytes | str | dict[str, Any] | None,
    now: dt.datetime | None = None,
    graph: FlowGraph | None = None,
) -> Delivery:
    """Turn one message into a run, a dead letter, or nothing (seen before); commits before it
    returns, so the caller may acknowledge the message then."""
    now = now or utcnow()
    source = storable(source)[:MAX_ID]
    message_id = message_id_of(message_id, source, _text(payload))
    if graph is None:
        with read_transaction(engine) as conn:
            graph = flow_repo.get_flow_graph(conn, flow_id)
    reason: str | None = None
    params: dict[str, Any] = {}
    if graph is None:
        reason = f"no flow {flow_id!r} in the database"
    else:
        try:
            params = validate_params(graph.meta, parse_payload(payload))
        except (DuctworkError, ValueError, TypeError) as exc:  # whatever the payload does, it is dead-lettered
            reason = storable(str(exc))
        except RecursionError:  # nested deeper than checking a parameter can follow
            reason = TOO_DEEP
    with transaction(engine) as conn:
        if not _claim(conn, flow_id, source, message_id, now):
            return Delivery(DUPLICATE, message_id=message_id)
        if reason is not None or graph is None:
            letter = _dead_letter(conn, flow_id, source, message_id, _text(payload), reason or "", now)
            _settle(conn, flow_id, source, message_id, dead_letter_id=letter)
            return Delivery(DEAD_LETTERED, reason=reason, dead_letter_id=letter, message_id=message_id)
        record = _create_run(conn, graph, params, source, message_id, now)
        _settle(conn, flow_id, source, message_id, run_pk=record.pk)
        return Delivery(STARTED, run=record, message_id=message_id)


def _claim(conn: Connection, flow_id: str, source: str, message_id: str, now: dt.datetime) -> bool:
    """Insert the receipt; False when the message was handled before (the unique key)."""
    try:
        with conn.begin_nested():
            conn.execute(
                sa.insert(message_receipts).values(
                    flow_id=flow_id, source=source, message_id=message_id, received_at=now
                )
            )
    except IntegrityError:
        return False
    return True


def _settle(conn: Connection, flow_id: str, source: str, message_id: str, **values: Any) -> None:
    conn.execute(
        sa.update(message_receipts)
        .where(
            message_receipts.c.flow_id == flow_id,
            message_receipts.c.source == source,
            message_receipts.c.message_id == message_id,
        )
        .values(**values)
    )


def _dead_letter(
    conn: Connection, flow_id: str, source: str, message_id: str, payload: str, reason: str, now: dt.datetime
) -> int:
    result = conn.execute(
        sa.insert(dead_letters).values(
            flow_id=flow_id, source=source, message_id=message_id, payload=payload, reason=reason, received_at=now
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _create_run(
    conn: Connection,
    graph: FlowGraph,
    params: dict[str, Any],
    source: str,
    message_id: str,
    now: dt.datetime,
    replayed: int | None = None,
) -> RunRecord:
    pending = graph.meta.style == CLASS_TASKS
    base = make_run_id(EVENT, now)
    run_id, n = base, 1
    while run_repo.get_run(conn, graph.flow_id, run_id) is not None:
        n += 1
        run_id = f"{base}.{n}"
    return run_repo.create_run(
        conn,
        FlowGraph(graph.meta, {}, graph.groups) if pending else graph,
        run_id=run_id,
        logical_date=now,
        data_interval=(now, now),
        run_type=EVENT,
        params=params,
        graph_pending=pending,
        note=f"started by message {message_id} from {source}"
        + (f" (dead letter {replayed}, replayed)" if replayed is not None else ""),
        triggered_by={"kind": "message", "source": source, "message_id": message_id}
        | ({"dead_letter_id": replayed} if replayed is not None else {}),
        now=now,
    )


def list_dead_letters(engine: Engine, flow_id: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
    """Messages that could not start a run, newest first, with the reason."""
    stmt = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if flow_id is not None:
        stmt = stmt.where(dead_letters.c.flow_id == flow_id)
    with read_transaction(engine) as conn:
        return [
            DeadLetter(r.id, r.flow_id, r.source, r.message_id, r.payload, r.reason, r.received_at)
            for r in conn.execute(stmt)
        ]


def get_dead_letter(engine: Engine, letter_id: int) -> DeadLetter:
    """One dead letter by its id (``NotFoundError`` naming it when there is none)."""
    with read_transaction(engine) as conn:
        r = conn.execute(sa.select(dead_letters).where(dead_letters.c.id == letter_id)).first()
    if r is None:
        raise NotFoundError(f"no dead letter {letter_id} (replayed, dropped, or removed by retention)")
    return DeadLetter(r.id, r.flow_id, r.source, r.message_id, r.payload, r.reason, r.received_at)


def replay_dead_letter(
    engine: Engine, letter_id: int, *, payload: str | None = None, now: dt.datetime | None = None
) -> Delivery:
    """Start the run a dead letter could not: its payload (or ``payload``, a corrected one)
    checked against the flow's parameters as they are now (the flow may have been fixed since).

    The run, the receipt pointing at it and the removal of the dead letter commit together, so
    a letter replays into one run however many replays race (the later ones find it gone). A
    payload that still does not fit starts nothing and keeps the letter: the message's own
    payload with the reason it fails now. A corrected payload that does not fit leaves the letter
    as it was: stored in its place, a typo in the correction replaced the message as received,
    and the next replay (and ``show``) had only the typo to go on.
    """
    letter = get_dead_letter(engine, letter_id)
    text = letter.payload if payload is None else payload
    with read_transaction(engine) as conn:
        graph = flow_repo.get_flow_graph(conn, letter.flow_id)
    if graph is None:
        raise NotFoundError(f"dead letter {letter_id}: no flow {letter.flow_id!r} in the database to replay it into")
    try:
        params = validate_params(graph.meta, parse_payload(text))
    except (DuctworkError, ValueError, TypeError) as exc:
        reason = storable(str(exc))
    except RecursionError:
        reason = TOO_DEEP
    else:
        reason = ""
    now = now or utcnow()
    with transaction(engine) as conn:
        if reason:
            if payload is None:  # the flow changed since: the letter says why it fails now
                conn.execute(sa.update(dead_letters).where(dead_letters.c.id == letter_id).values(reason=reason))
            return Delivery(DEAD_LETTERED, reason=reason, dead_letter_id=letter_id, message_id=letter.message_id)
        gone = conn.execute(sa.delete(dead_letters).where(dead_letters.c.id == letter_id))
        if gone.rowcount != 1:
            raise NotFoundError(f"no dead letter {letter_id} (replayed or dropped meanwhile)")
        record = _create_run(conn, graph, params, letter.source, letter.message_id, now, replayed=letter_id)
        _settle(conn, letter.flow_id, letter.source, letter.message_id, run_pk=record.pk, dead_letter_id=None)
        return Delivery(STARTED, run=record, message_id=letter.message_id)


def drop_dead_letters(engine: Engine, ids: Sequence[int] = (), *, flow_id: str | None = None) -> int:
    """Delete dead letters: those of ``ids``, else every one of ``flow_id``; how many went.

    Their receipts stay (retention removes them), so the broker delivering such a message
    again starts nothing and does not dead-letter it a second time."""
    if not ids and flow_id is None:
        raise ParameterError("name the dead letters to drop, or a flow to drop all of its dead letters")
    stmt = sa.delete(dead_letters)
    if ids:
        stmt = stmt.where(dead_letters.c.id.in_(list(ids)))
    if flow_id is not None:
        stmt = stmt.where(dead_letters.c.flow_id == flow_id)
    with transaction(engine) as conn:
        return int(conn.execute(stmt).rowcount or 0)


def count_dead_letters(engine: Engine, flow_id: str) -> int:
    """How many dead letters a flow has (its grid page says so: nothing else in the UI did)."""
    stmt = sa.select(sa.func.count()).select_from(dead_letters).where(dead_letters.c.flow_id == flow_id)
    with read_transaction(engine) as conn:
        return int(conn.execute(stmt).scalar_one())
