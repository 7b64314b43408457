"""``ductwork triggers``: what became of the messages that could not start a run.

A message whose payload does not fit its flow (not JSON, a parameter of the wrong type) is kept
as a dead letter with the reason (ADR 0014). Until now they could only be read through the REST
API; here they are listed, replayed once the flow (or the payload) is fixed, and dropped.
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from ductwork.cli.engine_state import store
from ductwork.cli.options import RECORD_ID
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState

PAYLOAD_SHOWN = 60
"""Characters of a payload the table shows (``--json`` and ``show`` give all of it)."""


@click.group()
def triggers() -> None:
    """Message triggers: the dead letters of messages that could not start a run."""


@triggers.group("dead-letters")
def dead_letters() -> None:
    """List, show, replay and drop the messages that could not start a run."""


@dead_letters.command("list")
@click.argument("flow_id", required=False)
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=100, show_default=True, help="Show at most this many letters."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_letters(state: CliState, flow_id: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first, with why each could not start a run (of FLOW_ID, or all)."""
    from ductwork.services import messages

    engine = store(state)
    letters = messages.list_dead_letters(engine, flow_id, limit=limit)
    if flow_id is not None and not letters:  # a typo looked like "no dead letters"
        _known_flow(state, flow_id)
    if as_json:
        print_json([_as_dict(d) for d in letters])
        return
    table = Table("id", "flow", "source", "message", "received", "reason", "payload")
    for d in letters:
        payload = d.payload if len(d.payload) <= PAYLOAD_SHOWN else d.payload[: PAYLOAD_SHOWN - 1] + "…"
        cells = (str(d.id), d.flow_id, d.source, d.message_id, d.received_at.isoformat(timespec="seconds"), d.reason)
        # As text, not markup: a payload such as '[/bold]' is what a sender wrote, and crashed the table.
        table.add_row(*(Text(cell) for cell in (*cells, payload)))
    out = console()
    out.print(table)
    if not letters:
        out.print("no dead letters" + (f" for flow {flow_id}" if flow_id else ""), markup=False)


@dead_letters.command("show")
@click.argument("letter_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_letter(state: CliState, letter_id: int, as_json: bool) -> None:
    """One dead letter with its whole payload."""
    from ductwork.services import messages

    letter = messages.get_dead_letter(store(state), letter_id)
    if as_json:
        print_json(_as_dict(letter))
        return
    click.echo(f"dead letter {letter.id} of flow {letter.flow_id}")
    click.echo(f"  source:   {letter.source}")
    click.echo(f"  message:  {letter.message_id}")
    click.echo(f"  received: {letter.received_at.isoformat(timespec='seconds')}")
    click.echo(f"  reason:   {letter.reason}")
    click.echo(f"  payload:  {letter.payload}")


@dead_letters.command("replay")
@click.argument("letter_ids", type=RECORD_ID, nargs=-1, required=True)
@click.option(
    "--payload",
    default=None,
    help="Replay with this JSON object instead of the message's payload (one dead letter only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def replay(state: CliState, letter_ids: tuple[int, ...], payload: str | None, as_json: bool) -> None:
    """Start the runs that LETTER_IDS could not, checking each payload against the flow as it
    is now; a replayed letter is removed. One that still does not fit is kept, with the new
    reason, and the command exits 1."""
    from ductwork.errors import NotFoundError, ParameterError
    from ductwork.services import messages

    if payload is not None and len(letter_ids) != 1:
        raise ParameterError("--payload replaces the payload of one dead letter: name only one")
    engine = store(state)
    results: list[dict[str, object]] = []
    failed = False
    for letter_id in letter_ids:
        try:
            delivery = messages.replay_dead_letter(engine, letter_id, payload=payload)
        except NotFoundError as exc:
            failed = True
            results.append({"id": letter_id, "status": "not_found", "reason": str(exc)})
            continue
        if delivery.run is not None:
            results.append(
                {
                    "id": letter_id,
                    "status": delivery.status,
                    "flow_id": delivery.run.flow_id,
                    "run_id": delivery.run.run_id,
                    "params": dict(delivery.run.params),
                }
            )
        else:
            failed = True
            results.append({"id": letter_id, "status": delivery.status, "reason": delivery.reason})
    if as_json:
        print_json(results)
    else:
        for r in results:
            if r["status"] == messages.STARTED:
                click.echo(f"dead letter {r['id']}: started run {r['run_id']} of flow {r['flow_id']}")
            elif r["status"] == "not_found":
                click.echo(f"dead letter {r['id']}: {r['reason']}", err=True)
            else:
                click.echo(f"dead letter {r['id']}: still does not fit, kept: {r['reason']}", err=True)
    if failed:
        raise SystemExit(1)


@dead_letters.command("drop")
@click.argument("letter_ids", type=RECORD_ID, nargs=-1)
@click.option("--flow", "flow_id", default=None, help="Drop every dead letter of this flow (with no ids).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def drop(state: CliState, letter_ids: tuple[int, ...], flow_id: str | None, as_json: bool) -> None:
    """Delete dead letters: LETTER_IDS, or all of a flow's with --flow. The message is not
    received again: a broker delivering it once more starts nothing."""
    from ductwork.errors import NotFoundError, ParameterError
    from ductwork.services import messages

    if letter_ids and flow_id is not None:
        raise ParameterError("give dead letter ids or --flow, not both")
    engine = store(state)
    dropped = messages.drop_dead_letters(engine, letter_ids, flow_id=flow_id)
    if flow_id is not None and not dropped:
        _known_flow(state, flow_id)
    if as_json:
        print_json({"dropped": dropped})
    else:
        click.echo(f"dropped {dropped} dead letter(s)")
    if letter_ids and dropped < len(set(letter_ids)):
        raise NotFoundError(f"{len(set(letter_ids)) - dropped} of the dead letters named were not there")


def _known_flow(state: CliState, flow_id: str) -> None:
    """A flow id that names no flow is an error, as in ``runs list`` (a typo listed nothing)."""
    from ductwork.cli.runs_cmd import _known_flow as known

    known(state, store(state), flow_id)


def _as_dict(d: object) -> dict[str, object]:
    from ductwork.services.messages import DeadLetter

    assert isinstance(d, DeadLetter)
    return {
        "id": d.id,
        "flow_id": d.flow_id,
        "source": d.source,
        "message_id": d.message_id,
        "payload": d.payload,
        "reason": d.reason,
        "received_at": d.received_at.isoformat(),
    }
