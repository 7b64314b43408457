"""``airflow.utils.timezone``."""

from __future__ import annotations

import datetime as dt
from typing import Any


def utcnow() -> Any:
    import pendulum

    return pendulum.now("UTC")


def datetime(*args: Any, **kwargs: Any) -> Any:
    """A datetime that is UTC unless ``tzinfo`` says otherwise."""
    import pendulum

    kwargs.setdefault("tzinfo", pendulum.UTC)
    return pendulum.instance(dt.datetime(*args, **kwargs))


def parse(value: str, timezone: Any = None) -> Any:
    import pendulum

    return pendulum.parse(value, tz=timezone or pendulum.UTC)


def make_aware(value: dt.datetime, timezone: Any = None) -> dt.datetime:
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone or dt.UTC)


def make_naive(value: dt.datetime, timezone: Any = None) -> dt.datetime:
    return value.astimezone(timezone or dt.UTC).replace(tzinfo=None)


def convert_to_utc(value: dt.datetime) -> dt.datetime:
    return make_aware(value).astimezone(dt.UTC)


def coerce_datetime(value: Any) -> Any:
    import pendulum

    return None if value is None else pendulum.instance(make_aware(value))


utc = dt.UTC
