"""What the scheduler and its pool workers say to each other arrives as it was sent.

Messages are pickles with reducers of their own for the types every try sends (a node, an
outcome, UTC times: ``executors._worker``): whatever a try's outcome holds, it loads back
equal, with its time zone."""

from __future__ import annotations

import datetime as dt
import pickle
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.core.events import TryOutcome
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.executors._worker import dumps

ZONES = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-5)), zoneinfo.ZoneInfo("Europe/Paris")])
TIMES = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), ZONES)
UTC_TIMES = st.datetimes(timezones=st.just(dt.UTC))


def _round_trip(message: object) -> object:
    data = dumps(message)
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    return pickle.loads(data[4:])


@settings(max_examples=300, deadline=None)
@given(TIMES)
def test_any_time_loads_back_equal_and_in_its_zone(value: dt.datetime) -> None:
    loaded = _round_trip(value)
    assert isinstance(loaded, dt.datetime)
    assert loaded == value and loaded.tzinfo == value.tzinfo and loaded.utcoffset() == value.utcoffset()
    assert (loaded.fold, loaded.isoformat()) == (value.fold, value.isoformat())


@settings(max_examples=200, deadline=None)
@given(
    state=st.sampled_from(list(TaskState)),
    started=UTC_TIMES,
    took=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)),
    error=st.none() | st.text(),
    next_try_at=st.none() | TIMES,
    rendered=st.dictionaries(st.text(), st.none() | st.integers() | st.text()),
    skip=st.lists(st.text(), max_size=3).map(tuple),
)
def test_a_try_end_message_loads_back_equal(
    state: TaskState,
    started: dt.datetime,
    took: dt.timedelta,
    error: str | None,
    next_try_at: dt.datetime | None,
    rendered: dict[str, object],
    skip: tuple[str, ...],
) -> None:
    ended = started + took if started <= dt.datetime.max.replace(tzinfo=dt.UTC) - took else started
    outcome = TryOutcome(
        state,
        started,
        ended,
        error=error,
        next_try_at=next_try_at,
        skip=skip,
        new_nodes=(NodeSpec("later", ("now",), retries=2),),
        rendered=rendered,
        asset_events={"s3://bucket/key": {"rows": 3}},
    )
    message = ("finished", 7, started, outcome)
    loaded = _round_trip(message)
    assert loaded == message
    assert isinstance(loaded, tuple) and loaded[3].started_at.tzinfo is dt.UTC
