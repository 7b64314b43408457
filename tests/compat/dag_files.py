"""An Airflow DAG file written into a test's folder and loaded as Ductwork loads the flows folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ductwork import Flow
from ductwork.loading import load_file


def load_dag(folder: Path, source: str, name: str = "dag_file.py") -> Flow:
    """The one flow ``source`` defines (dedented), written as ``folder/name``; it must load cleanly."""
    path = folder / name
    path.write_text(textwrap.dedent(source))
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    [flow] = loaded.flows
    return flow
