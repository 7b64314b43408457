"""``luigi.event.Event``: the moments event handlers hook into (Ductwork's names where it has them)."""

from __future__ import annotations

from ductwork.core.task import Event as _CoreEvent


class Event:
    DEPENDENCY_DISCOVERED = "event.core.dependency.discovered"
    DEPENDENCY_MISSING = _CoreEvent.DEPENDENCY_MISSING.value
    DEPENDENCY_PRESENT = "event.core.dependency.present"
    BROKEN_TASK = "event.core.task.broken"
    START = _CoreEvent.START.value
    PROGRESS = "event.core.progress"
    FAILURE = _CoreEvent.FAILURE.value
    SUCCESS = _CoreEvent.SUCCESS.value
    PROCESSING_TIME = _CoreEvent.PROCESSING_TIME.value
    TIMEOUT = "event.core.timeout"
    PROCESS_FAILURE = "event.core.process_failure"
