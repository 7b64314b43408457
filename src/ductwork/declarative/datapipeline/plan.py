"""What the compiled pieces of a pipeline share: the pipeline's info, each object's policy,
object kinds, task ids and references. Kept apart from the compiler so that the operators, which
need these at run time, do not import the compiler (and through it the flow builder).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ductwork.core.schedule import NoSchedule, Schedule
from ductwork.declarative.datapipeline import catalog as cat
from ductwork.declarative.datapipeline.copyoptions import CopyOptions
from ductwork.declarative.datapipeline.model import Definition, PipelineObject, Ref
from ductwork.declarative.datapipeline.periods import Period
from ductwork.errors import ParameterError

STYLE = "aws-datapipeline"
_TASK_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass
class Policy:
    """What the engine needs of one runnable object."""

    retries: int = 0
    retry_delay: float = 600.0
    timeout: float | None = None
    late_after: float | None = None
    queue: str = "default"
    cascade: bool = False
    precondition_timeout: float = 7 * 86400.0
    max_checks: int | None = None
    """For a precondition: how many checks before giving up (``maximumRetries`` + 1)."""
    stage: bool = False
    """For a ShellCommandActivity: whether its S3 inputs and outputs are staged."""
    insert_mode: str = "APPEND"
    """For a RedshiftCopyActivity: its ``insertMode``."""
    copy_options: CopyOptions | None = None
    """For a RedshiftCopyActivity: how its ``commandOptions`` have ``COPY`` read the S3 input."""


@dataclass
class PipelineInfo:
    """What every task of a compiled pipeline shares: the definition and how its run maps to
    AWS's scheduled times."""

    definition: Definition
    schedule_type: str
    period: Period | None
    flow_id: str
    task_ids: dict[str, str] = field(default_factory=dict)
    """Object id -> task id of activities and data nodes."""

    def scheduled_times(
        self, interval_start: dt.datetime, interval_end: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        """``@scheduledStartTime`` and ``@scheduledEndTime`` of a run. A Ductwork run is due once
        its interval has ended, which is AWS's timeseries style; a cron-style instance starts at
        the beginning of its period, so its period is the one that starts at the run's end."""
        if self.schedule_type == "cron" and self.period is not None:
            return interval_end, self.period.add(interval_end)
        return interval_start, interval_end


def instance_logical_date(
    style: str,
    flow_id: str,
    schedule: Schedule,
    when: dt.datetime,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> dt.datetime:
    """The logical date of the run that is the pipeline instance for ``when``.

    AWS Data Pipeline has instances only on its schedule's boundaries (every ``@scheduledStartTime``
    is one), so a date chosen by hand between two boundaries is the instance whose period holds it,
    and a date before the schedule's first instance or after its last has none: it is refused,
    naming the first or last. Flows of other styles, on-demand pipelines and a schedule that starts
    at its activation (not activated yet) keep ``when``.
    """
    if style != STYLE or isinstance(schedule, NoSchedule):
        return when
    snapped = schedule.logical_date_holding(when, start_date=start)
    if start is not None and snapped < start:
        raise ParameterError(
            f"logical date {when.isoformat()}: pipeline {flow_id!r} has no instance then; the first run of its "
            f"schedule, the instance scheduled at its startDateTime, has the logical date {start.isoformat()}"
        )
    if end is not None and snapped > end:
        raise ParameterError(
            f"logical date {when.isoformat()}: pipeline {flow_id!r} has no instance then; the last run of its "
            f"schedule has the logical date {end.isoformat()} (its endDateTime or occurrences end it)"
        )
    return snapped


def type_spec(obj: PipelineObject) -> cat.TypeSpec | None:
    return cat.TYPES.get(obj.type or "")


def kind_of(obj: PipelineObject) -> str | None:
    spec = type_spec(obj)
    return spec.kind if spec else None


def is_task_id(object_id: str) -> bool:
    """Whether ``object_id`` is a task id as it is (no character ``task_id_for`` replaces)."""
    return bool(object_id) and _TASK_ID_BAD.search(object_id) is None


def task_id_for(object_id: str, taken: set[str]) -> str:
    base = _TASK_ID_BAD.sub("_", object_id) or "object"
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def refs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item.target for item in items if isinstance(item, Ref)]
