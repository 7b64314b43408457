"""Airflow datasets (2.x) and assets (3.x) under a real scheduler: DAG files scheduled on datasets
become flows scheduled on Ductwork's assets, a task's ``outlets=`` records dataset events, and
the consumer sees the events that started its run as Airflow's ``triggering_dataset_events`` /
``triggering_asset_events``. Also what the shim accepts at parse time and what ``doctor`` says."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
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
from ductwork.loading import load_file
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo
from tests.compat.conformance import extract_airflow_examples

DAGS = Path(__file__).parent / "dataset_dags"
EXAMPLE_CONSUMERS = (
    "dataset_consumes_1",
    "dataset_consumes_1_and_2",
    "consume_1_and_2_with_dataset_expressions",
    "consume_1_or_2_with_dataset_expressions",
    "consume_1_or_both_2_and_3_with_dataset_expressions",
    "conditional_dataset_and_time_based_timetable",
)
NEVER_SCHEDULED = ("dataset_consumes_1_never_scheduled", "dataset_consumes_unknown_never_scheduled")


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.url = f"sqlite:///{tmp / 'ductwork.db'}"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(tmp / "flows"),
            "DUCTWORK_DATABASE_URL": self.url,
            "SHIM_TEST_MARKS": str(self.marks),
        }

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def runs(self, flow_id: str) -> list[dict[str, Any]]:
        result = self.cli("runs", "list", flow_id, "--json")
        return json.loads(result.output)["runs"] if result.exit_code == 0 else []

    def finished(self, flow_id: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            done = [r for r in self.runs(flow_id) if r["state"] in ("success", "failed")]
            if len(done) >= count or time.monotonic() > deadline:
                return sorted(done, key=lambda r: r["run_id"])
            time.sleep(0.3)

    def seen(self, flow_id: str, run_id: str) -> Any:
        return json.loads((self.marks / f"{flow_id}-{run_id.replace(':', '_')}.json").read_text())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("shim-datasets")
    e = Env(tmp)
    shutil.copytree(DAGS, tmp / "flows")
    extract_airflow_examples(["example_datasets.py"], tmp / "flows")  # Airflow's own example, unchanged
    e.marks.mkdir()
    old = {k: os.environ.get(k) for k in e.vars}
    os.environ.update(e.vars)  # the scheduler's worker processes inherit these
    engine = create_engine(e.url)
    migrate.upgrade(engine)
    settings = Settings(home=tmp / "home", flows_folder=tmp / "flows", database_url=e.url, parallelism=2)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.3), engine=engine)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    wanted = {"produce_orders", "produce_customers", "on_any", "on_all", *EXAMPLE_CONSUMERS, *NEVER_SCHEDULED}
    deadline = time.monotonic() + 60
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
        engine.dispose()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_dataset_updates_start_consumer_dags_with_their_triggering_events(env: Env) -> None:
    produced = env.json("trigger", "produce_orders", "--wait", "--timeout", "60")
    assert produced["state"] == "success"
    (any_run,) = env.finished("on_any", 1)
    assert any_run["run_type"] == "asset_triggered" and any_run["state"] == "success"
    seen = env.seen("on_any", any_run["run_id"])
    assert list(seen) == ["s3://lake/orders"]  # Airflow 2.x keys the events by URI
    (event,) = seen["s3://lake/orders"]
    assert event["key_type"] == "str" and event["extra"] == {"rows": 3}
    assert event["source_dag_id"] == "produce_orders" and event["source_run_id"] == produced["run_id"]
    assert event["source_task_id"] == "write_orders" and event["timestamp"].endswith("+00:00")
    inlets = json.loads((env.marks / f"on_any-inlets-{any_run['run_id'].replace(':', '_')}.json").read_text())
    assert inlets == [[{"rows": 3}, "produce_orders"]]  # inlet_events: the inlet's recorded events
    log = env.cli("tasks", "logs", "on_any", any_run["run_id"], "templated")
    assert "first from produce_orders" in log.output
    time.sleep(1.0)
    assert env.runs("on_all") == []  # all of two datasets: only one was updated so far

    customers = env.json("trigger", "produce_customers", "--wait", "--timeout", "60")
    assert customers["state"] == "success"
    (all_run,) = env.finished("on_all", 1)
    assert all_run["state"] == "success"
    seen = env.seen("on_all", all_run["run_id"])
    assert set(seen) == {"s3://lake/orders", "asset://customers"}
    assert seen["s3://lake/orders"][0]["key_type"] == "Asset"  # Airflow 3 keys them by asset
    assert seen["asset://customers"][0]["source_dag_id"] == "produce_customers"
    assert seen["asset://customers"][0]["extra"] == {}
    assert len(env.finished("on_any", 2)) == 2  # any of the two: customers started another run

    detail = env.json("assets", "show", "s3://lake/orders")
    assert detail["producers"] == [["produce_orders", "write_orders"]]
    assert detail["consumers"] == ["on_all", "on_any"]
    assert detail["readers"] == [["on_any", "seen_any"]]


def test_airflows_example_datasets_dags_start_each_other_as_documented(env: Env) -> None:
    """``example_datasets.py`` from Airflow 2.10.5: both producers' datasets start every consumer
    whose condition they satisfy (lists, ``&``, ``|``, nested, ``DatasetOrTimeSchedule``), and
    the two DAGs waiting on a dataset nobody produces never run."""
    for producer in ("dataset_produces_2", "dataset_produces_1"):
        produced = env.json("trigger", producer, "--wait", "--timeout", "90")
        assert produced["state"] == "success"
    for consumer in EXAMPLE_CONSUMERS:
        runs = env.finished(consumer, 1, timeout=120)
        assert runs, f"{consumer} was not started by the datasets"
        assert all(r["state"] == "success" for r in runs), (consumer, runs)
        assert any(r["run_type"] == "asset_triggered" for r in runs), (consumer, runs)
    for consumer in NEVER_SCHEDULED:
        assert env.runs(consumer) == [], consumer
    detail = env.json("assets", "show", "s3://dag1/output_1.txt")
    assert ["dataset_produces_1", "producing_task_1"] in detail["producers"]
    assert set(detail["consumers"]) >= {"dataset_consumes_1", *NEVER_SCHEDULED[:1]}


def _load(tmp: Path, source: str) -> Any:
    path = tmp / "dag_file.py"
    path.write_text(textwrap.dedent(source))
    return load_file(path)


def test_dataset_or_time_schedules_and_conditions_as_ductwork_assets(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset, DatasetAll, DatasetAny
        from airflow.operators.empty import EmptyOperator
        from airflow.timetables.datasets import DatasetOrTimeSchedule
        from airflow.timetables.assets import AssetOrTimeSchedule
        from airflow.sdk import Asset

        a, b, c = Dataset("s3://x/a"), Dataset("s3://x/b"), Asset(name="c")
        start = pendulum.datetime(2024, 1, 1, tz="UTC")
        with DAG("nested", start_date=start, schedule=DatasetAny(a, DatasetAll(b, c))):
            EmptyOperator(task_id="t", outlets=[Dataset("s3://x/out"), "not a dataset"], inlets=a)
        with DAG("or_time", start_date=start, schedule=DatasetOrTimeSchedule(timetable="@daily", datasets=[a, b])):
            EmptyOperator(task_id="t")
        with DAG("or_time3", start_date=start, schedule=AssetOrTimeSchedule(timetable="0 6 * * *", assets=a & c)):
            EmptyOperator(task_id="t")
        with DAG("never", start_date=start, schedule=[]):
            EmptyOperator(task_id="t")
        """,
    )
    assert not loaded.errors, [str(e) for e in loaded.errors]
    flows = {f.flow_id: f for f in loaded.flows}
    nested = flows["nested"].meta()
    assert nested.assets == {"any": [{"asset": "s3://x/a"}, {"all": [{"asset": "s3://x/b"}, {"asset": "asset://c"}]}]}
    node = flows["nested"].tasks["t"]
    assert [a.uri for a in node.outlets] == ["s3://x/out"]  # a lineage-only object is left out
    assert [a.uri for a in node.inlets] == ["s3://x/a"]
    or_time = flows["or_time"]
    assert or_time.meta().assets == {"all": [{"asset": "s3://x/a"}, {"asset": "s3://x/b"}]}
    interval = or_time.schedule.interval_starting(dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    assert interval.end - interval.start == dt.timedelta(days=1)
    assert flows["or_time3"].meta().assets == {"all": [{"asset": "s3://x/a"}, {"asset": "asset://c"}]}
    assert flows["never"].meta().assets is None and flows["never"].meta().schedule == "None"  # manual only


def test_dataset_aliases_and_mixed_schedule_lists_are_refused_naming_the_line(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset, DatasetAlias

        with DAG("mixed", start_date=pendulum.datetime(2024, 1, 1), schedule=[Dataset("s3://x/a"), "@daily"]):
            pass
        """,
    )
    assert loaded.flows == [] and "dag_file.py:6" in str(loaded.errors[0])
    assert "Dataset/Asset objects" in str(loaded.errors[0])
    loaded = _load(
        tmp_path,
        """
        from airflow.datasets import DatasetAlias

        alias = DatasetAlias("later")
        """,
    )
    assert "dag_file.py:4" in str(loaded.errors[0]) and "dataset aliases" in str(loaded.errors[0])


def test_doctor_reports_what_differs_for_datasets_and_refuses_aliases(tmp_path: Path) -> None:
    path = tmp_path / "aliases.py"
    path.write_text(
        textwrap.dedent(
            """
            from airflow.datasets import Dataset, DatasetAlias
            from airflow.sdk import Asset
            """
        )
    )
    result = CliRunner().invoke(cli, ["doctor", str(path)], env={"DUCTWORK_HOME": str(tmp_path / "home")})
    assert result.exit_code == 1, result.output
    assert "aliases.py:2: differs: airflow.datasets.Dataset" in result.output and "asset://" in result.output
    assert "aliases.py:2: unsupported: airflow.datasets.DatasetAlias" in result.output
    assert "aliases.py:3: differs: airflow.sdk.Asset" in result.output
    clean = CliRunner().invoke(
        cli, ["doctor", str(DAGS / "dataset_producer.py")], env={"DUCTWORK_HOME": str(tmp_path / "home")}
    )
    assert clean.exit_code == 0 and "unsupported" not in clean.output, clean.output
