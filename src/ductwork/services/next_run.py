"""When a flow's next scheduled run starts, from what the scheduler recorded.

The scheduler records the data interval of a flow's next run (``flows.next_interval_*``); the
run starts when its schedule says that interval's run is due (``Schedule.run_after``): at the
interval's end for a cron or fixed-interval schedule, at its start for ``@once``. The logical
date alone, shown as "next run", is already past by then (an @weekly flow read 2026-12-06 on
the 7th for a run due on the 13th).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from ductwork.core.schedule import DataInterval, Schedule, parse_schedule
from ductwork.errors import ScheduleError
from ductwork.store.records import FlowRecord


@lru_cache(maxsize=256)
def _schedule(text: str, timezone: str) -> Schedule | None:
    """The flow's schedule as the scheduler reads it (``engine.scheduling.schedule_of``); a list
    of a thousand flows builds each distinct one once."""
    try:
        return parse_schedule(None if text == "None" else text, timezone)
    except ScheduleError:  # a row written by another release: no time to show, not an error page
        return None


def next_run_after(record: FlowRecord) -> dt.datetime | None:
    """When the flow's next scheduled run starts; None when none is coming (no schedule, past its
    end date, or the scheduler has not looked at the flow yet)."""
    if record.next_interval_start is None or record.next_interval_end is None:
        return None
    schedule = _schedule(record.schedule, record.timezone)
    if schedule is None:
        return None
    return schedule.run_after(DataInterval(record.next_interval_start, record.next_interval_end))
