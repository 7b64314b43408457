"""AWS Data Pipeline definitions in the flows folder, run by the real scheduler on SQLite and
PostgreSQL: schedule occurrences (timeseries and cron style), retries, attempt timeouts,
parameters, worker groups."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dbfixtures import temporary_database
from ductwork.cli.main import cli
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo

DEFAULT = {
    "id": "Default",
    "name": "Default",
    "failureAndRerunMode": "CASCADE",
    "role": "DataPipelineDefaultRole",
    "resourceRole": "DataPipelineDefaultResourceRole",
}

MARK = 'echo "$1" >> "$DUCTWORK_TEST_MARKS/$2"'

PIPELINES: dict[str, dict[str, Any]] = {
    # Timeseries style: three daily instances from 2024-01-01, each covering the day that ended.
    "daily.json": {
        "objects": [
            {**DEFAULT, "scheduleType": "timeseries", "schedule": {"ref": "Daily"}, "workerGroup": "wg-local"},
            {
                "id": "Daily",
                "type": "Schedule",
                "period": "1 days",
                "startDateTime": "2024-01-01T00:00:00",
                "occurrences": "3",
            },
            {
                "id": "Extract",
                "type": "ShellCommandActivity",
                "command": MARK,
                "scriptArgument": [
                    "#{format(@scheduledStartTime, 'YYYY-MM-dd')}..#{format(@scheduledEndTime, 'dd')}",
                    "daily-extract",
                ],
            },
            {
                "id": "Load",
                "type": "ShellCommandActivity",
                "dependsOn": {"ref": "Extract"},
                "command": 'grep -q "$1" "$DUCTWORK_TEST_MARKS/daily-extract" && ' + MARK,
                "scriptArgument": ["#{format(@scheduledStartTime, 'YYYY-MM-dd')}", "daily-load"],
            },
        ]
    },
    # Cron style: each instance starts at the beginning of its period.
    "hourly.json": {
        "objects": [
            {**DEFAULT, "scheduleType": "cron", "schedule": {"ref": "Hourly"}},
            {
                "id": "Hourly",
                "type": "Schedule",
                "period": "6 hours",
                "startDateTime": "2024-03-01T00:00:00",
                "endDateTime": "2024-03-01T12:00:00",
            },
            {
                "id": "Tick",
                "type": "ShellCommandActivity",
                "command": MARK,
                "scriptArgument": ["#{@scheduledStartTime}/#{@scheduledEndTime}", "hourly"],
            },
        ]
    },
    "ondemand.json": {
        "objects": [
            {**DEFAULT, "scheduleType": "ondemand"},
            {
                "id": "Flaky",
                "type": "ShellCommandActivity",
                "maximumRetries": "#{myRetries}",
                "retryDelay": "1 seconds",
                "command": 'test -e "$DUCTWORK_TEST_MARKS/flaky-$1" || { touch "$DUCTWORK_TEST_MARKS/flaky-$1"; exit 3; }',
                "scriptArgument": "#{myTag}",
            },
            {
                "id": "Slow",
                "type": "ShellCommandActivity",
                "attemptTimeout": "1 seconds",
                "command": "sleep 30",
                "dependsOn": {"ref": "Flaky"},
            },
        ],
        "parameters": [
            {"id": "myTag", "type": "String", "description": "a tag for the marker file"},
            {"id": "myRetries", "type": "Integer", "default": "1"},
        ],
        "values": {"myTag": "from-values"},
    },
}


class Env:
    def __init__(self, tmp: Path, url: str) -> None:
        self.flows = tmp / "flows"
        self.marks = tmp / "marks"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_DATABASE_URL": url,
            "DUCTWORK_TEST_MARKS": str(self.marks),
        }
        self.url = url

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code in codes, result.output
        return json.loads(result.output)

    def runs(self, flow_id: str) -> list[dict[str, Any]]:
        return list(self.json("runs", "list", flow_id, "--limit", "100")["runs"])

    def wait_runs(self, flow_id: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(flow_id)
            if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            assert time.monotonic() < deadline, runs
            time.sleep(0.3)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp(f"dp-{request.param}")
    with temporary_database(request.param, tmp) as url:
        e = Env(tmp, url)
        e.flows.mkdir()
        e.marks.mkdir()
        for name, data in PIPELINES.items():
            (e.flows / name).write_text(json.dumps(data, indent=2))
        old = {k: os.environ.get(k) for k in e.vars}
        os.environ.update(e.vars)  # the workers inherit these
        settings = Settings(home=tmp / "home", flows_folder=e.flows, database_url=url, parallelism=3)
        service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.5))
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        engine = create_engine(url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with read_transaction(engine) as conn:
                    if set(n.split(".")[0] for n in PIPELINES) <= {f.flow_id for f in flow_repo.list_flows(conn)}:
                        break
            except Exception:
                pass
            time.sleep(0.2)
        engine.dispose()
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


def marks(env: Env, name: str) -> list[str]:
    path = env.marks / name
    return path.read_text().split() if path.exists() else []


def test_timeseries_occurrences_run_in_order_with_their_scheduled_times(env: Env) -> None:
    runs = env.wait_runs("daily", 3)
    assert len(runs) == 3 and {r["state"] for r in runs} == {"success"}
    assert sorted(r["logical_date"][:10] for r in runs) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert sorted(marks(env, "daily-extract")) == ["2024-01-01..02", "2024-01-02..03", "2024-01-03..04"]
    assert sorted(marks(env, "daily-load")) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    graph = env.json("flows", "show", "daily")
    assert {n["task_id"]: n.get("queue") for n in graph["nodes"]} == {"Extract": "wg-local", "Load": "wg-local"}
    assert graph["meta"]["style"] == "aws-datapipeline"


def test_cron_style_instances_start_at_the_beginning_of_their_period(env: Env) -> None:
    runs = env.wait_runs("hourly", 3)
    assert len(runs) == 3
    assert sorted(marks(env, "hourly")) == [
        "2024-03-01T00:00:00/2024-03-01T06:00:00",
        "2024-03-01T06:00:00/2024-03-01T12:00:00",
        "2024-03-01T12:00:00/2024-03-01T18:00:00",
    ]


def test_parameters_retries_and_attempt_timeout(env: Env) -> None:
    run = env.json("trigger", "ondemand", "--param", "myTag=given", "--wait", "--timeout", "90", codes=(1,))
    assert run["params"] == {"myTag": "given", "myRetries": 1}
    tasks = env.json("runs", "show", "ondemand", run["run_id"])["tasks"]
    assert tasks["Flaky"] == {"state": "success", "try_number": 2}
    assert tasks["Slow"]["state"] == "failed"
    assert (env.marks / "flaky-given").exists()
    log = env.cli("tasks", "logs", "ondemand", run["run_id"], "Slow")
    assert "timed out" in log.output or "timeout" in log.output.lower(), log.output
