"""The triggerer: one listener thread per message trigger of every active, unpaused flow.

It runs inside the scheduler (setting ``triggerer = "scheduler"``, the default) or on its own
(``ductwork triggerer``). Every few seconds it compares the flows in the store with the
listeners it runs: it starts listeners for new triggers, and stops those of flows that were
paused, removed or changed. Each message goes to ``services.messages.receive``, the same
run-creation path the webhook uses; a listener acknowledges a message only after it returned.
A flow's code is never imported here (ADR 0001): triggers are read from the recorded graph.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from ductwork.core.connections import Secrets
from ductwork.core.triggers import MessageTrigger, shared_between_flows, trigger_from_dict
from ductwork.errors import DuctworkError
from ductwork.integrations.messaging import Listener, Message, listener_for
from ductwork.services import messages
from ductwork.store.engine import database_unavailable, read_transaction
from ductwork.store.repo import flows as flow_repo

log = logging.getLogger("ductwork.triggerer")


@dataclass
class _Running:
    listener: Listener
    thread: threading.Thread
    stop: threading.Event = field(default_factory=threading.Event)


class TriggererService:
    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 2.0,
        secrets: Secrets | None = None,
        schedules: Callable[[str, str | None], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.schedules = schedules
        """``(flow_id, fileloc)``: whether to listen for the flow (the scheduler's: the flows of
        its folders, ADR 0024); None listens for every flow."""
        self.secrets = secrets
        """Where triggers' ``conn_id`` connections are looked up."""
        self.interval = interval
        self.listeners: dict[tuple[str, str], _Running] = {}
        self._hashes: dict[str, tuple[str, tuple[MessageTrigger, ...]]] = {}
        self._told_shared: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_delivery: Callable[[str, messages.Delivery], None] | None = None
        """Called after each message is recorded (the scheduler uses it to look at the store
        at once instead of at its next poll)."""

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ductwork-triggerer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for key in list(self.listeners):
            self._halt(key)
        for running in list(self.listeners.values()):
            running.thread.join(timeout)
        self.listeners.clear()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """In the foreground (``ductwork triggerer``) until stopped."""
        self.start()
        try:
            while not self._stop.wait(0.5):
                if until is not None and until():
                    break
        finally:
            self.stop()

    def _loop(self) -> None:
        down = False  # the database is unreachable: said once, not at every look
        while not self._stop.is_set():
            try:
                self.reconcile()
                if down:
                    log.warning("triggerer: the database answers again; reading the flows' triggers")
                    down = False
            except Exception as exc:
                if not database_unavailable(exc):
                    log.exception("triggerer: could not read the flows' triggers (retrying)")
                elif not down:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning("triggerer: the database is unreachable (%s); listeners keep running, retrying", first)
                    down = True
            self._stop.wait(self.interval)

    # --- which listeners should run -------------------------------------------------------
    def wanted(self) -> dict[tuple[str, str], MessageTrigger]:
        with read_transaction(self.engine) as conn:
            flows = flow_repo.list_flows(conn, paused=False)
            out: dict[tuple[str, str], MessageTrigger] = {}
            for flow in flows:
                cached = self._hashes.get(flow.flow_id)
                if cached is None or cached[0] != flow.version_hash:
                    graph = flow_repo.get_flow_graph(conn, flow.flow_id)
                    triggers: tuple[MessageTrigger, ...] = ()
                    if graph is not None:
                        try:
                            triggers = tuple(trigger_from_dict(t) for t in graph.meta.triggers)
                        except DuctworkError as exc:
                            log.error("flow %s: %s", flow.flow_id, exc)
                    cached = self._hashes[flow.flow_id] = (flow.version_hash, triggers)
                if not cached[1]:
                    continue
                # Asked only for a flow with triggers: for one outside the flows folder the answer
                # comes with a warning, which flows with nothing to listen for do not deserve.
                if self.schedules is not None and not self.schedules(flow.flow_id, flow.fileloc):
                    continue
                for trigger in cached[1]:
                    out[(flow.flow_id, trigger.source)] = trigger
        self._leave_one_per_shared_place(out)
        return out

    def _listening(self, flow_id: str, trigger: MessageTrigger) -> bool:
        running = self.listeners.get((flow_id, trigger.source))
        return running is not None and running.listener.trigger == trigger

    def _leave_one_per_shared_place(self, wanted: dict[tuple[str, str], MessageTrigger]) -> None:
        """Of flows naming one queue, consumer group, durable consumer or MQTT client id, one
        listens there: the one listening already, else the first by id. Both listening made the
        broker share the messages out between them (about half each, nothing said); the others
        are told, once, in the log (``flows list`` says it too)."""
        by_flow: dict[str, list[MessageTrigger]] = {}
        for (flow_id, _), trigger in wanted.items():
            by_flow.setdefault(flow_id, []).append(trigger)
        told = set()
        for shared in shared_between_flows(by_flow):
            place = _place(shared.trigger, shared.flow_ids[0])
            holders = [
                (flow_id, t) for flow_id in shared.flow_ids for t in by_flow[flow_id] if _place(t, flow_id) == place
            ]
            listening = [f for f, t in holders if self._listening(f, t)]
            keeper = listening[0] if listening else holders[0][0]
            for flow_id, trigger in holders:
                if flow_id != keeper:
                    wanted.pop((flow_id, trigger.source), None)
            message = f"{shared.describe()} (listening: {keeper!r})"
            told.add(message)
            if message not in self._told_shared:
                log.error("%s", message)
        self._told_shared = told

    def reconcile(self) -> None:
        wanted = self.wanted()
        for key, running in list(self.listeners.items()):
            if wanted.get(key) != running.listener.trigger or not running.thread.is_alive():
                self._halt(key)
        for key, trigger in wanted.items():
            if key not in self.listeners:
                self._launch(key[0], trigger)

    def _launch(self, flow_id: str, trigger: MessageTrigger) -> None:
        listener = listener_for(trigger, flow_id, self.secrets)
        running = _Running(listener, threading.Thread(daemon=True, name=f"ductwork-listen-{flow_id}-{trigger.kind}"))
        running.thread = threading.Thread(
            target=listener.serve,
            args=(self._handler(flow_id), running.stop),
            name=running.thread.name,
            daemon=True,
        )
        self.listeners[(flow_id, trigger.source)] = running
        running.thread.start()
        log.info("flow %s: listening on %s", flow_id, trigger.source)

    def _halt(self, key: tuple[str, str]) -> None:
        running = self.listeners.pop(key, None)
        if running is not None:
            running.stop.set()
            log.info("flow %s: stopped listening on %s", key[0], key[1])

    def _handler(self, flow_id: str) -> Callable[[Message], messages.Delivery]:
        def handle(message: Message) -> messages.Delivery:
            delivery = messages.receive(
                self.engine, flow_id, source=message.source, message_id=message.message_id, payload=message.payload
            )
            if delivery.status == messages.STARTED and delivery.run is not None:
                log.info("flow %s: message %s started run %s", flow_id, delivery.message_id, delivery.run.run_id)
            elif delivery.status == messages.DEAD_LETTERED:
                log.warning("flow %s: message %s dead-lettered: %s", flow_id, delivery.message_id, delivery.reason)
            elif delivery.status == messages.DUPLICATE:
                log.info(
                    "flow %s: message %s from %s was received before: no new run (a redelivery, or sent twice)",
                    flow_id,
                    delivery.message_id,
                    message.source,
                )
            if self.on_delivery is not None:
                self.on_delivery(flow_id, delivery)
            return delivery

        return handle


def folder_scope(*folders: Path) -> Callable[[str, str | None], bool]:
    """``(flow_id, fileloc)`` -> whether the flow's file lies in one of ``folders`` (a flow with
    no file, such as a stored pipeline's, counts as in): the flows a scheduler or triggerer of
    those folders serves (ADR 0024). Each file is resolved once."""
    resolved = tuple(Path(f).resolve() for f in folders)
    seen: dict[str, bool] = {}

    def inside(_flow_id: str, fileloc: str | None) -> bool:
        if not fileloc:
            return True
        found = seen.get(fileloc)
        if found is None:
            where = Path(fileloc).resolve()
            found = seen[fileloc] = any(where.is_relative_to(folder) for folder in resolved)
        return found

    return inside


def _place(trigger: MessageTrigger, flow_id: str) -> tuple[str, ...] | None:
    """The place on its broker a trigger's listener holds for ``flow_id`` (None: none of its own)."""
    held = trigger.held(flow_id)
    return None if held is None else held[0]
