"""How a scheduler shares its database with other schedulers (ADR 0009).

- **SQLite**: one scheduler per database, enforced by an exclusive lock on a file beside the
  database (released by the kernel when the process dies, even by kill -9). A second scheduler
  refuses to start with a one-line message.
- **PostgreSQL or MariaDB, local executor**: one scheduler per database too, since its tries
  are journaled on its own host where no other scheduler can read them. A second one refuses
  to start while the first one's lease is alive.
- **PostgreSQL or MariaDB, remote executor (Celery)**: any number of schedulers, all active.
  Each holds leases on the runs it drives (``store.repo.leases``): it claims runs nobody holds
  with ``FOR UPDATE SKIP LOCKED``, renews its lease with its heartbeat, writes only to runs it
  still holds (the sink checks under a row lock), and lets go of runs another scheduler took.
  A scheduler killed -9 stops renewing; ``scheduler_lease`` seconds later another claims its
  runs and adopts their running tries, which the workers record in the database.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from ductwork.engine.journal import alive
from ductwork.errors import DuctworkError
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import jobs as job_repo
from ductwork.store.repo import leases

if TYPE_CHECKING:
    from ductwork.settings import Settings

log = logging.getLogger(__name__)

CLAIM_BATCH = 16
"""Runs one scheduler claims per poll at most."""


def scheduler_engine(settings: Settings) -> Engine:
    """The database engine of a scheduler process (the scheduler's and its executor's).

    With several schedulers (leases), one frozen in the middle of a transaction (SIGSTOP, a
    paused VM) must not hold its row locks past its lease, when the others count it dead and
    claim its runs: the server ends a session idle in a transaction that long. The sessions are
    named after the process, for ``pg_stat_activity``."""
    leased = settings.executor != "local"
    return create_engine(
        settings.db_url,
        name=leases.session_name(socket.gethostname(), os.getpid()),
        idle_in_transaction=settings.scheduler_lease if leased else None,
    )


class SchedulerConflictError(DuctworkError):
    """Another scheduler already drives this database, and this setup allows only one."""


class Coordination:
    def __init__(self, engine: Engine, *, remote_executor: bool, lease: float, executor: str | None = None) -> None:
        """``executor``: the setting's name, recorded in the job row (default: "celery" when
        remote, else "local")."""
        self.engine = engine
        self.lease = lease
        self.executor = executor or ("celery" if remote_executor else "local")
        self.backend = engine.url.get_backend_name()
        self.leases = remote_executor and self.backend != "sqlite"
        self.job_id: int | None = None
        self.claimed: set[int] = set()
        """The runs the last ``owned()`` claimed (not held by this scheduler just before)."""
        self.alone = True
        """(Lease mode) no other scheduler was live at the last ``owned()``: this one need not
        take turns with others at the pools (``SchedulerService._limits_held``)."""
        self._lock_fd: int | None = None
        self._next_reap = 0.0

    def begin(self) -> int:
        """Check that this scheduler may run here, and record its job; its id. Called again
        after the database went away part way, it goes on with the job already recorded."""
        if self.backend == "sqlite" and self._lock_fd is None:
            self._lock_sqlite()
        host, pid = socket.gethostname(), os.getpid()
        if self.job_id is None:
            with transaction(self.engine) as conn:
                self.job_id = job_repo.start_job(conn, "scheduler", hostname=host, pid=pid, executor=self.executor)
        if self.backend != "sqlite":
            self._refuse_beside_a_local_one(host)
        return self.job_id

    def _refuse_beside_a_local_one(self, host: str) -> None:
        """A scheduler with the local executor runs its tries where no other scheduler sees them:
        it shares the database with no other scheduler, whichever executor that one uses. Of two
        that start at once, both rows are written before either looks, and the later one refuses."""
        assert self.job_id is not None
        local_only = "local" if self.leases else None  # this one is local: any other is a conflict
        with read_transaction(self.engine) as conn:
            others = leases.live_schedulers(conn, lease=self.lease, executor=local_only)
        # One on this host that is gone, or that had this very pid (a container's pid 1 after a
        # restart: the killed one's row named this process), is no other scheduler.
        me = os.getpid()
        gone = {p for _, h, p in others if h == host and (p == me or not alive(p, None))}
        others = [(i, h, p) for i, h, p in others if i < self.job_id and not (h == host and p in gone)]
        if not others:
            return
        with transaction(self.engine) as conn:
            job_repo.end_job(conn, self.job_id, "refused")
        _, other_host, other_pid = others[0]
        if self.leases:
            raise SchedulerConflictError(
                f"another scheduler (pid {other_pid} on {other_host}) is running on this database and uses the local "
                "executor, whose tries only the scheduler running them can see: stop it, or set "
                f'executor = "{self.executor}" on it too to run several (a killed one counts as gone {self.lease:g}s '
                "after its last heartbeat)"
            )
        raise SchedulerConflictError(
            f"another scheduler (pid {other_pid} on {other_host}) is running on this database, and this one "
            "uses the local executor, whose tries only the scheduler running them can see: run one "
            'scheduler, or set executor = "celery" on all of them to run several (a killed one counts as '
            f"gone {self.lease:g}s after its last heartbeat)"
        )

    def _lock_sqlite(self) -> None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        path = Path(f"{database}.scheduler.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SchedulerConflictError(
                f"another scheduler ({holder}) is running on this SQLite database ({database}); SQLite allows "
                'one scheduler: use PostgreSQL or MariaDB (database_url) with executor = "celery" to run several'
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd

    def owned(self, *, claim: bool = True) -> set[int]:
        """(Lease mode) claim runs nobody holds, then the active runs this scheduler holds.
        ``claim=False`` (its executor cannot hand out tries: the broker is unreachable) takes no
        new run, so one whose scheduler went away goes to a scheduler that can run it."""
        assert self.job_id is not None
        with read_transaction(self.engine) as conn:
            mine = leases.owned_runs(conn, self.job_id)
            live = max(1, len(leases.live_schedulers(conn, lease=self.lease)))
            self.alone = live == 1
            share = -(-leases.active_run_count(conn) // live)  # its fair share, rounded up
        want = min(CLAIM_BATCH, share - len(mine)) if claim else 0
        self.claimed = set()
        if want <= 0:
            return mine
        if self.backend == "postgresql":
            self._end_sessions_of_lapsed()
        with transaction(self.engine) as conn:
            self.claimed = set(leases.claim_runs(conn, self.job_id, lease=self.lease, limit=want))
        return mine | self.claimed

    def _end_sessions_of_lapsed(self) -> None:
        """End the database sessions of schedulers whose lease lapsed while they hold runs (see
        ``leases.end_sessions``), at most once per heartbeat period."""
        now = time.monotonic()
        if now < self._next_reap:
            return
        self._next_reap = now + self.lease / 4
        try:
            with transaction(self.engine) as conn:
                names = [leases.session_name(h, p) for h, p in leases.lapsed_holders(conn, lease=self.lease)]
                if names and leases.end_sessions(conn, names):
                    log.warning("ended the database sessions of lapsed schedulers: %s", ", ".join(names))
        except DBAPIError as exc:  # not allowed (another role): their locks go when they do
            log.warning("could not end a lapsed scheduler's database sessions: %s", str(exc).splitlines()[0])

    def end(self) -> None:
        if self.leases and self.job_id is not None:
            try:
                with transaction(self.engine) as conn:
                    leases.release_runs(conn, self.job_id)
            except DuctworkError:
                pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
