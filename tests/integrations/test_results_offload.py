"""Results: large values offloaded to an object store with only a reference in the database,
read back downstream; pickle opt-in; DataFrames and Arrow tables as Parquet. The end-to-end test
runs a real scheduler with its worker pool on SQLite, PostgreSQL and MariaDB, and also checks
that a connection's password never reaches a worker's log file or the recorded rendered fields.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from dbfixtures import BACKENDS, temporary_database
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.masking import MASKER
from ductwork.core.results import MISSING
from ductwork.engine.packed_logs import read_log
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import ResultSerializationError, StoreError
from ductwork.store.offload import ObjectStore
from ductwork.store.repo import results as result_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.results import SqlResults
from ductwork.store.tables import task_results

KEY = "etl/r1"


@pytest.fixture
def run_pk(db_engine: Engine) -> int:
    graph = FlowGraph(FlowMeta("etl"), {"a": NodeSpec("a"), "b": NodeSpec("b", upstream=("a",))})
    with transaction(db_engine) as conn:
        run = run_repo.create_run(
            conn,
            graph,
            run_id="r1",
            logical_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            data_interval=(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),
            run_type="manual",
            params={},
        )
    return run.pk


def _row(engine: Engine, task_id: str, key: str = "return_value") -> sa.Row[tuple[object, ...]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(task_results).where(task_results.c.task_id == task_id, task_results.c.key == key)
        ).one()


def test_large_values_go_to_the_object_store_small_ones_stay(db_engine: Engine, run_pk: int) -> None:
    results = SqlResults(db_engine, offload=ObjectStore("memory://ductwork-results"), offload_threshold=1024)
    big = {"rows": [{"id": i, "name": f"item-{i}"} for i in range(200)]}
    results.push(KEY, "a", "return_value", big)
    results.push(KEY, "a", "small", [1, 2, 3])
    row = _row(db_engine, "a")
    assert row.value is None and row.size > 1024 and row.serializer == "json"
    assert row.reference.startswith("memory://ductwork-results/etl/r1/a/return_value.")
    fs = fsspec.filesystem("memory")
    assert fs.exists(row.reference.removeprefix("memory://"))
    assert _row(db_engine, "a", "small").reference is None
    assert results.pull(KEY, "a") == big and results.pull(KEY, "a", "small") == [1, 2, 3]
    # Pushed again: a new object, the old one deleted; cleared: every object deleted.
    results.push(KEY, "a", "return_value", {**big, "v": 2})
    second = _row(db_engine, "a").reference
    assert second != row.reference and not fs.exists(row.reference.removeprefix("memory://"))
    results.clear(KEY, "a")
    assert not fs.exists(second.removeprefix("memory://")) and results.pull(KEY, "a") is MISSING
    with read_transaction(db_engine) as conn:
        assert result_repo.list_results(conn, run_pk, "a") == []


def test_a_reader_without_offload_settings_reads_references(db_engine: Engine, run_pk: int, tmp_path: Path) -> None:
    writer = SqlResults(db_engine, offload=ObjectStore(tmp_path.as_uri() + "/results"), offload_threshold=10)
    writer.push(KEY, "a", "return_value", "x" * 100)
    assert SqlResults(db_engine).pull(KEY, "a") == "x" * 100
    reference = _row(db_engine, "a").reference
    assert reference.startswith("file://") and Path(reference.removeprefix("file://")).read_text() == json.dumps(
        "x" * 100
    )


def test_pickle_is_opt_in(db_engine: Engine, run_pk: int) -> None:
    plain = SqlResults(db_engine)
    with pytest.raises(ResultSerializationError, match="results_pickle"):
        plain.push(KEY, "a", "return_value", object())
    with pytest.raises(ResultSerializationError, match="pickle serializer, which is off"):
        plain.push(KEY, "a", "k", [1], serializer="pickle")
    trusted = SqlResults(db_engine, allow_pickle=True)
    trusted.push(KEY, "a", "return_value", Path("/tmp/x"))  # JSON cannot: pickled
    trusted.push(KEY, "a", "asked", {"a": 1}, serializer="pickle")
    assert _row(db_engine, "a").serializer == "pickle" and _row(db_engine, "a", "asked").serializer == "pickle"
    assert trusted.pull(KEY, "a") == Path("/tmp/x") and trusted.pull(KEY, "a", "asked") == {"a": 1}
    with pytest.raises(StoreError, match="enable it with the results_pickle setting"):
        plain.pull(KEY, "a")


def test_dataframes_and_arrow_tables_as_parquet(db_engine: Engine, run_pk: int) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    results = SqlResults(db_engine, offload=ObjectStore("memory://frames"), offload_threshold=4096)
    frame = pd.DataFrame({"region": ["eu", "us"] * 500, "amount": range(1000)})
    results.push(KEY, "a", "frame", frame)
    results.push(KEY, "a", "table", pa.table({"x": [1, 2, 3]}))
    assert _row(db_engine, "a", "frame").serializer == "parquet.pandas"
    assert _row(db_engine, "a", "frame").reference is not None  # large: offloaded too
    assert _row(db_engine, "a", "table").serializer == "parquet.arrow"
    pd.testing.assert_frame_equal(results.pull(KEY, "a", "frame"), frame)
    assert results.pull(KEY, "a", "table").to_pydict() == {"x": [1, 2, 3]}


def test_a_failed_database_write_deletes_the_new_object(db_engine: Engine, run_pk: int) -> None:
    results = SqlResults(db_engine, offload=ObjectStore("memory://orphans"), offload_threshold=1)
    with pytest.raises(Exception, match="etl/nope"):
        results.push("etl/nope", "a", "return_value", "a value larger than one byte")
    assert fsspec.filesystem("memory").find("/orphans") == []


# --- a real scheduler run -----------------------------------------------------------------------------
PASSWORD = "pool-W0rker-pass"
FLOW = textwrap.dedent(
    """
    from ductwork import BashOperator, Flow, PythonOperator

    def produce():
        return {"rows": list(range(5000))}

    def consume(ti):
        rows = ti.xcom_pull(task_ids="produce")["rows"]
        return {"n": len(rows), "sum": sum(rows)}

    def leak(conn):
        print("python sees", conn.warehouse.password)

    with Flow("offload", schedule=None) as offload:
        produce_task = PythonOperator(task_id="produce", python_callable=produce)
        consume_task = PythonOperator(task_id="consume", python_callable=consume)
        produce_task >> consume_task
        BashOperator(
            task_id="bash_leak",
            bash_command='echo "pw=$PGPASSWORD host={{ conn.warehouse.host }}"',
            env={"PGPASSWORD": "{{ conn.warehouse.password }}"},
            append_env=True,
        )
        PythonOperator(task_id="python_leak", python_callable=leak)
    """
)


@pytest.fixture(params=BACKENDS)
def scheduler_setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "offload.py").write_text(FLOW)
    monkeypatch.setenv("DUCTWORK_CONN_WAREHOUSE", f"postgres://etl:{PASSWORD}@wh.internal/db")
    with temporary_database(request.param, tmp_path) as url:
        yield Settings(
            home=tmp_path / "home",
            flows_folder=flows,
            database_url=url,
            parallelism=2,
            results_offload_url=(tmp_path / "objects").as_uri(),
            results_offload_threshold=4096,
        )


def test_scheduler_run_offloads_reads_back_and_masks(scheduler_setup: Settings) -> None:
    MASKER.clear()
    service = SchedulerService(scheduler_setup, options=SchedulerOptions(poll_interval=0.05, parse_interval=0.05))
    service.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            service.turn()
            try:
                run_service.flow_graph(service.engine, "offload")
                break
            except LookupError:
                continue
        run_service.trigger(service.engine, "offload", run_id="r1")
        while time.monotonic() < deadline:
            service.turn()
            if run_service.get_run(service.engine, "offload", "r1").state.value in ("success", "failed"):
                break
        record = run_service.get_run(service.engine, "offload", "r1")
        with read_transaction(service.engine) as conn:
            tries = {t.task_id: t for t in task_repo.list_tries(conn, record.pk)}
        assert record.state.value == "success", {t: (r.state, r.error) for t, r in tries.items()}
        big = _row(service.engine, "produce")
        assert big.value is None and big.size > 4096
        assert big.reference.startswith(Path(scheduler_setup.home).parent.joinpath("objects").as_uri())
        assert Path(big.reference.removeprefix("file://")).stat().st_size == big.size
        consumed = _row(service.engine, "consume")
        assert consumed.reference is None
        assert SqlResults(service.engine).pull("offload/r1", "consume") == {"n": 5000, "sum": sum(range(5000))}
        # The password reached the tasks (bash printed it, python printed it) but no log or rendered field.
        bash_log = read_log(Path(tries["bash_leak"].log_path or "")) or ""
        python_log = read_log(Path(tries["python_leak"].log_path or "")) or ""
        assert "pw=*** host=wh.internal" in bash_log and "python sees ***" in python_log
        for t in tries.values():
            assert PASSWORD not in (read_log(Path(t.log_path or "")) or "")
            assert PASSWORD not in json.dumps(t.rendered or {})
        logs = Path(tries["bash_leak"].log_path or "").parent  # the run's folder: pack and staging files too
        assert all(PASSWORD not in p.read_text() for p in logs.iterdir())
        assert (tries["bash_leak"].rendered or {})["env"] == {"PGPASSWORD": "***"}
    finally:
        service.shutdown()
