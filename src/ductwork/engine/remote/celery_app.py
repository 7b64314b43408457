"""Ductwork on Celery: the app, the one task that runs a try, and ``ductwork worker``.

A plain Celery app and a plain Celery worker (prefork pool), so Celery's own tools work on it:
``celery -b <broker> inspect active``, ``celery -b <broker> control shutdown``, Flower. Tries
are messages of the task ``ductwork.run_try`` on the queue named by the task's ``queue``, or
of ``ductwork.run_tries`` (a list of tries, run in turn by one pool process) when a scheduler
hands over more tries at once than the queue has slots.

Delivery is at least once: messages are acknowledged after the try (``acks_late``), so a
worker host that dies leaves its messages to be delivered again; the try's compare-and-set
start in the database (``runner``) makes the effect exactly once. A pool process that dies
during a try (kill -9, the OOM killer, the hard time limit) is noticed by the worker's main
process at once: the try is failed or retried by its policy, or, if it had not started, sent
again.

The worker's main process keeps its row in the ``workers`` table fresh and the heartbeats of
the tries its pool processes run, from Celery's own timer (no thread: pool processes are
forked from this process). With a metrics port, one thread serves the metrics (it takes no lock
a pool process needs); pool processes report their tries to the main process over a pipe
(``reports``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ductwork.engine.remote import wire
from ductwork.engine.remote.runner import RemoteHost
from ductwork.errors import DuctworkError
from ductwork.settings import Settings, redact_url

if TYPE_CHECKING:
    from ductwork.engine.remote.reports import ReportPipe
    from ductwork.telemetry.worker import WorkerMetrics

log = logging.getLogger("ductwork.worker")

REPLY_EXPIRES_MS = 24 * 3600 * 1000
"""An unused reply queue (its scheduler is gone) disappears from RabbitMQ after a day."""


class BrokerError(DuctworkError):
    """The broker is unreachable or its URL is wrong."""


def make_app(settings: Settings, *, worker_name: str = "") -> Any:
    """The Celery app for ``settings`` (Celery is imported only here, when it is used)."""
    from celery import Celery

    check_broker_url(settings.broker_url)
    app = Celery("ductwork", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        task_reject_on_worker_lost=False,  # the main process records the lost try itself
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_create_missing_queues=True,
        # Off, as in Celery's own default: three event messages per message cost a worker ~8% of
        # its CPU. Flower switches them on itself (`enable_events`); `celery events` users run
        # `celery control enable_events` first.
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": 3600},
    )
    app.ductwork_settings = settings
    app.ductwork_worker = worker_name
    app.ductwork_observer = None  # ductwork worker --metrics-port: the pipe to the main process
    app.task(name=wire.TASK_NAME, bind=True, acks_late=True)(_run_try)
    app.task(name=wire.BATCH_TASK_NAME, bind=True, acks_late=True)(_run_tries)
    return app


def _run_try(task: Any, payload: dict[str, Any]) -> str:
    """The Celery task: run one try in this pool process (warm: its imports stay)."""
    return host_of(task.app).run(payload)


def _run_tries(task: Any, payloads: list[dict[str, Any]]) -> list[str]:
    """The Celery task of a batch: its tries in turn; those left after ``wire.BATCH_SECONDS``
    go back to their queue, one per message."""
    return host_of(task.app).run_batch(payloads, hand_back=lambda rest: send_again(task.app, rest))


def send_again(app: Any, payloads: list[dict[str, Any]]) -> None:
    """Publish try requests again, each alone, under its own task id (a revoke reaches it)."""
    for payload in payloads:
        run_key, task_id, number = payload["key"]
        app.send_task(
            wire.TASK_NAME,
            args=[payload],
            queue=payload["node"].get("queue") or "default",
            task_id=f"{run_key}:{task_id}:{number}",
        )


def host_of(app: Any) -> RemoteHost:
    """This process's ``RemoteHost`` (one per process: pool processes are forked)."""
    host = getattr(app, "_ductwork_host", None)
    if host is None or host.pid != os.getpid():
        host = RemoteHost(
            app.ductwork_settings,
            app.ductwork_worker or _default_name(),
            notify=notifier(app),
            observer=app.ductwork_observer,
        )
        app._ductwork_host = host
    return host


def notifier(app: Any) -> Any:
    """A function that sends a try's end to a scheduler's reply queue. On Redis the reply list
    is declared with an expiry, so each push sets it: a list made by a push to a scheduler that
    had died (an end sent after it) was kept for ever. (RabbitMQ's queue carries its own.)"""
    from kombu import Queue

    def send(queue: str, body: dict[str, Any]) -> None:
        with app.producer_pool.acquire(block=True, timeout=5) as producer:
            declare = None
            if producer.connection.transport.driver_type == "redis":
                arguments = {"x-expires": wire.REPLY_QUEUE_EXPIRES_MS}
                declare = [Queue(queue, exchange="", routing_key=queue, durable=False, queue_arguments=arguments)]
            producer.publish(
                body,
                exchange="",
                routing_key=queue,
                serializer="json",
                delivery_mode=1,
                declare=declare,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.3, "interval_max": 1.0},
            )

    return send


def check_broker_url(url: str) -> None:
    if not url:
        raise BrokerError(
            "no broker: set broker_url (DUCTWORK_BROKER_URL), e.g. redis://host:6379/0 or amqp://user:pass@host:5672//"
        )
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp", "sentinel", "memory"):
        raise BrokerError(
            f"broker_url {redact_url(url)!r} is not a broker URL Ductwork supports: "
            "use redis://host:6379/0 or amqp://user:pass@host:5672//"
        )


def wait_for_broker(url: str, stop: Callable[[], bool], *, longest: float = 10.0) -> bool:
    """Try the broker with a backoff until it answers (True) or ``stop()`` (False)."""
    delay = 0.5
    while not stop():
        try:
            ping_broker(url)
            return True
        except BrokerError as exc:
            log.warning("%s; trying again in %.1fs", exc, delay)
        time.sleep(delay)
        delay = min(longest, delay * 2)
    return False


def ping_broker(url: str, *, timeout: float = 5.0) -> None:
    """Connect once; a clear one-line error when the broker cannot be reached."""
    from kombu import Connection

    check_broker_url(url)
    conn = Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0})
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrokerError(f"cannot reach the broker at {redact_url(url)}: {first}") from None
    finally:
        conn.release()


def _default_name() -> str:
    return f"ductwork-{os.getpid()}@{socket.gethostname()}"


# --- ductwork worker ----------------------------------------------------------------------------
def _serve_metrics(
    settings: Settings, port: int, node_name: str, queues: Sequence[str], concurrency: int
) -> tuple[WorkerMetrics, ReportPipe, Any]:
    """The worker group's metrics, the pipe its pool processes report their tries on, and the
    server that shows them on ``port`` (behind ``metrics_token`` when it is set)."""
    from celery.worker import state as worker_state

    from ductwork import __version__
    from ductwork.engine.remote.reports import ReportPipe
    from ductwork.telemetry.prometheus import serve
    from ductwork.telemetry.worker import WorkerMetrics

    metrics = WorkerMetrics(
        worker=node_name,
        queues=queues,
        concurrency=concurrency,
        version=__version__,
        slots_in_use=lambda: len(worker_state.active_requests),
    )
    pipe = ReportPipe()
    server = serve(metrics.registry, port, token=settings.metrics_token, before=lambda: pipe.drain(metrics))
    return metrics, pipe, server


def start_worker(
    settings: Settings,
    *,
    queues: Sequence[str] = ("default",),
    concurrency: int | None = None,
    name: str | None = None,
    loglevel: str = "INFO",
    metrics_port: int = 0,
    patient: bool = False,
) -> bool:
    """Check the broker and the database, register the worker, and run a Celery worker until
    it is stopped (SIGTERM: finish running tries, then stop). With ``metrics_port``, serve the
    worker group's Prometheus metrics there (``telemetry.worker``).

    Returns True when Celery stopped without being asked to (an "unrecoverable error", which
    Celery and kombu raise on some broker connection losses, such as a Redis restart during an
    acknowledgement): the caller starts the worker again rather than leave the host without one.
    Running tries were finished first (a warm stop) and are recorded in the database."""
    from celery import bootsteps, signals
    from celery.exceptions import TimeLimitExceeded, WorkerLostError

    from ductwork import __version__
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.repo import remote as remote_repo

    hostname = socket.gethostname()
    node_name = name or f"ductwork-{os.getpid()}"
    if "@" not in node_name:
        node_name = f"{node_name}@{hostname}"
    concurrency = concurrency or os.cpu_count() or 1
    if patient:  # started again after a broker fault: the broker may still come and go
        wait_for_broker(settings.broker_url, lambda: False)
    else:
        ping_broker(settings.broker_url)
    engine = create_engine(settings.db_url)
    migrate.check(engine)
    metrics: WorkerMetrics | None = None
    pipe: ReportPipe | None = None
    metrics_server: Any = None
    if metrics_port:
        metrics, pipe, metrics_server = _serve_metrics(settings, metrics_port, node_name, queues, concurrency)
    with transaction(engine) as conn:
        remote_repo.register_worker(
            conn,
            node_name,
            hostname=hostname,
            pid=os.getpid(),
            kind="celery",
            queues=list(queues),
            concurrency=concurrency,
            version=__version__,
        )
    app = make_app(settings, worker_name=node_name)
    if pipe is not None:
        app.ductwork_observer = pipe.writer()  # before the pool forks: its processes inherit the pipe
    main_host = RemoteHost(settings, node_name, notify=notifier(app), observer=metrics)
    interval = settings.worker_heartbeat

    def beat() -> None:
        from celery.worker import state

        requests = list(state.active_requests)
        tries: dict[tuple[int, str, int], str] = {}
        for request in requests:
            for payload in wire.requests_of(request.name, request.args):
                _, task_id, number = payload["key"]
                tries[(int(payload["run_pk"]), task_id, int(number))] = wire.try_label(payload)
        try:
            with transaction(engine) as conn:
                if not remote_repo.worker_heartbeat(conn, node_name, tries=tries, slots_used=len(requests)):
                    remote_repo.register_worker(
                        conn,
                        node_name,
                        hostname=hostname,
                        pid=os.getpid(),
                        kind="celery",
                        queues=list(queues),
                        concurrency=concurrency,
                        version=__version__,
                    )
        except Exception as exc:  # the database is away: say so, beat again later
            log.warning("worker heartbeat failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
            if metrics is not None:
                metrics.heartbeat(None)
        else:
            if metrics is not None:
                metrics.heartbeat(time.time())
        if pipe is not None and metrics is not None:
            pipe.drain(metrics)

    ended = threading.Event()
    fallback = _FallbackBeats(beat, interval, ended)

    def record_stop(**_: Any) -> None:
        """The worker's very end (its pool has finished the tries it ran): no more beats."""
        if ended.is_set():
            return
        ended.set()
        try:
            with transaction(engine) as conn:
                remote_repo.stop_worker(conn, node_name)
        except Exception as exc:
            log.warning("could not record that the worker stopped: %s", exc)

    class Heartbeat(bootsteps.StartStopStep):
        """Beats on Celery's timer while the worker runs. The timer stops with the consumer,
        while a warm shutdown (SIGTERM: a rolling update, a scale-in) lets the running tries
        finish: a worker silent that long was judged lost and its tries failed, though it
        finished them. So from the shutdown's start the beats come from a thread of their own,
        until the worker's end (``worker_shutdown``, once its pool has drained); a cold shutdown,
        which kills the tries, ends them at once. (A thread for every beat, all the time, made
        each remote try dearer: ``benchmarks/remote.py``, RESULTS "Session 18".)"""

        requires = {"celery.worker.components:Timer"}

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            self.tref: Any = None

        def start(self, worker: Any) -> None:
            beat()
            self.tref = worker.timer.call_repeatedly(interval, beat, priority=10)

        def stop(self, worker: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None
            fallback.begin(for_good=True)  # the pool still finishes its tries

        def terminate(self, worker: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None
            record_stop()

    class HeartbeatWhileReconnecting(bootsteps.StartStopStep):
        """Celery's timer stands still while the consumer reconnects to a broker that went
        away (its event loop waits for the connection): the tries go on running, and a worker
        silent past ``worker_lost_after`` was judged lost and its tries failed. The consumer
        stops its steps when the connection is lost and starts them again once it is back: the
        beats come from a thread of their own in between, and only then."""

        requires = {"celery.worker.consumer.connection:Connection"}

        def start(self, consumer: Any) -> None:
            fallback.end()

        def stop(self, consumer: Any) -> None:
            fallback.begin()

        def shutdown(self, consumer: Any) -> None:
            fallback.begin()

    app.steps["worker"].add(Heartbeat)
    app.steps["consumer"].add(HeartbeatWhileReconnecting)
    signals.worker_shutdown.connect(record_stop, weak=False)

    def lost(payloads: list[dict[str, Any]], reason: str) -> None:
        """In the main process: the pool process running these tries died or was stopped. The
        one that had started is failed or up for retry by its policy; the ones not started yet
        (later in a batch) are sent again."""
        for payload in payloads:
            try:
                what = main_host.record_lost(payload, reason)
            except Exception as exc:
                log.error("could not record the lost try %s: %s", wire.try_label(payload), exc)
                continue
            if what == "requeue":
                send_again(app, [payload])
                log.warning("%s: its process died before it started; sent it again", wire.try_label(payload))
            elif what == "recorded":
                log.warning("%s: %s", wire.try_label(payload), reason)

    def on_failure(sender: Any = None, exception: Any = None, args: Any = None, **kwargs: Any) -> None:
        """A pool process died with a message (or passed the hard limit)."""
        if not isinstance(exception, WorkerLostError | TimeLimitExceeded) or not args:
            return
        payloads = wire.requests_of(sender.name, args)
        if isinstance(exception, TimeLimitExceeded) and payloads:
            timeout = payloads[0]["node"].get("execution_timeout")
            reason = f"timed out after {timeout}s (stopped by the hard time limit)"
        else:
            reason = f"the worker process running the try died ({exception})"
        lost(payloads, reason)

    def on_revoked(sender: Any = None, request: Any = None, terminated: bool = False, **kwargs: Any) -> None:
        """A batch stopped to cancel one of its tries: its other tries are not lost with it."""
        if request is None or not terminated or getattr(sender, "name", "") != wire.BATCH_TASK_NAME:
            return
        lost(wire.requests_of(wire.BATCH_TASK_NAME, request.args), "stopped with another try of its batch")

    for task_name in (wire.TASK_NAME, wire.BATCH_TASK_NAME):
        signals.task_failure.connect(on_failure, sender=app.tasks[task_name], weak=False)
    signals.task_revoked.connect(on_revoked, weak=False)

    def in_pool_process(**kwargs: Any) -> None:
        engine.dispose(close=False)  # the main process's connections are not the child's

    signals.worker_process_init.connect(in_pool_process, weak=False)
    log.info(
        "ductwork worker %s: queues %s, %d slots, broker %s, database %s%s",
        node_name,
        ",".join(queues),
        concurrency,
        redact_url(settings.broker_url),
        redact_url(settings.db_url),
        f", metrics on http://0.0.0.0:{metrics_port}/metrics" if metrics_port else "",
    )
    worker = app.Worker(
        hostname=node_name,
        queues=list(queues),
        concurrency=concurrency,
        pool="prefork",
        loglevel=loglevel,
        send_events=False,
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
    main_host.close()
    engine.dispose()
    if metrics_server is not None:
        metrics_server.shutdown()
    if pipe is not None:
        pipe.close()
    from celery.worker import state as worker_state

    asked = worker_state.should_stop is not None or worker_state.should_terminate is not None
    return not asked and worker.exitcode not in (None, 0)


class _FallbackBeats:
    """Heartbeats from a thread, for the times Celery's timer does not run them (``begin``
    until ``end``; for good from a warm shutdown's start until ``ended``, the worker's end)."""

    def __init__(self, beat: Callable[[], None], interval: float, ended: threading.Event) -> None:
        self._beat = beat
        self._interval = interval
        self._ended = ended
        self._lock = threading.Lock()
        self._quit: threading.Event | None = None
        self._for_good = False

    def begin(self, *, for_good: bool = False) -> None:
        with self._lock:
            self._for_good = self._for_good or for_good
            if self._quit is not None or self._ended.is_set():
                return
            quit_ = self._quit = threading.Event()
        threading.Thread(target=self._run, args=(quit_,), name="ductwork-heartbeat", daemon=True).start()

    def end(self) -> None:
        """Celery's timer beats again (the consumer is connected): the thread stops."""
        with self._lock:
            if self._quit is not None and not self._for_good:
                self._quit.set()
                self._quit = None

    def _run(self, quit_: threading.Event) -> None:
        while not quit_.wait(self._interval) and not self._ended.is_set():
            self._beat()
