"""Bounded metadata by default: the scheduler's background retention.

A thread of the scheduler process that, every ``interval`` seconds, deletes the finished runs
that ended more than ``retention_days`` ago (``services.cleanup.clean``: with their tries,
results, offloaded objects, log files and events; never an active run, nor the latest or
latest scheduled run of a flow), the dead letters of message triggers received as long ago, the
message receipts too but never younger than ``messages.RECEIPTS_KEPT``, the records of remote
workers silent as long, and the audit entries
older than ``audit_retention_days``.
It works in transactions sized to take about ``target_seconds`` each, with a pause between
them, so that the scheduler's own writes (one transaction per step, every 20 ms while tries
run) wait at most about that long for the database; on SQLite, where a writer has the file to
itself, this is what keeps scheduling going while a large backlog is deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from ductwork.services import audit, cleanup
from ductwork.settings import Settings

log = logging.getLogger("ductwork.retention")


class RetentionWorker:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        interval: float = 600.0,
        first_after: float = 10.0,
        target_seconds: float = 0.05,
        pause: float = 0.05,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``clock`` tells the time the runs' end dates are compared with (the scheduler's
        clock, so that a scheduler run on a frozen clock does not see its runs as old)."""
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.interval = interval
        self.first_after = first_after
        self.target_seconds = target_seconds
        self.pause = pause
        self.stop_event = threading.Event()
        self.passes = 0
        self.last: cleanup.CleanReport | None = None
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.retention_days > 0 or self.settings.audit_retention_days > 0

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="ductwork-retention", daemon=True)
        self._thread.start()
        log.info(
            "retention: runs kept %s, audit entries kept %s",
            _days(self.settings.retention_days),
            _days(self.settings.audit_retention_days),
        )

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        wait = self.first_after
        while not self.stop_event.wait(wait):
            try:
                self.run_once()
            except Exception as exc:  # the database went away for a while: try again next time
                log.warning("retention pass failed (it is tried again in %gs): %s", self.interval, exc)
            wait = self.interval

    def run_once(self, now: dt.datetime | None = None) -> cleanup.CleanReport | None:
        """One pass: old runs, stale import errors, old audit entries."""
        report = None
        details: dict[str, Any] = {}
        if now is None and self.clock is not None:
            now = self.clock()
        if self.settings.retention_days > 0:
            report = cleanup.clean(
                self.engine,
                older_than=dt.timedelta(days=self.settings.retention_days),
                logs=self.settings.logs,
                flows_folder=self.settings.flows_folder,
                batch_size=20,
                target_seconds=self.target_seconds,
                pause=self.pause,
                stop=self.stop_event,
                now=now,
            )
            if (
                any((report.runs, report.import_errors, report.dead_letters, report.message_receipts, report.workers))
                or report.bundles
            ):
                details.update(
                    runs=report.runs,
                    tries=report.tries,
                    log_files=report.log_files,
                    offloaded_objects=report.objects,
                    import_errors=report.import_errors,
                    dead_letters=report.dead_letters,
                    message_receipts=report.message_receipts,
                    workers=report.workers,
                    code_bundles=report.bundles,
                    older_than_days=self.settings.retention_days,
                )
        trimmed = audit.trim(self.engine, keep_days=self.settings.audit_retention_days, now=now)
        if trimmed:
            details["audit_entries"] = trimmed
        if details:
            actor = audit.Actor("scheduler", "scheduler", socket.gethostname())
            audit.record(self.engine, actor, "retention.clean", "*", details)
            log.info("retention: deleted %s", _said(details, self.settings.audit_retention_days))
        self.passes += 1
        self.last = report
        return report


_WORDS = {
    "runs": "runs",
    "tries": "tries",
    "log_files": "log files",
    "offloaded_objects": "offloaded results",
    "import_errors": "import errors of files gone",
    "dead_letters": "dead letters",
    "message_receipts": "message receipts",
    "workers": "records of workers",
    "code_bundles": "code bundles",
}


def _said(details: dict[str, Any], audit_days: int) -> str:
    """What a pass deleted, in words, zeros left out (the audit entry keeps every figure)."""
    parts = [f"{details[key]} {words}" for key, words in _WORDS.items() if details.get(key)]
    said = ", ".join(parts)
    if parts:
        said += f" (older than {details['older_than_days']} days)"
    if details.get("audit_entries"):
        audit = f"{details['audit_entries']} audit entries older than {audit_days} days"
        said = f"{said}; {audit}" if said else audit
    return said


def _days(days: int) -> str:
    return "forever" if days <= 0 else f"{days} days"
