"""The README's tutorial files and its "Testing your pipelines" test, copied as a new user copies
them: the test file used `numbers` without importing it (a NameError at collection) and
imported `build` without a use. The blocks are taken from README.md itself, so the README and
this test cannot drift apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_files() -> dict[str, str]:
    """The README's Python blocks that open with a file name (``# reports.py``, ``# flows/ml.py``,
    ``# test_numbers.py, beside ...``), by that name."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        first = block.splitlines()[0]
        named = re.match(r"# ([\w/]+\.py)\b", first)
        if named:
            files[named.group(1)] = block
    return files


def test_the_readme_testing_example_passes_as_copied(tmp_path: Path) -> None:
    files = readme_files()
    assert {"reports.py", "flows/ml.py", "test_numbers.py"} <= set(files), sorted(files)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {**os.environ, "DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT / "src")}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_numbers.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout, ran.stdout
    assert (tmp_path / "out" / "reports" / "2024-01-31" / "south.txt").read_text() == "0"
