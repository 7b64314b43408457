"""AWS Data Pipeline definitions in the flows folder, run by the real scheduler on SQLite and
PostgreSQL: schedule occurrences (timeseries and cron style), retries, attempt timeouts,
parameters, worker groups, preconditions that wait then pass or give up, S3 data nodes with
staging on a local fsspec store, copies into a Redshift stand-in (PostgreSQL, or SQLite),
SqlActivity, SnsAlarm to a real SMTP server and a webhook, lateness actions (SnsAlarm and
Terminate) and CASCADE re-runs."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
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


def _alarm(ident: str, topic: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "SnsAlarm",
        "topicArn": f"arn:aws:sns:us-east-1:123456789012:{topic}",
        "subject": "#{node.name}: #{node.@status}",
        "message": "#{node.@id} is #{node.@status} (#{node.errorMessage}) for #{format(node.@scheduledStartTime, 'YYYY-MM-dd')}",
    }


PIPELINES.update(
    {
        # An S3 data node that waits for a flag, staged into a shell command, staged out again.
        "staged.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "ondemand"},
                {
                    "id": "Ready",
                    "type": "S3KeyExists",
                    "s3Key": "s3://landing/#{myDay}/_SUCCESS",
                    "retryDelay": "1 seconds",
                    "preconditionTimeout": "2 minutes",
                },
                {
                    "id": "Landing",
                    "type": "S3DataNode",
                    "directoryPath": "s3://landing/#{myDay}",
                    "precondition": {"ref": "Ready"},
                },
                {
                    "id": "Upper",
                    "type": "ShellCommandActivity",
                    "stage": "true",
                    "input": {"ref": "Landing"},
                    "output": {"ref": "Shouted"},
                    "command": "cat ${INPUT1_STAGING_DIR}/*.txt | tr a-z A-Z > ${OUTPUT1_STAGING_DIR}/shouted.txt",
                },
                {"id": "Shouted", "type": "S3DataNode", "directoryPath": "s3://processed/#{myDay}"},
            ],
            "parameters": [{"id": "myDay", "type": "String"}],
        },
        # A precondition that never holds: three checks a second apart, then the activity is cancelled.
        "gives_up.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "ondemand"},
                {
                    "id": "Never",
                    "type": "ShellCommandPrecondition",
                    "command": "test -e /nonexistent/flag",
                    "maximumRetries": "2",
                    "retryDelay": "1 seconds",
                },
                {
                    "id": "Work",
                    "type": "ShellCommandActivity",
                    "command": "echo never runs",
                    "precondition": {"ref": "Never"},
                },
            ]
        },
        # Failure alarms by e-mail and webhook, cascading to a consumer, then a re-run.
        "alarms.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "ondemand"},
                {
                    "id": "Extract",
                    "name": "extract orders",
                    "type": "ShellCommandActivity",
                    "command": 'test -e "$DUCTWORK_TEST_MARKS/alarms-ok" || { echo "no input" >&2; exit 4; }',
                    "onFail": {"ref": "MailOps"},
                },
                {
                    "id": "Load",
                    "type": "ShellCommandActivity",
                    "command": "echo loaded",
                    "dependsOn": {"ref": "Extract"},
                    "onFail": {"ref": "HookOps"},
                    "onSuccess": {"ref": "HookOps"},
                },
                _alarm("MailOps", "ops-mail"),
                _alarm("HookOps", "ops-hook"),
            ]
        },
        # Late: the run's scheduled start is long past, so the watcher fires at once.
        "late.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "timeseries", "schedule": {"ref": "Once"}},
                {
                    "id": "Once",
                    "type": "Schedule",
                    "period": "1 days",
                    "startDateTime": "2024-05-01T00:00:00",
                    "occurrences": "1",
                },
                {
                    "id": "Slow",
                    "type": "ShellCommandActivity",
                    "command": "sleep 60",
                    "lateAfterTimeout": "1 hours",
                    "onLateAction": [{"ref": "HookLate"}, {"ref": "StopIt"}],
                },
                {**_alarm("HookLate", "ops-hook"), "subject": "late: #{node.@id}"},
                {"id": "StopIt", "type": "Terminate"},
            ]
        },
        # Not late: started at first activation, an hour to finish.
        "in_time.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "cron", "schedule": {"ref": "FromNow"}},
                {"id": "FromNow", "type": "Schedule", "period": "1 days", "startAt": "FIRST_ACTIVATION_DATE_TIME"},
                {
                    "id": "Quick",
                    "type": "ShellCommandActivity",
                    "command": "echo quick",
                    "lateAfterTimeout": "1 hours",
                    "onLateAction": {"ref": "HookLate"},
                },
                {**_alarm("HookLate", "ops-hook"), "subject": "late: #{node.@id}"},
            ]
        },
        # S3 -> Redshift (stand-in) with KEEP_EXISTING, a SqlActivity, and a table -> S3 report.
        "warehouse.json": {
            "objects": [
                {**DEFAULT, "scheduleType": "ondemand"},
                {
                    "id": "Csv",
                    "type": "CSV",
                    "column": [
                        "requestBeginTime CHAR(30)",
                        "requestEndTime CHAR(30)",
                        "hostname CHAR(100)",
                        "requestDate varchar(20)",
                    ],
                },
                {
                    "id": "Warehouse",
                    "type": "RedshiftDatabase",
                    "clusterId": "warehouse-cluster",
                    "databaseName": "dbname",
                    "username": "user",
                    "*password": "password",
                },
                {"id": "Logs", "type": "S3DataNode", "filePath": "s3://samples/logs.csv", "dataFormat": {"ref": "Csv"}},
                {
                    "id": "Structured",
                    "type": "RedshiftDataNode",
                    "database": {"ref": "Warehouse"},
                    "tableName": "StructuredLogs",
                    "createTableSql": "create table StructuredLogs (requestBeginTime CHAR(30) PRIMARY KEY DISTKEY SORTKEY, requestEndTime CHAR(30), hostname CHAR(100), requestDate varchar(20));",
                },
                {
                    "id": "Load",
                    "type": "RedshiftCopyActivity",
                    "insertMode": "KEEP_EXISTING",
                    "input": {"ref": "Logs"},
                    "output": {"ref": "Structured"},
                },
                {
                    "id": "Count",
                    "type": "SqlActivity",
                    "database": {"ref": "Warehouse"},
                    "dependsOn": {"ref": "Load"},
                    "script": "create table if not exists counts (tag varchar(20), n integer); "
                    "insert into counts select ?, count(*) from StructuredLogs",
                    "scriptArgument": "#{myTag}",
                },
                {
                    "id": "Counts",
                    "type": "SqlDataNode",
                    "database": {"ref": "Warehouse"},
                    "table": "counts",
                    "selectQuery": "select tag, n from counts where tag = '#{myTag}'",
                },
                {
                    "id": "Report",
                    "type": "CopyActivity",
                    "dependsOn": {"ref": "Count"},
                    "input": {"ref": "Counts"},
                    "output": {"ref": "ReportFile"},
                },
                {"id": "ReportFile", "type": "S3DataNode", "filePath": "s3://reports/#{myTag}.csv"},
            ],
            "parameters": [{"id": "myTag", "type": "String", "default": "first"}],
        },
    }
)

YAML_PIPELINES = {
    "yaml_flow.yaml": """\
flow: yaml_flow
params:
  who: {type: str, default: world}
defaults: {retries: 1, retry_delay: 1s}
tasks:
  greet:
    operator: BashOperator
    bash_command: echo "hello {{ params.who }}" >> "$DUCTWORK_TEST_MARKS/yaml"
  after:
    operator: BashOperator
    bash_command: echo after >> "$DUCTWORK_TEST_MARKS/yaml"
    depends_on: greet
""",
}

LOGS_CSV = """2024-01-01T00:00:01,2024-01-01T00:00:02,alpha.example.com,2024-01-01
2024-01-01T00:00:03,2024-01-01T00:00:04,beta.example.com,2024-01-01
2024-01-01T00:00:05,2024-01-01T00:00:06,alpha.example.com,2024-01-01
"""


@dataclass
class Mailbox:
    messages: list[tuple[list[str], Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _smtp(stack: ExitStack) -> tuple[Mailbox, int]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    stack.callback(controller.stop)
    return box, port


def _webhook(stack: ExitStack) -> tuple[list[dict[str, Any]], int]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    stack.callback(stop)
    return received, int(httpd.server_address[1])


class Env:
    mailbox: Mailbox
    hooks: list[dict[str, Any]]
    warehouse: str

    def __init__(self, tmp: Path, url: str) -> None:
        self.flows = tmp / "flows"
        self.marks = tmp / "marks"
        self.s3 = tmp / "s3"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_DATABASE_URL": url,
            "DUCTWORK_TEST_MARKS": str(self.marks),
            "DUCTWORK_S3_ROOT": f"file://{self.s3}",
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

    def wait_run(self, flow_id: str, run_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.json("runs", "show", flow_id, run_id)
            if run["state"] in ("success", "failed"):
                return dict(run)
            assert time.monotonic() < deadline, run
            time.sleep(0.3)

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
    with ExitStack() as stack:
        url = stack.enter_context(temporary_database(request.param, tmp))
        e = Env(tmp, url)
        (tmp / "warehouse" / "db").mkdir(parents=True)
        e.warehouse = stack.enter_context(temporary_database(request.param, tmp / "warehouse"))
        e.mailbox, smtp_port = _smtp(stack)
        e.hooks, hook_port = _webhook(stack)
        e.vars["DUCTWORK_CONN_OPS_MAIL"] = f"smtp://127.0.0.1:{smtp_port}?to=oncall@example.com"
        e.vars["DUCTWORK_CONN_OPS_HOOK"] = f"http://127.0.0.1:{hook_port}/sns"
        e.vars["DUCTWORK_CONN_WAREHOUSE_CLUSTER"] = e.warehouse
        e.flows.mkdir()
        e.marks.mkdir()
        (e.s3 / "samples").mkdir(parents=True)
        (e.s3 / "samples" / "logs.csv").write_text(LOGS_CSV)
        for name, data in PIPELINES.items():
            (e.flows / name).write_text(json.dumps(data, indent=2))
        for name, text in YAML_PIPELINES.items():
            (e.flows / name).write_text(text)
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
                    expected = {n.split(".")[0] for n in [*PIPELINES, *YAML_PIPELINES]}
                    if expected <= {f.flow_id for f in flow_repo.list_flows(conn)}:
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
    runs = env.wait_runs("hourly", 2)
    assert len(runs) == 2  # endDateTime 12:00 ends the schedule: no instance starts there
    assert sorted(marks(env, "hourly")) == [
        "2024-03-01T00:00:00/2024-03-01T06:00:00",
        "2024-03-01T06:00:00/2024-03-01T12:00:00",
    ]


def _scheduled_starts(definition: dict[str, Any]) -> list[str]:
    """The ``@scheduledStartTime`` of every instance the scheduler would create, walking the
    compiled flow's schedule as the scheduler does (catching up to a far future)."""
    from ductwork.declarative.datapipeline import load_definition

    compiled = load_definition(json.dumps(definition), source="p.json", flow_id="p")
    flow = compiled.flow
    starts: list[str] = []
    last = None
    while len(starts) < 50:
        last = flow.schedule.next_interval(
            last,
            start_date=flow.start_date,
            end_date=flow.end_date,
            catchup=True,
            now=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
        )
        if last is None:
            return starts
        start, _end = compiled.info.scheduled_times(last.start, last.end)
        starts.append(start.strftime("%Y-%m-%dT%H:%M"))
    return starts


def test_a_start_given_as_a_bare_makedate_call_as_in_the_guides_expression_evaluation() -> None:
    """The guide: "startDateTime": "makeDate(2011,5,24)" sets the start (no #{...} around it)."""
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": "timeseries", "schedule": {"ref": "S"}},
            {
                "id": "S",
                "type": "Schedule",
                "period": "1 days",
                "startDateTime": "makeDate(2011,5,24)",
                "endDateTime": "makeDateTime(2011,5,26,0,0)",
            },
            {"id": "Tick", "type": "ShellCommandActivity", "command": "true"},
        ]
    }
    assert _scheduled_starts(definition) == ["2011-05-24T00:00", "2011-05-25T00:00"]


@pytest.mark.parametrize("style", ["timeseries", "cron"])
@pytest.mark.parametrize(
    ("period", "start", "end", "expected"),
    [
        ("1 days", "2024-01-01T00:00:00", "2024-01-03T00:00:00", ["2024-01-01T00:00", "2024-01-02T00:00"]),
        (
            "6 hours",
            "2024-03-01T00:00:00",
            "2024-03-01T13:00:00",
            ["2024-03-01T00:00", "2024-03-01T06:00", "2024-03-01T12:00"],
        ),
        ("1 months", "2024-01-15T00:00:00", "2024-03-15T00:00:00", ["2024-01-15T00:00", "2024-02-15T00:00"]),
    ],
)
def test_end_date_time_ends_the_schedule_before_an_instance_that_would_start_there(
    style: str, period: str, start: str, end: str, expected: list[str]
) -> None:
    """AWS: hourly from 2012-09-01T00:00 to 2012-10-01T00:00 is the periods in between; the
    endDateTime is not the start of one more instance."""
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": style, "schedule": {"ref": "S"}},
            {"id": "S", "type": "Schedule", "period": period, "startDateTime": start, "endDateTime": end},
            {"id": "Tick", "type": "ShellCommandActivity", "command": "true"},
        ]
    }
    assert _scheduled_starts(definition) == expected


def test_parameters_retries_and_attempt_timeout(env: Env) -> None:
    run = env.json("trigger", "ondemand", "--param", "myTag=given", "--wait", "--timeout", "90", codes=(1,))
    assert run["params"] == {"myTag": "given", "myRetries": 1}
    tasks = env.json("runs", "show", "ondemand", run["run_id"])["tasks"]
    assert tasks["Flaky"] == {"state": "success", "try_number": 2}
    assert tasks["Slow"]["state"] == "failed"
    assert (env.marks / "flaky-given").exists()
    log = env.cli("tasks", "logs", "ondemand", run["run_id"], "Slow")
    assert "timed out" in log.output or "timeout" in log.output.lower(), log.output


def test_a_precondition_waits_then_passes_and_staging_moves_the_data(env: Env) -> None:
    run = env.json("trigger", "staged", "--param", "myDay=2024-06-01")
    deadline = time.monotonic() + 60
    while env.json("tasks", "state", "staged", run["run_id"])["Landing.Ready"]["state"] != "up_for_reschedule":
        assert time.monotonic() < deadline, "the precondition never looked and waited"
        time.sleep(0.2)
    assert env.json("tasks", "state", "staged", run["run_id"])["Upper"]["state"] == "none"
    landing = env.s3 / "landing" / "2024-06-01"
    landing.mkdir(parents=True)
    (landing / "a.txt").write_text("hello\n")
    (landing / "b.txt").write_text("world\n")
    (landing / "_SUCCESS").write_text("")
    done = env.wait_run("staged", run["run_id"])
    assert done["state"] == "success", done
    assert (env.s3 / "processed" / "2024-06-01" / "shouted.txt").read_text() == "HELLO\nWORLD\n"
    tasks = env.json("runs", "show", "staged", run["run_id"])["tasks"]
    assert set(tasks) == {"Landing.Ready", "Landing", "Upper", "Shouted"}
    log = env.cli("tasks", "logs", "staged", run["run_id"], "Landing.Ready")
    assert "not there yet" in log.output


def test_a_precondition_that_never_holds_gives_up_after_its_retries(env: Env) -> None:
    run = env.json("trigger", "gives_up", "--wait", "--timeout", "90", codes=(1,))
    tasks = env.json("runs", "show", "gives_up", run["run_id"])["tasks"]
    assert tasks["Work.Never"]["state"] == "failed"
    assert tasks["Work"]["state"] == "upstream_failed"
    log = env.cli("tasks", "logs", "gives_up", run["run_id"], "Work.Never")
    assert "was not met after 3 check(s)" in log.output


def test_alarms_by_mail_and_webhook_cascade_and_a_rerun_runs_the_consumers(env: Env) -> None:
    before_mail, before_hooks = len(env.mailbox.messages), len(env.hooks)
    run = env.json("trigger", "alarms", "--wait", "--timeout", "90", codes=(1,))
    tasks = env.json("runs", "show", "alarms", run["run_id"])["tasks"]
    assert tasks["Extract"]["state"] == "failed" and tasks["Load"]["state"] == "upstream_failed"
    assert tasks["Extract.onFail.MailOps"]["state"] == "success"
    assert tasks["Load.onFail.HookOps"]["state"] == "success"  # CASCADE: the consumer's onFail fires
    mails = env.mailbox.messages[before_mail:]
    assert len(mails) == 1
    rcpt, message = mails[0]
    assert rcpt == ["oncall@example.com"] and message["Subject"] == "extract orders: FAILED"
    assert "Extract is FAILED (the command exited with code 4)" in message.get_body(("plain",)).get_content()
    hooks = env.hooks[before_hooks:]
    assert [(h["Subject"], h["TopicArn"]) for h in hooks] == [
        ("Load: CASCADE_FAILED", "arn:aws:sns:us-east-1:123456789012:ops-hook")
    ]
    assert hooks[0]["Type"] == "Notification" and hooks[0]["path"] == "/sns"
    # Re-run the failed object alone: its cascade-failed consumer and that one's onSuccess run too.
    (env.marks / "alarms-ok").write_text("")
    cleared = env.json("tasks", "clear", "alarms", run["run_id"], "Extract")
    assert cleared["cleared"] == ["Extract", "Load", "Load.onSuccess.HookOps"]
    done = env.wait_run("alarms", run["run_id"])
    assert done["state"] == "success"
    assert env.hooks[-1]["Subject"] == "Load: FINISHED"


def test_a_late_object_is_reported_and_terminated(env: Env) -> None:
    runs = env.wait_runs("late", 1)
    assert runs[0]["state"] == "failed"
    tasks = env.json("runs", "show", "late", runs[0]["run_id"])["tasks"]
    assert tasks["Slow"]["state"] == "failed" and tasks["Slow.onLateAction"]["state"] == "success"
    assert any(h["Subject"] == "late: Slow" and "RUNNING" in h["Message"] for h in env.hooks)
    log = env.cli("tasks", "logs", "late", runs[0]["run_id"], "Slow")
    assert "terminated by its onLateAction" in log.output


def test_an_object_that_finishes_in_time_fires_no_late_action(env: Env) -> None:
    runs = env.wait_runs("in_time", 1)
    tasks = env.json("runs", "show", "in_time", runs[0]["run_id"])["tasks"]
    assert tasks == {
        "Quick": {"state": "success", "try_number": 1},
        "Quick.onLateAction": {"state": "skipped", "try_number": 1},
    }
    assert not any(h["Subject"] == "late: Quick" for h in env.hooks)


def test_copy_to_a_redshift_stand_in_sql_activity_and_a_report(env: Env) -> None:
    first = env.json("trigger", "warehouse", "--wait", "--timeout", "90")
    assert first["state"] == "success"
    second = env.json("trigger", "warehouse", "--param", "myTag=second", "--wait", "--timeout", "90")
    assert second["state"] == "success"
    engine = sa.create_engine(env.warehouse)
    try:
        with engine.connect() as conn:
            hosts = conn.execute(sa.text("select hostname from structuredlogs order by requestbegintime")).scalars()
            assert [h.strip() for h in hosts] == ["alpha.example.com", "beta.example.com", "alpha.example.com"]
            counts = conn.execute(sa.text("select tag, n from counts order by tag")).all()
            assert [tuple(c) for c in counts] == [("first", 3), ("second", 3)]  # KEEP_EXISTING: no duplicates
    finally:
        engine.dispose()
    assert (env.s3 / "reports" / "second.csv").read_text() == "second,3\n"


def test_a_yaml_pipeline_runs_on_the_scheduler(env: Env) -> None:
    run = env.json("trigger", "yaml_flow", "--param", "who=scheduler", "--wait", "--timeout", "90")
    assert run["state"] == "success"
    assert marks(env, "yaml")[-3:] == ["hello", "scheduler", "after"]
    assert env.json("flows", "show", "yaml_flow")["meta"]["style"] == "yaml"


def _write(env: Env, name: str, data: dict[str, Any]) -> Path:
    path = env.marks.parent / "to_put" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def _summary(env: Env, name: str) -> dict[str, Any]:
    return next(p for p in env.json("pipelines", "list")["pipelines"] if p["name"] == name)


def _wait_state(env: Env, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        summary = _summary(env, name)
        if summary["schedule_state"] == state:
            return summary
        assert time.monotonic() < deadline, summary
        time.sleep(0.3)


def test_put_activate_describe_deactivate_a_stored_pipeline(env: Env) -> None:
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": "ondemand"},
            {
                "id": "Hello",
                "type": "ShellCommandActivity",
                "command": MARK,
                "scriptArgument": ["v#{myVersion}", "stored"],
                "maximumRetries": "1",
                "retryDelay": "1 seconds",
            },
        ],
        "parameters": [{"id": "myVersion", "type": "Integer", "default": "1"}],
    }
    bad = _write(env, "stored.json", {**definition, "objects": [*definition["objects"], {"id": "X", "type": "Nope"}]})
    refused = env.cli("pipelines", "put", str(bad))
    assert refused.exit_code == 2 and "object 'X', field 'type': unknown type 'Nope'" in refused.output
    assert "nothing was stored or activated" in refused.output
    assert "stored" not in [p["name"] for p in env.json("pipelines", "list")["pipelines"]]

    good = _write(env, "stored.json", definition)
    put = env.json("pipelines", "put", str(good))
    assert put == {
        "name": "stored",
        "version": 1,
        "format": "aws-datapipeline",
        "created": True,
        "tasks": ["Hello"],
        "active_version": None,
    }
    assert _summary(env, "stored")["schedule_state"] == "PENDING"
    assert env.json("pipelines", "put", str(good))["created"] is False  # same text: no new version

    assert "version 1 activated" in env.cli("pipelines", "activate", "stored").output
    finished = _wait_state(env, "stored", "FINISHED")
    assert finished["health"] == "HEALTHY" and finished["source"] == "stored"
    assert marks(env, "stored") == ["v1"]

    definition["parameters"][0]["default"] = "2"  # type: ignore[index]
    assert env.json("pipelines", "put", str(_write(env, "stored.json", definition)))["version"] == 2
    env.cli("pipelines", "activate", "stored")
    _wait_state(env, "stored", "FINISHED")
    deadline = time.monotonic() + 30
    while marks(env, "stored") != ["v1", "v2"]:
        assert time.monotonic() < deadline, marks(env, "stored")
        time.sleep(0.3)

    described = env.json("pipelines", "describe", "stored")
    assert [v["version"] for v in described["versions"]] == [1, 2] and described["versions"][1]["active"]
    hello = next(o for o in described["objects"] if o["id"] == "Hello")
    assert hello["type"] == "ShellCommandActivity"
    assert [(i["status"], i["attempts"]) for i in hello["instances"]] == [("FINISHED", 1), ("FINISHED", 1)]
    runs = env.json("pipelines", "list-runs", "stored")["runs"]
    assert len(runs) == 2 and {r["state"] for r in runs} == {"success"}

    assert "deactivated" in env.cli("pipelines", "deactivate", "stored").output
    assert _summary(env, "stored")["schedule_state"] == "INACTIVE"
    missing = env.cli("pipelines", "activate", "stord")
    assert missing.exit_code == 2 and "Did you mean 'stored'" in missing.output


def test_put_takes_parameter_objects_and_values_as_aws_put_pipeline_definition_does(env: Env) -> None:
    """The guide's parametrized template: the definition, its parameter objects and their values
    in three files (aws datapipeline put-pipeline-definition --parameter-objects
    --parameter-values-uri --parameter-values). `pipelines put` had no way to give them."""
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": "ondemand"},
            {"id": "Say", "type": "ShellCommandActivity", "command": "#{myShellCmd}", "scriptArgument": "#{myWords}"},
        ]
    }
    path = _write(env, "templated.json", definition)
    parameters = _write(
        env,
        "templated.parameters.json",
        {
            "parameters": [
                {
                    "id": "myShellCmd",
                    "type": "String",
                    "default": 'for w in "$@"; do echo "$w" >> "$DUCTWORK_TEST_MARKS/$w"; done',
                },
                {"id": "myWords", "type": "String", "isArray": "true"},
            ]
        },
    )
    values = _write(env, "templated.values.json", {"values": {"myWords": ["from-file"]}})
    missing = env.cli("pipelines", "put", str(path))
    assert missing.exit_code == 2 and "'myShellCmd' is not a field of 'Say' nor a parameter" in missing.output
    validated = env.json("pipelines", "validate", str(path), codes=(1,))
    line = validated["problems"][0]["line"]
    assert f"line {line}: object 'Say'" in missing.output  # the file's own line, not the stored text's
    put = env.cli("pipelines", "put", str(path), "--parameters", str(parameters), "--values", str(values))
    assert put.exit_code == 0, put.output
    env.cli("pipelines", "activate", "templated")
    _wait_state(env, "templated", "FINISHED")
    assert marks(env, "templated") == []  # the words are the marks' names: one file per word
    assert marks(env, "from-file") == ["from-file"]
    args = ("--parameters", str(parameters), "--param", "myWords=one", "--param", "myWords=two")
    assert env.cli("pipelines", "put", str(path), *args).exit_code == 0
    env.cli("pipelines", "activate", "templated")
    deadline = time.monotonic() + 60
    while not (marks(env, "one") and marks(env, "two")):
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_first_activation_starts_a_schedule_with_its_occurrences(env: Env) -> None:
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": "cron", "schedule": {"ref": "Every"}},
            {
                "id": "Every",
                "type": "Schedule",
                "period": "1 hours",
                "startAt": "FIRST_ACTIVATION_DATE_TIME",
                "occurrences": "1",
            },
            {
                "id": "Tick",
                "type": "ShellCommandActivity",
                "command": MARK,
                "scriptArgument": ["#{@scheduledStartTime}", "first-activation"],
            },
        ]
    }
    unactivated = env.cli("run", str(_write(env, "hourly_from_activation.json", definition)))
    assert unactivated.exit_code != 0 and "needs the pipeline to be activated" in unactivated.output
    env.json("pipelines", "put", str(_write(env, "hourly_from_activation.json", definition)))
    before = time.time()
    env.cli("pipelines", "activate", "hourly_from_activation")
    runs = env.wait_runs("hourly_from_activation", 1)
    assert runs[0]["state"] == "success"
    started = marks(env, "first-activation")
    assert len(started) == 1 and abs(dt.datetime.fromisoformat(started[0] + "+00:00").timestamp() - before) < 120
    _wait_state(env, "hourly_from_activation", "FINISHED")


def test_activating_a_schedule_that_starts_long_ago_needs_allow_backfill(env: Env) -> None:
    definition = {
        "objects": [
            {**DEFAULT, "scheduleType": "timeseries", "schedule": {"ref": "Old"}},
            {
                "id": "Old",
                "type": "Schedule",
                "period": "1 days",
                "startDateTime": "2020-01-01T00:00:00",
                "endDateTime": "2020-01-02T00:00:00",
            },
            {"id": "Tick", "type": "ShellCommandActivity", "command": MARK, "scriptArgument": ["x", "old"]},
        ]
    }
    env.json("pipelines", "put", str(_write(env, "old_schedule.json", definition)))
    refused = env.cli("pipelines", "activate", "old_schedule")
    assert refused.exit_code == 2 and "more than a day ago" in refused.output and "--allow-backfill" in refused.output
    assert _summary(env, "old_schedule")["schedule_state"] == "PENDING"
    assert env.cli("pipelines", "activate", "old_schedule", "--allow-backfill").exit_code == 0
    runs = env.wait_runs("old_schedule", 1)
    assert [r["logical_date"][:10] for r in runs] == ["2020-01-01"]  # the end is not one more day


def test_the_guides_getting_started_shell_template_runs_unchanged(env: Env) -> None:
    """AWS's "Getting Started using ShellCommandActivity" template (the guide's parametrized
    example, with its Ec2Resource and its S3 sample location), put and activated as it is."""
    root = Path(__file__).resolve().parents[2] / "examples" / "_declarative" / "aws_guide"
    logs = env.s3 / "us-east-1.elasticmapreduce.samples" / "pig-apache-logs" / "data"
    logs.mkdir(parents=True)
    (logs / "access_log_1").write_text('1.1.1.1 "GET /a" 200\n2.2.2.2 "POST /b" 201\n3.3.3.3 "GET /c" 404\n')
    (logs / "access_log_2").write_text('4.4.4.4 "GET /d" 200\n')
    put = env.json("pipelines", "put", str(root / "getting_started_shell.json"))
    assert put["tasks"] == ["S3InputLocation", "ShellCommandActivityObj", "S3OutputLocation"]
    env.cli("pipelines", "activate", "getting_started_shell")
    runs = env.wait_runs("getting_started_shell", 1)
    assert runs[0]["state"] == "success"
    outputs = list((env.s3 / "my-output-bucket" / "getting-started").glob("*/output.txt"))
    assert len(outputs) == 1
    counts = sorted(line.rsplit(":", 1)[1] for line in outputs[0].read_text().split())
    assert counts == ["1", "2"]


def test_a_broken_definition_in_the_flows_folder_is_an_import_error_with_object_and_field(env: Env) -> None:
    from ductwork.store.repo import import_errors as error_repo

    broken = {
        "objects": [
            {**DEFAULT, "scheduleType": "ondemand"},
            {"id": "Bad", "type": "ShellCommandActivity", "command": "echo #{format(@scheduledStartTime)}"},
        ]
    }
    path = env.flows / "broken_pipeline.json"
    path.write_text(json.dumps(broken, indent=2))
    engine = create_engine(env.url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(engine) as conn:
                errors = error_repo.list_import_errors(conn, str(path.resolve()))
            if errors:
                break
            assert time.monotonic() < deadline, "the scheduler never reported the broken file"
            time.sleep(0.3)
    finally:
        engine.dispose()
        path.unlink()
    assert errors[0].line == 12  # the line of the object's id
    assert errors[0].error.endswith("object 'Bad', field 'command', position 8: format() takes 2 arguments, got 1")
