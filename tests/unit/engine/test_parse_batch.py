"""One child imports many flow files for the CLI; a file that ends the interpreter (an exit, a
crash) or hangs is reported as that file's import error and the files after it are still
parsed (engine.parse_batch)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ductwork.engine.parse_batch import parse_files


def _flow(name: str) -> str:
    return textwrap.dedent(
        f"""
        from ductwork import EmptyOperator, Flow
        with Flow("{name}") as f:
            EmptyOperator(task_id="t")
        """
    )


def test_bad_files_are_reported_and_the_others_still_parse(tmp_path: Path) -> None:
    files = {
        "a.py": _flow("a"),
        "b.py": "import os\nos._exit(3)\n",
        "c.py": _flow("c"),
        "d.py": "import time\ntime.sleep(600)\n",
        "e.py": "import ctypes\nctypes.string_at(0)\n",  # a segmentation fault
        "f.py": _flow("f") + "raise ValueError('late')\n",
        "g.py": _flow("g"),
    }
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    parsed = parse_files([str(tmp_path / name) for name in files], timeout=3)
    by_name = {Path(file).name: result for file, result in parsed.items()}
    assert {n: [g["meta"]["flow_id"] for g in r.graphs] for n, r in by_name.items()} == {
        "a.py": ["a"],
        "b.py": [],
        "c.py": ["c"],
        "d.py": [],
        "e.py": [],
        "f.py": [],
        "g.py": ["g"],
    }
    exits = by_name["b.py"]  # os._exit() at import is caught: an error naming its line, the batch goes on
    assert not exits.fatal and exits.errors[0]["line"] == 2 and "os._exit() (status 3)" in exits.errors[0]["error"]
    assert by_name["d.py"].fatal and "longer than 3s" in by_name["d.py"].errors[0]["error"]
    assert by_name["e.py"].fatal and "exit status -11" in by_name["e.py"].errors[0]["error"]
    late = by_name["f.py"]
    assert not late.fatal and late.errors[0]["line"] == 5 and "ValueError: late" in late.errors[0]["error"]
    assert by_name["g.py"].modules is not None  # the last child ended cleanly and said what it loaded
