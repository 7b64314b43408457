"""A backfill queues all of its runs or none of them.

Each run was written in a transaction of its own: a backfill stopped part way (Ctrl-C, a full
disk, another backfill of the same dates at that moment) left the first runs of the range
queued, with exit status 130, or 2 ("refused, nothing changed"), and no audit entry. One transaction also spares a commit (an
fsync on SQLite) per run: 366 daily runs took 31 s on a busy machine, 2.3 s of it CPU.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import Cli

DAILY = textwrap.dedent(
    """
    from ductwork import EmptyOperator, Flow

    with Flow("daily", schedule="@daily", start_date="2024-01-01") as f:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    """
)


def test_a_backfill_that_fails_part_way_queues_no_run(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "daily.py").write_text(DAILY)
    assert cli("db", "init").exit_code == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ductwork-home' / 'ductwork.db'}")
    with engine.begin() as conn:  # the third run cannot be written (as a disk that fills would)
        conn.exec_driver_sql(
            "CREATE TRIGGER third_run_fails BEFORE INSERT ON runs "
            "WHEN NEW.run_id LIKE 'backfill__2024-01-03%' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    failed = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05")
    assert failed.exit_code == 2, failed.output  # "refused, nothing changed"
    listed = json.loads(cli("runs", "list", "daily", "--json").output)
    assert listed["total"] == 0, listed
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER third_run_fails")
    engine.dispose()
    done = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05", "--json")
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.output)) == 5
    shown = json.loads(cli("tasks", "state", "daily", "backfill__2024-01-03T00:00:00+00:00", "--json").output)
    assert sorted(shown) == ["a", "b"]
