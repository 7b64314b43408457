"""A cached task cleared under the scheduler runs again, and ``ductwork why`` says it was cleared
(it said its own run's results "could not be read")."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from ductwork.engine.scheduler import SchedulerOptions
from ductwork.services import runs as run_service
from ductwork.services import tasks as task_service
from ductwork.services import why as why_service
from ductwork.settings import Settings
from tests.engine.scheduler_thread import scheduler_in_thread

FLOW = """
    from pathlib import Path
    from ductwork import flow, task

    @task
    def clean():
        with open({out!r}, "a") as fh:
            fh.write("clean\\n")
        return 1

    @task
    def load():  # returns nothing: the clear had no results of it to delete
        with open({out!r}, "a") as fh:
            fh.write("load\\n")

    @flow(schedule=None, cache="content")
    def cached():
        clean()
        load()
"""


def _ended(service, run_id: str) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = run_service.get_run(service.engine, "cached", run_id).state.value
        if state in ("success", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end")


def test_a_cleared_cached_task_runs_again_and_why_says_it_was_cleared(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    out = tmp_path / "ran.txt"
    (flows / "cached.py").write_text(textwrap.dedent(FLOW.format(out=str(out))))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'd.db'}", parallelism=1
    )
    with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.1, parse_interval=0.2)) as service:
        deadline = time.monotonic() + 60
        while True:
            try:
                record = run_service.trigger(service.engine, "cached", run_id="r1")
                break
            except Exception:
                assert time.monotonic() < deadline, "the flow was never parsed"
                time.sleep(0.2)
        assert _ended(service, "r1") == "success"
        task_service.clear(service.engine, run_service.get_run(service.engine, "cached", "r1"), ["clean"])
        assert _ended(service, "r1") == "success"
        answer = why_service.explain(service.engine, "cached", "clean", "r1")
        task_service.clear(service.engine, run_service.get_run(service.engine, "cached", "r1"), ["load"])
        assert _ended(service, "r1") == "success"
    assert sorted(out.read_text().splitlines()) == ["clean", "clean", "load", "load"]
    assert "it was cleared in this run" in answer["text"], answer["text"]
    assert record.run_id == "r1"
