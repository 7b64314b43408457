"""Assets: the data a task writes (``outlets``) or reads (``inlets``), named by URI.

``Asset("s3://lake/orders")`` is Airflow's dataset/asset: a name for data, not a connection to
it. A flow scheduled on assets (``schedule=[a, b]``, ``schedule=a | b``, ``schedule=a & (b | c)``)
gets a run when its condition over the assets updated since its last asset-triggered run holds;
a list means all of them, as in Airflow. ``AssetOrTime`` combines a condition with a time
schedule. Conditions are plain data (``to_dict``/``condition_from_dict``), so the scheduler
evaluates them from the recorded flow without importing user code (ADR 0001).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ductwork.errors import DefinitionError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_MAX_URI = 1000


class AssetCondition:
    """Something ``|`` and ``&`` combine: an asset, or any/all of other conditions."""

    def __or__(self, other: AssetCondition) -> AssetAny:
        return AssetAny(self, _condition(other))

    def __and__(self, other: AssetCondition) -> AssetAll:
        return AssetAll(self, _condition(other))

    def evaluate(self, updated: Mapping[str, Any] | set[str]) -> bool:
        """Whether the condition holds when the assets in ``updated`` (URIs) have new events."""
        raise NotImplementedError

    def uris(self) -> list[str]:
        """Every asset URI the condition mentions, once, in order."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """The condition as a person would write it: ``a | (b & c)``."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Asset(AssetCondition):
    """A named piece of data. Equal (and hashed) by URI; ``extra`` is free-form metadata.

    Args:
        uri: where the data lives or what it is called: ``s3://bucket/key``, ``file:///path``,
            ``postgresql://host/db/table``, or any ``scheme://...``; a plain absolute path is
            read as a ``file://`` URI.
        extra: metadata shown with the asset (owner, format...); JSON-friendly values.
    """

    uri: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", normalize_uri(self.uri))
        if not isinstance(self.extra, Mapping):
            raise DefinitionError(f"Asset({self.uri!r}): extra must be a dict, got {type(self.extra).__name__}")
        object.__setattr__(self, "extra", dict(self.extra))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(("asset", self.uri))

    def __repr__(self) -> str:
        return f"Asset({self.uri!r})"

    def evaluate(self, updated: Mapping[str, Any] | set[str]) -> bool:
        return self.uri in updated

    def uris(self) -> list[str]:
        return [self.uri]

    def to_dict(self) -> dict[str, Any]:
        return {"asset": self.uri}

    def describe(self) -> str:
        return self.uri


class _Combination(AssetCondition):
    kind = ""
    symbol = ""

    def __init__(self, *conditions: AssetCondition) -> None:
        if not conditions:
            raise DefinitionError(f"{type(self).__name__}() needs at least one asset or condition")
        self.conditions: tuple[AssetCondition, ...] = tuple(_condition(c) for c in conditions)

    def uris(self) -> list[str]:
        return list(dict.fromkeys(u for c in self.conditions for u in c.uris()))

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: [c.to_dict() for c in self.conditions]}

    def describe(self) -> str:
        parts = [c.describe() if isinstance(c, Asset) else f"({c.describe()})" for c in self.conditions]
        return f" {self.symbol} ".join(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Combination) and type(other) is type(self) and other.conditions == self.conditions

    def __hash__(self) -> int:
        return hash((self.kind, self.conditions))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.conditions))})"


class AssetAny(_Combination):
    """Holds when any of its conditions holds (``a | b``)."""

    kind = "any"
    symbol = "|"

    def evaluate(self, updated: Mapping[str, Any] | set[str]) -> bool:
        return any(c.evaluate(updated) for c in self.conditions)

    def __or__(self, other: AssetCondition) -> AssetAny:
        return AssetAny(*self.conditions, _condition(other))


class AssetAll(_Combination):
    """Holds when all of its conditions hold (``a & b``, or a list given as a schedule)."""

    kind = "all"
    symbol = "&"

    def evaluate(self, updated: Mapping[str, Any] | set[str]) -> bool:
        return all(c.evaluate(updated) for c in self.conditions)

    def __and__(self, other: AssetCondition) -> AssetAll:
        return AssetAll(*self.conditions, _condition(other))


@dataclass(frozen=True)
class AssetOrTime:
    """A time schedule and an asset condition: a run is created by whichever comes first
    (Airflow's ``AssetOrTimeSchedule``). ``schedule`` is anything ``Flow(schedule=...)`` takes."""

    schedule: Any
    assets: Any


def normalize_uri(uri: Any) -> str:
    """A URI checked and written one way: ``/abs/path`` becomes ``file:///abs/path``."""
    if not isinstance(uri, str) or not uri.strip():
        raise DefinitionError(f"an asset URI must be a non-empty string, got {uri!r}")
    text = uri.strip()
    if len(text) > _MAX_URI:
        raise DefinitionError(f"asset URI {text[:60]!r}... is longer than {_MAX_URI} characters")
    if any(ch.isspace() for ch in text) or "\x00" in text:
        raise DefinitionError(f"asset URI {text!r} contains whitespace; encode it (%20)")
    if text.startswith("/"):
        return "file://" + text
    if not _SCHEME.match(text):
        raise DefinitionError(
            f"asset URI {text!r} has no scheme: write it as scheme://... (s3://bucket/key, file:///path, "
            "postgresql://host/db/table) or give an absolute path"
        )
    return text


def _condition(value: Any) -> AssetCondition:
    if isinstance(value, AssetCondition):
        return value
    if isinstance(value, str):
        return Asset(value)
    if isinstance(value, list | tuple) and value:
        return AssetAll(*(_condition(v) for v in value))
    raise DefinitionError(f"expected an Asset or a condition of assets (a | b, a & b), got {value!r}")


def is_asset_schedule(value: Any) -> bool:
    """Whether a ``schedule=`` value names assets (rather than a time schedule)."""
    if isinstance(value, AssetCondition | AssetOrTime):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, AssetCondition) for v in value)


def split_schedule(value: Any, *, where: str) -> tuple[Any, AssetCondition | None]:
    """``schedule=`` as (its time part, its asset condition)."""
    if isinstance(value, AssetOrTime):
        if is_asset_schedule(value.schedule):
            raise DefinitionError(f"{where}: AssetOrTime(schedule=...) wants a time schedule, not assets")
        return value.schedule, _condition(value.assets)
    if is_asset_schedule(value):
        return None, _condition(value)
    if isinstance(value, list | tuple) and value:
        raise DefinitionError(f"{where}: a list given as a schedule must hold only Asset objects, got {value!r}")
    return value, None


def condition_from_dict(data: Mapping[str, Any]) -> AssetCondition:
    """The inverse of ``AssetCondition.to_dict``; raises ``DefinitionError`` on anything else."""
    if not isinstance(data, Mapping) or len(data) != 1:
        raise DefinitionError(f"not an asset condition: {data!r}")
    ((kind, value),) = data.items()
    if kind == "asset":
        return Asset(value)
    if kind in ("any", "all") and isinstance(value, list):
        parts = [condition_from_dict(v) for v in value]
        return AssetAny(*parts) if kind == "any" else AssetAll(*parts)
    raise DefinitionError(f"not an asset condition: {data!r}")


def as_assets(value: Any, *, where: str, name: str) -> list[Asset]:
    """``outlets=``/``inlets=``: one asset, a URI string, or a list of them."""
    if value is None:
        return []
    items: Iterable[Any] = value if isinstance(value, list | tuple | set | frozenset) else [value]
    out: list[Asset] = []
    for item in items:
        if isinstance(item, Asset):
            out.append(item)
        elif isinstance(item, str):
            out.append(Asset(item))
        else:
            raise DefinitionError(f"{where}: {name} must hold Asset objects or URI strings, got {item!r}")
    return list(dict.fromkeys(out))


class OutletEvents(Mapping[str, "OutletEvent"]):
    """``context["outlet_events"]``: what a running task says about the assets it updates.

    ``outlet_events[asset].extra["rows"] = 10`` (or by URI) attaches data to the event that the
    task's success records for that asset; only the task's own outlets can be given extra.
    """

    def __init__(self, outlets: Sequence[Asset]) -> None:
        self._events = {a.uri: OutletEvent(a.uri) for a in outlets}

    def __getitem__(self, key: Any) -> OutletEvent:
        uri = key.uri if isinstance(key, Asset) else normalize_uri(key)
        try:
            return self._events[uri]
        except KeyError:
            raise KeyError(
                f"{uri!r} is not an outlet of this task; its outlets: {', '.join(self._events) or '(none)'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def collected(self) -> dict[str, dict[str, Any]]:
        """Each outlet's extra, for the try's outcome."""
        return {uri: dict(event.extra) for uri, event in self._events.items()}


@dataclass
class OutletEvent:
    uri: str
    extra: dict[str, Any] = field(default_factory=dict)
