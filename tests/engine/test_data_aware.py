"""Data-aware runs under a real scheduler: flows started by asset updates (any/all conditions,
the triggering events in the task context), and incremental recomputation with ``cache="content"``
(nothing runs when nothing changed; exactly the affected tasks run after a change of parameter,
input file or function source; ``ductwork why`` names the cause)."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ductwork.cli.main import cli
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo

ASSET_FLOWS = """
    import json, os
    from pathlib import Path
    from ductwork import Asset, Flow, PythonOperator

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    ORDERS = Asset("s3://lake/orders")
    CUSTOMERS = Asset("s3://lake/customers")

    def write_orders(outlet_events):
        outlet_events[ORDERS].extra["rows"] = 3

    def seen(flow_id, run_id, triggering_asset_events):
        events = {uri: [e["extra"] for e in found] for uri, found in triggering_asset_events.items()}
        if ORDERS in triggering_asset_events:  # an Asset is a key too, as in outlet_events[ORDERS]
            events["by asset"] = [e.extra for e in triggering_asset_events[ORDERS]]
        (MARKS / f"{flow_id}-{run_id.replace(':', '_')}.json").write_text(json.dumps(events))

    with Flow("produce_orders") as produce_orders:
        PythonOperator(task_id="write", python_callable=write_orders, outlets=[ORDERS])

    with Flow("produce_customers") as produce_customers:
        PythonOperator(task_id="write", python_callable=lambda: None, outlets=["s3://lake/customers"])

    with Flow("on_any", schedule=ORDERS | CUSTOMERS) as on_any:
        PythonOperator(task_id="see", python_callable=seen, inlets=[ORDERS])

    with Flow("on_all", schedule=[ORDERS, CUSTOMERS]) as on_all:
        PythonOperator(task_id="see", python_callable=seen)
"""

INCREMENTAL = """
    import os
    from pathlib import Path
    from ductwork import Asset, flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    RAW = Path(os.environ["DUCTWORK_TEST_DATA"]) / "raw.txt"
    LOOKUP = Path(os.environ["DUCTWORK_TEST_DATA"]) / "lookup.txt"

    def executed(name, run_id):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{run_id} {name}\\n")

    @task(inlets=[Asset(str(RAW))])
    def read_raw(run_id):
        executed("read_raw", run_id)
        return [int(x) for x in RAW.read_text().split()]

    @task(inlets=[Asset(str(LOOKUP))])
    def read_lookup(run_id):
        executed("read_lookup", run_id)
        return LOOKUP.read_text().strip()

    @task
    def clean(rows, threshold, run_id):
        executed("clean", run_id)
        return [r for r in rows if r >= threshold]  # CLEAN-BODY

    @task
    def report(rows, label, run_id):
        executed("report", run_id)
        return f"{label}: {sum(rows)}"

    @flow(cache="content")
    def incremental(threshold: int = 2):
        report(clean(read_raw(), threshold), read_lookup())
"""


LUIGI = """
    import os
    from pathlib import Path
    from ductwork import Flow, LocalTarget, Task

    DATA = Path(os.environ["DUCTWORK_TEST_DATA"])

    class Clean(Task):
        def output(self):
            return LocalTarget(DATA / "clean.txt")

        def run(self):
            with self.output().open("w") as fh:
                fh.write("clean")

    class Summary(Task):
        def requires(self):
            return Clean()

        def output(self):
            return LocalTarget(DATA / "summary.txt")

        def run(self):
            with self.output().open("w") as fh:
                fh.write("summary")

    summary = Flow.from_task(Summary, flow_id="luigi_summary")
"""


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.flows = tmp / "flows"
        self.marks = tmp / "marks"
        self.data = tmp / "data"
        self.url = f"sqlite:///{tmp / 'ductwork.db'}"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_DATABASE_URL": self.url,
            "DUCTWORK_TEST_MARKS": str(self.marks),
            "DUCTWORK_TEST_DATA": str(self.data),
        }

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def runs(self, flow_id: str) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with read_transaction(engine) as conn:
                return list(run_repo.list_runs(conn, flow_id=flow_id, newest_first=False).items)
        finally:
            engine.dispose()

    def wait_for_runs(self, flow_id: str, count: int, *, timeout: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.runs(flow_id) if r.state.is_terminal]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def executed(self, run_id: str) -> set[str]:
        log = self.marks / "executed.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return {name for rid, name in (line.split(" ", 1) for line in lines) if rid == run_id}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("data-aware"))
    for folder in (e.flows, e.marks, e.data):
        folder.mkdir()
    (e.data / "raw.txt").write_text("1 2 3 4")
    (e.data / "lookup.txt").write_text("total")
    (e.flows / "assets_flows.py").write_text(textwrap.dedent(ASSET_FLOWS))
    (e.flows / "incremental.py").write_text(textwrap.dedent(INCREMENTAL))
    (e.flows / "luigi_summary.py").write_text(textwrap.dedent(LUIGI))
    old = {k: os.environ.get(k) for k in e.vars}
    os.environ.update(e.vars)  # the scheduler's workers inherit these
    settings = Settings(home=e.tmp / "home", flows_folder=e.flows, database_url=e.url, parallelism=2)
    engine = create_engine(e.url)
    migrate.upgrade(engine)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.3), engine=engine)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    wanted = {"produce_orders", "on_any", "on_all", "incremental", "luigi_summary"}
    while time.monotonic() < deadline:
        with read_transaction(engine) as conn:
            if wanted <= {f.flow_id for f in flow_repo.list_flows(conn)}:
                break
        time.sleep(0.2)
    try:
        yield e
    finally:
        service.stop()
        thread.join(timeout=60)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_asset_updates_start_consumer_flows_by_any_and_all_conditions(env: Env) -> None:
    run = env.json("trigger", "produce_orders", "--wait", "--timeout", "60")
    assert run["state"] == "success"
    (any_run,) = env.wait_for_runs("on_any", 1)
    assert any_run.run_type == "asset_triggered" and any_run.state.value == "success"
    assert any_run.triggered_by["asset_events"][0]["uri"] == "s3://lake/orders"
    assert any_run.triggered_by["asset_events"][0]["run_id"] == run["run_id"]
    seen = json.loads((env.marks / f"on_any-{any_run.run_id.replace(':', '_')}.json").read_text())
    assert seen == {"s3://lake/orders": [{"rows": 3}], "by asset": [{"rows": 3}]}
    time.sleep(1.0)
    assert env.runs("on_all") == []  # all of two assets: only one was updated so far

    env.json("trigger", "produce_customers", "--wait", "--timeout", "60")
    (all_run,) = env.wait_for_runs("on_all", 1)
    seen = json.loads((env.marks / f"on_all-{all_run.run_id.replace(':', '_')}.json").read_text())
    assert seen == {"s3://lake/orders": [{"rows": 3}], "s3://lake/customers": [{}], "by asset": [{"rows": 3}]}
    assert len(env.wait_for_runs("on_any", 2)) == 2

    detail = env.json("assets", "show", "s3://lake/orders")
    assert detail["producers"] == [["produce_orders", "write"]]
    assert detail["consumers"] == ["on_all", "on_any"]
    assert detail["readers"] == [["on_any", "see"]]
    assert detail["events"][0]["extra"] == {"rows": 3}
    started = {s["flow_id"] for s in detail["events"][0]["started"]}
    assert started == {"on_any", "on_all"}


def _run_incremental(env: Env, *params: str) -> tuple[str, set[str]]:
    run = env.json("trigger", "incremental", *params, "--wait", "--timeout", "60")
    assert run["state"] == "success", run
    return run["run_id"], env.executed(run["run_id"])


def test_incremental_recomputation_runs_exactly_what_changed(env: Env) -> None:
    first, ran = _run_incremental(env)
    assert ran == {"read_raw", "read_lookup", "clean", "report"}
    assert env.json("why", "incremental", "clean", first)["decision"] == "ran"

    second, ran = _run_incremental(env)
    assert ran == set()  # nothing changed: every task reused its earlier result
    why = env.json("why", "incremental", "report", second)
    assert why["decision"] == "up_to_date" and why["matched_run_id"] == first
    assert env.json("tasks", "state", "incremental", second)["report"]["state"] == "success"

    third, ran = _run_incremental(env, "--param", "threshold=3")
    assert ran == {"clean", "report"}
    assert [r["text"] for r in env.json("why", "incremental", "clean", third)["reasons"]] == [
        "parameter 'threshold' changed"
    ]
    assert env.json("why", "incremental", "read_raw", third)["decision"] == "up_to_date"
    assert "input 'clean' changed" in env.cli("why", "incremental", "report", third).output

    (env.data / "lookup.txt").write_text("sum")
    fourth, ran = _run_incremental(env, "--param", "threshold=3")
    assert ran == {"read_lookup", "report"}
    reasons = env.json("why", "incremental", "read_lookup", fourth)["reasons"]
    assert [r["name"] for r in reasons] == [f"asset:file://{env.data / 'lookup.txt'}"]

    source = (env.flows / "incremental.py").read_text()
    (env.flows / "incremental.py").write_text(source.replace("r >= threshold]", "r >= threshold + 1]"))
    time.sleep(1.5)  # workers look at a changed flow file at most once a second
    fifth, ran = _run_incremental(env, "--param", "threshold=3")
    assert ran == {"clean", "report"}
    assert env.json("why", "incremental", "clean", fifth)["reasons"][0]["text"] == "code changed: clean"


def test_a_cached_result_that_cannot_be_read_here_makes_the_task_run_not_fail(env: Env) -> None:
    """A matching try whose stored result this scheduler cannot read (written with pickle where
    pickle is not configured) is no reason to fail: the task runs, and why says so."""
    import sqlalchemy as sa

    from ductwork.store.tables import runs as runs_table
    from ductwork.store.tables import task_results

    matched, _ = _run_incremental(env, "--param", "threshold=7")
    engine = create_engine(env.url)
    try:
        with engine.begin() as conn:
            pk = conn.execute(
                sa.select(runs_table.c.id).where(runs_table.c.flow_id == "incremental", runs_table.c.run_id == matched)
            ).scalar_one()
            changed = conn.execute(
                sa.update(task_results)
                .where(task_results.c.run_pk == pk, task_results.c.task_id == "report")
                .values(serializer="pickle")
            ).rowcount
        assert changed >= 1
    finally:
        engine.dispose()
    again, ran = _run_incremental(env, "--param", "threshold=7")
    assert ran == {"report"}, ran
    assert env.json("tasks", "state", "incremental", again)["report"]["state"] == "success"


def test_why_a_luigi_style_task_ran_or_did_not(env: Env) -> None:
    first = env.json("trigger", "luigi_summary", "--wait", "--timeout", "60")
    assert first["state"] == "success"
    why = env.json("why", "luigi_summary", "Summary", first["run_id"])
    assert why["decision"] == "ran"
    assert [r["text"] for r in why["reasons"]] == [f"output LocalTarget({str(env.data / 'summary.txt')!r}) is missing"]
    second = env.json("trigger", "luigi_summary", "--wait", "--timeout", "60")
    why = env.json("why", "luigi_summary", "Summary", second["run_id"])
    assert why["decision"] == "complete" and "did not run: its outputs already existed" in why["text"]
