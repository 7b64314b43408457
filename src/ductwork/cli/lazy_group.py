"""The CLI's root group: commands imported only when they are used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ductwork.cli import audit_hook
from ductwork.cli.state import DuctworkGroup
from ductwork.cli.text_args import check_text_arguments


class LazyGroup(DuctworkGroup):
    """A ``DuctworkGroup`` that imports its commands when they are used, so that a command
    pays at start-up only for its own imports (``ductwork --version`` imports no database,
    web or broker library).

    ``lazy_commands`` maps a command's name to ``"module:object"`` under ``ductwork.cli``;
    ``lazy_subcommands`` names commands to add to a group when that group is first loaded. A
    loaded command is wrapped for the audit log (``audit_hook``) once, and to refuse
    arguments that are not UTF-8 (``text_args``).
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, str] | None = None,
        lazy_subcommands: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = _load(self.lazy_commands[cmd_name])
            if isinstance(command, click.Group):
                for spec in self.lazy_subcommands.get(cmd_name, ()):
                    command.add_command(_load(spec))
            audit_hook.instrument_command(cmd_name, command)
            check_text_arguments(command)  # outside the audit: a refused argument records nothing
            self.add_command(command, cmd_name)
        return command


def _load(spec: str) -> click.Command:
    module, _, name = spec.partition(":")
    command = getattr(importlib.import_module(f"ductwork.cli.{module}"), name)
    assert isinstance(command, click.Command), spec
    return command
