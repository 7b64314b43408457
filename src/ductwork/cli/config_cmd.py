"""``ductwork config``: the effective settings and where each value came from."""

from __future__ import annotations

import click
from rich.table import Table

from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def config(state: CliState, as_json: bool) -> None:
    """Show the effective settings and their sources (flag, env, config_file, default)."""
    rows = state.settings.describe()
    if as_json:
        print_json({name: {"value": value, "source": source} for name, value, source in rows})
        return
    table = Table("setting", "value", "source")
    for row in rows:
        table.add_row(*row)
    console().print(table)
