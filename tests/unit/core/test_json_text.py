"""A JSON object from typed or sent text reads the same at every door (CLI, web form, API,
message payload): the field, what JSON found wrong and where, or what came instead."""

from __future__ import annotations

import pytest

from ductwork.cli.options import conf_option
from ductwork.core.json_text import json_object
from ductwork.errors import ParameterError
from ductwork.services.messages import parse_payload
from ductwork.web.forms import posted_conf


def _refusal(read: object, text: str) -> str:
    with pytest.raises(ParameterError) as caught:
        read(text)  # type: ignore[operator]
    return str(caught.value)


def test_blank_text_is_no_object_at_all() -> None:
    for text in (None, "", "  \n"):
        assert json_object(text, "conf") == {}
    assert json_object('{"a": [1]}', "conf") == {"a": [1]}


def test_bad_json_names_the_field_and_where_in_the_text() -> None:
    said = _refusal(lambda t: json_object(t, "conf"), '{\n  "a": 1,\n}')
    assert said == "conf: not valid JSON: Expecting property name enclosed in double quotes (line 3, column 1)"


def test_a_value_that_is_not_an_object_is_named_in_json_words() -> None:
    kinds = {"[1]": "an array", '"x"': "a string", "3.5": "a number", "true": "true", "null": "null"}
    for text, kind in kinds.items():
        said = _refusal(lambda t: json_object(t, "params", example='{"n": 3}'), text)
        assert said == f'params: expected a JSON object such as {{"n": 3}}, got {kind}'


def test_nesting_too_deep_for_the_decoder_is_refused_not_crashed() -> None:
    said = _refusal(lambda t: json_object(t, "conf"), "[" * 100_000)
    assert said.startswith("conf: not valid JSON") and "nested too deeply" in said


def test_the_cli_the_trigger_form_and_a_message_payload_say_the_same() -> None:
    # Each door had its own copy: "(... line 1 column 9 (char 8))", "the payload is not valid
    # JSON: ...", "must be a JSON object of run parameters, got list".
    for text in ('{"a": 1,}', "[1]", "{nope"):
        said = {
            door: _refusal(read, text).partition(": ")[2]
            for door, read in (("cli", conf_option), ("form", posted_conf), ("payload", parse_payload))
        }
        assert said["cli"] == said["form"] == said["payload"], said
    assert _refusal(conf_option, "[1]").startswith("--conf: ")
    assert _refusal(posted_conf, "[1]").startswith("conf: ")
    assert _refusal(parse_payload, "[1]").startswith("payload: ")
