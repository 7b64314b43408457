"""The #{...} expression language: evaluation as the developer guide documents it, errors with
positions, and properties checked on generated input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.declarative.datapipeline import jodatime
from ductwork.declarative.datapipeline.expressions import (
    Call,
    ExpressionError,
    check_call,
    parse_template,
    render,
    walk,
)

MY = dt.datetime(2011, 5, 24, 17, 10, tzinfo=dt.UTC)  # the guide's myDateTime


def run(text: str, **names: Any) -> Any:
    values = {"myDateTime": MY, **names}

    def resolve(path: tuple[str, ...], pos: int) -> Any:
        if path[0] not in values:
            raise ExpressionError(f"unknown {path[0]}", pos)
        return values[path[0]]

    template = parse_template(text)
    for expr in template.expressions:
        for node in walk(expr):
            if isinstance(node, Call):
                check_call(node)
    return render(template, resolve)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#{day(myDateTime)}", "24"),
        ("#{dayOfYear(myDateTime)}", "144"),
        ("#{firstOfMonth(myDateTime)}", "2011-05-01T17:10:00"),
        ("#{format(myDateTime,'YYYY-MM-dd HH:mm:ss z')}", "2011-05-24 17:10:00 UTC"),
        ("#{hour(myDateTime)}", "17"),
        ("#{makeDate(2011,5,24)}", "2011-05-24T00:00:00"),
        ("#{makeDateTime(2011,5,24,14,21)}", "2011-05-24T14:21:00"),
        ("#{midnight(myDateTime)}", "2011-05-24T00:00:00"),
        ("#{minusDays(myDateTime,1)}", "2011-05-23T17:10:00"),
        ("#{minusHours(myDateTime,1)}", "2011-05-24T16:10:00"),
        ("#{minusMinutes(myDateTime,1)}", "2011-05-24T17:09:00"),
        ("#{minusMonths(myDateTime,1)}", "2011-04-24T17:10:00"),
        ("#{minusWeeks(myDateTime,1)}", "2011-05-17T17:10:00"),
        ("#{minusYears(myDateTime,1)}", "2010-05-24T17:10:00"),
        ("#{minute(myDateTime)}", "10"),
        ("#{month(myDateTime)}", "5"),
        ("#{plusDays(myDateTime,1)}", "2011-05-25T17:10:00"),
        ("#{plusHours(myDateTime,1)}", "2011-05-24T18:10:00"),
        ("#{plusMinutes(myDateTime,1)}", "2011-05-24T17:11:00"),
        ("#{plusMonths(myDateTime,1)}", "2011-06-24T17:10:00"),
        ("#{plusWeeks(myDateTime,1)}", "2011-05-31T17:10:00"),
        ("#{plusYears(myDateTime,1)}", "2012-05-24T17:10:00"),
        ("#{sunday(myDateTime)}", "2011-05-22T17:10:00"),
        ("#{year(myDateTime)}", "2011"),
        ("#{yesterday(myDateTime)}", "2011-05-23T17:10:00"),
        ('#{"hel" + "lo"}', "hello"),
        ("#{1 + 2}", "3"),
        ("#{1 - 2}", "-1"),
        ("#{1 * 2}", "2"),
        ("#{1 / 2}", "0"),
        ("#{1.0 / 2}", "0.5"),
        ("#{2 ^ 2}", "4.0"),
        ("#{-7 / 2}", "-3"),
        ("#{format(minusMinutes(myDateTime,30),'YYYY-MM-dd hh:mm:ss')}", "2011-05-24 04:40:00"),
        ("#{myDateTime.format('YYYY-MM-dd-hh:mm')}", "2011-05-24-05:10"),
        ("s3://bucket/#{format(myDateTime,'yyyy/MM/dd')}/x-#{myN + 1}.csv", "s3://bucket/2011/05/24/x-42.csv"),
        ("#{format(myDateTime, \"EEE, d MMM yyyy 'at' h a\")}", "Tue, 24 May 2011 at 5 PM"),
        ("#{plusMonths(makeDate(2011,1,31),1)}", "2011-02-28T00:00:00"),
        ("no expressions here", "no expressions here"),
        # inTimeZone: the same instant on a zone's wall clock, daylight saving time included
        ("#{inTimeZone(myDateTime,'America/Los_Angeles')}", "2011-05-24T10:10:00.000-07:00"),
        ("#{format(inTimeZone(myDateTime,'America/Los_Angeles'),'YYYY-MM-dd HH:mm z')}", "2011-05-24 10:10 PDT"),
        (
            "#{format(inTimeZone(makeDate(2011,1,24),'America/Los_Angeles'),'dd HH Z ZZ ZZZ')}",
            "23 16 -0800 -08:00 America/Los_Angeles",
        ),
        ("#{hour(inTimeZone(myDateTime,'Asia/Kolkata'))}", "22"),
        ("#{minute(inTimeZone(myDateTime,'+05:30'))}", "40"),
        ("#{day(@scheduledStartTime.inTimeZone('Pacific/Auckland'))}", "25"),
        ("#{midnight(inTimeZone(myDateTime,'America/Los_Angeles'))}", "2011-05-24T00:00:00.000-07:00"),
        ("#{inTimeZone(myDateTime,'UTC')}", "2011-05-24T17:10:00"),
        # across the spring-forward of 2024-03-10 in Los Angeles: a day keeps the time of day,
        # an hour is an hour
        (
            "#{plusDays(inTimeZone(makeDateTime(2024,3,9,12,0),'America/Los_Angeles'),1)}",
            "2024-03-10T04:00:00.000-07:00",
        ),
        (
            "#{plusHours(inTimeZone(makeDateTime(2024,3,10,9,0),'America/Los_Angeles'),1)}",
            "2024-03-10T03:00:00.000-07:00",
        ),
        (
            "#{yesterday(inTimeZone(makeDateTime(2024,3,11,12,0),'America/Los_Angeles'))}",
            "2024-03-10T05:00:00.000-07:00",
        ),
        (
            "#{format(inTimeZone(myDateTime,'Europe/Paris'),'YYYY-MM-dd') + '/' + format(myDateTime,'HH')}",
            "2011-05-24/17",
        ),
    ],
)
def test_the_guides_functions_and_operators(text: str, expected: str) -> None:
    assert run(text, myN=41, **{"@scheduledStartTime": MY}) == expected


def test_a_zoned_date_time_read_back_from_text_keeps_its_instant() -> None:
    text = run("#{inTimeZone(myDateTime,'America/Los_Angeles')}")
    assert jodatime.parse_datetime(text) == MY
    assert run("#{format(x,'HH:mm')}", x=text) == "10:10"


def test_a_masked_name_keeps_its_star_and_star_still_multiplies() -> None:
    """``#{*myPassword}`` names the parameter declared as "*myPassword" (AWS masks its value);
    after a value, ``*`` is still multiplication."""
    names = {"*myPassword": "s3cr3t", "myN": 4}
    assert run("#{*myPassword}", **names) == "s3cr3t"
    assert run("#{myN *2} #{2 * 3} #{(myN)*myN}", **names) == "8 6 16"
    assert run("#{'pw=' + *myPassword}", **names) == "pw=s3cr3t"


def test_lists_map_and_flatten() -> None:
    assert run("#{'this is ' + myList}", myList=["one", "two"]) == ["this is one", "this is two"]
    assert run("#{a}#{b}", a=[1, 2], b=[3, 4]) == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("echo #{", 6, "not closed"),
        ("echo #{format(myDateTime)}", 8, "takes 2 arguments"),
        ("echo #{formt(myDateTime, 'YYYY')}", 8, "Did you mean 'format'"),
        ("echo #{1 +}", 11, "expected a value"),
        ("echo #{'abc}", 8, "unterminated string"),
        ("x #{format(myDateTime, 'YYYY-qq')}", 24, "unknown pattern letter 'q'"),
        ("x #{1 + 2) }", 10, "unexpected ')'"),
        ("x #{myMissing}", 5, "unknown myMissing"),
        ("x #{plusDays('soon', 1)}", 14, "wants a DateTime"),
        ("x #{1 / 0}", 7, "division by zero"),
        ("x #{@}", 5, "must be followed by a field name"),
        ("x #{inTimeZone(myDateTime, 'Mars/Olympus')}", 28, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        run(text)
    assert info.value.position + 1 == position, str(info.value)
    assert fragment in str(info.value)


@given(st.text(max_size=60))
@settings(max_examples=400, deadline=None)
def test_any_text_parses_or_fails_with_a_position_inside_it(text: str) -> None:
    try:
        template = parse_template(text)
    except ExpressionError as exc:
        assert 0 <= exc.position <= len(text)
        return
    # Literal text comes back unchanged when there is no expression.
    if template.is_plain:
        assert "".join(p for p in template.parts if isinstance(p, str)) == text


_SAFE_TEXT = st.text(alphabet=st.characters(blacklist_characters="#{}'\"\\", blacklist_categories=("Cs",)), max_size=20)


@given(st.lists(st.one_of(_SAFE_TEXT, st.integers(-(10**6), 10**6)), max_size=6))
@settings(max_examples=200, deadline=None)
def test_text_and_integer_expressions_render_to_their_values(parts: list[Any]) -> None:
    source = "".join(p if isinstance(p, str) else f"#{{{p}}}" for p in parts)
    assert run(source) == "".join(str(p) for p in parts)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
@settings(max_examples=200, deadline=None)
def test_quoted_strings_round_trip(value: str) -> None:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    assert run(f"#{{'{escaped}'}}") == value


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.sampled_from("+-*"))
@settings(max_examples=200, deadline=None)
def test_integer_arithmetic_matches_python(a: int, b: int, op: str) -> None:
    assert run(f"#{{{a} {op} ({b})}}") == str(eval(f"{a} {op} ({b})"))


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2900, 1, 1)), st.integers(-500, 500))
@settings(max_examples=200, deadline=None)
def test_plus_and_minus_are_inverse_for_days_hours_minutes(when: dt.datetime, n: int) -> None:
    when = when.replace(microsecond=0, tzinfo=dt.UTC)
    for unit in ("Days", "Hours", "Minutes", "Weeks"):
        assert run(f"#{{minus{unit}(plus{unit}(myDateTime, {n}), {n})}}", myDateTime=when) == jodatime.iso(when)


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2900, 1, 1)))
@settings(max_examples=200, deadline=None)
def test_iso_text_parses_back(when: dt.datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=dt.UTC)
    assert jodatime.parse_datetime(jodatime.iso(when)) == when
    assert run("#{format(myDateTime, 'yyyy-MM-dd HH:mm:ss')}", myDateTime=when) == when.strftime("%Y-%m-%d %H:%M:%S")
