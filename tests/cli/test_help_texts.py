"""Every command and option says what it is for in ``--help``.

``ductwork variables --help`` listed ``set`` and ``delete`` with an empty description, and
``ductwork variables set --help`` said nothing but its usage; ``runs list --help`` showed
``--state``, ``--limit`` and ``--offset`` with no word of what they do (``--offset`` of what?),
as did ``--json`` on eleven commands, ``--log-level`` and ``--port`` of the long-running ones.
"""

from __future__ import annotations

import click

from tests.conftest import Cli


def _commands() -> list[tuple[str, click.Command]]:
    """Every command under ``ductwork``, by its command line (``ductwork runs list``)."""
    from ductwork.cli.main import cli

    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str, parent: click.Context | None) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} {name}"
                walk(sub, f"{path} {name}", ctx)

    walk(cli, "ductwork", None)
    return found


def test_every_command_has_a_description() -> None:
    commands = _commands()
    assert len(commands) > 80  # the lazily imported commands and their subcommands were all found
    missing = [path for path, command in commands if not (command.help or "").strip()]
    assert missing == []


def test_every_option_says_what_it_does() -> None:
    missing = [
        f"{path} {param.opts[0]}"
        for path, command in _commands()
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert missing == []


def test_a_list_command_help_shows_its_description_and_options(cli: Cli) -> None:
    shown = cli("runs", "list", "--help")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "--offset INTEGER RANGE Skip this many runs first" in text
    listed = cli("variables", "--help")
    assert "delete Delete variable NAME from the database" in " ".join(listed.output.split())
