"""``ductwork variables get NAME --default VALUE``, as Airflow's ``variables get -d``.

A script reading an optional variable (``LIMIT=$(ductwork variables get limit -d 100)``) got
"No such option '-d'" and had to tell "not defined" from every other error by its text.
"""

from __future__ import annotations

from tests.conftest import Cli


def test_the_default_is_printed_only_when_the_variable_is_defined_nowhere(cli: Cli) -> None:
    missing = cli("variables", "get", "limit", "-d", "100")
    assert (missing.exit_code, missing.output) == (0, "100\n")
    assert cli("variables", "get", "limit", "--json", "--default", '{"n": 1}').output == '{"n": 1}\n'

    assert cli("variables", "set", "limit", "25").exit_code == 0
    assert cli("variables", "get", "limit", "--default", "100").output == "25\n"
    from_env = cli("variables", "get", "region", "-d", "eu", env={"DUCTWORK_VAR_REGION": "us"})
    assert from_env.output == "us\n"

    refused = cli("variables", "get", "other")  # without a default, still an error
    assert refused.exit_code == 2 and "variable 'other' is not defined" in refused.output
