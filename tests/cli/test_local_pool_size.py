"""A local worker pool of absurd size is refused before anything starts.

``ductwork scheduler -w 100000000000000000000`` (or a ``parallelism`` meant for a Celery
cluster) forked worker processes without end, loading the whole machine, and did not stop on
SIGTERM. The checks here run against a database that cannot be reached: without the refusal,
the scheduler waits ``--start-wait`` for it and exits before its pool starts, so the test never
starts such a pool itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ductwork_process import ductwork_process

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/qa_unreachable"


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (("scheduler", "-w", "100000000000000000000", "--start-wait", "0.5"), {}, "--workers 100000000000000000000"),
        (("scheduler", "--start-wait", "0.5"), {"DUCTWORK_PARALLELISM": "5000"}, "parallelism 5000"),
    ],
)
def test_a_local_pool_past_the_limit_is_refused_before_it_starts(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    done = ductwork_process(
        *args,
        env={"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_DATABASE_URL": UNREACHABLE, **env},
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"{said}: the local executor would start that many worker processes; at most 1024" in done.stderr, (
        done.stderr
    )


def test_a_celery_worker_takes_no_concurrency_past_the_limit(tmp_path: Path) -> None:
    done = ductwork_process("worker", "-c", "5000", env={"DUCTWORK_HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert done.returncode == 2 and "5000 is not in the range 1<=x<=1024" in done.stderr, done.stderr
