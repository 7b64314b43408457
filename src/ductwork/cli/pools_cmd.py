"""``ductwork pools``: named limits on how many tasks run at once."""

from __future__ import annotations

import click

from ductwork.cli.engine_state import store
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import pools as pool_repo


@click.group()
def pools() -> None:
    """List, set and delete pools (tasks name their pool; each pool has slots)."""


@pools.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_pools(state: CliState, as_json: bool) -> None:
    """Every pool with its slots and description."""
    with read_transaction(store(state)) as conn:
        rows = pool_repo.list_pools(conn)
    if as_json:
        print_json([{"name": p.name, "slots": p.slots, "description": p.description} for p in rows])
        return
    table = DataTable("pool", "slots", "description")
    for p in rows:
        table.add_row(p.name, str(p.slots), p.description)
    console().print(table)


@pools.command("set", context_settings={"ignore_unknown_options": True})  # `-1` is a value (refused), not an option
@click.argument("name")
@click.argument("slots", type=click.IntRange(min=0))
@click.option("--description", default=None, help="What the pool is for (default: the one it has).")
@click.pass_obj
def set_pool(state: CliState, name: str, slots: int, description: str | None) -> None:
    """Create pool NAME or change its SLOTS (its description stays unless --description is given)."""
    from ductwork.services import pools as pool_service

    with transaction(store(state)) as conn:
        pool_service.set_pool(conn, name, slots, description)
    click.echo(f"pool {name}: {slots} slots (a running scheduler applies it within a few seconds)")


@pools.command("delete")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only say what the pool holds; delete nothing.")
@click.pass_obj
def delete_pool(state: CliState, name: str, dry_run: bool) -> None:
    """Delete a pool; tasks naming it then run without its limit."""
    from ductwork.services import pools as pool_service

    done = pool_service.delete_pool(store(state), name, dry_run=dry_run)
    if not dry_run:
        click.echo(f"pool {name} deleted")
        return
    click.echo(
        f"would delete pool {name} ({done.slots} slots; {done.running_slots} running, {done.queued_slots} queued); "
        f"{done.waiting_tasks} unfinished task(s) of active runs name it and would run without its limit"
    )
