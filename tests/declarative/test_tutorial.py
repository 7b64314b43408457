"""The README's pipelines-as-data tutorial, as a user types it: the AWS Data Pipeline definition
run unchanged, then the same pipeline as Ductwork YAML and as Python, with the same results."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import Cli

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "_declarative" / "tutorial"


@pytest.mark.parametrize("file", ["daily_counts.json", "daily_counts.yaml", "daily_counts.py"])
def test_the_tutorial_pipeline_in_each_form(cli: Cli, tmp_path: Path, file: str) -> None:
    for item in TUTORIAL.iterdir():
        shutil.copy(item, tmp_path / item.name)
    inbox = tmp_path / "s3" / "tutorial-data" / "input"
    inbox.mkdir(parents=True)
    (inbox / "2024-01-31.csv").write_text("order-1,3\norder-2,5\norder-3,1\n")
    env = {
        "DUCTWORK_S3_ROOT": f"file://{tmp_path / 's3'}",
        "DUCTWORK_CONN_WAREHOUSE": f"sqlite:///{tmp_path / 'warehouse.db'}",
    }
    if file.endswith(".json"):
        assert "valid" in cli("pipelines", "validate", file, env=env).output
    result = cli("run", file, "--date", "2024-01-31", "--no-progress", env=env)
    assert result.exit_code == 0, result.output
    count = tmp_path / "s3" / "tutorial-data" / "counts" / "2024-01-31" / "count.txt"
    assert count.read_text().strip() == "3"
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        assert db.execute("select day from loaded_days").fetchall() == [("2024-01-31",)]
