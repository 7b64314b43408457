"""A remote try's log as another host reads it: written while the try runs (chunks a reader can
follow), or, for a try that ends before its first chunk is due, as one object. Both layouts read
the same through ``read_remote_log``, from any offset, on a local folder and on an fsspec store."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from ductwork.engine.remote.logs import LogShipper, read_remote_log, remote_log_exists


def _urls(tmp_path: Path) -> list[str]:
    return [f"file://{tmp_path}/logs/flow/run/t.1.log", f"memory://logs-{uuid.uuid4().hex}/flow/run/t.1.log"]


def _shipping(tmp_path: Path, which: int, text: str, *, interval: float) -> tuple[str, Path, LogShipper]:
    """A try's staging file holding ``text`` and a started shipper of it to store ``which``."""
    url = _urls(tmp_path)[which]
    local = tmp_path / "staging.log"
    local.write_text(text)
    shipper = LogShipper(str(local), url, interval=interval)
    shipper.start()
    return url, local, shipper


@pytest.mark.parametrize("which", [0, 1], ids=["file", "memory"])
def test_a_short_try_is_one_object_read_from_any_offset(tmp_path: Path, which: int) -> None:
    url, _, shipper = _shipping(tmp_path, which, "first line\nsecond line\n", interval=60)
    shipper.close()
    assert remote_log_exists(url)
    assert read_remote_log(url) == (b"first line\nsecond line\n", 23)
    assert read_remote_log(url, 11) == (b"second line\n", 23)
    if which == 0:
        assert Path(url[len("file://") :]).is_file()  # one file, no folder of chunks


@pytest.mark.parametrize("which", [0, 1], ids=["file", "memory"])
def test_a_long_try_is_followed_chunk_by_chunk(tmp_path: Path, which: int) -> None:
    url, local, shipper = _shipping(tmp_path, which, "started\n", interval=0.05)
    deadline = time.monotonic() + 5
    while read_remote_log(url)[0] != b"started\n" and time.monotonic() < deadline:
        time.sleep(0.02)
    data, offset = read_remote_log(url)
    assert (data, offset) == (b"started\n", 8)  # shipped while the try runs
    with local.open("a") as fh:
        fh.write("working\n")
    shipper.close()
    assert read_remote_log(url, offset) == (b"working\n", 16)
    assert read_remote_log(url) == (b"started\nworking\n", 16)


def test_a_closed_shipper_ships_nothing_of_the_next_try(tmp_path: Path) -> None:
    """The staging file is reused by the process's next try: a closed shipper never reads it."""
    url = f"file://{tmp_path}/logs/a.1.log"
    local = tmp_path / "staging.log"
    local.write_text("try one\n")
    shipper = LogShipper(str(local), url, interval=60)
    shipper.start()
    shipper.close()
    local.write_text("try two, another task\n")
    shipper.ship()
    assert read_remote_log(url) == (b"try one\n", 8)
