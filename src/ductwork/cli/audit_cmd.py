"""``ductwork audit``: the audit log (who changed what, when, from where)."""

from __future__ import annotations

import datetime as dt
import json

import click

from ductwork.cli.state import CliState


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
@click.option("--since", default=None, help="Only changes from this date (ISO; UTC without an offset).")
@click.option(
    "--until",
    default=None,
    help="Only changes before this time; a day alone (2024-06-03) includes that whole day, as on the Audit log page.",
)
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Show at most this many changes."
)
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
    as_json: bool,
) -> None:
    """Changes, newest first (details never hold a secret)."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.options import date_option
    from ductwork.cli.output import console, print_json
    from ductwork.cli.tables import DataTable
    from ductwork.errors import ParameterError
    from ductwork.services import audit as audit_service

    start = None
    if since:
        start = date_option(since, "--since")
        assert start is not None
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    end = _until(until)
    if start is not None and end is not None and end <= start:
        raise ParameterError(f"--until {until!r} is not after --since {since!r}: no change could match")
    page = audit_service.entries(
        store(state), actor=actor, action=action, via=via, target=target, since=start, until=end, limit=limit
    )
    if as_json:
        print_json(
            {
                "total": page.total,
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


def _until(text: str | None) -> dt.datetime | None:
    """The end (excluded) of ``--until``. A day alone is read as the page's *until* box reads
    it, the whole day included: taken as its midnight, ``--since 2024-06-03 --until 2024-06-03``
    asked for nothing. Without an offset, UTC, as ``--since``."""
    from ductwork.cli.options import date_option

    end = date_option(text, "--until")
    if end is None or text is None:
        return None
    if len(text.strip()) == 10:  # YYYY-MM-DD: no time given
        end += dt.timedelta(days=1)
    return end if end.tzinfo else end.replace(tzinfo=dt.UTC)
