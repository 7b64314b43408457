"""A mistyped command is answered with the command meant.

The root group imports its commands only when they are used, and click suggested only among the
commands already imported: ``ductwork flow list`` said "No such command 'flow'." and nothing of
``flows``. Airflow's names for commands (``dags``, ``db migrate``, ``pools get``) said as
little, though an Airflow user types them first.
"""

from __future__ import annotations

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("flow", "list"), "No such command 'flow'. Did you mean 'flows'?"),
        (("conections", "list"), "No such command 'conections'. Did you mean 'connections'?"),
        (("runs", "lst"), "No such command 'lst'. Did you mean 'list'?"),
        (("dags", "list"), "No such command 'dags'. Airflow's `dags` commands are `ductwork flows`"),
        (("db", "migrate"), "No such command 'migrate'. Airflow's `db migrate` is `ductwork db upgrade`"),
        (("pools", "get", "etl"), "No such command 'get'. Pools are shown by `ductwork pools list`."),
        (("tokens", "delete", "3"), "A token is revoked with `ductwork tokens revoke ID`"),
        (("flows", "trigger", "etl"), "A run is queued with `ductwork trigger FLOW`."),
        (("version",), "No such command 'version'. The version is printed by `ductwork --version`."),
        (("api-server",), "Airflow's `api-server` is `ductwork webserver`"),
        (("celery", "worker"), "Airflow's `celery worker` is `ductwork worker`."),
        (("tasks", "states-for-dag-run", "etl", "r1"), "A run's task states are `ductwork tasks state FLOW RUN`."),
        (("tasks", "failed-deps", "etl", "a"), "Why a task ran or did not is `ductwork why FLOW TASK [RUN]`."),
    ],
)
def test_an_unknown_command_says_which_was_meant(cli: Cli, args: tuple[str, ...], said: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()), result.output


def test_a_command_like_nothing_known_is_only_refused(cli: Cli) -> None:
    result = cli("zzz")
    assert result.exit_code == 2 and "No such command 'zzz'." in result.output, result.output
    assert "Did you mean" not in result.output
