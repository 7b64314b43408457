"""What a try records of rendered fields and asset-event extras is JSON any reader takes: a NaN
or an infinity was stored as a number (``{"rows":NaN}``, which the API showed as null) and a
date as its Python repr."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from ductwork.engine.execution import plain

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.datetimes() | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(VALUES)
def test_every_value_becomes_strict_json(value: object) -> None:
    json.dumps(plain(value), allow_nan=False)


def test_what_json_cannot_hold_is_kept_as_text_a_person_reads() -> None:
    when = dt.datetime(2026, 12, 7, 8, 30, tzinfo=dt.UTC)
    assert plain({"rows": float("nan"), "max": float("inf"), "at": when, "day": when.date(), "n": 1.5}) == {
        "rows": "nan",
        "max": "inf",
        "at": "2026-12-07T08:30:00+00:00",
        "day": "2026-12-07",
        "n": 1.5,
    }
