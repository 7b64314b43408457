"""A DAGs folder's ``.airflowignore`` keeps what it names out of the flows, as in Airflow."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ductwork.loading import flow_files
from tests.conftest import Cli

DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("kept", start_date=pendulum.datetime(2024, 1, 1), schedule=None):
        EmptyOperator(task_id="a")
"""


def test_files_an_airflowignore_names_are_not_loaded(cli: Cli, tmp_path: Path) -> None:
    # They were imported as flow files: a script's top-level code ran at every parse, and its
    # failure was an import error of the folder.
    flows = tmp_path / "flows"
    (flows / "scripts").mkdir(parents=True)
    (flows / "team" / "tests").mkdir(parents=True)
    (flows / "kept.py").write_text(textwrap.dedent(DAG))
    (flows / "scripts" / "backfill_all.py").write_text("raise SystemExit('a script, run by the parser')\n")
    (flows / "scratch_1.py").write_text("raise SystemExit('scratch')\n")
    (flows / "team" / "tests" / "test_dags.py").write_text("raise SystemExit('a test module')\n")
    (flows / "team" / "report.py").write_text(textwrap.dedent(DAG).replace('"kept"', '"report"'))
    (flows / ".airflowignore").write_text("scripts/\nscratch_.*\\.py  # notebooks\n[unclosed\n")
    (flows / "team" / ".airflowignore").write_text("^tests\n")
    assert [p.relative_to(flows).as_posix() for p in flow_files(flows)] == ["kept.py", "team/report.py"]
    listed = cli("flows", "list", env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "kept" in listed.output and "report" in listed.output
    assert "import error" not in listed.output.lower(), listed.output
