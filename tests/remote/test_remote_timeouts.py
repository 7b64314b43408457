"""How a remote try's end is said: a Celery worker stops a try at its ``execution_timeout`` by
raising its soft time limit in it."""

from __future__ import annotations

import datetime as dt

from ductwork import Flow
from ductwork.core.context import RunInfo
from ductwork.core.states import TaskState as S

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def test_a_try_stopped_at_its_execution_timeout_by_celery_says_it_timed_out() -> None:
    """A Celery worker stops a try at its ``execution_timeout`` by raising its soft time limit in
    it: recorded as "timed out after 3s", as the other executors say it (it was
    ``SoftTimeLimitExceeded: SoftTimeLimitExceeded()``)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from ductwork import PythonOperator
    from ductwork.core.clock import SystemClock
    from ductwork.core.results import MemoryResults
    from ductwork.engine.execution import execute_try
    from ductwork.engine.logcapture import TrySink

    def long() -> None:
        raise SoftTimeLimitExceeded()

    with Flow("slow", schedule=None):
        task = PythonOperator(task_id="long", python_callable=long, execution_timeout=dt.timedelta(seconds=3))
    at = T0
    outcome = execute_try(
        task,
        node=task.to_node(),
        run=RunInfo("slow", "r1", at, at, at),
        try_number=1,
        results=MemoryResults(),
        downstream=(),
        clock=SystemClock(),
        sink=TrySink(None),
    )
    assert outcome.state == S.FAILED and outcome.error == "timed out after 3s"
