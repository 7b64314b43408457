"""Flow files are parsed in a child process: bad files become import errors, never crashes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ductwork.engine.parsing import FileWatcher, materialize, parse_file, parse_files

ROOT = Path(__file__).resolve().parents[3]


def test_parse_returns_serialized_graphs(tmp_path: Path) -> None:
    parsed = parse_file(ROOT / "examples" / "four_step_pipeline.py")
    assert parsed.errors == []
    (graph,) = parsed.graphs
    assert graph.flow_id == "four_step_pipeline" and "etl" in graph.nodes


def test_a_file_that_kills_its_interpreter_or_hangs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import os\nos._exit(3)\n")
    (tmp_path / "crashes.py").write_text("import ctypes\nctypes.string_at(0)\n")  # a segmentation fault
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(60)\n")
    (tmp_path / "prints.py").write_text(
        "print('noise')\nfrom ductwork import Flow, EmptyOperator\n"
        "with Flow('p') as f:\n    EmptyOperator(task_id='a')\n"
    )
    exits = parse_file(tmp_path / "exits.py")  # caught in the child: the line that calls it
    assert exits.errors[0].line == 2 and "os._exit() (status 3)" in exits.errors[0].error
    crashes = parse_file(tmp_path / "crashes.py")
    assert "exited with status -11" in crashes.errors[0].error
    started = time.monotonic()
    hangs = parse_file(tmp_path / "hangs.py", timeout=2)
    assert time.monotonic() - started < 15
    assert "longer than 2s" in hangs.errors[0].error
    assert [g.flow_id for g in parse_file(tmp_path / "prints.py").graphs] == ["p"]


@pytest.mark.timeout(60)
def test_processes_a_flow_file_starts_are_killed_with_its_parse(tmp_path: Path) -> None:
    """A file that leaves a process behind (holding the parse's output open, too) neither hangs
    the parse nor outlives it; nor does one started by a file that hangs."""
    source = (
        "import subprocess, time\nfrom pathlib import Path\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        "Path(__file__).with_suffix('.pid').write_text(str(child.pid))\n"
    )
    (tmp_path / "leaves.py").write_text(source)
    (tmp_path / "hangs.py").write_text(source + "time.sleep(600)\n")
    assert parse_file(tmp_path / "leaves.py", timeout=20).errors == []
    assert "longer than 2s" in parse_file(tmp_path / "hangs.py", timeout=2).errors[0].error
    for name in ("leaves", "hangs"):
        pid = int((tmp_path / f"{name}.pid").read_text())
        deadline = time.monotonic() + 5
        while not _gone(pid):
            assert time.monotonic() < deadline, f"the process {name}.py started is still running"
            time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_materialize_a_class_task_flow_for_a_date(tmp_path: Path) -> None:
    graph = materialize(
        str(ROOT / "examples" / "luigi_reports.py"),
        "luigi_reports_daily",
        params={"days": "2"},
        logical_date="2024-03-01T00:00:00+00:00",
        cwd=str(tmp_path),
    )
    assert "AllReports(date=2024-03-01, days=2)" in graph.nodes
    assert "DailySummary(date=2024-02-29)" in graph.nodes


def test_watcher_reports_new_changed_and_removed(tmp_path: Path) -> None:
    watcher = FileWatcher(tmp_path)
    a = tmp_path / "a.py"
    a.write_text("x = 1\n")
    assert watcher.changes() == ([str(a.resolve())], [])
    assert watcher.changes() == ([], [])
    a.write_text("x = 2\n")
    import os

    os.utime(a, (time.time() + 5, time.time() + 5))
    assert watcher.changes() == ([str(a.resolve())], [])
    a.unlink()
    assert watcher.changes() == ([], [str(a.resolve())])


def test_parse_files_reports_each_file_up_to_one_that_kills_the_batch(tmp_path: Path) -> None:
    """Many files in one child: each is reported as it is done; a file that ends the interpreter
    ends the batch, and the files after it are left for the caller to parse alone."""
    good = "from ductwork import EmptyOperator, Flow\nwith Flow('{name}') as flow:\n    EmptyOperator(task_id='a')\n"
    (tmp_path / "a.py").write_text(good.format(name="first"))
    (tmp_path / "b.py").write_text("raise ValueError('broken on purpose')\n")
    (tmp_path / "c.py").write_text("import ctypes\nctypes.string_at(0)\n")  # a segmentation fault
    (tmp_path / "d.py").write_text(good.format(name="after"))
    files = [str(tmp_path / n) for n in ("a.py", "b.py", "c.py", "d.py")]
    reported = parse_files(files, timeout=60)
    assert sorted(reported) == files[:2]
    assert [g.flow_id for g in reported[files[0]].graphs] == ["first"]
    assert "broken on purpose" in reported[files[1]].errors[0].error
    assert [g.flow_id for g in parse_files([files[3]], timeout=60)[files[3]].graphs] == ["after"]
