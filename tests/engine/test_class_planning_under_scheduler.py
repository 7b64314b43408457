"""A class-task flow (``Flow.from_task``) under the scheduler whose task cannot be planned
(its ``complete()`` raises): that task fails, with the error, what needs it is not run, and the
rest of the run is built, as Luigi schedules and as ``ductwork build`` does. The whole run
failed with an empty graph, and nothing of it was built."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from ductwork.engine.scheduler import SchedulerOptions
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from tests.engine.scheduler_thread import scheduler_in_thread

FLOW = """
    from pathlib import Path
    from ductwork import Flow, LocalTarget, Parameter, Task

    OUT = Path({out!r})

    class Good(Task):
        def output(self):
            return LocalTarget(OUT / "good.txt")

        def run(self):
            self.output().write_text("good")

    class Broken(Task):
        def complete(self):
            raise RuntimeError("the catalog is unreachable")

        def run(self):
            (OUT / "broken-ran.txt").write_text("ran")

    class Report(Task):
        def requires(self):
            return [Good(), Broken()]

        def output(self):
            return LocalTarget(OUT / "report.txt")

        def run(self):
            self.output().write_text("report")

    report = Flow.from_task(Report, flow_id="report", schedule=None)
"""


def test_a_task_that_cannot_be_planned_fails_alone_under_the_scheduler(tmp_path: Path) -> None:
    flows, out = tmp_path / "flows", tmp_path / "out"
    flows.mkdir()
    out.mkdir()
    (flows / "report.py").write_text(textwrap.dedent(FLOW.format(out=str(out))))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'd.db'}", parallelism=2
    )
    engine = create_engine(settings.db_url)
    with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.1, parse_interval=0.2)):
        deadline = time.monotonic() + 90
        while True:
            try:
                record = run_service.trigger(engine, "report", run_id="r1")
                break
            except Exception:  # not parsed yet
                assert time.monotonic() < deadline, "the flow was never parsed"
                time.sleep(0.2)
        while time.monotonic() < deadline:
            with read_transaction(engine) as conn:
                run = run_repo.get_run_by_pk(conn, record.pk)
            if run is not None and run.state.value in ("success", "failed"):
                break
            time.sleep(0.2)
    with read_transaction(engine) as conn:
        run = run_repo.get_run_by_pk(conn, record.pk)
        states = {t.task_id: t.state.value for t in task_repo.list_task_instances(conn, record.pk)}
        broken = [t for t in states if t.startswith("Broken")]
        (attempt,) = task_repo.list_tries(conn, record.pk, broken[0])
    assert run is not None and run.state.value == "failed"
    good = next(t for t in states if t.startswith("Good"))
    root = next(t for t in states if t.startswith("Report"))
    assert states[good] == "success" and (out / "good.txt").read_text() == "good"
    assert states[broken[0]] == "failed" and states[root] == "upstream_failed"
    assert "complete() of Broken" in (attempt.error or "") and "the catalog is unreachable" in (attempt.error or "")
    assert not (out / "broken-ran.txt").exists() and not (out / "report.txt").exists()
    engine.dispose()
