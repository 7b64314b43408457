"""Short tries' logs packed in one file per run folder (ADR 0018): every log reads back whole."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.engine import logcapture
from ductwork.engine.executors.staged_log import Stage, StagedLog
from ductwork.engine.packed_logs import PACK_NAME, SPILL_BYTES, PackedLogs, read_packed, read_range

NAMES = st.sampled_from(["extract.1.log", "extract.2.log", "load.1.log", "t_i=3-0a1b2c3d.1.log"])
# Texts that look like the pack's own headers must not confuse the reader.
TEXTS = st.one_of(
    st.text(),
    st.builds(lambda n, k: f"==> {n} ({k} bytes) <==\n", NAMES, st.integers(0, 10**6)),
    st.just("==> load.1.log (9999999 bytes) <=="),
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.tuples(NAMES, TEXTS), max_size=12))
def test_every_log_reads_back_as_its_appends_in_order(tmp_path_factory: object, entries: list[tuple[str, str]]) -> None:
    folder = Path(tmp_path_factory.mktemp("run"))  # type: ignore[attr-defined]
    packs = PackedLogs()
    ranges = []
    for name, text in entries:
        ranges.append((text, packs.append(folder / name, text)))
    packs.close()
    for text, (pack, offset, size) in ranges:
        assert read_range(pack, offset, size) == text.encode("utf-8", "replace").decode()
    for name in {"extract.1.log", "extract.2.log", "load.1.log", "t_i=3-0a1b2c3d.1.log", "never.1.log"}:
        expected = "".join(t.encode("utf-8", "replace").decode() for n, t in entries if n == name)
        assert read_packed(folder / name) == (expected if any(n == name for n, _ in entries) else None)


def _append_many(folder: str, worker: int) -> None:
    packs = PackedLogs()
    for i in range(200):
        packs.append(Path(folder) / f"w{worker}_t{i}.1.log", f"worker {worker} try {i}\n" * (i % 7 + 1))
    packs.close()


def test_processes_appending_to_one_run_folder_never_mix_their_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for w in range(4):
        for i in range(200):
            assert read_packed(tmp_path / f"w{w}_t{i}.1.log") == f"worker {w} try {i}\n" * (i % 7 + 1)


def test_a_run_folder_removed_while_its_pack_is_open_is_made_again(tmp_path: Path) -> None:
    packs = PackedLogs()
    packs.append(tmp_path / "run" / "a.1.log", "first\n")
    shutil.rmtree(tmp_path / "run")  # a user clears the logs while the scheduler runs
    packs.append(tmp_path / "run" / "b.1.log", "second\n")
    packs.close()
    assert read_packed(tmp_path / "run" / "b.1.log") == "second\n"


def test_a_short_try_is_packed_and_leaves_no_file_of_its_own(tmp_path: Path) -> None:
    packs = PackedLogs(spill_after=60)  # "short" however slow the machine is today
    sink = logcapture.TrySink(tmp_path / "run" / "a.1.log", pack=packs)
    sink.write("hello\n")
    sink.close()
    packs.close()
    assert not (tmp_path / "run" / "a.1.log").exists()
    assert (tmp_path / "run" / PACK_NAME).exists()
    assert sink.text() == "hello\n" == read_packed(tmp_path / "run" / "a.1.log")


def test_a_try_still_running_gets_its_own_file_to_be_followed(tmp_path: Path) -> None:
    packs = PackedLogs(spill_after=0.1)
    path = tmp_path / "run" / "slow.1.log"
    sink = logcapture.TrySink(path, pack=packs)
    sink.write("first line\n")
    deadline = time.monotonic() + 10
    while not path.exists():  # the spiller thread gives it a file while it is open
        assert time.monotonic() < deadline, "a long try never got its own log file"
        time.sleep(0.05)
    assert path.read_text() == "first line\n"
    sink.write("second line\n")
    assert path.read_text() == "first line\nsecond line\n"
    sink.close()
    packs.close()
    assert sink.text() == "first line\nsecond line\n"
    assert read_packed(path) is None  # not packed as well


def test_a_try_that_writes_a_lot_gets_its_own_file(tmp_path: Path) -> None:
    packs = PackedLogs(spill_after=60)
    path = tmp_path / "run" / "noisy.1.log"
    sink = logcapture.TrySink(path, pack=packs)
    line = "x" * 99 + "\n"
    for _ in range(SPILL_BYTES // len(line) + 2):
        sink.write(line)
    assert path.exists()
    sink.close()
    packs.close()
    assert sink.text() == line * (SPILL_BYTES // len(line) + 2)


def test_a_pool_process_stages_again_when_its_run_folder_was_removed(tmp_path: Path) -> None:
    stage, packs = Stage(), PackedLogs(spill_after=60)
    first = StagedLog(str(tmp_path / "run" / "a.1.log"), stage, packs)
    first.write("first\n")
    first.close()
    shutil.rmtree(tmp_path / "run")
    second = StagedLog(str(tmp_path / "run" / "b.1.log"), stage, packs)
    second.write("second\n")
    second.close()
    big = "x" * SPILL_BYTES + "\n"  # a log this big is renamed to its own file
    third = StagedLog(str(tmp_path / "run" / "c.1.log"), stage, packs)
    third.write(big)
    third.close()
    packs.close()
    assert read_packed(tmp_path / "run" / "b.1.log") == "second\n"
    assert (tmp_path / "run" / "c.1.log").read_text() == big
    stage.release()
    assert not list((tmp_path / "run").glob("_staging.*"))


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():  # the spiller thread gives the try a file while it runs
        assert time.monotonic() < deadline, "a long try never got its own log file"
        time.sleep(0.02)


def test_a_long_try_whose_run_folder_is_removed_while_it_runs_keeps_its_whole_log(tmp_path: Path) -> None:
    packs = PackedLogs(spill_after=0.05)
    path = tmp_path / "run" / "slow.1.log"
    sink = logcapture.TrySink(path, pack=packs)
    sink.write("before\n")
    _wait_for(path)
    shutil.rmtree(tmp_path / "run")  # by hand, or a clean-up that did not know the try ran
    sink.write("after\n")
    sink.close()
    packs.close()
    assert path.read_text() == "before\nafter\n"


def test_a_pool_process_long_try_whose_run_folder_is_removed_keeps_its_whole_log(tmp_path: Path) -> None:
    stage, packs = Stage(), PackedLogs(spill_after=0.05)
    path = tmp_path / "run" / "slow.1.log"
    sink = StagedLog(str(path), stage, packs)
    sink.write("before\n")
    _wait_for(path)
    shutil.rmtree(tmp_path / "run")
    sink.write("after\n")
    sink.close()
    packs.close()
    stage.release()
    assert path.read_text() == "before\nafter\n"
