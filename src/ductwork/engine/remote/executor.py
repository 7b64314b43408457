"""The executor port over remote workers (Celery), for the scheduler.

How a try's start and end travel (ADR 0010):

- The scheduler records the try ``queued`` (``records_tries``: the supervisor flushes before it
  submits), then publishes it. When a step hands over more tries than a queue has live slots,
  they travel several to a message (``ductwork.run_tries``, at most ``BATCH_LIMIT``, never more
  than one message per slot's share: ADR 0017), which the worker runs one after another and
  hands back unstarted after ``wire.BATCH_SECONDS``; tries with an ``execution_timeout``
  always travel alone (Celery's time limits are per message). Tries wait in this executor,
  per queue, while the queue's live workers have no room; a queue that no live worker listens
  on holds its tries here and is reported (log, ``ductwork workers list``, the web UI's workers page).
- The worker records the start and the end in the database (compare-and-set) and sends the
  end to this scheduler's reply queue; ``wait`` takes those messages.
- Whatever was not heard is read from the database: every ``reconcile_interval`` the executor
  looks at the tries it has been waiting for, takes recorded ends from there, declares lost
  the running tries of workers that stopped heartbeating (a compare-and-set too, so a late end
  from the worker and "lost" cannot both apply), and sends again the queued tries that a lost
  worker may have held (the start's compare-and-set drops the extra copy).

The executor needs no local disk shared with workers and does not import user code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from ductwork.core.clock import SystemClock
from ductwork.core.config import ParamSources
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.coordination import scheduler_engine
from ductwork.engine.execution import TryOutcome
from ductwork.engine.executor import ExecutorEvent, TryFinished, TryKey, TryRequest, try_name
from ductwork.engine.executors._worker import failed_outcome
from ductwork.engine.journal import decode_outcome, encode_outcome
from ductwork.engine.remote import wire
from ductwork.engine.remote.bundles import BundleError, BundleSource
from ductwork.settings import Settings, redact_url
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import DatabaseUnreachableError
from ductwork.store.repo import remote as remote_repo
from ductwork.store.repo import runs as run_repo

log = logging.getLogger("ductwork.scheduler")


S = TaskState
BACKLOG_FACTOR = 8
BACKLOG_EXTRA = 32
"""Published but unstarted tries per queue: BACKLOG_FACTOR x its live slots + BACKLOG_EXTRA."""
BATCH_LIMIT = 16
"""The most tries one message carries."""
BATCH_WORK = 0.5
"""Seconds of typical work one message carries at most (a queue's tries that take 50 ms go five
to a message; tries of a quarter of a second or more go alone)."""
GATHER = 0.05
"""Seconds a saturated scheduler waits for more ends once one came (fewer, larger steps)."""
_ENDED = frozenset({S.SUCCESS, S.FAILED, S.SKIPPED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE, S.UPSTREAM_FAILED})


@dataclass(eq=False)
class _Flight:
    """A try handed to this executor, until its end is reported."""

    key: TryKey
    node: NodeSpec
    max_tries: int | None
    run_pk: int
    queue: str
    payload: dict[str, Any] | None = None
    published_at: float | None = None
    adopted: bool = False
    message_id: str | None = None
    """The Celery task id of the message that carries it (its own, or its batch's)."""


class CeleryExecutor:
    """Tries as Celery messages to ``ductwork worker`` processes on any host."""

    records_tries = True
    """Workers record their tries in the database: the scheduler records ``queued`` first."""
    batch_limit = BATCH_LIMIT

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        environ: Mapping[str, str] | None = None,
        reconcile_interval: float = 1.0,
        requeue_after: float | None = None,
    ) -> None:
        self.settings = settings
        self.batch_limit = max(1, min(type(self).batch_limit, settings.tries_per_message))
        self.engine = engine or scheduler_engine(settings)
        self.param_sources = ParamSources.load(environ=environ) if environ is not None else ParamSources()
        self._task_sources: dict[str, Any] | None = None
        """``param_sources`` as the tries' messages carry them (``for_tasks``)."""
        self.reconcile_interval = reconcile_interval
        self.requeue_after = settings.requeue_after if requeue_after is None else requeue_after
        self.code = BundleSource(
            self.engine, settings.flows_folder, bundle_url=settings.bundle_url, git_url=settings.flows_git_url
        )
        self.flows_root = str(settings.flows_folder.resolve())
        self.reply_queue = f"ductwork.reply.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.app: Any = None
        self._flights: dict[TryKey, _Flight] = {}
        self._lines: dict[str, deque[_Flight]] = {}
        self._events: list[ExecutorEvent] = []
        self._pks: dict[str, int] = {}
        self._capacity: dict[str, int] = {}
        self._slots: dict[str, int] = {}
        self._typical: dict[str, float] = {}
        """Per queue, a moving average of the tries' durations (from their ends)."""
        self._live_slots = 0
        self._lost: set[str] = set()
        self._last_reconcile = 0.0
        self._db_ok_since = time.monotonic()
        """Since when the database has answered without a break: heartbeats that could not be
        written during an outage do not make a worker lost."""
        self._db_failing = False
        self._conn: Any = None
        self._consumer: Any = None
        self._broker_down_since: float | None = None
        self._next_connect = 0.0
        self._unserved: set[str] = set()
        self._producer: Any = None
        self._closed = False

    # --- the port -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.app is not None:
            return
        from ductwork.engine.remote.celery_app import make_app

        self.app = make_app(self.settings)
        self._connect()
        self._reconcile(force=True)

    def free_slots(self) -> int:
        """Tries in flight are kept well above the workers' slots: a scheduler step costs a few
        database round trips, so each one must hand out (and take back) many tries at once."""
        limit = max(self.settings.parallelism, BACKLOG_FACTOR * self._live_slots + BACKLOG_EXTRA)
        return max(0, limit - len(self._flights))

    def holds(self, key: TryKey) -> bool:
        """Whether this try is still watched here (``PoolExecutor.holds``)."""
        return key in self._flights

    def submit(self, request: TryRequest) -> None:
        self.start()
        key = request.key
        if key in self._flights:
            raise ValueError(f"try {key} is already in this executor")
        run_pk = self._run_pk(key.run_key)
        if request.param_sources is not None:
            sources = for_tasks(request.param_sources)
        else:
            if self._task_sources is None:
                self._task_sources = for_tasks(self.param_sources.to_dict())
            sources = self._task_sources
        try:
            code = self.code.ref(request.flow_file)
        except BundleError as exc:  # no worker could run this code: the try fails, saying why
            flight = _Flight(key, request.node, request.max_tries, run_pk, request.node.queue or "default")
            self._flights[key] = flight
            now = SystemClock().now()
            self._finish(flight, TryOutcome(S.FAILED, now, now, error=f"not sent to a worker: {exc}"))
            return
        request = TryRequest(
            key,
            request.node,
            request.run,
            request.downstream,
            request.log_path,
            max_tries=request.max_tries,
            resumed=request.resumed,
            flow_file=request.flow_file,
            param_sources=sources,
        )
        flight = _Flight(key, request.node, request.max_tries, run_pk, request.node.queue or "default")
        flight.payload = wire.encode_request(
            request, run_pk=run_pk, code=code, reply_to=self.reply_queue, flows_root=self.flows_root
        )
        self._flights[key] = flight
        self._lines.setdefault(flight.queue, deque()).append(flight)

    def submitted(self) -> None:
        """Send what the step submitted, grouped per queue (``_publish_waiting``). A scheduler
        that was idle has not looked at its workers since (nothing waited on this executor):
        it looks first, or the workers that came up meanwhile were not known, and the first
        tries waited for "a live worker" until the next look."""
        if self.app is not None and time.monotonic() - self._last_reconcile >= self.reconcile_interval:
            self._reconcile()
        self._publish_waiting()

    def adopt(self, key: TryKey, node: NodeSpec, max_tries: int | None) -> bool:
        """Take over a try found running after a restart or a takeover: its end comes from the
        database (or it is declared lost when its worker is)."""
        if key in self._flights:
            return True
        flight = _Flight(key, node, max_tries, self._run_pk(key.run_key), node.queue or "default", adopted=True)
        flight.published_at = 0.0
        self._flights[key] = flight
        return True

    def forget(self, key: TryKey) -> None:
        """Stop watching a try (its run was taken over by another scheduler, which adopts it)."""
        flight = self._flights.pop(key, None)
        if flight is not None and flight.published_at is None:
            line = self._lines.get(flight.queue)
            if line is not None and flight in line:
                line.remove(flight)

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        self.start()
        if not self._events:
            limit = self.reconcile_interval if timeout is None else min(timeout, self.reconcile_interval)
            self._drain(max(0.0, limit))
        self._maybe_reconcile()
        return self._take()

    def heartbeat(self) -> list[ExecutorEvent]:
        self._maybe_reconcile()
        return self._take()

    def cancel(self, key: TryKey, reason: str) -> None:
        flight = self._flights.get(key)
        if flight is None:
            return
        now = SystemClock().now()
        outcome = TryOutcome(S.FAILED, now, now, error=reason)
        if flight.published_at is None:
            self._lines.get(flight.queue, deque()).remove(flight)
            self._finish(flight, outcome)
            return
        try:
            with transaction(self.engine) as conn:
                remote_repo.end_try(
                    conn,
                    flight.run_pk,
                    key.task_id,
                    key.try_number,
                    outcome,
                    encode_outcome(outcome),
                    expected=(S.QUEUED, S.RUNNING),
                )
        except (DatabaseUnreachableError, OperationalError, InterfaceError) as exc:
            log.warning("could not record that %s was cancelled: %s", try_name(key), exc)
        # Whatever the database says (it ended meanwhile, or was marked from outside), the caller
        # has stopped counting this try: it leaves these books, and its worker is told to stop.
        self._finish(flight, outcome)
        message = flight.message_id or _task_id(key)
        for other in self._flights.values():  # stopped with it when they share its message
            if other.message_id == message and other.published_at is not None and not other.adopted:
                other.published_at = -1.0  # sent again at the next look if still queued
        if self.app is not None and hasattr(self.app, "control"):
            try:
                self.app.control.revoke(message, terminate=True, signal="SIGTERM")
            except Exception as exc:
                log.warning("could not ask the workers to stop %s: %s", try_name(key), exc)

    def shutdown(self, wait: bool = True) -> None:
        """Tries keep running on their workers, which record them; a scheduler that starts
        later (or another one) adopts them."""
        if self._closed:
            return
        self._closed = True
        self._delete_reply_queue()
        self._disconnect()
        if self._producer is not None:
            self._producer.release()
            self._producer = None

    # --- publishing -----------------------------------------------------------------------------
    def _publish_waiting(self) -> None:
        if self.app is None:
            return
        for queue, line in self._lines.items():
            if not line:
                continue
            capacity = self._capacity_of(queue)
            room = capacity - self._outstanding(queue)
            if capacity == 0:
                if queue not in self._unserved:
                    self._unserved.add(queue)
                    log.warning(
                        "no live worker listens on queue %r: %d tries wait for one (ductwork worker --queues %s)",
                        queue,
                        len(line),
                        queue,
                    )
                continue
            self._unserved.discard(queue)
            slots = self._slots.get(queue, 0)
            busy = self.batch_limit > 1 and slots > 0 and self._messages_out(queue) >= 2 * slots
            size = self._batch_size(queue)
            while line and room > 0:
                if busy and len(line) < size:
                    break  # every slot has a message running and one waiting: fill a batch first
                group = [line[0]]
                if line[0].node.execution_timeout is None:
                    for flight in itertools.islice(line, 1, min(size, room)):
                        if flight.node.execution_timeout is not None:
                            break
                        group.append(flight)
                if not (self._send(group[0]) if len(group) == 1 else self._send_batch(group)):
                    return
                for _ in group:
                    line.popleft()
                room -= len(group)

    def _capacity_of(self, queue: str) -> int:
        """How many tries of ``queue`` may be out at once: the live workers' slots on it
        (times the backlog), 0 when no live worker listens on it."""
        return self._capacity.get(queue, 0)

    def _batch_size(self, queue: str) -> int:
        """Tries per message: at most ``BATCH_WORK`` seconds of the queue's typical try, and
        no more than the queue's share per live slot of the tries in flight, so that every
        slot has work while there is work (a run's last tries spread out, not pile up)."""
        slots = self._slots.get(queue, 0)
        if self.batch_limit <= 1 or slots <= 0:
            return 1
        size = self.batch_limit
        typical = self._typical.get(queue)
        if typical is not None and typical > 0:
            size = min(size, max(1, int(BATCH_WORK / typical)))
        in_flight = sum(1 for f in self._flights.values() if f.queue == queue)
        return min(size, max(1, -(-in_flight // slots)))

    def _messages_out(self, queue: str) -> int:
        return len({f.message_id or f.key for f in self._flights.values() if f.queue == queue and f.published_at})

    def _outstanding(self, queue: str) -> int:
        return sum(1 for f in self._flights.values() if f.queue == queue and f.published_at is not None)

    def _send(self, flight: _Flight) -> bool:
        if flight.payload is None:
            return True
        timeout = flight.node.execution_timeout
        options: dict[str, Any] = {}
        if timeout:
            options = {"soft_time_limit": timeout, "time_limit": timeout + 5.0}
        return self._publish(wire.TASK_NAME, flight.payload, [flight], _task_id(flight.key), options)

    def _send_batch(self, flights: list[_Flight]) -> bool:
        """Several tries in one message: one publish here, one delivery and acknowledgement on
        the worker, whose pool process records each try's end with the next one's start."""
        payloads = [flight.payload for flight in flights]
        return self._publish(wire.BATCH_TASK_NAME, payloads, flights, f"batch:{uuid.uuid4().hex}", {})

    def _publish(
        self, task_name: str, argument: Any, flights: list[_Flight], message_id: str, options: dict[str, Any]
    ) -> bool:
        """One Celery message carrying ``flights``; False (and the broker noted down) on failure."""
        try:
            if self._producer is None:
                self._producer = self.app.producer_pool.acquire(block=True, timeout=5)
            self.app.send_task(
                task_name,
                args=[argument],
                queue=flights[0].queue,
                task_id=message_id,
                producer=self._producer,
                retry=False,
                argsrepr=wire.message_label([flight.payload for flight in flights if flight.payload is not None]),
                kwargsrepr="{}",
                **options,
            )
        except Exception as exc:
            self._broker_failed(exc)
            if self._producer is not None:
                try:
                    self._producer.release()
                except Exception:
                    pass
                self._producer = None
            return False
        now = time.monotonic()
        for flight in flights:
            flight.published_at = now
            flight.message_id = message_id
        return True

    # --- hearing back ---------------------------------------------------------------------------
    def _connect(self) -> None:
        from kombu import Consumer, Queue

        if time.monotonic() < self._next_connect:
            return
        try:
            conn = self.app.connection_for_read()
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
            arguments = {"x-expires": wire.REPLY_QUEUE_EXPIRES_MS} if conn.transport.driver_type == "amqp" else None
            queue = Queue(
                self.reply_queue,
                exchange="",
                routing_key=self.reply_queue,
                durable=False,
                auto_delete=False,
                queue_arguments=arguments,
            )
            consumer = Consumer(conn.default_channel, queues=[queue], callbacks=[self._on_message], accept=["json"])
            consumer.consume()
        except Exception as exc:
            self._broker_failed(exc)
            return
        self._conn, self._consumer = conn, consumer
        if self._broker_down_since is not None:
            log.info("the broker is back after %.1fs", time.monotonic() - self._broker_down_since)
        self._broker_down_since = None

    def _delete_reply_queue(self) -> None:
        """A scheduler that stops cleanly takes its reply queue with it (on Redis nothing else
        would: a list per scheduler start, kept for ever). Ends sent to it later are lost to
        nobody: workers record them in the database, where the next scheduler reads them."""
        consumer = self._consumer
        if consumer is None:
            return
        for queue in consumer.queues:
            try:
                queue.delete()
            except Exception as exc:  # the broker is away: the queue expires (REPLY_QUEUE_EXPIRES_MS)
                log.debug("could not delete the reply queue %s: %s", queue.name, exc)

    def _disconnect(self) -> None:
        conn, self._conn, self._consumer = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:
                pass

    def can_hand_out(self) -> bool:
        """Whether tries can reach workers now: a scheduler that cannot reach its broker takes
        no new runs from the others (``Coordination.owned``). While the broker is down this
        asks it again (at most once a second): a scheduler with no try in flight has no other
        occasion to, and would otherwise never take a run again after the broker came back."""
        if self._broker_down_since is not None and self.app is not None and not self._closed:
            self._connect()
        return self._broker_down_since is None

    def _broker_failed(self, exc: BaseException) -> None:
        if self._broker_down_since is None:
            self._broker_down_since = time.monotonic()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error(
                "the broker at %s is unreachable (%s): tries wait; ends are read from the database",
                redact_url(self.settings.broker_url),
                first,
            )
        self._next_connect = time.monotonic() + 1.0
        self._disconnect()

    def _drain(self, timeout: float) -> None:
        if self._conn is None:
            self._connect()
            if self._conn is None:
                time.sleep(min(timeout, 0.2))
                return
        try:
            self._conn.drain_events(timeout=timeout)
            # Take what is there already; while the workers are saturated, also what comes in
            # the next GATHER seconds: one scheduler step (and one commit) for many ends.
            gather = GATHER if len(self._flights) > self._live_slots > 0 else 0.0
            until = time.monotonic() + gather
            while True:
                self._conn.drain_events(timeout=max(0.0, until - time.monotonic()))
        except TimeoutError:
            return
        except OSError as exc:
            if isinstance(exc, socket.timeout):
                return
            self._broker_failed(exc)
        except Exception as exc:
            if type(exc).__name__ in ("Empty", "timeout"):
                return
            self._broker_failed(exc)

    def _on_message(self, body: Any, message: Any) -> None:
        try:
            message.ack()
        except Exception:
            pass
        ends = body.get("ends") if isinstance(body, dict) else None
        for end in ends if isinstance(ends, list) else [body]:
            try:
                run_key, task_id, number = end["key"]
                key = TryKey(run_key, task_id, int(number))
                outcome = decode_outcome(end["outcome"])
            except (KeyError, TypeError, ValueError):
                log.warning("ignored a malformed message on the reply queue: %r", end)
                continue
            flight = self._flights.get(key)
            if flight is not None:
                self._finish(flight, outcome)

    def _finish(self, flight: _Flight, outcome: TryOutcome) -> None:
        if self._flights.pop(flight.key, None) is None:
            return
        if outcome.duration > 0:
            was = self._typical.get(flight.queue)
            self._typical[flight.queue] = outcome.duration if was is None else 0.8 * was + 0.2 * outcome.duration
        self._events.append(TryFinished(flight.key, outcome))
        if flight.published_at is not None:
            self._publish_waiting()

    def _take(self) -> list[ExecutorEvent]:
        events, self._events = self._events, []
        return events

    # --- reconciling with the database ------------------------------------------------------------
    def _maybe_reconcile(self) -> None:
        interval = self.reconcile_interval if self._broker_down_since is None else self.reconcile_interval / 2
        if time.monotonic() - self._last_reconcile >= interval:
            self._reconcile()

    def _reconcile(self, *, force: bool = False) -> None:
        self._last_reconcile = time.monotonic()
        try:
            self._look_at_workers()
            self._look_at_tries()
        except (DatabaseUnreachableError, OperationalError, InterfaceError) as exc:
            if not self._db_failing:
                log.warning("could not look at remote tries in the database: %s", str(exc).strip().splitlines()[0])
            self._db_failing = True
            return
        if self._db_failing:
            self._db_failing = False
            self._db_ok_since = time.monotonic()
        if self._conn is None:
            self._connect()
        self._publish_waiting()

    def _look_at_workers(self) -> None:
        now = dt.datetime.now(dt.UTC)
        with read_transaction(self.engine) as conn:
            rows = remote_repo.list_workers(conn, include_stopped=False)
        capacity: dict[str, int] = {}
        live = 0
        lost: set[str] = set()
        judge = time.monotonic() - self._db_ok_since > self.settings.worker_lost_after
        for worker in rows:
            status = worker.status(self.settings.worker_lost_after, now)
            if status == remote_repo.LOST and not judge:
                status = remote_repo.RUNNING  # silent through a database outage: give it time
            if status == remote_repo.RUNNING:
                live += worker.concurrency
                for queue in worker.queues:
                    capacity[queue] = capacity.get(queue, 0) + worker.concurrency
            elif status == remote_repo.LOST:
                lost.add(worker.name)
        newly = lost - self._lost
        if newly:
            log.warning("workers lost (no heartbeat for %gs): %s", self.settings.worker_lost_after, ", ".join(newly))
            with transaction(self.engine) as conn:
                remote_repo.mark_lost(conn, newly)
            for flight in self._flights.values():  # a lost worker may have held queued tries
                if flight.published_at is not None and not flight.adopted:
                    flight.published_at = -1.0
        self._lost = lost | {w.name for w in rows if w.state == remote_repo.LOST}
        self._capacity = {q: BACKLOG_FACTOR * n + BACKLOG_EXTRA for q, n in capacity.items()}
        self._slots = capacity
        self._live_slots = live

    def _look_at_tries(self) -> None:
        now_mono = time.monotonic()
        quiet = [f for f in self._flights.values() if f.published_at is not None and now_mono - f.published_at > 0.5]
        if not quiet:
            return
        with read_transaction(self.engine) as conn:
            views = remote_repo.view_tries(conn, [(f.run_pk, f.key.task_id, f.key.try_number) for f in quiet])
        now = dt.datetime.now(dt.UTC)
        running: Counter[str] = Counter()
        for flight in quiet:
            view = views.get((flight.run_pk, flight.key.task_id, flight.key.try_number))
            if view is not None and view.state == S.RUNNING and view.try_number == flight.key.try_number:
                running[flight.queue] += 1
        for flight in quiet:
            key = flight.key
            view = views.get((flight.run_pk, key.task_id, key.try_number))
            if view is None:
                continue
            if view.outcome is not None:
                self._finish(flight, decode_outcome(view.outcome))
            elif view.try_number != key.try_number:
                continue  # cleared or marked from outside: the scheduler reloads the run
            elif view.state == S.RUNNING:
                stale = (
                    view.heartbeat_at is None
                    or (now - view.heartbeat_at).total_seconds() > self.settings.worker_lost_after
                ) and time.monotonic() - self._db_ok_since > self.settings.worker_lost_after
                if view.hostname in self._lost or stale:
                    self._declare_lost(flight, view.hostname, view.start_date)
            elif view.state == S.QUEUED and (why := self._resend_due(flight, now_mono, running)) and self._send(flight):
                log.info("sent %s again (%s)", try_name(key), why)

    def _resend_due(self, flight: _Flight, now_mono: float, running: Counter[str]) -> str | None:
        """Why a queued try is sent again, if it is (the start's compare-and-set drops extra
        copies): a lost worker may have held it, or it waited ``requeue_after`` seconds while
        its queue's workers had free slots (its message may be gone with a broker that lost its
        data). A try waiting behind busy workers is not: a copy every minute made the queue
        longer (and a queue-length autoscaler scale out) for nothing."""
        at = flight.published_at
        if flight.payload is None or at is None or self._capacity_of(flight.queue) == 0:
            return None
        if at < 0:
            return "its worker may have been lost"
        if now_mono - at > self.requeue_after and running[flight.queue] < self._slots.get(flight.queue, 0):
            return f"queued for {now_mono - at:.0f}s while its queue's workers had free slots"
        return None

    def _declare_lost(self, flight: _Flight, worker: str | None, started: dt.datetime | None) -> None:
        key = flight.key
        reason = f"the worker running this try ({worker or 'unknown'}) stopped heartbeating and is lost"
        outcome = failed_outcome(
            flight.node,
            key.try_number,
            SystemClock(),
            reason,
            max_tries=flight.max_tries,
            started_at=started,
            alerts_due=True,  # its worker died before the try's own callbacks could run
        )
        with transaction(self.engine) as conn:
            found = remote_repo.end_try(
                conn, flight.run_pk, key.task_id, key.try_number, outcome, encode_outcome(outcome)
            )
        if found is None:
            log.warning("%s: %s", try_name(key), reason)
            self._finish(flight, outcome)

    def _run_pk(self, run_key: str) -> int:
        pk = self._pks.get(run_key)
        if pk is None:
            with read_transaction(self.engine) as conn:
                found = run_repo.run_pks(conn, {run_key})
            if run_key not in found:
                raise ValueError(f"run {run_key!r} is not in the database")
            pk = self._pks[run_key] = found[run_key]
        return pk

    @property
    def unserved_queues(self) -> set[str]:
        return set(self._unserved)


def _task_id(key: TryKey) -> str:
    """The Celery task id of a try: the same for every copy, so a revoke reaches them all."""
    return f"{key.run_key}:{key.task_id}:{key.try_number}"


def for_tasks(sources: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter sources a try's message carries (``ParamSources.to_dict``) without what is
    Ductwork's own: its settings (the ``[ductwork]`` table and their ``DUCTWORK_*`` variables:
    the database and broker URLs with their passwords, the Fernet key, the metrics token) and
    ``DUCTWORK_CONN_*``/``DUCTWORK_VAR_*``. Class parameters need none of them, and a message
    sits in the broker's queues and in a pod's spec, where whoever reads those would read them.
    The worker has its own settings."""
    from ductwork.engine.task_env import is_withheld

    own = _settings_variables()
    env = sources.get("env") or {}
    file = sources.get("file") or {}
    return {
        **sources,
        "env": {k: v for k, v in env.items() if k not in own and not is_withheld(k)},
        "file": {k: v for k, v in file.items() if k != "ductwork"},
    }


@functools.cache
def _settings_variables() -> frozenset[str]:
    return frozenset({f"DUCTWORK_{f.name.upper()}" for f in dataclasses.fields(Settings)} | {"DUCTWORK_CONFIG"})
