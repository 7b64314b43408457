"""Airflow's datasets (2.x) and assets (3.x) as Ductwork assets.

``Dataset``/``Asset`` here are ``ductwork.core.assets.Asset`` subclasses, and ``DatasetAll``/
``DatasetAny`` (``AssetAll``/``AssetAny``) subclasses of the core conditions, so a DAG scheduled on
them is a flow scheduled on assets, and a task's ``outlets=`` records asset events, with no
translation step in between. Airflow accepts a bare name (``Dataset("orders")``) where Ductwork
wants a URI; such a name is kept as ``asset://orders`` (the migration guide lists this).

The triggering events a run was started by reach the Airflow context in Airflow's shape
(``triggering_events``): a mapping from the dataset (its URI in 2.x, the asset object in 3.x) to
the events, each with ``extra``, ``source_dag_id``, ``source_run_id``, ``timestamp``...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.compat.features import refuse
from ductwork.core.assets import Asset as CoreAsset
from ductwork.core.assets import AssetAll as CoreAssetAll
from ductwork.core.assets import AssetAny as CoreAssetAny
from ductwork.core.assets import AssetOrTime

from .timetables.base import Timetable

_BARE_SCHEME = "asset://"


def _uri(value: Any, *, what: str) -> str:
    """Airflow's URI rules are looser than Ductwork's: a name with no scheme is a valid dataset."""
    if not isinstance(value, str) or not value.strip():
        refuse(f"{what}({value!r})", "a dataset needs a non-empty URI or name")
    text = value.strip()
    if "://" in text or text.startswith("/"):
        return text
    return _BARE_SCHEME + text


class Dataset(CoreAsset):
    """``airflow.datasets.Dataset(uri, extra=None)``."""

    def __init__(self, uri: str, extra: Mapping[str, Any] | None = None, **ignored: Any) -> None:
        CoreAsset.__init__(self, _uri(uri, what=type(self).__name__), dict(extra or {}))
        object.__setattr__(self, "name", str(uri).strip())
        object.__setattr__(self, "group", str(ignored.get("group") or "asset"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r}, extra={dict(self.extra)!r})"

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        yield self.uri, self

    iter_assets = iter_datasets


class Asset(Dataset):
    """``airflow.sdk.Asset(name=None, uri=None, *, group="asset", extra=None)``: named by either."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str = "asset",
        extra: Mapping[str, Any] | None = None,
        watchers: Any = None,
    ) -> None:
        if watchers:
            refuse("Asset(watchers=...)", "asset watchers (event-driven scheduling): use Flow triggers")
        given = uri if uri is not None else name
        super().__init__(given if given is not None else "", extra, group=group)
        object.__setattr__(self, "name", name if name is not None else str(uri))


class DatasetAll(CoreAssetAll):
    """``DatasetAll(a, b)``: a run once every one has been updated (``a & b``)."""


class DatasetAny(CoreAssetAny):
    """``DatasetAny(a, b)``: a run once any one has been updated (``a | b``)."""


AssetAll = DatasetAll
AssetAny = DatasetAny


class DatasetAlias:
    """``DatasetAlias``/``AssetAlias``: refused where it is created, naming the line."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        refuse(f"{type(self).__name__}({name!r})", "dataset aliases (events attached at run time)")


class AssetAlias(DatasetAlias):
    pass


class DatasetOrTimeSchedule(Timetable):
    """``DatasetOrTimeSchedule(timetable=..., datasets=...)``: a run on the time schedule and one
    whenever the dataset condition holds. ``timetable`` is anything ``DAG(schedule=...)`` takes
    that is a time schedule: a cron string, a preset, a timedelta."""

    def __init__(self, *, timetable: Any, datasets: Any = None, assets: Any = None) -> None:
        condition = assets if assets is not None else datasets
        if condition is None:
            refuse(f"{type(self).__name__}()", "it needs datasets (or assets) to watch")
        self.timetable = timetable
        self.datasets = condition

    def ductwork_schedule(self) -> AssetOrTime:
        from .models.dag import time_schedule

        return AssetOrTime(time_schedule(self.timetable), self.datasets)

    def _time_table(self) -> Any:
        """The time part as a timetable (a cron string or timedelta given made into one)."""
        from .models.dag import airflow_timetable

        return airflow_timetable(self.timetable, "UTC")

    @property
    def summary(self) -> str:
        return f"Dataset or {self._time_table().summary}"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"Triggered by datasets or {self._time_table().description}"

    def _schedule(self) -> Any:
        """Runs planned by the clock: those of the time part."""
        return self._time_table()._schedule()


class AssetOrTimeSchedule(DatasetOrTimeSchedule):
    """``airflow.timetables.assets.AssetOrTimeSchedule(timetable=..., assets=...)``."""


# --- the triggering events, as the Airflow context holds them ----------------------------------
@dataclass(frozen=True)
class SourceDagRun:
    """``event.source_dag_run``: which run wrote the event (its ids only)."""

    dag_id: str | None
    run_id: str | None


@dataclass(frozen=True)
class DatasetEvent:
    """One recorded update of a dataset, with Airflow's attribute names."""

    id: int | None
    dataset: Dataset
    extra: dict[str, Any] = field(default_factory=dict)
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_task_id: str | None = None
    source_map_index: int = -1
    timestamp: Any = None

    @property
    def asset(self) -> Dataset:
        return self.dataset

    @property
    def uri(self) -> str:
        return self.dataset.uri

    @property
    def source_dag_run(self) -> SourceDagRun:
        return SourceDagRun(self.source_dag_id, self.source_run_id)


AssetEvent = DatasetEvent


def _split_task(task_id: str | None) -> tuple[str | None, int]:
    """Ductwork names a mapped instance ``t[3]``; Airflow keeps ``t`` and map index 3."""
    if task_id and task_id.endswith("]") and "[" in task_id:
        base, _, index = task_id[:-1].rpartition("[")
        if index.isdigit():
            return base, int(index)
    return task_id, -1


def _event(data: Mapping[str, Any], cls: type[Dataset]) -> DatasetEvent:
    import pendulum

    at = data.get("at")
    when = pendulum.instance(dt.datetime.fromisoformat(at)).in_timezone("UTC") if isinstance(at, str) else None
    task_id, map_index = _split_task(data.get("task_id"))
    return DatasetEvent(
        id=data.get("id"),
        dataset=cls(data["uri"]),
        extra=dict(data.get("extra") or {}),
        source_dag_id=data.get("flow_id"),
        source_run_id=data.get("run_id"),
        source_task_id=task_id,
        source_map_index=map_index,
        timestamp=when,
    )


class TriggeringEvents(Mapping[Any, list[DatasetEvent]]):
    """``triggering_dataset_events`` (2.x: keyed by URI) / ``triggering_asset_events`` (3.x: keyed
    by the asset). Either key works for lookups: ``events[Dataset("s3://x")]`` or ``events["s3://x"]``."""

    def __init__(self, triggered_by: Mapping[str, Any] | None, *, by_object: bool) -> None:
        cls: type[Dataset] = Asset if by_object else Dataset
        self._events: dict[str, list[DatasetEvent]] = {}
        self._keys: dict[str, Any] = {}
        for data in (triggered_by or {}).get("asset_events", ()) or ():
            event = _event(data, cls)
            self._events.setdefault(event.uri, []).append(event)
            self._keys.setdefault(event.uri, event.dataset if by_object else event.uri)

    def __getitem__(self, key: Any) -> list[DatasetEvent]:
        uri = key.uri if isinstance(key, CoreAsset) else _uri(key, what="triggering events")
        return self._events[uri]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._events)

    def __repr__(self) -> str:
        return f"{dict(self.items())!r}"


class InletEvents(Mapping[Any, list[DatasetEvent]]):
    """``inlet_events`` (Airflow 2.10): for each of the task's inlets (by dataset, URI or position
    in ``inlets``), every event recorded for it, oldest first. Read from the metadata database
    when first asked, so a task that never looks costs nothing."""

    def __init__(self, inlets: list[Any]) -> None:
        self._inlets = [i for i in inlets if isinstance(i, CoreAsset)]
        self._by_uri = {i.uri: i for i in self._inlets}
        self._read: dict[str, list[DatasetEvent]] = {}

    def __getitem__(self, key: Any) -> list[DatasetEvent]:
        if isinstance(key, int) and not isinstance(key, bool):
            key = self._inlets[key]
        uri = key.uri if isinstance(key, CoreAsset) else _uri(key, what="inlet_events")
        if uri not in self._by_uri:
            raise KeyError(f"{uri!r} is not an inlet of this task; its inlets: {', '.join(self._by_uri) or '(none)'}")
        if uri not in self._read:
            cls: type[Dataset] = Asset if isinstance(self._by_uri[uri], Asset) else Dataset
            self._read[uri] = [_event(e, cls) for e in _recorded_events(uri)]
        return self._read[uri]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inlets)

    def __len__(self) -> int:
        return len(self._inlets)


_MOST_EVENTS = 10_000


def _recorded_events(uri: str) -> list[dict[str, Any]]:
    """The asset's events in the metadata database this process is configured for, oldest first
    (none when there is no database yet, as for a first ``ductwork run``)."""
    from ductwork.engine.services_setup import existing_database
    from ductwork.engine.task_env import secrets_environ
    from ductwork.settings import Settings
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import assets as asset_repo

    # the database URL is withheld from tasks' os.environ (engine.task_env); Ductwork reads it here
    engine = existing_database(Settings.load(environ=secrets_environ()))
    if engine is None:
        return []
    try:
        with read_transaction(engine) as conn:
            found = asset_repo.asset_events_of(conn, uri, limit=_MOST_EVENTS)
    finally:
        engine.dispose()
    return [e.to_dict() for e in reversed(found)]
