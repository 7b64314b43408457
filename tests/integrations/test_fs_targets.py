"""FileTarget on the local disk and on fsspec's memory storage: contract, atomicity, formats."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ductwork import Flow, PythonOperator, Task
from ductwork.core.clock import SystemClock
from ductwork.core.targets import FileLikeTarget, Target
from ductwork.errors import DuctworkError
from ductwork.integrations._deps import MissingDependencyError
from ductwork.integrations.fs import CsvFormat, FileSensor, FileTarget, JsonFormat, ParquetFormat
from ductwork.testing import build, run_flow


@pytest.fixture
def memory_root() -> Iterator[str]:
    import fsspec

    root = f"memory://ductwork-test-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path, memory_root: str) -> str:
    return str(tmp_path / "store") if request.param == "local" else memory_root


def _listing(target: FileTarget) -> list[str]:
    parent = target.fs._parent(target.path)
    return sorted(p.rsplit("/", 1)[-1] for p in target.fs.ls(parent, detail=False)) if target.fs.exists(parent) else []


def test_text_round_trip_and_contract(root: str) -> None:
    target = FileTarget(f"{root}/a/b/report.txt")
    assert isinstance(target, Target) and isinstance(target, FileLikeTarget)
    assert not target.exists()
    with target.open("w") as fh:
        fh.write("héllo\n")
    assert target.exists()
    assert target.read_text() == "héllo\n"
    with target.open("rb") as fh:
        assert fh.read() == "héllo\n".encode()
    assert _listing(target) == ["report.txt"]  # no temporary file left behind
    assert target.path.endswith("a/b/report.txt")
    assert target.atomic
    target.remove()
    assert not target.exists()


def test_a_failed_write_leaves_nothing_and_keeps_the_old_content(root: str) -> None:
    target = FileTarget(f"{root}/out.txt")
    target.write_text("old")
    with pytest.raises(RuntimeError), target.open("w") as fh:
        fh.write("half of the new")
        raise RuntimeError("task died")
    assert target.read_text() == "old"
    assert _listing(target) == ["out.txt"]
    fresh = FileTarget(f"{root}/never.bin")
    with pytest.raises(RuntimeError), fresh.open("wb") as fh:
        fh.write(b"x")
        raise RuntimeError("task died")
    assert not fresh.exists()
    assert _listing(fresh) == ["out.txt"]


def test_an_abandoned_writer_does_not_publish(root: str) -> None:
    target = FileTarget(f"{root}/abandoned.txt")
    fh = target.open("w")
    fh.write("never closed")
    del fh
    assert not target.exists()


def test_formats_round_trip(root: str) -> None:
    rows = [{"region": "north", "amount": 3}, {"region": "south", "amount": 5, "note": "late"}]
    as_json = FileTarget(f"{root}/rows.json")
    assert isinstance(as_json.format, JsonFormat)
    as_json.write({"rows": rows})
    assert as_json.read() == {"rows": rows}
    as_csv = FileTarget(f"{root}/rows.csv")
    assert isinstance(as_csv.format, CsvFormat)
    as_csv.write(rows)
    assert as_csv.read() == [
        {"region": "north", "amount": "3", "note": ""},
        {"region": "south", "amount": "5", "note": "late"},
    ]
    assert as_csv.read_text().splitlines()[0] == "region,amount,note"
    tsv = FileTarget(f"{root}/rows.data", format=CsvFormat(delimiter="\t", fieldnames=["region"]))
    tsv.write([{"region": "east"}])
    with tsv.open("rb") as fh:
        assert fh.read() == b"region\r\neast\r\n"


def test_parquet_round_trip(root: str) -> None:
    pa = pytest.importorskip("pyarrow")
    target = FileTarget(f"{root}/t.parquet")
    assert isinstance(target.format, ParquetFormat)
    target.write([{"id": 1, "name": "a"}, {"id": 2, "name": None}])
    assert target.read() == [{"id": 1, "name": "a"}, {"id": 2, "name": None}]
    table = FileTarget(f"{root}/t.parquet", format=ParquetFormat(as_table=True)).read()
    assert isinstance(table, pa.Table) and table.num_rows == 2
    FileTarget(f"{root}/u.parquet").write(table)
    assert FileTarget(f"{root}/u.parquet").read()[0] == {"id": 1, "name": "a"}


def test_bad_scheme_format_and_missing_library_are_clear() -> None:
    with pytest.raises(DuctworkError, match=r"unknown storage scheme 'nosuch' in 'nosuch://x/y'"):
        FileTarget("nosuch://x/y").exists()
    with pytest.raises(DuctworkError, match=r"unknown file format 'jsn'.*Did you mean 'json'"):
        FileTarget("memory://x", format="jsn")
    with pytest.raises(MissingDependencyError, match=r"storage 'abfs' needs a library that is missing"):
        FileTarget("abfs://container/key").exists()


def test_class_tasks_are_complete_when_their_file_targets_exist(memory_root: str) -> None:
    root = memory_root

    class Extract(Task):
        def output(self) -> FileTarget:
            return FileTarget(f"{root}/extract.json")

        def run(self) -> None:
            self.output().write([1, 2, 3])

    class Total(Task):
        def requires(self) -> Extract:
            return Extract()

        def output(self) -> FileTarget:
            return FileTarget(f"{root}/total.txt")

        def run(self) -> None:
            self.output().write(sum(self.input().read()))

    assert build(Total()).state == "success"
    assert FileTarget(f"{root}/total.txt").read() == "6"
    again = build(Total())
    assert list(again.tasks) == ["Total"] and again["Total"].already_complete


def test_file_sensor_matches_paths_globs_prefixes_and_directories(root: str) -> None:
    for name in ("in/2024-01-01.csv", "in/2024-01-02.csv", "in/other.txt"):
        FileTarget(f"{root}/{name}").write_text("x")
    from ductwork.core.clock import FrozenClock
    from ductwork.core.context import RunInfo, TaskInstance, build_context
    from ductwork.core.results import MemoryResults

    def poke(sensor: FileSensor) -> object:
        clock = FrozenClock()
        run = RunInfo("f", "r", clock.now(), clock.now(), clock.now())
        context = build_context(run, TaskInstance(run, sensor.task_id, 1, 1, MemoryResults()), sensor)
        return sensor.poke(context)

    found = poke(FileSensor(task_id="a", path=f"{root}/in/*.csv"))
    assert found and len(found.xcom_value) == 2  # type: ignore[attr-defined]
    assert all(v.endswith(".csv") for v in found.xcom_value)  # type: ignore[attr-defined]
    assert poke(FileSensor(task_id="b", path=f"{root}/in/2024-01-0", prefix=True))
    assert not poke(FileSensor(task_id="c", path=f"{root}/in/2024-02-", prefix=True))
    assert not poke(FileSensor(task_id="d", path=f"{root}/in/*.csv", min_count=3))
    assert poke(FileSensor(task_id="e", path=f"{root}/in"))
    assert poke(FileSensor(task_id="f", path=f"{root}/in/other.txt"))
    assert not poke(FileSensor(task_id="g", path=f"{root}/missing/x"))
    matched = poke(FileSensor(task_id="h", path=f"{root}/in/other.txt")).xcom_value  # type: ignore[attr-defined]
    assert FileTarget(matched[0]).read_text() == "x"


def test_file_sensor_waits_for_a_file_another_task_writes(memory_root: str) -> None:
    import time

    def late_writer() -> None:
        time.sleep(0.1)
        FileTarget(f"{memory_root}/landing/2024-01-02.json").write({"ok": True})

    with Flow("landing", start_date="2024-01-01") as f:
        PythonOperator(task_id="writer", python_callable=late_writer)
        wait = FileSensor(task_id="wait", path=memory_root + "/landing/{{ ds }}.json", poke_interval=0.01, timeout=20)
        use = PythonOperator(
            task_id="use", python_callable=lambda paths: FileTarget(paths[0]).read(), op_args=[wait.output]
        )
        wait >> use
    # Real time: the sensor must see a file that another task writes concurrently (a frozen
    # clock would let the sensor's sleeps pass instantly and time it out first).
    result = run_flow(f, logical_date="2024-01-02", workers=2, clock=SystemClock())
    assert result.state == "success"
    assert result.result("use") == {"ok": True}
