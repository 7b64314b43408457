"""``ductwork runs delete``, ``ductwork db clean`` and the dry runs of every mutation, through
the real command group on runs recorded by ``ductwork run``."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli

FLOW = """
    from ductwork import Flow, PythonOperator

    with Flow("ops", schedule=None) as ops:
        a = PythonOperator(task_id="a", python_callable=lambda: {"rows": 3}, pool="narrow")
        b = PythonOperator(task_id="b", python_callable=lambda ti: ti.xcom_pull("a")["rows"] * 2)
        a >> b
"""


def _json(cli: Cli, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _three_runs(cli: Cli, tmp_path: Path) -> list[str]:
    (tmp_path / "ops.py").write_text(textwrap.dedent(FLOW))
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        ran = cli("run", "ops.py", "--date", day, "--no-progress")
        assert ran.exit_code == 0, ran.output
    return [r["run_id"] for r in _json(cli, "runs", "list", "ops")["runs"]]


def test_runs_delete_and_db_clean_with_dry_runs(cli: Cli, tmp_path: Path) -> None:
    newest, middle, oldest = _three_runs(cli, tmp_path)
    logs = tmp_path / "ductwork-home" / "logs" / "ops"
    assert len(list(logs.iterdir())) == 3

    preview = _json(cli, "runs", "delete", "ops", oldest, "--dry-run")
    assert (preview["dry_run"], preview["runs"], preview["task_instances"], preview["tries"]) == (True, 1, 2, 2)
    # Its two short tries' logs share the run folder's one file (ADR 0018): one file to delete.
    assert preview["results"] == 2 and preview["log_files"] == 1
    assert _json(cli, "runs", "list", "ops")["total"] == 3

    refused = cli("runs", "delete", "ops", newest)
    assert refused.exit_code == 2 and "latest run of flow 'ops'" in refused.output
    typo = cli("runs", "delete", "ops", oldest + "x")
    assert typo.exit_code == 2 and "has no run" in typo.output

    deleted = cli("runs", "delete", "ops", oldest)
    assert deleted.exit_code == 0 and "deleted 1 run(s): 2 task instance(s), 2 tr(ies), 2 result(s)" in deleted.output
    assert [r["run_id"] for r in _json(cli, "runs", "list", "ops")["runs"]] == [newest, middle]
    assert len(list(logs.iterdir())) == 2

    bad = cli("db", "clean", "--older-than", "30")
    assert bad.exit_code == 2 and "expected an age with a unit" in bad.output
    assert _json(cli, "db", "clean", "--older-than", "30d")["runs"] == 0
    time.sleep(1.1)
    dry = _json(cli, "db", "clean", "--older-than", "1s", "--dry-run")
    assert (dry["dry_run"], dry["runs"], [r["run_id"] for r in dry["sample"]]) == (True, 1, [middle])
    cleaned = cli("db", "clean", "--older-than", "1s", "--flow", "ops")
    assert cleaned.exit_code == 0 and "deleted 1 run(s)" in cleaned.output and middle in cleaned.output
    assert [r["run_id"] for r in _json(cli, "runs", "list", "ops")["runs"]] == [newest]
    assert [p.name for p in logs.iterdir()] == [newest.replace(":", "_").replace("+", "_")] or len(
        list(logs.iterdir())
    ) == 1
    unknown = cli("db", "clean", "--older-than", "1d", "--flow", "opz")
    assert unknown.exit_code == 2 and "no flow 'opz'" in unknown.output


def test_a_run_is_deleted_with_its_logs_written_under_another_log_dir(cli: Cli, tmp_path: Path) -> None:
    """The scheduler's ``log_dir`` (set in its service's environment, say) need not be the one of
    the shell that runs ``db clean`` or ``runs delete``: the run folders its tries recorded go
    too, the short tries' shared ``_tries.log`` with them, not only the files at the recorded
    paths (which short tries never create)."""
    (tmp_path / "ops.py").write_text(textwrap.dedent(FLOW))
    elsewhere = tmp_path / "service-logs"
    for day in ("2024-01-01", "2024-01-02"):
        ran = cli("run", "ops.py", "--date", day, "--no-progress", env={"DUCTWORK_LOG_DIR": str(elsewhere)})
        assert ran.exit_code == 0, ran.output
    oldest = _json(cli, "runs", "list", "ops")["runs"][-1]["run_id"]
    folders = list((elsewhere / "ops").iterdir())
    assert len(folders) == 2 and all((f / "_tries.log").is_file() for f in folders)

    assert _json(cli, "runs", "delete", "ops", oldest, "--dry-run")["log_files"] == 1
    deleted = _json(cli, "runs", "delete", "ops", oldest)
    assert deleted["log_files"] == 1
    assert len(list((elsewhere / "ops").iterdir())) == 1


def test_mark_cancel_and_pool_delete_have_dry_runs(cli: Cli, tmp_path: Path) -> None:
    newest, *_ = _three_runs(cli, tmp_path)
    dry = _json(cli, "tasks", "mark", "ops", newest, "a", "--state", "failed", "--downstream", "--dry-run")
    assert dry == {"dry_run": True, "state": "failed", "marked": ["a", "b"]}
    assert _json(cli, "tasks", "state", "ops", newest)["a"]["state"] == "success"
    assert _json(cli, "tasks", "mark", "ops", newest, "a", "--state", "success", "--dry-run")["marked"] == []
    done = _json(cli, "tasks", "mark", "ops", newest, "b", "--state", "failed")
    assert done == {"dry_run": False, "state": "failed", "marked": ["b"]}

    finished = cli("runs", "cancel", "ops", newest, "--dry-run")
    assert finished.exit_code == 2 and f"run ops {newest} already finished (success)" in finished.output
    queued = _json(cli, "trigger", "ops", "--run-id", "waiting")
    preview = cli("runs", "cancel", "ops", "waiting", "--dry-run")
    assert "2 unfinished task(s) would end (running ones failed, the others skipped): a, b" in preview.output
    assert _json(cli, "runs", "show", "ops", "waiting")["state"] == queued["state"] == "queued"
    refused = cli("runs", "delete", "ops", "waiting", "--dry-run")
    assert refused.exit_code == 2 and "is queued: only finished runs can be deleted" in refused.output

    assert cli("pools", "set", "narrow", "2").exit_code == 0
    preview = cli("pools", "delete", "narrow", "--dry-run")
    assert preview.exit_code == 0 and "would delete pool narrow (2 slots" in preview.output
    assert "narrow" in cli("pools", "list").output
    assert "cannot be deleted" in cli("pools", "delete", "default_pool", "--dry-run").output
    assert "no pool 'wide'" in cli("pools", "delete", "wide", "--dry-run").output
    assert cli("pools", "delete", "narrow").exit_code == 0
    assert "narrow" not in cli("pools", "list").output


def test_cancelling_a_finished_run_is_refused_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    newest, *_ = _three_runs(cli, tmp_path)
    before = _json(cli, "runs", "show", "ops", newest)
    assert before["state"] == "success"
    tasks = _json(cli, "tasks", "state", "ops", newest)

    for extra in ((), ("--dry-run",)):
        refused = cli("runs", "cancel", "ops", newest, *extra)
        assert refused.exit_code == 2, refused.output
        assert f"run ops {newest} already finished (success): there is nothing to cancel" in refused.output

    assert _json(cli, "runs", "show", "ops", newest) == before
    assert _json(cli, "tasks", "state", "ops", newest) == tasks
    assert _json(cli, "audit", "list")["entries"] == []

    _json(cli, "trigger", "ops", "--run-id", "waiting")
    cancelled = cli("runs", "cancel", "ops", "waiting")
    assert cancelled.exit_code == 0 and "run ops waiting: failed" in cancelled.output
    assert [(e["action"], e["target"]) for e in _json(cli, "audit", "list")["entries"]] == [
        ("run.cancel", "ops/waiting"),
        ("run.trigger", "ops"),
    ]
    again = cli("runs", "cancel", "ops", "waiting")
    assert again.exit_code == 2 and "run ops waiting already finished (failed)" in again.output


def test_changes_from_the_cli_are_audited_without_their_secrets(cli: Cli, tmp_path: Path) -> None:
    import getpass

    from ductwork.store.crypto import generate_key

    env = {"DUCTWORK_FERNET_KEY": generate_key()}
    newest, _middle, oldest = _three_runs(cli, tmp_path)
    assert cli("runs", "delete", "ops", oldest, "--dry-run").exit_code == 0
    assert cli("runs", "delete", "ops", oldest).exit_code == 0
    assert cli("runs", "delete", "ops", newest).exit_code == 2  # refused: not recorded
    assert cli("connections", "add", "db", "postgresql://u:pg-pass-123@h:5432/d", env=env).exit_code == 0
    assert cli("variables", "set", "service_token", "tok-value-456", env=env).exit_code == 0
    made = cli("users", "create", "dana", "--role", "viewer", "--generate")
    assert made.exit_code == 0, made.output
    password = made.output.split("password (shown once): ")[1].strip()
    assert cli("users", "role", "dana", "operator").exit_code == 0
    assert "operator" in cli("users", "list").output
    reset = cli("users", "password", "dana", "--generate")
    assert reset.exit_code == 0, reset.output
    new_password = reset.output.split("new password (shown once): ")[1].strip()

    audit = _json(cli, "audit", "list")
    # user.change, as the API and the UI record a new password or role (user.password and
    # user.role from the CLI alone: the Audit log page's user.change left them out)
    assert [(e["action"], e["target"]) for e in audit["entries"]] == [
        ("user.change", "dana"),
        ("user.change", "dana"),
        ("user.create", "dana"),
        ("variable.set", "service_token"),
        ("connection.set", "db"),
        ("run.delete", f"ops/{oldest}"),
    ]
    assert {(e["actor"], e["via"]) for e in audit["entries"]} == {(getpass.getuser(), "cli")}
    text = json.dumps(audit)
    for secret in ("pg-pass-123", "tok-value-456", password, new_password):
        assert secret not in text
    assert _json(cli, "audit", "list", "--action", "run.")["total"] == 1
    assert _json(cli, "audit", "list", "--action", "user.change")["total"] == 2
    assert _json(cli, "audit", "list", "--actor", "nobody")["entries"] == []


def test_an_action_family_is_found_with_or_without_its_dot(cli: Cli) -> None:
    """Every action is ``family.verb``: ``--action pool`` matched nothing (only ``pool.`` did),
    and an empty list read as "no pool was ever changed"."""
    assert cli("pools", "set", "narrow", "2").exit_code == 0
    assert cli("pools", "delete", "narrow").exit_code == 0
    assert cli("variables", "set", "region", "eu").exit_code == 0
    for family in ("pool", "pool.", " pool "):
        found = _json(cli, "audit", "list", "--action", family)
        assert [e["action"] for e in found["entries"]] == ["pool.delete", "pool.set"], family
    assert [e["action"] for e in _json(cli, "audit", "list", "--action", "pool.set")["entries"]] == ["pool.set"]
    assert _json(cli, "audit", "list", "--action", "poo")["entries"] == []  # a family, not any prefix


def test_audit_list_until_a_day_includes_that_day_as_the_page_does(cli: Cli) -> None:
    """``audit list`` had ``--since`` and no ``--until`` (the page and the API have both): what
    changed on one day could not be asked for. A day alone includes the whole day."""
    import datetime as dt

    assert cli("pools", "set", "narrow", "2").exit_code == 0
    (entry,) = _json(cli, "audit", "list")["entries"]
    day = dt.datetime.fromisoformat(entry["at"]).astimezone(dt.UTC).date()
    before, after = (day - dt.timedelta(days=1)).isoformat(), (day + dt.timedelta(days=1)).isoformat()
    assert _json(cli, "audit", "list", "--since", day.isoformat(), "--until", day.isoformat())["total"] == 1
    assert _json(cli, "audit", "list", "--until", before)["total"] == 0
    assert _json(cli, "audit", "list", "--until", entry["at"])["total"] == 0  # a time: excluded
    assert _json(cli, "audit", "list", "--since", before, "--until", after)["total"] == 1
    backwards = cli("audit", "list", "--since", after, "--until", before)
    assert backwards.exit_code == 2 and "is not after --since" in backwards.output


def test_a_trigger_that_waits_is_audited_at_the_time_it_made_the_run(cli: Cli, tmp_path: Path) -> None:
    """The entry was written, and dated, when the command ended: ``trigger --wait`` of a run
    that took an hour was in the log an hour after the run was made, after changes made since.
    It is dated when the command was given. (No scheduler here: the wait times out, exit 3.)"""
    (tmp_path / "ops.py").write_text(textwrap.dedent(FLOW))
    waited = cli("trigger", "ops.py", "--run-id", "waited", "--wait", "--timeout", "1")
    assert waited.exit_code == 3, waited.output
    (entry,) = _json(cli, "audit", "list", "--action", "run.trigger")["entries"]
    run = _json(cli, "runs", "show", "ops", "waited")
    assert entry["details"]["exit_status"] == 3
    made = dt.datetime.fromisoformat(run["logical_date"])  # a manual run: the time it was made
    assert dt.datetime.fromisoformat(entry["at"]) <= made


def test_a_trigger_conf_given_as_json_text_is_audited_without_its_secrets(cli: Cli, tmp_path: Path) -> None:
    _three_runs(cli, tmp_path)
    conf = '{"password": "cli-pw-789", "region": "eu"}'
    assert cli("trigger", "ops", "--run-id", "with_conf", "--conf", conf).exit_code == 0
    (entry,) = _json(cli, "audit", "list", "--action", "run.trigger")["entries"]
    assert "cli-pw-789" not in json.dumps(entry)
    assert '"region": "eu"' in json.dumps(entry["details"], ensure_ascii=False).replace('\\"', '"')


def test_a_secret_run_parameter_given_as_name_value_is_audited_without_its_value(cli: Cli, tmp_path: Path) -> None:
    """``--param api_key=...`` reaches the audit entry as the text ``api_key=...``, not under a
    key of its own: the parameter's name must still hide its value, as a conf key's does."""
    (tmp_path / "keyed.py").write_text(
        textwrap.dedent(
            """
            from ductwork import EmptyOperator, Flow

            with Flow("keyed", schedule=None, params={"api_key": "", "db_password": "", "limit": 1}) as keyed:
                EmptyOperator(task_id="t")
            """
        )
    )
    given = ("--param", "api_key=param-key-123", "-p", "db_password=param-pw-456", "-p", "limit=7")
    assert cli("trigger", "keyed.py:keyed", "--run-id", "keyed_run", *given).exit_code == 0
    made = cli("backfill", "keyed.py:keyed", "--start", "2024-01-01", "--end", "2024-01-01", *given)
    assert made.exit_code == 0, made.output
    entries = _json(cli, "audit", "list")["entries"]
    assert [e["action"] for e in entries] == ["run.backfill", "run.trigger"]
    text = json.dumps(entries)
    assert "param-key-123" not in text and "param-pw-456" not in text
    for entry in entries:
        assert entry["details"]["param_values"] == ["api_key=***", "db_password=***", "limit=7"]


def test_config_shows_the_settings_files_pools_and_resources(cli: Cli, tmp_path: Path) -> None:
    """``[pools]`` and ``[resources]`` of ``ductwork.toml`` limit ``ductwork run`` and ``build``,
    and ``ductwork config`` (which says where each setting came from) did not list them."""
    (tmp_path / "ductwork.toml").write_text("[pools]\nwarehouse = 2\n\n[resources]\ngpu = 1\n")
    rows = _json(cli, "config")
    assert rows["[pools] warehouse"] == {"source": "config_file", "value": "2"}
    assert rows["[resources] gpu"] == {"source": "config_file", "value": "1"}
    shown = cli("config")
    assert shown.exit_code == 0 and "[pools] warehouse" in shown.output


def test_retention_settings_are_shown_and_checked(cli: Cli) -> None:
    rows = json.loads(cli("config", "--json", env={"DUCTWORK_RETENTION_DAYS": "30"}).output)
    assert rows["retention_days"] == {"source": "env", "value": "30"}
    assert rows["audit_retention_days"] == {"source": "default", "value": "365"}
    bad = cli("config", env={"DUCTWORK_RETENTION_DAYS": "-1"})
    assert bad.exit_code == 2 and "retention_days must be 0 (keep everything) or a number of days" in bad.output
    words = cli("config", env={"DUCTWORK_AUDIT_RETENTION_DAYS": "a year"})
    assert words.exit_code == 2 and "audit_retention_days must be an integer" in words.output


def test_every_mutating_command_is_audited() -> None:
    """A command renamed or moved would silently drop out of the audit log: each entry of the
    table must name a real command, and that command must be wrapped."""
    import click

    from ductwork.cli.audit_hook import MUTATIONS
    from ductwork.cli.main import cli as group

    ctx = click.Context(group)
    for path in MUTATIONS:
        command: click.Command | None = group
        for name in path:
            assert isinstance(command, click.Group), path
            command = command.get_command(ctx, name)
        assert command is not None and getattr(command.callback, "audited", False), path


def test_a_local_run_records_its_code(cli: Cli, tmp_path: Path) -> None:
    newest, middle, _oldest = _three_runs(cli, tmp_path)
    code = _json(cli, "runs", "show", "ops", newest)["code"]
    assert list(code["files"]) == ["ops.py"] and len(code["hash"]) == 16 and code["git"] is None
    assert _json(cli, "runs", "show", "ops", middle)["code"] == code
    same = _json(cli, "runs", "diff", "ops", middle, newest)
    assert same["same_graph"] and same["same_code"] and same["files_changed"] == []


def test_db_clean_takes_old_dead_letters_and_keeps_receipts_a_broker_may_still_redeliver(
    cli: Cli, tmp_path: Path
) -> None:
    import datetime as dt

    from ductwork.services import messages
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    _three_runs(cli, tmp_path)  # the database, with the flow registered
    engine = create_engine(Settings.load().db_url)
    now = dt.datetime.now(dt.UTC)
    try:
        for message_id, days_ago, payload in (("bad", 3, b"[]"), ("good", 3, b"{}"), ("older", 9, b"{}")):
            at = now - dt.timedelta(days=days_ago)
            messages.receive(engine, "ops", source="webhook", message_id=message_id, payload=payload, now=at)
        dry = _json(cli, "db", "clean", "--older-than", "1d", "--dry-run")
        assert (dry["dead_letters"], dry["message_receipts"]) == (1, 1)
        cleaned = cli("db", "clean", "--older-than", "1d")
        assert cleaned.exit_code == 0, cleaned.output
        assert "deleted 1 dead letter(s) and 1 message receipt(s) (receipts received before" in cleaned.output
        again = messages.receive(engine, "ops", source="webhook", message_id="good", payload=b"{}")
        assert again.status == "duplicate"  # its receipt is younger than any redelivery horizon
        assert messages.list_dead_letters(engine, "ops") == []
    finally:
        engine.dispose()


def test_db_clean_and_retention_forget_workers_long_silent(cli: Cli, tmp_path: Path) -> None:
    """Every worker started registers a row (its default name carries its pid; a pod's host name
    changes with the pod): those stopped or lost long ago go with the old runs, by ``db clean``
    and by the scheduler's retention, instead of listing a ``lost`` worker for ever."""
    import datetime as dt

    from ductwork.services import workers as worker_service
    from ductwork.services.retention import RetentionWorker
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.repo import remote as remote_repo

    _three_runs(cli, tmp_path)  # the database
    settings = Settings.load()
    engine = create_engine(settings.db_url)
    now = dt.datetime.now(dt.UTC)

    def register(name: str, days_ago: float) -> None:
        with transaction(engine) as conn:
            remote_repo.register_worker(
                conn, name, hostname="h", pid=1, kind="celery", queues=["default"], concurrency=1, version="t",
                now=now - dt.timedelta(days=days_ago),
            )  # fmt: skip

    def names() -> set[str]:
        return {w.name for w in worker_service.list_workers(engine, settings, include_stopped=True).workers}

    try:
        register("killed-long-ago@h", 3)
        register("stopped-long-ago@h", 3)
        with transaction(engine) as conn:
            remote_repo.stop_worker(conn, "stopped-long-ago@h", now=now - dt.timedelta(days=3))
        register("lost-yesterday@h", 0.5)
        register("alive@h", 0)
        dry = _json(cli, "db", "clean", "--older-than", "1d", "--dry-run")
        assert dry["workers"] == 2
        assert len(names()) == 4
        cleaned = cli("db", "clean", "--older-than", "1d")
        assert cleaned.exit_code == 0, cleaned.output
        assert "deleted 2 record(s) of workers stopped or lost before the cutoff" in cleaned.output
        assert names() == {"lost-yesterday@h", "alive@h"}

        register("killed-long-ago@h", 100)
        report = RetentionWorker(engine, settings).run_once()  # retention_days: 90 by default
        assert report is not None and report.workers == 1
        assert names() == {"lost-yesterday@h", "alive@h"}
    finally:
        engine.dispose()


def test_a_flow_id_that_names_no_flow_is_an_error_not_an_empty_list(cli: Cli, tmp_path: Path) -> None:
    # `runs list opz` exited 0 with "runs (0 in all)": a typo read as "this flow never ran".
    _three_runs(cli, tmp_path)
    for args in (("runs", "list", "opz"), ("runs", "list", "opz", "--json")):
        listed = cli(*args)
        assert listed.exit_code == 2, listed.output
        assert "no flow 'opz' in the database. Did you mean 'ops'?" in listed.output
    shown = cli("runs", "show", "opz", "manual__x")  # was "flow 'opz' has no run 'manual__x'"
    assert shown.exit_code == 2 and "no flow 'opz' in the database. Did you mean 'ops'?" in shown.output
    state = cli("tasks", "state", "opz", "manual__x")
    assert state.exit_code == 2 and "Did you mean 'ops'?" in state.output
    folder = tmp_path / "flows"  # a flow of the flows folder that never ran has no runs: not an error
    folder.mkdir()
    (folder / "later.py").write_text(textwrap.dedent(FLOW).replace('"ops"', '"later"'))
    assert _json(cli, "runs", "list", "later")["total"] == 0


def test_the_retention_pass_says_what_it_deleted_in_words(
    cli: Cli, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's log said `retention: deleted 2 runs, 2 tries, 2 log_files, 0
    offloaded_objects, 0 import_errors, 0 dead_letters, 0 message_receipts, 0 workers, 0
    code_bundles, 90 older_than_days`: field names, every zero, and the age as if it had been
    deleted too."""
    import datetime as dt
    import logging

    from ductwork.services.retention import RetentionWorker
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    _three_runs(cli, tmp_path)
    settings = Settings.load()
    engine = create_engine(settings.db_url)
    try:
        with caplog.at_level(logging.INFO, logger="ductwork"):
            report = RetentionWorker(engine, settings).run_once(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=200))
    finally:
        engine.dispose()
    assert report is not None and report.runs == 2
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retention: deleted")]
    assert said == [
        f"retention: deleted 2 runs, {report.tries} tries, {report.log_files} log files (older than 90 days)"
    ], said


@pytest.mark.parametrize(
    ("age", "reason"),
    [
        ("6m", "'m' could be minutes or months: write 6min for minutes"),
        ("1h30m", "write 30min for minutes"),
        ("6mo", "months and years have no fixed length"),
        ("1y", "months and years have no fixed length"),
        ("P6M", "months have no fixed length"),
        ("30x", "unknown unit 'x': use s, min, h, d or w"),
    ],
)
def test_db_clean_refuses_an_age_that_reads_two_ways(cli: Cli, tmp_path: Path, age: str, reason: str) -> None:
    """``--older-than 6m`` was six minutes: someone who meant six months (as cron users read it)
    deleted every finished run but the latest. An ambiguous or calendar unit is refused, the
    accepted ones named, and nothing is deleted."""
    newest, middle, oldest = _three_runs(cli, tmp_path)
    refused = cli("db", "clean", "--older-than", age)
    assert refused.exit_code == 2 and reason in refused.output, refused.output
    assert [r["run_id"] for r in _json(cli, "runs", "list", "ops")["runs"]] == [newest, middle, oldest]


def test_db_clean_takes_minutes_spelt_out_and_says_its_cutoff(cli: Cli, tmp_path: Path) -> None:
    """The report names the cut-off it worked out, so the age it read can be checked."""
    _three_runs(cli, tmp_path)
    for age in ("90min", "1d12h", "2weeks", "PT90M"):
        dry = _json(cli, "db", "clean", "--older-than", age, "--dry-run")
        assert dry["runs"] == 0 and dry["cutoff"]
    said = cli("db", "clean", "--older-than", "180d", "--dry-run")
    assert said.exit_code == 0 and "(finished runs that ended before 20" in said.output, said.output


TYPED = """
    from ductwork import Flow, IntParameter, PythonOperator

    with Flow("typed", schedule=None, params={"n": IntParameter(default=1)}) as typed:
        PythonOperator(task_id="a", python_callable=lambda params: params["n"])
"""


def test_dead_letters_are_listed_replayed_once_fixed_and_dropped_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    """Dead letters could only be read through the REST API: no way from the command line to
    see them, start the run a bad message could not once it is corrected, or clear them."""
    from ductwork.services import messages
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    (tmp_path / "typed.py").write_text(textwrap.dedent(TYPED))
    ran = cli("run", "typed.py", "--no-progress")
    assert ran.exit_code == 0, ran.output  # the flow is registered
    engine = create_engine(Settings.load().db_url)
    try:
        bad = messages.receive(engine, "typed", source="rabbitmq:orders", message_id="m-1", payload=b'{"n": "x"}')
        junk = messages.receive(engine, "typed", source="rabbitmq:orders", message_id="m-2", payload=b"not json")
        assert bad.dead_letter_id is not None and junk.dead_letter_id is not None
        markup = messages.receive(engine, "typed", source="mqtt:x", message_id="m-3", payload=b'{"n": "[/bold]"}')
        table = cli("triggers", "dead-letters", "list")  # a payload is text, not markup for the table
        assert table.exit_code == 0 and "[/bold]" in table.output, table.output
        assert cli("triggers", "dead-letters", "drop", str(markup.dead_letter_id)).exit_code == 0

        listed = _json(cli, "triggers", "dead-letters", "list", "typed")
        assert [d["message_id"] for d in listed] == ["m-2", "m-1"]
        assert "parameter 'n' wants int" in listed[1]["reason"]
        shown = cli("triggers", "dead-letters", "show", str(bad.dead_letter_id))
        assert shown.exit_code == 0 and '{"n": "x"}' in shown.output
        typo = cli("triggers", "dead-letters", "list", "typd")
        assert typo.exit_code == 2 and "no flow 'typd'" in typo.output

        # As it is, it still does not fit: kept, exit 1, nothing started.
        again = cli("triggers", "dead-letters", "replay", str(bad.dead_letter_id))
        assert again.exit_code == 1 and "still does not fit" in again.output
        # Corrected: one run with the message's id, the letter gone, the receipt now the run's.
        fixed = _json(cli, "triggers", "dead-letters", "replay", str(bad.dead_letter_id), "--payload", '{"n": 7}')
        assert fixed[0]["status"] == "started" and fixed[0]["params"] == {"n": 7}
        runs = [r for r in _json(cli, "runs", "list", "typed")["runs"] if r["run_type"] == "event"]
        assert len(runs) == 1 and runs[0]["triggered_by"]["message_id"] == "m-1"
        twice = cli("triggers", "dead-letters", "replay", str(bad.dead_letter_id))
        assert twice.exit_code == 1 and f"no dead letter {bad.dead_letter_id}" in twice.output
        redelivered = messages.receive(engine, "typed", source="rabbitmq:orders", message_id="m-1", payload=b"{}")
        assert redelivered.status == "duplicate"

        dropped = cli("triggers", "dead-letters", "drop", "--flow", "typed")
        assert dropped.exit_code == 0 and "dropped 1 dead letter(s)" in dropped.output
        assert messages.list_dead_letters(engine, "typed") == []
        audited = _json(cli, "audit", "list")
        assert {"dead_letter.replay", "dead_letter.drop"} <= {e["action"] for e in audited["entries"]}
    finally:
        engine.dispose()


def test_a_correction_that_does_not_fit_keeps_the_message_as_received(cli: Cli, tmp_path: Path) -> None:
    """`replay 12 --payload '{"n": 5,'` (a typo in the correction) stored the typo as the dead
    letter's payload: the message as received was gone, `show` gave only the typo, and a plain
    `replay` replayed it. The letter now keeps what the broker delivered."""
    from ductwork.services import messages
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    (tmp_path / "typed.py").write_text(textwrap.dedent(TYPED))
    assert cli("run", "typed.py", "--no-progress").exit_code == 0  # the flow is registered
    engine = create_engine(Settings.load().db_url)
    try:
        bad = messages.receive(engine, "typed", source="redis:orders", message_id="m-1", payload=b'{"n": "seven"}')
        letter = str(bad.dead_letter_id)
        for typo in ('{"n": 7,', '{"n": "7x"}', '{"m": 7}'):
            tried = cli("triggers", "dead-letters", "replay", letter, "--payload", typo)
            assert tried.exit_code == 1 and "still does not fit" in tried.output, tried.output
            shown = _json(cli, "triggers", "dead-letters", "show", letter)
            assert shown["payload"] == '{"n": "seven"}', shown
            assert "wants int, got 'seven'" in shown["reason"], shown
        fixed = _json(cli, "triggers", "dead-letters", "replay", letter, "--payload", '{"n": 7}')
        assert fixed[0]["status"] == "started" and fixed[0]["params"] == {"n": 7}
    finally:
        engine.dispose()


def test_audit_list_until_a_day_includes_it_as_the_audit_page_does(cli: Cli, tmp_path: Path) -> None:
    """``ductwork audit list --until`` was "No such option": who changed what in June meant
    reading everything since June. A day alone is included (as the page's until box), a
    date-time is where the list stops; ``--offset`` reads the next page."""
    import datetime as dt

    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.repo.audit import AuditEntry, add_entry

    assert cli("pools", "set", "seed", "1").exit_code == 0  # makes the home's database
    engine = create_engine(f"sqlite:///{tmp_path / 'ductwork-home' / 'ductwork.db'}")
    days = {"may-31": (5, 31, 23), "june-1": (6, 1, 0), "june-30": (6, 30, 23), "july-1": (7, 1, 0)}
    with transaction(engine) as conn:
        for target, (month, day, hour) in days.items():
            at = dt.datetime(2024, month, day, hour, 30, tzinfo=dt.UTC)
            add_entry(conn, AuditEntry("dana", "api", "10.0.0.1", "pool.set", target, {}, at))
    engine.dispose()

    def targets(*args: str) -> list[str]:
        return [e["target"] for e in _json(cli, "audit", "list", "--via", "api", *args)["entries"]]

    assert targets("--since", "2024-06-01", "--until", "2024-06-30") == ["june-30", "june-1"]
    assert targets("--until", "2024-06-30T23:00") == ["june-1", "may-31"]
    assert targets("--until", "2024-06-01T00:30:00+00:00") == ["may-31"]  # excluded, as in the API
    assert targets("--since", "2024-06-01", "--limit", "1", "--offset", "1") == ["june-30"]

    backwards = cli("audit", "list", "--since", "2024-07-01", "--until", "2024-06-30")
    assert backwards.exit_code == 2
    assert "--until '2024-06-30' is not after --since '2024-07-01'" in backwards.output
    typo = cli("audit", "list", "--until", "30/06/2024")
    assert typo.exit_code == 2 and "--until '30/06/2024': expected an ISO date" in typo.output


def test_marking_tasks_already_in_that_state_says_so(cli: Cli, tmp_path: Path) -> None:
    """``tasks mark ops RUN a --state success`` on a task that had succeeded printed
    "marked 0 task(s) success: " and stopped mid-sentence, which read as a mark gone wrong."""
    newest, *_ = _three_runs(cli, tmp_path)
    same = cli("tasks", "mark", "ops", newest, "a", "--state", "success")
    assert same.exit_code == 0, same.output
    assert same.output.strip() == "nothing marked: a is already success"
    dry = cli("tasks", "mark", "ops", newest, "a", "--state", "success", "--downstream", "--dry-run")
    assert dry.output.strip() == "nothing would be marked: a and their downstream tasks are already success"
    changed = cli("tasks", "mark", "ops", newest, "b", "--state", "failed")
    assert changed.output.strip() == "marked 1 task(s) failed: b"
