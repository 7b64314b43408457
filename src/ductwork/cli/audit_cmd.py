"""``ductwork audit``: the audit log (who changed what, when, from where)."""

from __future__ import annotations

import datetime as dt
import json

import click

from ductwork.cli.options import OFFSET
from ductwork.cli.state import CliState
from ductwork.errors import ParameterError


@click.group()
def audit() -> None:
    """Read the audit log of changes made through the CLI, the API and the UI."""


@audit.command("list")
@click.option("--actor", default=None, help="Only changes by this user.")
@click.option("--action", default=None, help="Only this action (run.delete), or a family of them (run).")
@click.option(
    "--via",
    type=click.Choice(["cli", "api", "ui", "scheduler"]),
    default=None,
    help="Only changes made this way (the scheduler: its retention).",
)
@click.option("--target", default=None, help="Only targets starting with this (a flow id, flow/run).")
@click.option("--since", default=None, help="Only changes from this date (ISO; without an offset, UTC).")
@click.option(
    "--until",
    default=None,
    help="Only changes before this date-time, or up to the end of this day (2024-06-30: the 30th included).",
)
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Show at most this many changes."
)
@click.option("--offset", type=OFFSET, default=0, help="Skip this many changes first (the next page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_entries(
    state: CliState,
    actor: str | None,
    action: str | None,
    via: str | None,
    target: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """Changes, newest first (details never hold a secret)."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.output import console, print_json
    from ductwork.cli.tables import DataTable
    from ductwork.services import audit as audit_service

    start, end = _instant(since, "--since"), _instant(until, "--until")
    if end is not None and until is not None and _is_day(until):
        end += dt.timedelta(days=1)  # a day is included, as on the Audit log page
    if start is not None and end is not None and end <= start:
        raise ParameterError(f"--until {until!r} is not after --since {since!r}: no change could be shown")
    page = audit_service.entries(
        store(state),
        actor=actor,
        action=action,
        via=via,
        target=target,
        since=start,
        until=end,
        limit=limit,
        offset=offset,
    )
    if as_json:
        print_json(
            {
                "total": page.total,
                "offset": page.offset,
                "entries": [
                    {
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "via": e.via,
                        "origin": e.origin,
                        "action": e.action,
                        "target": e.target,
                        "details": dict(e.details),
                    }
                    for e in page.items
                ],
            }
        )
        return
    table = DataTable("when", "who", "via", "from", "action", "target", "details", title=f"audit log ({page.total})")
    for e in page.items:
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.actor,
            e.via,
            e.origin,
            e.action,
            e.target,
            json.dumps(dict(e.details), default=str)[:120],
        )
    console().print(table)


def _is_day(text: str) -> bool:
    """Whether ``text`` is a day alone (``2024-06-30``), not a date-time."""
    try:
        dt.date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _instant(text: str | None, option: str) -> dt.datetime | None:
    """``text`` typed for ``option`` as an aware date-time (UTC when it names no offset)."""
    from ductwork.cli.options import date_option

    value = date_option(text, option)
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
