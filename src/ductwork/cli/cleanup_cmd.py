"""``ductwork runs delete`` and ``ductwork db clean``: deleting finished runs with their tries,
results, log files and events (``--dry-run`` first to see what would go)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from ductwork.cli.state import CliState

if TYPE_CHECKING:
    from ductwork.services.cleanup import CleanReport


def report_json(report: CleanReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "cutoff": report.cutoff.isoformat() if report.cutoff else None,
        "runs": report.runs,
        "task_instances": report.task_instances,
        "tries": report.tries,
        "results": report.results,
        "events": report.events,
        "log_files": report.log_files,
        "offloaded_objects": report.objects,
        "import_errors": report.import_errors,
        "dead_letters": report.dead_letters,
        "message_receipts": report.message_receipts,
        "workers": report.workers,
        "code_bundles": report.bundles,
        "receipts_cutoff": _iso(report.receipts_cutoff),
        "complete": report.complete,
        "sample": [
            {"flow_id": r.flow_id, "run_id": r.run_id, "state": r.state, "end_date": _iso(r.end_date)}
            for r in report.sample
        ],
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def print_report(report: CleanReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    click.echo(
        f"{verb} {report.runs} run(s): {report.task_instances} task instance(s), {report.tries} tr(ies), "
        f"{report.results} result(s), {report.events} event(s), {report.log_files} log file(s), "
        f"{report.objects} offloaded object(s)"
        + (f", {report.import_errors} stale import error(s)" if report.import_errors else "")
    )
    if report.cutoff is not None:  # the age as read: 6 minutes and 6 months differ here, not in the counts
        click.echo(f"  (finished runs that ended before {report.cutoff.isoformat(timespec='seconds')})")
    if report.dead_letters or report.message_receipts:
        click.echo(
            f"{verb} {report.dead_letters} dead letter(s) and {report.message_receipts} message receipt(s)"
            + (f" (receipts received before {_iso(report.receipts_cutoff)})" if report.message_receipts else "")
        )
    if report.workers:
        click.echo(f"{verb} {report.workers} record(s) of workers stopped or lost before the cutoff")
    if report.bundles:
        click.echo(f"{verb} {report.bundles} code bundle(s) last published before the cutoff")
    for ref in report.sample:
        ended = ref.end_date.isoformat(timespec="seconds") if ref.end_date else "?"
        click.echo(f"  {ref.flow_id} {ref.run_id} [{ref.state}, ended {ended}]")
    if report.runs > len(report.sample):
        click.echo(f"  ... and {report.runs - len(report.sample)} more")


@click.command("delete")
@click.argument("flow_id")
@click.argument("run_id")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def delete_run(state: CliState, flow_id: str, run_id: str, dry_run: bool, as_json: bool) -> None:
    """Delete a finished run with its tries, results, log files and events. The latest run of a
    flow, and runs still queued or running, are never deleted."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.output import print_json
    from ductwork.services import cleanup

    report = cleanup.delete_run(store(state), flow_id, run_id, logs=state.settings.logs, dry_run=dry_run)
    if as_json:
        print_json(report_json(report))
    else:
        print_report(report)


@click.command("clean")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Delete runs that ended longer ago than this: 30d, 12h, 2w, 90min (units s, min, h, d, w).",
)
@click.option("--flow", "flow_id", default=None, help="Only runs of this flow.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def clean(state: CliState, older_than: str, flow_id: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete finished runs that ended before --older-than, with their tries, results (offloaded
    objects too), log files and events, the dead letters received before it, and import errors
    of flow files that are gone. Runs still queued or running, and the latest (and latest
    scheduled) run of each flow, are kept. Message receipts (which make a redelivered message
    start nothing) go too, but are kept at least 8 days."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.output import print_json
    from ductwork.services import cleanup

    settings = state.settings
    report = cleanup.clean(
        store(state),
        older_than=cleanup.parse_age(older_than),
        flow_id=flow_id,
        logs=settings.logs,
        flows_folder=settings.flows_folder,
        dry_run=dry_run,
    )
    if as_json:
        print_json(report_json(report))
    else:
        print_report(report)
