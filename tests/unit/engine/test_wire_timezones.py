"""A try request carries its run's zone to a remote worker as flows record it: a fixed-offset
zone (``timezone=dt.timezone(dt.timedelta(hours=1))``, pendulum's ``FixedTimezone``) was sent
as ``UTC``, so ``{{ ds }}`` near midnight and every local date a worker rendered were off by the
offset; a name the worker could not read would have failed every try."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.core.schedule import get_timezone
from ductwork.engine.executor import TryKey, TryRequest
from ductwork.engine.remote.wire import decode_request, encode_request


def _round_trip(tz: dt.tzinfo) -> dt.tzinfo:
    at = dt.datetime(2024, 3, 1, 23, 30, tzinfo=dt.UTC)
    run = RunInfo("f", "r", at, at, at + dt.timedelta(days=1), timezone=tz)
    request = TryRequest(TryKey("f/r", "t", 1), NodeSpec(task_id="t"), run, (), "log")
    sent = encode_request(request, run_pk=1, code=None, reply_to="q", flows_root=None)
    return decode_request(sent).request.run.timezone


@pytest.mark.parametrize("name", ["UTC", "Europe/Madrid", "America/New_York", "UTC+01:00", "UTC-05:30"])
def test_a_runs_zone_reaches_the_worker_as_recorded(name: str) -> None:
    tz = get_timezone(name)
    back = _round_trip(tz)
    moment = dt.datetime(2024, 7, 1, 23, 30, tzinfo=dt.UTC)
    assert moment.astimezone(back).isoformat() == moment.astimezone(tz).isoformat()


@given(st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_any_fixed_offset_survives_the_trip(minutes: int) -> None:
    tz = dt.timezone(dt.timedelta(minutes=minutes))
    back = _round_trip(tz)
    assert back.utcoffset(None) == dt.timedelta(minutes=minutes)
