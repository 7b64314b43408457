"""``airflow.timetables.simple``: ``NullTimetable`` (``schedule=None``), ``OnceTimetable``
(``"@once"``) and ``DatasetTriggeredTimetable`` (a schedule of datasets), as ``dag.timetable``."""

from __future__ import annotations

from typing import Any

from .base import Timetable


class NullTimetable(Timetable):
    """No scheduled runs: external triggers only."""

    description = "Never, external triggers only"
    periodic = False
    can_be_scheduled = False

    @property
    def summary(self) -> str:
        return "None"

    def ductwork_schedule(self) -> Any:
        return None


class OnceTimetable(Timetable):
    """One scheduled run, at the start date."""

    description = "Once, as soon as possible"
    periodic = False

    @property
    def summary(self) -> str:
        return "@once"

    def ductwork_schedule(self) -> Any:
        return "@once"


class DatasetTriggeredTimetable(NullTimetable):
    """Runs when its datasets are updated (``dag.timetable`` of a DAG scheduled on datasets)."""

    description = "Triggered by datasets"

    def __init__(self, datasets: Any = None) -> None:
        self.dataset_condition = datasets

    @property
    def summary(self) -> str:
        return "Dataset"


AssetTriggeredTimetable = DatasetTriggeredTimetable

__all__ = ["AssetTriggeredTimetable", "DatasetTriggeredTimetable", "NullTimetable", "OnceTimetable"]
