"""State shared by the CLI commands: settings loaded once, and error handling."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import click

from ductwork.errors import DuctworkError
from ductwork.settings import Settings


@dataclass
class CliState:
    config_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(config_path=self.config_path, overrides=self.overrides)
        return self._settings


class DuctworkGroup(click.Group):
    """A click group that turns ``DuctworkError`` into a clean message and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DuctworkError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(2)
