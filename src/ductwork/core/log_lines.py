"""The one line a log record becomes in a try's log, the scheduler's and the workers'.

The time is ISO 8601 with the UTC offset (as Airflow writes it): a try's log is read beside the
scheduler's and other machines' workers', which may run in other time zones or across a change
of daylight-saving time, where a bare local time names two instants or none.
"""

from __future__ import annotations

import datetime as dt
import logging

LINE_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


def stamp(created: float | None = None) -> str:
    """The time of a log line: now, or the POSIX time ``created``."""
    moment = dt.datetime.now() if created is None else dt.datetime.fromtimestamp(created)
    return moment.astimezone().isoformat(timespec="milliseconds")


class LineFormatter(logging.Formatter):
    """``[2026-12-07T17:14:36.162+00:00] INFO name: message``, the time in the machine's zone."""

    def __init__(self, fmt: str = LINE_FORMAT) -> None:
        super().__init__(fmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return stamp(record.created)
