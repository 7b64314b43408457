"""The scheduler's side of ``ductwork trigger`` over its local socket (ADR 0023).

``ductwork scheduler`` and ``ductwork standalone`` listen on ``scheduler_socket.address(home)``.
A command of the same user (checked by the socket's peer credentials) that names the same
home, flows folder and database sends what was typed; this side does what the command would
have done, with the same code: record the flow as its file defines it now
(``engine_state.ensure_flow``), queue the run (``services.runs.trigger``), wake the scheduler's
loop, answer with the run, and write the audit entry as the command's user. With ``--wait``
it answers a second time when the run has ended (or ``--timeout`` passed), with the task
states the command prints.

It declines anything it is not sure to do exactly as the command would: another home, folder
or database, another protocol version, a request it cannot read, and any error before the run
exists. The command then does the work itself, with its own messages. This side never reports
an error of its own to the command, so the two paths cannot word one differently.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from ductwork.cli import scheduler_socket
from ductwork.cli.state import CliState
from ductwork.cli.wait_status import status_for
from ductwork.errors import DuctworkError
from ductwork.settings import Settings

log = logging.getLogger("ductwork.scheduler")

WAIT_POLL = 0.01
"""How often a ``--wait`` looks at the run (one primary-key read), as the command does."""

REQUEST_TIMEOUT = 10.0
"""A client that connects and sends no whole request in this time is dropped."""

_TEXT_PARAMS = ("flow_ref", "conf_text", "logical_date", "run_id")


class TriggerServer:
    """Takes ``ductwork trigger`` for the scheduler of ``settings`` (one thread per command)."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: str | None,
        on_run_created: Callable[[], None],
        cwd: str | None = None,
    ) -> None:
        self.settings = settings
        self.cwd = cwd or os.getcwd()
        self.home = scheduler_socket.real_home(os.path.join(self.cwd, os.path.expanduser(str(settings.home))))
        self.identity = self._identity(str(settings.flows_folder), settings.database_url, self.home, self.cwd)
        self.on_run_created = on_run_created
        self.state = CliState(config_path=config_path, _settings=settings)
        """What ``ensure_flow`` reads: the scheduler's own settings (equal to the command's
        in all it uses, or the command is declined) and its flow index."""
        self._lock = threading.Lock()
        """One trigger at a time: the flow index is not shared between threads."""
        self._sock: socket.socket | None = None
        self._stopped = threading.Event()

    @staticmethod
    def _identity(flows_folder: str, database_url: str, home: str, cwd: str) -> tuple[str, str, str]:
        return (
            home,
            os.path.realpath(os.path.join(cwd, os.path.expanduser(flows_folder))),
            scheduler_socket.normal_database_url(database_url, home, cwd),
        )

    # --- the listening socket ----------------------------------------------------------------
    def start(self) -> bool:
        """Listen; False (and the commands write their runs themselves) where abstract sockets
        do not exist or another scheduler of this home listens already."""
        if not scheduler_socket.available():
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(scheduler_socket.address(self.home))
        except OSError as exc:
            sock.close()
            log.debug("another scheduler on %s takes `ductwork trigger` (%s); this one does not", self.home, exc)
            return False
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), name="ductwork-trigger-socket", daemon=True).start()
        return True

    def stop(self) -> None:
        self._stopped.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self.state.engine is not None:
            self.state.engine.dispose()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._serve, args=(conn,), name="ductwork-trigger", daemon=True).start()

    # --- one command -------------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_one(conn)
        except Exception:  # a defect here must not end the scheduler or print from a thread
            log.exception("`ductwork trigger` over the local socket failed")

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            try:
                uid = _peer_uid(conn)
                if uid != os.geteuid():  # the command writes the run itself, with its own rights
                    log.warning("refused `ductwork trigger` from user id %d (scheduler: %d)", uid, os.geteuid())
                    _send(conn, {"declined": True})
                    return
                conn.settimeout(REQUEST_TIMEOUT)
                request = scheduler_socket.Lines(conn).next()
                conn.settimeout(None)
            except (OSError, ValueError):
                return
            if isinstance(request, dict) and request.get("command") == "ping":  # ``ductwork config`` asks
                _send(conn, {"pid": os.getpid(), "same": self._same_place(request)})
                return
            params = self._accepted(request)
            created = self._trigger(request, params) if params is not None else None
            if params is None or created is None:
                _send(conn, {"declined": True})
                return
            record, engine = created
            from ductwork.cli.runs_cmd import run_json

            # Answer before waking the scheduler for it: once the answer is in the socket, the
            # command learns its run even if this process dies while starting it.
            sent = _send(conn, {"run": run_json(record), "pk": record.pk})
            self.on_run_created()
            exit_status = 0
            if params["wait"] and sent:
                ended = self._wait(conn, engine, record, params["timeout"])
                if ended is not None:
                    _send(conn, ended)
                    exit_status = status_for(ended["run"]["state"])
            self._audit(engine, request, params, _peer_user(request, uid), exit_status)

    def _accepted(self, request: Any) -> dict[str, Any] | None:
        """The command's parameters, if this scheduler may take the request as it stands."""
        if not isinstance(request, dict) or request.get("protocol") != scheduler_socket.PROTOCOL:
            return None
        if request.get("command") != "trigger" or not self._same_place(request):
            return None
        params = request.get("params")
        if not isinstance(params, dict) or not isinstance(request.get("flow"), str):
            return None
        if not all(params.get(k) is None or isinstance(params.get(k), str) for k in _TEXT_PARAMS):
            return None
        values = params.get("param_values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return None
        if not isinstance(params.get("wait"), bool) or not isinstance(params.get("as_json"), bool):
            return None
        timeout = params.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            return None
        return params

    def _same_place(self, request: dict[str, Any]) -> bool:
        """Whether the command names this scheduler's home, flows folder and database."""
        flows_folder, database_url = request.get("flows_folder"), request.get("database_url")
        home, cwd = request.get("home"), request.get("cwd")
        if not (isinstance(flows_folder, str) and isinstance(database_url, str)):
            return False
        if not (isinstance(home, str) and isinstance(cwd, str)):
            return False
        return self._identity(flows_folder, database_url, scheduler_socket.real_home(home), cwd) == self.identity

    def _trigger(self, request: dict[str, Any], params: dict[str, Any]) -> tuple[Any, Any] | None:
        """Queue the run as the command would; None (nothing queued) on any error."""
        from ductwork.cli.engine_state import ensure_flow, store
        from ductwork.cli.options import conf_option, date_option, parse_param_options
        from ductwork.services import runs as run_service

        with self._lock:
            try:
                engine = store(self.state)
                flow_id = ensure_flow(self.state, engine, request["flow"])
                record = run_service.trigger(
                    engine,
                    flow_id,
                    params=parse_param_options(tuple(params["param_values"])),
                    conf=conf_option(params["conf_text"]),
                    logical_date=date_option(params["logical_date"], "--date"),
                    run_id=params["run_id"],
                )
            except DuctworkError:  # the command says it itself, in its own words
                return None
            except Exception as exc:
                log.warning("`ductwork trigger %s` left to the command: %s", params["flow_ref"], exc)
                return None
        return record, engine

    def _wait(self, conn: socket.socket, engine: Any, record: Any, timeout: float | None) -> dict[str, Any] | None:
        """The run once it ended (or the timeout passed), as ``trigger --wait`` prints it; None
        if the command went away (Ctrl-C) meanwhile. Meanwhile, ``{"note": ...}`` lines say
        what the command says when it waits itself (``runs_cmd.WaitNotes``)."""
        from ductwork.cli.runs_cmd import WaitNotes, errors_of, run_json, states_of, unserved_notes
        from ductwork.store.engine import read_transaction
        from ductwork.store.repo import runs as run_repo

        began = time.monotonic()
        deadline = began + timeout if timeout is not None else None
        notes = WaitNotes(engine, self.state.settings, began, lease=self.state.settings.scheduler_lease)
        while True:
            with read_transaction(engine) as c:
                current = run_repo.get_run_by_pk(c, record.pk)
            if current is None:  # deleted meanwhile
                return None
            if current.state.is_terminal or (deadline is not None and time.monotonic() > deadline):
                rows, reason = states_of(engine, current)
                return {
                    "run": run_json(current),
                    "tasks": rows,
                    "reason": reason,
                    "errors": errors_of(engine, current),
                    "notes": unserved_notes(engine, self.state.settings, current),
                }
            for note in notes.due(current):
                if not _send(conn, {"note": note}):
                    return None
            readable, _, _ = select.select([conn], [], [], WAIT_POLL)
            if readable or self._stopped.is_set():
                return None  # the command ended, or sent what it should not

    def _audit(self, engine: Any, request: dict[str, Any], params: dict[str, Any], user: str, exit_status: int) -> None:
        from ductwork.cli.audit_hook import command_details
        from ductwork.services import audit

        actor = audit.Actor(user, "cli", socket.gethostname())
        audit.record(engine, actor, "run.trigger", params["flow_ref"], command_details(params, exit_status))


def _peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return int(uid)


def _peer_user(request: dict[str, Any], uid: int) -> str:
    """The name ``getpass.getuser()`` gives in the command: its environment's, else its user id's."""
    if isinstance(request.get("user"), str) and request["user"]:
        return str(request["user"])
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "unknown"


def _send(conn: socket.socket, message: dict[str, Any]) -> bool:
    try:
        conn.sendall(json.dumps(message, default=str).encode() + b"\n")
        return True
    except OSError:
        return False
