"""The processes of the remote-executor tests run the ductwork under test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ductwork
from tests.remote.support import Cluster


def test_the_clusters_processes_import_the_ductwork_under_test(tmp_path: Path) -> None:
    """Started from the cluster's folder, a ``python -m ductwork.cli`` process imported the
    installed ductwork (in a clone, the main checkout's), not the one the test imported."""
    env = Cluster(tmp_path / "c", "sqlite:///unused.db", "redis://127.0.0.1:1/0").base_env()
    found = subprocess.run(
        [sys.executable, "-c", "import ductwork; print(ductwork.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()).resolve() == Path(ductwork.__file__).resolve(), (
        found.stdout,
        os.environ.get("PYTHONPATH"),
    )
