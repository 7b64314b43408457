"""``ductwork assets``: the assets flows write, read and are scheduled on, and their updates."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.markup import escape
from rich.text import Text

from ductwork.cli.engine_state import store
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable


@click.group()
def assets() -> None:
    """Assets (data named by URI) and their update history."""


@assets.command("list")
@click.option("--search", default=None, help="Only assets whose URI contains this text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_assets(state: CliState, search: str | None, as_json: bool) -> None:
    """Every asset, with the flows that write it, that it starts and that read it, and how
    often and when it was last updated."""
    from ductwork.services.assets import flows_of_assets
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import assets as asset_repo

    engine = store(state)
    with read_transaction(engine) as conn:
        found = asset_repo.list_assets(conn, search=search)
    flows = flows_of_assets(engine)
    none: dict[str, list[str]] = {"producers": [], "consumers": [], "readers": []}
    if as_json:
        print_json(
            [
                {
                    "uri": a.uri,
                    **flows.get(a.uri, none),
                    "events": a.events,
                    "last_event_at": a.last_event_at.isoformat() if a.last_event_at else None,
                }
                for a in found
            ]
        )
        return
    table = DataTable("asset", "written by", "starts", "read by", "updates", "last update")
    for a in found:
        of = flows.get(a.uri, none)
        table.add_row(
            Text(a.uri),
            Text(", ".join(of["producers"]) or "-"),
            Text(", ".join(of["consumers"]) or "-"),
            Text(", ".join(of["readers"]) or "-"),
            str(a.events),
            a.last_event_at.isoformat(timespec="seconds") if a.last_event_at else "-",
        )
    console().print(table)


@assets.command("show")
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(state: CliState, uri: str, as_json: bool) -> None:
    """An asset's producers (tasks with it as an outlet), consumers (flows scheduled on it),
    readers (tasks with it as an inlet), and its latest updates."""
    from ductwork.services.assets import asset_detail, uri_named

    engine = store(state)
    detail = asset_detail(engine, uri_named(engine, uri))
    if as_json:
        print_json(dataclasses.asdict(detail))
        return
    out = console()
    out.print(f"[bold]{escape(detail.uri)}[/]")
    out.print("  producers: " + (", ".join(f"{f}.{t}" for f, t in detail.producers) or "-"), markup=False)
    out.print("  consumers: " + (", ".join(detail.consumers) or "-"), markup=False)
    out.print("  readers:   " + (", ".join(f"{f}.{t}" for f, t in detail.readers) or "-"), markup=False)
    table = DataTable("event", "at", "by run", "extra", "started")
    for e in detail.events:
        by = f"{e['flow_id']}/{e['run_id']} ({e['task_id']})" if e["flow_id"] else "-"
        started = ", ".join(f"{s['flow_id']}/{s['run_id']}" for s in e["started"]) or "-"
        # As JSON, the way it was given (--extra, the API) and is read back: Python's repr wrote
        # {'rows': 5, 'ok': True, 'note': None}, which no JSON reader or --extra takes.
        extra = json.dumps(e["extra"], ensure_ascii=False) if e["extra"] else ""
        table.add_row(str(e["id"]), e["at"], Text(by), Text(extra), Text(started))
    out.print(table)


@assets.command("update")
@click.argument("uri")
@click.option("--extra", "extra_text", default=None, help="What the update carries, as a JSON object: '{\"rows\": 5}'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def update(state: CliState, uri: str, extra_text: str | None, as_json: bool) -> None:
    """Record that URI was updated outside any flow (a load by hand, another system): the flows
    scheduled on it start as they do when a task writes it."""
    from ductwork.core.json_text import json_object
    from ductwork.services.assets import record_update, uri_named

    # The one reader of typed JSON objects: Python's own took NaN and Infinity, which the API
    # refuses, and stored them; `assets show --json` then printed text no JSON reader takes.
    extra = None if extra_text is None else json_object(extra_text, "--extra", example='{"rows": 5}')
    engine = store(state)
    event = record_update(engine, uri_named(engine, uri), extra=extra)
    if as_json:
        print_json(event.to_dict())
        return
    console().print(f"asset {event.uri}: update {event.id} recorded", markup=False)
