"""Deleting runs (``services.cleanup``) on every backend: what goes with a run, what is never
deleted, dry runs that change nothing, and the files that go once the rows are gone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from store_helpers import T0, create_run, graph

from ductwork.core.events import TryOutcome
from ductwork.core.states import RunState, TaskState
from ductwork.engine.local import safe_name
from ductwork.errors import InvalidTransitionError, NotFoundError
from ductwork.services import cleanup
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.offload import ObjectStore
from ductwork.store.records import NewImportError
from ductwork.store.repo import events, flows, results, runs, tasks
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.tables import state_events, task_instances, task_results, task_tries

S = TaskState
NOW = T0 + dt.timedelta(days=100)


def _finished_run(
    engine: Engine,
    logs: Path,
    objects: ObjectStore,
    run_id: str,
    *,
    days_ago: float,
    state: RunState = RunState.SUCCESS,
    run_type: str = "manual",
    logical: dt.datetime | None = None,
) -> int:
    """A run that ran its five tasks (one try each, a log file each, one offloaded result) and
    ended ``days_ago`` before NOW."""
    ended = NOW - dt.timedelta(days=days_ago)
    with transaction(engine) as conn:
        run = create_run(conn, run_id=run_id, run_type=run_type, logical_date=logical or ended, now=ended)
        folder = logs / safe_name("etl") / safe_name(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for task_id in ("a", "b", "c", "d", "e"):
            log = folder / f"{task_id}.1.log"
            log.write_text(f"log of {task_id}\n")
            conn.execute(
                sa.update(task_instances)
                .where(task_instances.c.run_pk == run.pk, task_instances.c.task_id == task_id)
                .values(state=S.QUEUED.value, try_number=1)
            )
            outcome = TryOutcome(S.SUCCESS, ended - dt.timedelta(seconds=5), ended)
            assert tasks.replay_try(conn, run.pk, task_id, 1, outcome=outcome, at=outcome.started_at, log_path=str(log))
        reference = objects.put(run.key, "a", "return_value", b"x" * 100, serializer="json")
        results.put_result(conn, run.pk, "a", "return_value", None, serializer="json", reference=reference, size=100)
        results.put_result(conn, run.pk, "b", "return_value", b"1", serializer="json")
        runs.set_run_state(conn, run.pk, RunState.RUNNING, at=ended - dt.timedelta(seconds=10))
        runs.set_run_state(conn, run.pk, state, at=ended)
    return run.pk


def _count(engine: Engine, table: sa.Table, run_pk: int) -> int:
    with read_transaction(engine) as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.run_pk == run_pk)).scalar_one()
        )


def _run_ids(engine: Engine) -> set[str]:
    with read_transaction(engine) as conn:
        return {r.run_id for r in runs.list_runs(conn, limit=1000).items}


@pytest.fixture
def world(db_engine: Engine, tmp_path: Path) -> tuple[Engine, Path, ObjectStore]:
    logs = tmp_path / "logs"
    return db_engine, logs, ObjectStore(f"file://{tmp_path / 'objects'}")


def test_clean_deletes_old_finished_runs_with_everything_they_left(world: tuple[Engine, Path, ObjectStore]) -> None:
    engine, logs, objects = world
    old = _finished_run(engine, logs, objects, "old", days_ago=40, logical=T0)
    old_failed = _finished_run(
        engine, logs, objects, "old_failed", days_ago=35, state=RunState.FAILED, logical=T0 + dt.timedelta(days=1)
    )
    recent = _finished_run(engine, logs, objects, "recent", days_ago=2, logical=T0 + dt.timedelta(days=2))
    # The newest run of the flow by logical date ended long ago: it stays all the same.
    latest = _finished_run(engine, logs, objects, "latest", days_ago=50, logical=T0 + dt.timedelta(days=90))
    with transaction(engine) as conn:
        running = create_run(
            conn, run_id="running", logical_date=T0 + dt.timedelta(days=3), now=NOW - dt.timedelta(days=60)
        )
        runs.set_run_state(conn, running.pk, RunState.RUNNING, at=NOW - dt.timedelta(days=60))
        old_refs = [r.reference for r in results.list_results(conn, old) if r.reference]
    old_object = Path(old_refs[0].removeprefix("file://"))
    assert old_object.exists()

    preview = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, dry_run=True, now=NOW)
    assert (preview.runs, preview.task_instances, preview.tries, preview.results) == (2, 10, 10, 4)
    assert (preview.log_files, preview.objects) == (10, 2)
    assert preview.events > 0 and {r.run_id for r in preview.sample} == {"old", "old_failed"}
    assert _run_ids(engine) == {"old", "old_failed", "recent", "latest", "running"}, "a dry run deletes nothing"
    assert old_object.exists() and (logs / "etl" / "old" / "a.1.log").exists()

    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, now=NOW, batch_size=1)
    assert (report.runs, report.task_instances, report.tries, report.results) == (2, 10, 10, 4)
    assert (report.log_files, report.objects, report.events) == (10, 2, preview.events)
    assert _run_ids(engine) == {"recent", "latest", "running"}
    for pk in (old, old_failed):
        for table in (task_instances, task_tries, task_results, state_events):
            assert _count(engine, table, pk) == 0
    assert not old_object.exists()
    assert not (logs / "etl" / "old").exists() and not (logs / "etl" / "old_failed").exists()
    assert (logs / "etl" / "recent" / "a.1.log").exists()
    for pk in (recent, latest):
        assert _count(engine, task_tries, pk) == 5
    with read_transaction(engine) as conn:
        assert len(events.list_state_events(conn, recent)) > 0


def test_the_latest_scheduled_run_is_kept_for_the_schedule(world: tuple[Engine, Path, ObjectStore]) -> None:
    engine, logs, objects = world
    _finished_run(engine, logs, objects, "sched_1", days_ago=60, run_type="scheduled", logical=T0)
    _finished_run(
        engine, logs, objects, "sched_2", days_ago=59, run_type="scheduled", logical=T0 + dt.timedelta(days=1)
    )
    _finished_run(engine, logs, objects, "manual_newer", days_ago=58, logical=T0 + dt.timedelta(days=5))
    _finished_run(engine, logs, objects, "manual_newest", days_ago=1, logical=T0 + dt.timedelta(days=6))
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, now=NOW)
    assert {r.run_id for r in report.sample} == {"sched_1", "manual_newer"}
    assert _run_ids(engine) == {"sched_2", "manual_newest"}
    with pytest.raises(InvalidTransitionError, match="latest scheduled run of flow 'etl'"):
        cleanup.delete_run(engine, "etl", "sched_2", logs=logs)


def test_the_run_before_an_active_one_is_kept_for_its_depends_on_past(world: tuple[Engine, Path, ObjectStore]) -> None:
    """A run waiting on depends_on_past reads the run before it: deleting that run (old, finished)
    let the waiting task run as if the flow had no past."""
    engine, logs, objects = world
    with transaction(engine) as conn:
        flows.upsert_flow(conn, graph(depends_on_past=True))
    _finished_run(engine, logs, objects, "oldest", days_ago=62, logical=T0)
    _finished_run(engine, logs, objects, "october", days_ago=60, state=RunState.FAILED, logical=T0 + dt.timedelta(1))
    with transaction(engine) as conn:
        create_run(conn, run_id="november", run_type="manual", logical_date=T0 + dt.timedelta(2), now=NOW)
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, now=NOW)
    assert {r.run_id for r in report.sample} == {"oldest"}
    assert _run_ids(engine) == {"october", "november"}
    with pytest.raises(InvalidTransitionError, match="before one still under way"):
        cleanup.delete_run(engine, "etl", "october", logs=logs)
    with transaction(engine) as conn:  # the flow no longer has depends_on_past tasks: it may go
        flows.upsert_flow(conn, graph())
    assert cleanup.delete_run(engine, "etl", "october", logs=logs).runs == 1


def test_an_object_another_row_still_references_is_kept(world: tuple[Engine, Path, ObjectStore]) -> None:
    engine, logs, objects = world
    old = _finished_run(engine, logs, objects, "old", days_ago=40, logical=T0)
    _finished_run(engine, logs, objects, "keep", days_ago=1, logical=T0 + dt.timedelta(days=5))
    with transaction(engine) as conn:
        shared = next(r.reference for r in results.list_results(conn, old) if r.reference)
        keep = runs.get_run(conn, "etl", "keep")
        assert keep is not None
        results.put_result(conn, keep.pk, "d", "copied", None, serializer="json", reference=shared, size=100)
    report = cleanup.delete_run(engine, "etl", "old", logs=logs)
    assert report.runs == 1 and report.objects == 0
    assert Path(str(shared).removeprefix("file://")).exists()


def test_delete_run_refuses_what_is_still_needed_and_names_why(world: tuple[Engine, Path, ObjectStore]) -> None:
    engine, logs, objects = world
    _finished_run(engine, logs, objects, "first", days_ago=3, logical=T0)
    with transaction(engine) as conn:
        active = create_run(conn, run_id="active", logical_date=T0 + dt.timedelta(days=1))
    with pytest.raises(
        InvalidTransitionError, match="is queued: only finished runs can be deleted.*runs cancel etl active"
    ):
        cleanup.delete_run(engine, "etl", "active", logs=logs)
    with pytest.raises(NotFoundError, match="has no run 'nope'"):
        cleanup.delete_run(engine, "etl", "nope", logs=logs, dry_run=True)
    # "active" is under way: "first", the run before it, is what its depends_on_past tasks read.
    with pytest.raises(InvalidTransitionError, match="before one still under way"):
        cleanup.delete_run(engine, "etl", "first", logs=logs, dry_run=True)
    with transaction(engine) as conn:
        runs.set_run_state(conn, active.pk, RunState.FAILED)
    # "active" has ended, and is the newest run of the flow: "first" may go; "active" is the latest.
    preview = cleanup.delete_run(engine, "etl", "first", logs=logs, dry_run=True)
    assert (preview.dry_run, preview.runs, preview.tries, preview.log_files) == (True, 1, 5, 5)
    assert "first" in _run_ids(engine)
    with pytest.raises(InvalidTransitionError, match="latest run of flow 'etl'"):
        cleanup.delete_run(engine, "etl", "active", logs=logs)
    report = cleanup.delete_run(engine, "etl", "first", logs=logs)
    assert (report.dry_run, report.runs, report.log_files, report.objects) == (False, 1, 5, 1)
    assert _run_ids(engine) == {"active"}


def test_clean_of_one_flow_and_of_stale_import_errors(world: tuple[Engine, Path, ObjectStore], tmp_path: Path) -> None:
    engine, logs, objects = world
    _finished_run(engine, logs, objects, "old", days_ago=40, logical=T0)
    _finished_run(engine, logs, objects, "new", days_ago=1, logical=T0 + dt.timedelta(days=1))
    with transaction(engine) as conn:
        other = create_run(conn, graph("other"), run_id="other_old", logical_date=T0, now=NOW - dt.timedelta(days=50))
        runs.set_run_state(conn, other.pk, RunState.SUCCESS, at=NOW - dt.timedelta(days=50))
        newer = create_run(conn, graph("other"), run_id="other_new", logical_date=T0 + dt.timedelta(days=1))
        runs.set_run_state(conn, newer.pk, RunState.SUCCESS, at=NOW)
    with pytest.raises(NotFoundError, match="no flow 'etx'"):
        cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, flow_id="etx", now=NOW)
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, flow_id="other", now=NOW)
    assert [r.run_id for r in report.sample] == ["other_old"]
    assert _run_ids(engine) == {"old", "new", "other_new"}

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.py").write_text("raise SystemExit")
    with transaction(engine) as conn:
        for name in ("broken.py", "removed.py"):
            error_repo.replace_import_errors(conn, str(flows / name), [NewImportError("boom", 1)])
        error_repo.replace_import_errors(conn, "/elsewhere/gone.py", [NewImportError("not ours", 1)])
    assert cleanup.clean_import_errors(engine, flows, dry_run=True) == 1
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=logs, flows_folder=flows, now=NOW)
    assert report.import_errors == 1
    with read_transaction(engine) as conn:
        left = {e.fileloc for e in error_repo.list_import_errors(conn)}
    assert left == {str(flows / "broken.py"), "/elsewhere/gone.py"}
    assert cleanup.clean_import_errors(engine, tmp_path / "not-here") == 0


def test_logs_shipped_to_an_object_store_go_with_their_run(
    world: tuple[Engine, Path, ObjectStore], tmp_path: Path
) -> None:
    engine, logs, objects = world
    old = _finished_run(engine, logs, objects, "old", days_ago=40, logical=T0)
    _finished_run(engine, logs, objects, "new", days_ago=1, logical=T0 + dt.timedelta(days=1))
    shipped = tmp_path / "remote-logs" / "etl" / "old" / "a.1.log"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("from a remote worker\n")
    with transaction(engine) as conn:
        conn.execute(
            sa.update(task_tries)
            .where(task_tries.c.run_pk == old, task_tries.c.task_id == "a")
            .values(log_path=f"file://{shipped}")
        )
    # Four recorded local logs, the shipped one, and a.1.log left in the run's folder.
    assert cleanup.delete_run(engine, "etl", "old", logs=logs, dry_run=True).log_files == 6
    report = cleanup.delete_run(engine, "etl", "old", logs=logs)
    assert report.log_files == 6 and not shipped.exists() and not (logs / "etl" / "old").exists()
