"""Parameters parse what users type, serialize canonically, and name themselves in errors."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork import (
    BoolParameter,
    ChoiceParameter,
    DateParameter,
    DateTimeParameter,
    DictParameter,
    EnumParameter,
    FloatParameter,
    IntParameter,
    JsonParameter,
    ListParameter,
    MonthParameter,
    Parameter,
    PathParameter,
    TimeDeltaParameter,
)
from ductwork.core.params import from_description, parameter_for, parse_duration
from ductwork.errors import ParameterTypeError

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12,
)


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


ROUND_TRIPS = [
    (Parameter(), st.text()),
    (IntParameter(), st.integers()),
    (FloatParameter(), st.floats(allow_nan=False, allow_infinity=False)),
    (BoolParameter(), st.booleans()),
    (DateParameter(), st.dates()),
    (DateTimeParameter(), st.datetimes(timezones=st.none() | st.just(dt.UTC))),
    (MonthParameter(), st.dates().map(lambda d: d.replace(day=1))),
    (TimeDeltaParameter(), st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=999))),
    (EnumParameter(Colour), st.sampled_from(Colour)),
    (ChoiceParameter(["a", "b", "c"]), st.sampled_from(["a", "b", "c"])),
    (ListParameter(), st.lists(json_leaf, max_size=5).map(tuple)),
    (DictParameter(), st.dictionaries(st.text(max_size=5), json_value, max_size=4)),
    (JsonParameter(), json_value),
    (PathParameter(), st.text(alphabet="abc/_-.", min_size=1, max_size=12).filter(lambda s: s.strip("/") != "")),
]


@pytest.mark.parametrize(
    "param, values", ROUND_TRIPS, ids=lambda x: type(x).__name__ if isinstance(x, Parameter) else ""
)
def test_parse_of_serialize_is_identity(param: Parameter, values: st.SearchStrategy) -> None:
    @given(values)
    def check(value: object) -> None:
        normal = param.normalize(value)
        text = param.serialize(normal)
        assert param.parse(text) == normal
        assert param.serialize(param.parse(text)) == text  # canonical

    check()


@given(st.dictionaries(st.text(max_size=4), json_leaf, max_size=5))
def test_dict_serialization_ignores_key_order(value: dict) -> None:
    param = DictParameter()
    reordered = dict(reversed(list(value.items())))
    assert param.serialize(param.normalize(value)) == param.serialize(param.normalize(reordered))


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("1.5", 1.5), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("P1DT2H", 93600), ("1w", 604800)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "h1", "P", "1h 2"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "1e400", "1e20", "99999999999999d", "P99999999999D"])
def test_durations_past_what_a_timedelta_holds_are_refused_as_values(text: str) -> None:
    # `--param timeout=inf` and `schedule="inf"` were an OverflowError traceback.
    with pytest.raises(ValueError, match="too large"):
        parse_duration(text)


@given(st.one_of(st.text(max_size=30), st.from_regex(r"[0-9.eE+-]{1,25}[a-zA-Z]{0,3}", fullmatch=True)))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    """What a user types as a duration (a run parameter, a schedule, a YAML ``retry_delay``) is
    read or refused with ``ValueError``, which every caller turns into a message naming it."""
    try:
        parse_duration(text)
    except ValueError:
        pass


def test_a_timedelta_parameter_names_itself_for_a_duration_too_large() -> None:
    with pytest.raises(ParameterTypeError, match="'timeout'.*too large"):
        TimeDeltaParameter().convert("1e20", name="timeout", owner="flow 'etl'")
    with pytest.raises(ParameterTypeError, match="'timeout'"):
        TimeDeltaParameter().convert(1e300, name="timeout", owner="flow 'etl'")


def test_wrong_type_names_parameter_and_type() -> None:
    with pytest.raises(ParameterTypeError) as err:
        IntParameter().convert("ten", name="limit", owner="flow 'etl'")
    assert "flow 'etl'" in str(err.value)
    assert "'limit'" in str(err.value)
    assert "wants int" in str(err.value)


def test_bool_words() -> None:
    p = BoolParameter()
    assert [p.parse(w) for w in ("yes", "TRUE", "1", "off", "n")] == [True, True, True, False, False]
    with pytest.raises(ValueError):
        p.parse("maybe")


def test_choice_refuses_other_values() -> None:
    with pytest.raises(ParameterTypeError, match="one of a, b"):
        ChoiceParameter(["a", "b"]).convert("z", name="mode")


def test_description_round_trip_validates_without_the_declaring_code() -> None:
    for param in (IntParameter(default=3, description="n"), ChoiceParameter(["x", "y"], default="x")):
        rebuilt = from_description(param.describe())
        assert rebuilt.default == param.default
        assert rebuilt.describe() == param.describe() or rebuilt.type_name == "choice"
    rebuilt = from_description(IntParameter().describe())
    assert rebuilt.required
    with pytest.raises(ParameterTypeError):
        rebuilt.convert("abc", name="n")


def test_annotations_choose_parameter_types() -> None:
    assert isinstance(parameter_for(int, 3), IntParameter)
    assert isinstance(parameter_for(float | None, None), FloatParameter)
    assert isinstance(parameter_for(dt.date), DateParameter)
    assert isinstance(parameter_for(None, 2.5), FloatParameter)
    assert isinstance(parameter_for(pathlib.Path, "x"), PathParameter)
    assert parameter_for(int).required


def test_an_invalid_default_is_an_error_naming_the_parameter_class_and_the_value() -> None:
    # Was a bare "ValueError: invalid literal for int() with base 10: 'abc'" from the flow file.
    from ductwork.core.params import SchemaParameter

    with pytest.raises(
        ParameterTypeError, match=r"IntParameter\(default='abc'\): the default is invalid: invalid literal"
    ):
        IntParameter(default="abc")
    with pytest.raises(
        ParameterTypeError, match=r"SchemaParameter\(default=50\): the default is invalid: 50 is greater"
    ):
        SchemaParameter(50, schema={"type": "integer", "maximum": 10})


def test_an_invalid_default_of_a_flow_function_argument_names_the_flow_and_argument() -> None:
    from ductwork import flow

    @flow
    def typed(n: int = "abc") -> None:  # type: ignore[assignment]
        pass

    with pytest.raises(ParameterTypeError, match=r"flow 'typed': parameter 'n': the default 'abc' is invalid"):
        typed.build()


def test_an_optional_annotation_takes_null_even_with_another_default() -> None:
    # `limit: int | None = 5` could not be given None from the CLI, the web form or by name.
    import typing

    for annotation in (int | None, typing.Optional[int]):  # noqa: UP045 (both spellings are in use)
        param = parameter_for(annotation, 5)
        assert isinstance(param, IntParameter) and param.takes_null()
        assert param.convert("null", name="limit") is None
        rebuilt = from_description(param.describe())  # the scheduler and API see the same
        assert rebuilt.takes_null() and rebuilt.convert("null") is None and rebuilt.default == 5
    required = parameter_for(int | None)
    assert required.required and required.convert("null") is None
    assert not parameter_for(int, 5).takes_null()
    assert "nullable" not in parameter_for(int, 5).describe()


def test_null_text_is_none_only_for_parameters_that_take_none() -> None:
    assert IntParameter(default=None).convert("null") is None
    assert DateParameter(default=None).convert("null") is None
    with pytest.raises(ParameterTypeError, match=r"parameter 'n' wants int, got 'null'"):
        IntParameter(default=3).convert("null", name="n")
    with pytest.raises(ParameterTypeError, match=r"parameter 'n' wants int or null, got 'None'"):
        IntParameter(default=None).convert("None", name="n")  # the error says what to write
    assert Parameter(default="x").convert("null") == "null"  # a text parameter's "null" is text


def test_luigi_optional_parameters_take_null_and_keep_their_empty_text() -> None:
    from ductwork.compat.luigi import OptionalIntParameter, OptionalParameter
    from ductwork.compat.luigi import Parameter as LuigiParameter

    number = OptionalIntParameter(default=5)
    assert number.takes_null() and number.convert("") is None and number.convert("null") is None
    assert from_description(number.describe()).convert("null") is None
    assert OptionalParameter(default="x").convert("null") == "null"  # text in Luigi: stays text
    assert LuigiParameter(default=None).convert("null") == "null"


def test_a_list_annotation_types_its_items() -> None:
    # `xs: list[int]` given `--param xs=1,2` was ("1", "2"), and ["a"] was taken as it was.
    param = parameter_for(list[int], [1])
    assert param.convert("1,2") == (1, 2) and param.convert("[3, 4]") == (3, 4) and param.default == (1,)
    with pytest.raises(ParameterTypeError, match=r"wants list of int, got 'a,b' \(item 0 \('a'\) is not int"):
        param.convert("a,b", name="xs")
    with pytest.raises(ParameterTypeError, match=r"item 1 \(2.5\) is not int"):
        param.convert([1, 2.5], name="xs")
    rebuilt = from_description(param.describe())  # the scheduler and API check the same
    assert rebuilt.convert("5,6") == (5, 6) and rebuilt.describe() == param.describe()
    assert parameter_for(tuple[dt.date, ...]).convert("2024-01-31") == (dt.date(2024, 1, 31),)
    assert parameter_for(list[str]).convert([1, "a"]) == (1, "a")  # text items: as given, as before
    assert parameter_for(list).convert("1,2") == ("1", "2")
    assert "items" not in parameter_for(list).describe()


def test_a_dict_parameters_value_is_hashable_picklable_and_copyable_as_its_docstring_says() -> None:
    """A task with a dict parameter goes into sets, ``copy.deepcopy`` and ``pickle`` (its value
    was a ``mappingproxy``: ``hash`` raised TypeError, deepcopy and pickle 'cannot pickle')."""
    import copy
    import json
    import pickle

    from ductwork import Task
    from ductwork.core.params import DictParameter

    class Shaped(Task):
        d = DictParameter(default={"b": [1, 2], "a": {"x": 1}})

    task = Shaped()
    assert hash(task.d) == hash(Shaped().d) and len({task, Shaped()}) == 1
    assert copy.deepcopy(task).d == task.d == pickle.loads(pickle.dumps(task.d))
    assert json.dumps(task.d) == '{"a": {"x": 1}, "b": [1, 2]}'
    with pytest.raises(TypeError, match="does not support item assignment"):
        task.d["c"] = 3  # type: ignore[index]


def test_a_date_time_format_refuses_text_that_is_no_date_time() -> None:
    # Param("...", type="string", format="date-time") took "not a date" from the trigger form,
    # the API and --param: jsonschema checks date-time only with rfc3339-validator installed,
    # which Airflow depends on and Ductwork did not, while format="date" was checked.
    from ductwork.core.params import SchemaParameter

    when = SchemaParameter("2024-01-01T00:00:00+00:00", schema={"type": "string", "format": "date-time"})
    for good in ("2024-01-31T23:59:59Z", "2024-01-31t07:35:07.25+05:30", "2024-02-29T00:00:00-08:00"):
        assert when.parse(good) == good
    for bad in ("not a date", "2024-02-30T00:00:00Z", "2024-01-31T24:00:00Z", "2024-01-31", "2024-01-31T00:00:00"):
        with pytest.raises(ValueError, match="is not a 'date-time'"):
            when.parse(bad)


def test_a_schema_without_a_type_keeps_the_numbers_its_enum_lists() -> None:
    # Airflow's Param(1, enum=[1, 2, 3]): the recorded default "1" was read back as the text "1",
    # which the enum refuses, so the flow's API answer, trigger form, grid and `flows show`
    # failed with a ValueError (500), and the form's choice "2" was refused.
    from ductwork.core.params import SchemaParameter, from_description

    level = SchemaParameter(1, schema={"enum": [1, 2, 3]})
    rebuilt = from_description(level.describe())
    assert rebuilt.default == 1
    assert rebuilt.parse("2") == 2
    assert rebuilt.normalize("2") == 2  # the trigger form's choice, sent as text
    with pytest.raises(ValueError, match="is not one of"):
        rebuilt.parse("4")
    # Text that the schema takes as text stays text, as before.
    assert SchemaParameter("abc").parse("123") == "123"
    assert SchemaParameter("a", schema={"type": "string"}).parse("7") == "7"
    assert SchemaParameter("x", schema={"enum": ["x", "10"]}).parse("10") == "10"
    with pytest.raises(ValueError, match="'123' is too short"):
        SchemaParameter("abcdef", schema={"type": "string", "minLength": 5}).parse("123")
