"""The wait before a retry with exponential backoff, as Airflow computes it: within
``[least, 2 * least)`` for ``least = ceil(retry_delay * 2 ** (n - 1))`` (at least 1 s), capped
by ``max_retry_delay``, and the same for the same failure."""

from __future__ import annotations

import datetime as dt
import math

from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.graph import NodeSpec
from ductwork.engine.rules import retry_delay

MOMENTS = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))


@given(
    delay=st.floats(min_value=0, max_value=3600),
    try_number=st.integers(min_value=1, max_value=12),
    cap=st.none() | st.floats(min_value=0, max_value=7200),
    now=MOMENTS,
    task_id=st.text(min_size=1, max_size=20),
)
def test_the_wait_lies_between_the_backoff_and_twice_it_under_the_cap(
    delay: float, try_number: int, cap: float | None, now: dt.datetime, task_id: str
) -> None:
    node = NodeSpec(task_id, retry_delay=delay, retry_exponential_backoff=True, max_retry_delay=cap)
    wait = retry_delay(node, try_number, now)
    least = max(math.ceil(delay * 2 ** (try_number - 1)), 1)
    expected_high = 2 * least - 1 if cap is None else min(2 * least - 1, cap)
    assert min(least, cap if cap is not None else least) <= wait <= expected_high
    assert wait == retry_delay(node, try_number, now)  # reproducible


@given(delay=st.floats(min_value=0, max_value=3600), try_number=st.integers(min_value=1, max_value=12))
def test_without_backoff_the_wait_is_the_retry_delay(delay: float, try_number: int) -> None:
    assert retry_delay(NodeSpec("t", retry_delay=delay), try_number) == delay
