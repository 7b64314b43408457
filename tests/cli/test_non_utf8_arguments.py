"""Arguments typed in another encoding than UTF-8 are refused by name, not a traceback.

A Latin-1 terminal sends ``K\\xf6ln`` as the byte 0xF6, which Python passes on as a lone
surrogate; the database driver could not encode it, and ``variables set``, ``pools set``,
``runs show``, ``trigger --conf``... ended in a ``UnicodeEncodeError`` traceback with exit
status 1 (a failure found, to a script) instead of 2 (refused, nothing changed).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import Cli

KOELN = os.fsdecode(b"K\xf6ln")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("variables", "set", "city", KOELN), "'VALUE'"),
        (("variables", "set", KOELN, "x"), "'NAME'"),
        (("pools", "set", KOELN, "3"), "'NAME'"),
        (("pools", "set", "p", "3", "--description", KOELN), "'--description'"),
        (("runs", "list", KOELN), "'[FLOW_ID]'"),
        (("runs", "show", "etl", KOELN), "'RUN_ID'"),
        (("connections", "add", "c", "--password", KOELN), "'--password' / '--conn-password'"),
    ],
)
def test_an_argument_that_is_not_utf8_is_refused_by_name(cli: Cli, args: tuple[str, ...], named: str) -> None:
    said = cli(*args)
    assert said.exit_code == 2, said.output
    assert f"Invalid value for {named}: not UTF-8 text: character 2 is the byte b'\\xf6'" in said.output, said.output


def test_nothing_is_recorded_and_utf8_text_is_kept(cli: Cli) -> None:
    assert cli("variables", "set", "city", KOELN).exit_code == 2
    assert cli("pools", "set", KOELN, "3").exit_code == 2
    assert cli("variables", "list", "--json").output.strip() == "[]"
    assert "K" not in cli("pools", "list", "--json").output
    audit = cli("audit", "list", "--json")
    assert audit.exit_code == 0 and "city" not in audit.output, audit.output
    assert cli("variables", "set", "city", "Köln").exit_code == 0
    assert cli("variables", "get", "city").output.strip() == "Köln"
