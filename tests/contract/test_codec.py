"""The lossless JSON codec used for run params, conf, rendered fields and results."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.store import codec

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.dates()
    | st.times()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
)
_hashable = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.dates()
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner)
        | st.dictionaries(_hashable, inner)
        | st.frozensets(_hashable)
        | st.sets(_hashable)
    ),
    max_leaves=20,
)


@given(_values)
def test_round_trip(value: Any) -> None:
    text = codec.dumps(value)
    json.loads(text)  # always valid JSON
    assert codec.loads(text) == value


def test_plain_json_stays_plain() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert json.loads(codec.dumps(value)) == value


def test_a_user_dict_that_looks_like_a_tag_is_not_decoded_as_one() -> None:
    value = {codec.TAG: "date", "v": "2024-01-01"}
    assert codec.loads(codec.dumps(value)) == value


def test_unencodable_values_name_their_path() -> None:
    with pytest.raises(codec.UnencodableValueError, match=r"builtins.object value at rows\[1\].x"):
        codec.dumps({"rows": [1, {"x": object()}]})


def test_a_dict_parameters_frozen_value_is_stored_as_a_dict() -> None:
    """DictParameter values are frozen into mapping proxies (hashable): a flow with one could not
    be triggered at all (``UnencodableValueError: a builtins.mappingproxy value``)."""
    from ductwork import DictParameter

    frozen = DictParameter(default={"b": [1, 2], "a": {"x": 1}}).normalize({"b": [1, 2], "a": {"x": 1}})
    stored = json.loads(json.dumps(codec.encode({"opts": frozen})))
    assert codec.decode(stored) == {"opts": {"a": {"x": 1}, "b": (1, 2)}}
