"""Deleting runs and keeping the metadata bounded: ``ductwork runs delete``, ``ductwork db clean``,
the API's run deletion, and the scheduler's retention (``engine.retention``).

A deletion removes a run's rows (task instances, tries, results, events: one transaction per
small batch), then, once that committed, its log files and the offloaded objects of its results
that no remaining row references. A crash between the two leaves files behind, never a row
pointing at a file that is gone. What may never be deleted (active runs, the latest and latest
scheduled run of each flow) is decided by ``store.repo.cleanup``; every path goes through it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from ductwork.core.params import DurationTooLarge, parse_duration, seconds_duration
from ductwork.engine.local import safe_name
from ductwork.errors import InvalidTransitionError, NotFoundError, ParameterError
from ductwork.services import messages
from ductwork.services import runs as run_service
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.offload import delete_reference
from ductwork.store.repo import cleanup as repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo.cleanup import Removed, RunRef
from ductwork.store.types import utcnow

log = logging.getLogger("ductwork.cleanup")

SAMPLE = 50
"""How many of the deleted runs a report names (the counts cover all of them)."""


@dataclass
class CleanReport:
    """What a deletion removed, or (``dry_run``) would remove."""

    dry_run: bool
    cutoff: dt.datetime | None = None
    runs: int = 0
    task_instances: int = 0
    tries: int = 0
    results: int = 0
    events: int = 0
    log_files: int = 0
    objects: int = 0
    import_errors: int = 0
    dead_letters: int = 0
    message_receipts: int = 0
    workers: int = 0
    """Rows of remote workers (``workers list --all``) whose last heartbeat is older than the cutoff."""
    bundles: int = 0
    """Code bundles last published before the cutoff (never the newest one), with their objects."""
    receipts_cutoff: dt.datetime | None = None
    """Receipts (message de-duplication) are kept longer than runs: ``messages.RECEIPTS_KEPT`` at least."""
    sample: list[RunRef] = field(default_factory=list)
    complete: bool = True
    """False when a clean stopped early (the scheduler is shutting down); the rest goes next time."""

    def add(self, removed: Removed, log_files: int, objects: int) -> None:
        self.runs += len(removed.runs)
        self.task_instances += removed.task_instances
        self.tries += removed.tries
        self.results += removed.results
        self.events += removed.events
        self.log_files += log_files
        self.objects += objects
        self.sample += list(removed.runs[: max(0, SAMPLE - len(self.sample))])


MAX_AGE_YEARS = 1000
"""The longest age ``parse_age`` takes: now minus it must still be a date."""


AGE_UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800.0),
}
"""The units an age may be written in. A bare ``m`` is not one of them: ``6m`` is six minutes to
some and six months to others (cron, Airflow's docs, log-rotation tools), and ``db clean``
deletes what the reader did not mean either way."""
_CALENDAR_UNITS = frozenset(("mo", "mon", "mos", "month", "months", "y", "yr", "yrs", "year", "years"))
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_ACCEPTED = "s, min, h, d or w (e.g. 30d, 12h, 2w, 90min, 1d12h, or ISO 8601 P30D)"


def parse_age(text: str, option: str = "--older-than") -> dt.timedelta:
    """``30d``, ``12h``, ``2w``, ``90min``, ``1d12h`` or ISO 8601 ``P30D``: an age with a unit.

    Refused, with the accepted units named: a bare number (days or seconds?), ``m`` (minutes or
    months?: it meant minutes, and ``--older-than 6m`` deleted every run older than six minutes
    for someone who meant half a year), and months or years, which have no fixed length."""
    raw = text.strip().lower()
    try:
        age = _parse_age(raw)
    except _AgeRefused as exc:
        raise ParameterError(f"{option} {text!r}: {exc}") from None
    except (OverflowError, DurationTooLarge):
        raise ParameterError(f"{option} {text!r}: the age must be at most {MAX_AGE_YEARS} years") from None
    except ValueError:
        raise ParameterError(f"{option} {text!r}: expected an age with a unit: {_ACCEPTED}") from None
    if age <= dt.timedelta(0):
        raise ParameterError(f"{option} {text!r}: the age must be more than zero")
    if age > dt.timedelta(days=365 * MAX_AGE_YEARS):  # the cut-off date must exist
        raise ParameterError(f"{option} {text!r}: the age must be at most {MAX_AGE_YEARS} years")
    return age


class _AgeRefused(ValueError):
    """An age that could be read, but not in one way only: the message says how to write it."""


def _parse_age(raw: str) -> dt.timedelta:
    if raw.startswith("p"):  # ISO 8601, where M is months before the T and minutes after it
        if "t" not in raw and "m" in raw:
            raise _AgeRefused("months have no fixed length: give the age in days (P180D)")
        return parse_duration(raw)
    compact = raw.replace(" ", "")
    parts = _AGE_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(compact)  # a bare number among them: days or seconds?
    seconds = 0.0
    for number, unit in parts:
        if unit == "m":
            raise _AgeRefused(f"'m' could be minutes or months: write {number}min for minutes, or days (e.g. 180d)")
        if unit in _CALENDAR_UNITS:
            raise _AgeRefused("months and years have no fixed length: give the age in days (e.g. 180d, 365d)")
        if unit not in AGE_UNITS:
            raise _AgeRefused(f"unknown unit {unit!r}: use {_ACCEPTED}")
        seconds += float(number) * AGE_UNITS[unit]
    return seconds_duration(seconds)


# --- one run ---------------------------------------------------------------------------------
def delete_run(engine: Engine, flow_id: str, run_id: str, *, logs: Path | None, dry_run: bool = False) -> CleanReport:
    """Delete one finished run with its tries, results, log files and events (``dry_run``: only
    say what would go). An active run, or the latest (scheduled) run of its flow, is refused
    with the reason."""
    record = run_service.get_run(engine, flow_id, run_id)  # 404 with recent runs as a hint
    if not record.state.is_terminal:
        raise InvalidTransitionError(f"run {flow_id} {run_id} {_active_refusal(record.state.value, flow_id, run_id)}")
    report = CleanReport(dry_run=dry_run)
    opener = read_transaction if dry_run else transaction
    with opener(engine) as conn:
        protection = repo.protected_runs(conn, [flow_id])
        if record.pk in protection:
            raise InvalidTransitionError(f"run {flow_id} {run_id} {_protected_refusal(protection.reasons[record.pk])}")
        ref = RunRef(record.pk, flow_id, run_id, record.state.value, record.logical_date, record.end_date)
        removed = repo.measure(conn, [ref]) if dry_run else repo.delete_runs(conn, [record.pk], protection=protection)
    if not removed.runs:  # changed between the two reads (cleared, or deleted by someone else)
        raise NotFoundError(f"run {flow_id} {run_id} is no longer a finished run; nothing was deleted")
    _account(report, removed, logs, dry_run)
    return report


def _active_refusal(state: str, flow_id: str, run_id: str) -> str:
    return (
        f"is {state}: only finished runs can be deleted; stop it first with `ductwork runs cancel {flow_id} {run_id}`"
    )


def _protected_refusal(reason: str) -> str:
    return f"cannot be deleted: {reason}; it can be deleted once the flow has a newer run"


@dataclass(frozen=True)
class DeleteRefusal:
    """Why ``delete_run`` would refuse a run now, for the run page's *Delete run* button, which
    is offered only when the deletion can succeed (a button that always answers 409 teaches
    nothing). ``protected`` stays true once an active run ends: the latest run is kept then too."""

    now: str | None
    """The refusal ``delete_run`` would give now (None: it would delete)."""
    protected: str | None
    """The refusal that remains once the run has ended (it is the flow's latest run...), if any."""


def delete_refusal(engine: Engine, flow_id: str, run_id: str) -> DeleteRefusal:
    """What ``delete_run`` would answer for this run, without deleting anything, in the words of
    the run page (which has its own *Cancel run* button)."""
    record = run_service.get_run(engine, flow_id, run_id)
    with read_transaction(engine) as conn:
        reason = repo.protected_runs(conn, [flow_id]).reasons.get(record.pk)
    protected = f"This run {_protected_refusal(reason)}." if reason else None
    if not record.state.is_terminal:
        active = f"This run is {record.state.value}: only finished runs can be deleted (cancel it first)."
        return DeleteRefusal(active, protected)
    return DeleteRefusal(protected, protected)


# --- many runs -------------------------------------------------------------------------------
def clean(
    engine: Engine,
    *,
    older_than: dt.timedelta,
    logs: Path | None,
    flow_id: str | None = None,
    flows_folder: Path | None = None,
    dry_run: bool = False,
    batch_size: int = 100,
    pause: float = 0.0,
    target_seconds: float | None = None,
    stop: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> CleanReport:
    """Delete the finished runs that ended more than ``older_than`` ago (of ``flow_id`` only, if
    given), ``batch_size`` runs per transaction with ``pause`` seconds between transactions, so
    that a scheduler writing to the same database is never held up for long. With
    ``target_seconds``, the batch size adapts so that one transaction takes about that long
    (runs of 10,000 tasks go a few at a time, runs of three tasks a few hundred). Also deletes
    import errors of flow files that are gone from ``flows_folder``. ``stop`` ends the work
    between two batches."""
    if older_than <= dt.timedelta(0):
        raise ValueError(f"older_than must be positive, got {older_than}")
    cutoff = (now or utcnow()) - older_than
    report = CleanReport(dry_run=dry_run, cutoff=cutoff)
    if flow_id is not None:
        _check_flow(engine, flow_id)
    with read_transaction(engine) as conn:
        protection = repo.protected_runs(conn, [flow_id] if flow_id else None)
    cursor = 0
    while True:
        if stop is not None and stop.is_set():
            report.complete = False
            break
        if dry_run:
            with read_transaction(engine) as conn:
                page = repo.finished_before(
                    conn, cutoff, flow_id=flow_id, after_pk=cursor, limit=1000, protection=protection
                )
                removed = repo.measure(conn, page)
        else:
            started = time.monotonic()
            with transaction(engine) as conn:
                page = repo.finished_before(
                    conn, cutoff, flow_id=flow_id, after_pk=cursor, limit=batch_size, protection=protection
                )
                removed = repo.delete_runs(conn, [r.pk for r in page], protection=protection)
            if target_seconds:
                batch_size = _next_batch(batch_size, time.monotonic() - started, target_seconds)
        if not page:
            break
        cursor = page[-1].pk
        _account(report, removed, logs, dry_run)
        if pause and not dry_run:
            time.sleep(pause)
    if report.complete:
        clean_messages(engine, report, flow_id=flow_id, dry_run=dry_run, pause=pause, stop=stop, now=now)
    if flow_id is None and flows_folder is not None and report.complete:
        report.import_errors = clean_import_errors(engine, flows_folder, dry_run=dry_run)
    if flow_id is None and report.complete:
        report.workers = clean_workers(engine, cutoff, dry_run=dry_run)
        report.bundles = clean_bundles(engine, cutoff, dry_run=dry_run)
    return report


def clean_messages(
    engine: Engine,
    report: CleanReport,
    *,
    flow_id: str | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    pause: float = 0.0,
    stop: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Delete the dead letters received before the report's cutoff (they go with the runs of
    their age) and the message receipts received before that and before ``RECEIPTS_KEPT`` ago
    (a receipt outlives the broker's redelivery: without it a redelivered message would start a
    second run); ``batch_size`` of each per transaction. Counts them in ``report``."""
    assert report.cutoff is not None
    report.receipts_cutoff = min(report.cutoff, (now or utcnow()) - messages.RECEIPTS_KEPT)
    receipts_before, letters_before = report.receipts_cutoff, report.cutoff
    if dry_run:
        with read_transaction(engine) as conn:
            report.message_receipts, report.dead_letters = repo.count_old_messages(
                conn, receipts_before=receipts_before, letters_before=letters_before, flow_id=flow_id
            )
        return
    while not (stop is not None and stop.is_set()):
        with transaction(engine) as conn:
            receipts, letters = repo.old_messages(
                conn, receipts_before=receipts_before, letters_before=letters_before, flow_id=flow_id, limit=batch_size
            )
            gone = repo.delete_messages(conn, receipts, letters)
        report.message_receipts += gone[0]
        report.dead_letters += gone[1]
        if len(receipts) < batch_size and len(letters) < batch_size:
            return
        if pause:
            time.sleep(pause)
    report.complete = False


MAX_BATCH = 1000


def _next_batch(size: int, took: float, target: float) -> int:
    """Halve the batch after a transaction that took too long, grow it after a quick one."""
    if took > target:
        return max(1, size // 2)
    if took < target / 4:
        return min(MAX_BATCH, size * 2)
    return size


def _check_flow(engine: Engine, flow_id: str) -> None:
    """A flow that neither exists nor has runs is a typo: say so rather than delete nothing."""
    with read_transaction(engine) as conn:
        if flow_repo.get_flow(conn, flow_id) is not None or run_repo.list_runs(conn, flow_id=flow_id, limit=1).total:
            return
    run_service.flow_graph(engine, flow_id)  # raises NotFoundError with a "did you mean"


def clean_import_errors(engine: Engine, flows_folder: Path, *, dry_run: bool = False) -> int:
    """Delete the import errors of files that were in ``flows_folder`` and are gone (a scheduler
    that was stopped when a file was removed never saw it go). Nothing happens when the folder
    itself is not here: this machine may not be the one that parses the flows."""
    folder = Path(flows_folder).expanduser().resolve()
    if not folder.is_dir():
        return 0

    def gone(fileloc: str) -> bool:
        path = Path(fileloc)
        return path.is_relative_to(folder) and not path.exists()

    opener = read_transaction if dry_run else transaction
    with opener(engine) as conn:
        ids = repo.stale_import_errors(conn, gone)
        return len(ids) if dry_run else repo.delete_import_errors(conn, ids)


def clean_workers(engine: Engine, cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Delete the rows of remote workers silent since before ``cutoff`` (stopped, or lost: a
    worker heartbeats every few seconds while it lives). Every worker started registers a row
    (default names carry the pid, and a Kubernetes pod's host name changes with each pod), so
    without this ``workers list`` and the workers page grew a ``lost`` line for every worker
    ever killed, for ever. A worker that beats again after its row went registers it again."""
    import sqlalchemy as sa

    from ductwork.store.tables import workers

    old = workers.c.heartbeat_at < cutoff
    if dry_run:
        with read_transaction(engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(workers).where(old)).scalar_one())
    with transaction(engine) as conn:
        return int(conn.execute(sa.delete(workers).where(old)).rowcount)


def clean_bundles(engine: Engine, cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Delete the code bundles (``executor = "celery"``) last published before ``cutoff``, and
    their archives at ``bundle_url``: the scheduler publishes one whenever the flows folder
    changes, and none was ever deleted. The newest stays, however old: it is what the scheduler
    sends. A worker asked for a deleted one (a try queued that long) fails the try saying so."""
    from ductwork.store.repo import remote as remote_repo

    with read_transaction(engine) as conn:
        old = remote_repo.old_bundles(conn, cutoff)
    if dry_run or not old:
        return len(old)
    with transaction(engine) as conn:
        deleted = remote_repo.delete_bundles(conn, [digest for digest, _ in old])
    _remove_objects([location for _, location in old if location], what="code bundle")
    return deleted


# --- files -----------------------------------------------------------------------------------
def recorded_runs(engine: Engine) -> Removed:
    """Every run the database holds, with the log paths its tries recorded: read before ``db
    reset`` drops them, so that their log folders go too (``remove_run_logs``). Left behind, a
    new run with the same id appended to its folder's pack, and its log showed the dropped run's
    tries first."""
    import sqlalchemy as sa

    from ductwork.store.tables import runs, task_tries

    with read_transaction(engine) as conn:
        refs = tuple(
            RunRef(row.id, row.flow_id, row.run_id, row.state, row.logical_date, row.end_date)
            for row in conn.execute(
                sa.select(runs.c.id, runs.c.flow_id, runs.c.run_id, runs.c.state, runs.c.logical_date, runs.c.end_date)
            )
        )
        paths = conn.execute(sa.select(task_tries.c.log_path).where(task_tries.c.log_path.is_not(None))).scalars()
        return Removed(runs=refs, log_paths=tuple(sorted(set(paths))))


def remove_run_logs(removed: Removed, logs: Path | None) -> int:
    """Delete the local log files and run folders of ``removed``'s runs (those under ``logs``
    and those their tries recorded); the number of files deleted."""
    return _remove_logs(_log_files(removed, logs), _run_folders(removed, logs))


def _account(report: CleanReport, removed: Removed, logs: Path | None, dry_run: bool) -> None:
    files = _log_files(removed, logs)
    remote = sorted({p for p in removed.log_paths if "://" in p})  # logs shipped by remote workers
    if dry_run:
        report.add(removed, len(files) + len(remote), len(removed.references))
        return
    local = _remove_logs(files, _run_folders(removed, logs))
    report.add(removed, local + _remove_objects(remote, what="log"), _remove_objects(removed.references))


def _run_folders(removed: Removed, logs: Path | None) -> list[Path]:
    """Where each run's logs are (``engine.local.try_log_path``): under this command's log folder,
    and the folders of the paths its tries recorded, which are under the log folder of whoever
    ran them (a scheduler whose ``log_dir`` this shell or web server does not share). Short
    tries pack their logs in the run folder's ``_tries.log`` and never create the file at their
    recorded path, so that folder is the only way to their text."""
    names = {(safe_name(r.flow_id), safe_name(r.run_id)) for r in removed.runs}
    folders = [Path(logs) / flow / run for flow, run in sorted(names)] if logs is not None else []
    for path in removed.log_paths:
        parent = Path(path).parent
        if "://" not in path and (parent.parent.name, parent.name) in names and parent not in folders:
            folders.append(parent)
    return folders


def _log_files(removed: Removed, logs: Path | None) -> set[Path]:
    """The log files of the runs: those their tries recorded, and anything else in the runs' log
    folders (tries that were lost before their log was recorded, the packs of short tries)."""
    files = {Path(p) for p in removed.log_paths if "://" not in p}
    for folder in _run_folders(removed, logs):
        if folder.is_dir():
            files |= {p for p in folder.rglob("*") if p.is_file()}
    return {p for p in files if p.is_file()}


def _remove_logs(files: set[Path], folders: list[Path]) -> int:
    removed = 0
    parents = set(folders)
    for path in files:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not delete the log file %s: %s", path, exc)
        parents.add(path.parent)
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
    return removed


def _remove_objects(references: Iterable[str], *, what: str = "offloaded result") -> int:
    """Delete objects of any fsspec store (offloaded results, logs of remote workers)."""
    removed = 0
    for reference in references:
        try:
            delete_reference(reference)
            removed += 1
        except Exception as exc:  # garbage left in the object store, never a dangling row
            log.warning("could not delete the %s %s: %s", what, reference, exc)
    return removed
