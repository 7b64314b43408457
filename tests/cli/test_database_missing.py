"""A server that answers but has no such database (or no such user) is said as that, with how
to create the database: "cannot connect ... check that the server is running" sent people to
look at a server that was up."""

from __future__ import annotations

import pytest

from dbfixtures import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, _require, random_name
from tests.conftest import Cli


@pytest.mark.parametrize(("backend", "admin"), [("postgres", POSTGRES_ADMIN_URL), ("mariadb", MARIADB_ADMIN_URL)])
def test_a_database_that_does_not_exist_is_said_with_how_to_create_it(cli: Cli, backend: str, admin: str) -> None:
    name = random_name()
    url = _require(backend, admin).set(database=name).render_as_string(hide_password=False)
    said = cli("db", "check", env={"DUCTWORK_DATABASE_URL": url})
    assert said.exit_code != 0
    assert f"answered, but has no database {name!r}: create it (" in said.output, said.output
    assert ("createdb" if backend == "postgres" else f"CREATE DATABASE `{name}`") in said.output, said.output
    assert "server is running" not in said.output


def test_an_unknown_user_is_said_as_refused_not_as_a_server_down(cli: Cli) -> None:
    url = _require("postgres", POSTGRES_ADMIN_URL).set(username="nobody_here").render_as_string(hide_password=False)
    said = cli("db", "check", env={"DUCTWORK_DATABASE_URL": url})
    assert said.exit_code != 0
    assert "answered, but refused the user 'nobody_here'" in said.output, said.output
