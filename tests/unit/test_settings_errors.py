"""Settings as a user gets them wrong: every mistake is one error naming the setting and where
its value came from, never a traceback, a silent truncation or an ignored typo."""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.errors import DefinitionError
from ductwork.settings import Settings
from tests.conftest import Cli


def _load(tmp_path: Path, toml: str | None = None, **environ: str) -> Settings:
    config = tmp_path / "ductwork.toml"
    if toml is not None:
        config.write_text(toml)
    return Settings.load(config_path=config if toml is not None else None, environ=environ)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[ductwork]\nparallelism = [1, 2]\n", "parallelism must be an integer, got [1, 2]"),
        ("[ductwork]\nparallelism = 4.7\n", "parallelism must be an integer, got 4.7"),
        ("[ductwork]\nparallelism = 0\n", "parallelism must be at least 1"),
        ("[ductwork]\nworker_heartbeat = [1]\n", "worker_heartbeat must be a number of seconds"),
        ("[ductwork]\nworker_heartbeat = nan\n", "worker_heartbeat must be more than 0 seconds"),
        ("[ductwork]\nresults_offload_threshold = -5\n", "results_offload_threshold must be 0 or more bytes"),
        ("[resources]\ndb = 'two'\n", "[resources] db must be an integer, got 'two'"),
        # a pool or resource below 0: `pools set` refuses it; from the file it made every task
        # of the pool "need 1 slot of -2" and suggested `ductwork pools set etl 1`, which the file overrode
        ("[pools]\netl = -2\n", "[pools] etl must be 0 or more, got -2"),
        ("[resources]\ngpu = -1\n", "[resources] gpu must be 0 or more, got -1"),
        ("ductwork = 5\n", "[ductwork] must be a table of settings"),
        ("[ductwork]\nparalelism = 8\n", "unknown setting 'paralelism' in [ductwork]. Did you mean 'parallelism'?"),
        # settings where they are not read: they were ignored without a word
        ("retention_days = 30\n[ductwork]\n", "setting 'retention_days' is outside the [ductwork] table"),
        ("retention_days = 30\n", "setting 'retention_days' is outside the [ductwork] table"),
        # misspelt at the top of the file as well: read by nothing, it was ignored without a word
        (
            "paralelism = 8\n[ductwork]\n",
            "'paralelism' is outside the [ductwork] table, where nothing reads it. "
            "Did you mean the setting 'parallelism'?",
        ),
        ("[ductworks]\nretention_days = 30\n", "table [ductworks] is not read: settings go in [ductwork]"),
        ("[Ductwork]\nparallelism = 2\n", "table [Ductwork] is not read: settings go in [ductwork]"),
        # text settings given a TOML number or list: kept as they were, then a traceback
        ("[ductwork]\nfernet_key = 7\n", "fernet_key must be text, in quotes, got 7 (from "),
        ("[ductwork]\nhome = [1, 2]\n", "home must be text, in quotes, got [1, 2] (from "),
        ("[ductwork]\ndatabase_url = 5432\n", "database_url must be text, in quotes, got 5432 (from "),
        # a port the socket library refuses with a traceback when the scheduler starts
        (
            "[ductwork]\nstatsd_address = 'stats:99999'\n",
            "statsd_address 'stats:99999': expected host:port with a port from 1 to 65535",
        ),
        ("[ductwork]\nstatsd_address = 'stats'\n", "statsd_address 'stats': expected host:port"),
    ],
)
def test_a_bad_settings_file_is_one_clear_error(tmp_path: Path, toml: str, says: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        _load(tmp_path, toml)
    assert says in str(caught.value)


SECONDS = ("parse_timeout", "worker_heartbeat", "worker_lost_after", "requeue_after", "scheduler_lease")


@pytest.mark.parametrize("name", [*SECONDS, "kubernetes_pending_timeout"])
@pytest.mark.parametrize("value", ["inf", "1e400", "1e12"])
def test_a_number_of_seconds_must_be_one_a_timer_can_wait(tmp_path: Path, name: str, value: str) -> None:
    """`DUCTWORK_PARSE_TIMEOUT=inf` was taken, then `ductwork run` ended in an OverflowError
    traceback from the import timer (and a lease of 1e12 s in one from the database server)."""
    environ = {f"DUCTWORK_{name.upper()}": value}
    if name == "worker_heartbeat":  # it must stay under half of worker_lost_after
        environ["DUCTWORK_WORKER_LOST_AFTER"] = value
    with pytest.raises(DefinitionError, match=rf"{name} must be at most .* seconds.*\(from DUCTWORK_{name.upper()}\)"):
        _load(tmp_path, **environ)


def test_a_retention_past_what_a_date_holds_is_refused_as_db_clean_refuses_it(tmp_path: Path) -> None:
    """`retention_days = 1000000` was taken, and every retention pass of the scheduler then
    failed ("date value out of range"), so nothing was ever deleted."""
    for name in ("retention_days", "audit_retention_days"):
        with pytest.raises(DefinitionError, match=rf"{name} must be at most 365000 days \(1000 years\)"):
            _load(tmp_path, f"[ductwork]\n{name} = 1000000\n")
        assert getattr(_load(tmp_path, f"[ductwork]\n{name} = 365000\n"), name) == 365000


@settings(max_examples=300)
@given(
    st.sampled_from([f.name for f in fields(Settings) if f.type in ("int", "float", "bool")]),
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(["inf", "-inf", "nan", "1e400", "1e30", "9" * 30, "-0", "0x10", "1_000", " 5 "]),
        st.integers().map(str),
        st.floats().map(str),
    ),
)
def test_a_numeric_setting_is_a_usable_value_or_an_error_naming_its_source(name: str, text: str) -> None:
    """Whatever text a `DUCTWORK_*` variable holds, the settings either read it as a value the
    commands can use (finite, within what a timer, a date or a port holds) or refuse it naming the
    variable: never another exception, nor a value that fails later, far from where it was set."""
    key = f"DUCTWORK_{name.upper()}"
    try:
        loaded = Settings.load(environ={key: text, "DUCTWORK_HOME": "/nonexistent-home"})
    except DefinitionError as exc:
        assert f"(from {key})" in str(exc), str(exc)
        return
    value = getattr(loaded, name)
    if isinstance(value, float):
        assert math.isfinite(value) and 0 < value <= 365 * 86400, (name, text, value)
        assert value <= threading.TIMEOUT_MAX
    if name in ("retention_days", "audit_retention_days"):
        dt.datetime(1970, 1, 1) + dt.timedelta(days=value)  # a cut-off date exists


def test_the_error_names_where_the_value_came_from(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"parallelism must be an integer, got 'x' \(from DUCTWORK_PARALLELISM\)"):
        _load(tmp_path, DUCTWORK_PARALLELISM="x")
    with pytest.raises(DefinitionError, match=r"\(from .*ductwork.toml \[ductwork\] worker_mode\)"):
        _load(tmp_path, "[ductwork]\nworker_mode = 'Warm'\n")


def test_an_unknown_secrets_backend_is_refused_when_the_settings_are_read(tmp_path: Path) -> None:
    """`secrets_backends = "enviroment,database"` was shown by `ductwork config` as it was, then
    stopped the scheduler and every task's lookup with an error naming neither where it was set
    nor the backend meant."""
    with pytest.raises(DefinitionError) as caught:
        _load(tmp_path, DUCTWORK_SECRETS_BACKENDS="enviroment,database")
    assert "secrets_backends names no backend 'enviroment'. Did you mean 'environment'?" in str(caught.value)
    assert "(from DUCTWORK_SECRETS_BACKENDS)" in str(caught.value)
    with pytest.raises(DefinitionError, match=r"'plugin:' .*\(from .*ductwork.toml \[ductwork\] secrets_backends\)"):
        _load(tmp_path, "[ductwork]\nsecrets_backends = 'plugin:,database'\n")
    for good in ("environment,database", " env , db ", "plugin:vault,environment", "database", ""):
        assert _load(tmp_path, DUCTWORK_SECRETS_BACKENDS=good).secrets_backends == good.strip()


def test_a_worker_lost_between_two_heartbeats_is_refused(tmp_path: Path) -> None:
    """worker_lost_after 1 with heartbeats every 2 s was accepted: every live worker showed as
    lost half of the time, and the scheduler failed its running tries."""
    with pytest.raises(
        DefinitionError,
        match=r"worker_lost_after must be at least twice worker_heartbeat \(2s\), got 1s: .*"
        r"\(from DUCTWORK_WORKER_LOST_AFTER\)",
    ):
        _load(tmp_path, DUCTWORK_WORKER_LOST_AFTER="1")
    with pytest.raises(
        DefinitionError,
        match=r"worker_heartbeat must be at most half of worker_lost_after \(15s\), got 10s: .*"
        r"\(from .*ductwork.toml \[ductwork\] worker_heartbeat\)",
    ):
        _load(tmp_path, "[ductwork]\nworker_heartbeat = 10\n")
    settings = _load(tmp_path, DUCTWORK_WORKER_HEARTBEAT="0.5", DUCTWORK_WORKER_LOST_AFTER="1")
    assert (settings.worker_heartbeat, settings.worker_lost_after) == (0.5, 1.0)


def test_an_empty_path_setting_is_as_if_unset_and_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    settings = _load(tmp_path, DUCTWORK_HOME="", DUCTWORK_FLOWS_FOLDER="", HOME=str(tmp_path))
    assert isinstance(settings.home, Path) and isinstance(settings.flows_folder, Path)
    assert settings.flows_folder == Settings().flows_folder
    with pytest.raises(DefinitionError, match="does not exist \\(named by DUCTWORK_CONFIG\\)"):
        _load(tmp_path, DUCTWORK_CONFIG=str(tmp_path / "nope.toml"))
    # a folder (the one holding ductwork.toml, say) exists: "does not exist" sent one looking for a typo
    with pytest.raises(
        DefinitionError, match="config file '.*' is a folder, not a file \\(named by DUCTWORK_CONFIG\\)"
    ):
        _load(tmp_path, DUCTWORK_CONFIG=str(tmp_path))


def test_a_value_ending_in_a_newline_is_taken_without_it(tmp_path: Path) -> None:
    """A variable filled from a file (a Kubernetes or Docker secret, ``$(cat url)`` in a unit
    file) ends in a newline: ``DUCTWORK_HOME`` then made a folder whose name ends in one, with a
    new empty database in it (another home, nothing said); ``DUCTWORK_DATABASE_URL`` named a
    database "ductwork\n" that does not exist, in an error cut at the newline; a metrics token
    refused every scraper. Whitespace around a text setting is never meant."""
    settings = _load(
        tmp_path,
        DUCTWORK_HOME=f"{tmp_path / 'home'}\n",
        DUCTWORK_DATABASE_URL="postgresql://etl@db.internal/ductwork\n",
        DUCTWORK_METRICS_TOKEN=" scrape-token\n",
        DUCTWORK_WORKER_MODE="fresh\n",
    )
    assert settings.home == tmp_path / "home"
    assert settings.db_url == "postgresql://etl@db.internal/ductwork"
    assert settings.metrics_token == "scrape-token"
    assert settings.worker_mode == "fresh"
    from_file = _load(tmp_path, '[ductwork]\nlog_dir = "logs "\nbroker_url = " redis://q:6379/0"\n')
    assert from_file.log_dir == tmp_path / "logs" and from_file.broker_url == "redis://q:6379/0"
    # only whitespace: as empty, so as if unset
    assert _load(tmp_path, DUCTWORK_DATABASE_URL="\n", HOME=str(tmp_path)).database_url == ""


def test_an_empty_variable_leaves_the_config_files_home_and_database_in_force(tmp_path: Path) -> None:
    """`DUCTWORK_DATABASE_URL=` (a secret a service manager did not fill in) in front of a
    ductwork.toml naming PostgreSQL ran the scheduler on a new SQLite file in ~/.ductwork, and an
    empty `DUCTWORK_HOME` dropped the file's home for ~/.ductwork: runs went to another database,
    silently. Empty is as if unset (README), so the file's values hold."""
    toml = (
        '[ductwork]\nhome = "h2"\nflows_folder = "pipelines"\nlog_dir = "logs2"\n'
        'database_url = "postgresql://etl@db.internal/ductwork"\n'
    )
    empty = {f"DUCTWORK_{name}": "" for name in ("HOME", "FLOWS_FOLDER", "LOG_DIR", "DATABASE_URL")}
    settings = _load(tmp_path, toml, HOME=str(tmp_path / "user"), **empty)
    assert settings.home == tmp_path / "h2"
    assert settings.flows_folder == tmp_path / "pipelines"
    assert settings.log_dir == tmp_path / "logs2"
    assert settings.db_url == "postgresql://etl@db.internal/ductwork"
    shown = {name: source for name, _value, source in settings.describe()}
    assert {shown[name] for name in ("home", "flows_folder", "log_dir", "database_url")} == {"config_file"}


def test_the_default_database_stays_inside_a_home_whose_path_has_url_characters(tmp_path: Path) -> None:
    """`/srv/dw?a` and `/srv/dw?b` both wrote to the database file `/srv/dw`."""
    import sqlalchemy as sa

    for name in ("dw?mode=ro", "with #hash", "100%"):
        home = tmp_path / name
        assert sa.make_url(Settings(home=home).db_url).database == str(home / "ductwork.db")


def test_a_password_in_the_database_urls_query_is_hidden_too() -> None:
    """`ductwork config` and every banner printed `?password=supersecret` as it was."""
    from ductwork.settings import redact_url
    from ductwork.store.engine import mask_url

    for url in ("postgresql://bob@db/x?password=supersecret", "mysql+pymysql://db/x?user=bob&password=supersecret"):
        for shown in (redact_url(url), mask_url(url)):
            assert "supersecret" not in shown and "password=***" in shown
    assert redact_url("postgresql://bob:pw@db/x?sslmode=require") == "postgresql://bob:***@db/x?sslmode=require"


def test_config_hides_the_password_of_every_url_setting(tmp_path: Path) -> None:
    """`ductwork config` printed flows_git_url's token (https://oauth2:TOKEN@gitlab...) and the
    password of an sftp:// bundle_url or remote_log_url as they were, though it hides the
    database's, the broker's and the mail server's."""
    loaded = _load(
        tmp_path,
        DUCTWORK_FLOWS_GIT_URL="https://oauth2:glpat-TOKEN1@gitlab.example.com/data/flows.git",
        DUCTWORK_BUNDLE_URL="sftp://deploy:BUNDLEPW2@files/bundles",
        DUCTWORK_REMOTE_LOG_URL="ftp://logs:LOGPW3@files/logs?token=QTOKEN4",
    )
    rows = {name: value for name, value, _ in loaded.describe()}
    assert rows["flows_git_url"] == "https://oauth2:***@gitlab.example.com/data/flows.git"
    assert rows["bundle_url"] == "sftp://deploy:***@files/bundles"
    assert rows["remote_log_url"] == "ftp://logs:***@files/logs?token=***"
    assert not [value for value in rows.values() if any(s in value for s in ("TOKEN1", "PW2", "PW3", "TOKEN4"))]


def test_luigi_task_sections_may_use_a_settings_name(tmp_path: Path) -> None:
    """Tables other than [ductwork] are Luigi's task sections: a parameter there named like a
    setting is no mistake."""
    settings = _load(tmp_path, "[ductwork]\nretention_days = 30\n[Report]\nretention_days = 7\nparallelism = 2\n")
    assert settings.retention_days == 30 and settings.parallelism == 4


def test_a_home_that_is_a_file_is_one_error_naming_where_it_came_from(tmp_path: Path) -> None:
    """DUCTWORK_HOME naming a file was a FileExistsError traceback from whichever command first
    made the database's folder."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(DefinitionError, match=r"home '.*notes.txt' is a file, not a folder \(from DUCTWORK_HOME\)"):
        Settings.load(environ={"DUCTWORK_HOME": str(a_file)})
    with pytest.raises(DefinitionError, match=r"log_dir '.*notes.txt' is a file, not a folder \(from .*ductwork.toml"):
        _load(tmp_path, '[ductwork]\nlog_dir = "notes.txt"\n')


def test_a_home_that_is_a_file_is_not_a_traceback_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    for args in (("runs", "list"), ("run", "whatever")):
        result = cli(*args, env={"DUCTWORK_HOME": str(tmp_path / "notes.txt")})
        assert result.exit_code == 2, result.output
        assert "is a file, not a folder (from DUCTWORK_HOME)" in result.output


def test_a_settings_file_not_in_utf8_is_one_error_naming_its_line(cli: Cli, tmp_path: Path) -> None:
    """TOML is UTF-8; a file saved as Latin-1 (a home or a comment with an accent) ended every
    command, ``ductwork config`` included, in a UnicodeDecodeError traceback."""
    (tmp_path / "ductwork.toml").write_bytes(b"[ductwork]\n# caf\xe9 reports\nretention_days = 30\n")
    with pytest.raises(DefinitionError, match=r"ductwork.toml: not UTF-8 text, as TOML must be: byte 0xe9 on line 2"):
        Settings.load(config_path=tmp_path / "ductwork.toml", environ={})
    for args in (("config",), ("runs", "list")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "ductwork.toml: not UTF-8 text, as TOML must be: byte 0xe9 on line 2" in result.output
        assert "Traceback" not in result.output
    (tmp_path / "ductwork.toml").write_bytes(b"\xef\xbb\xbf[ductwork]\nretention_days = 30\n")  # Notepad's UTF-8
    assert Settings.load(config_path=tmp_path / "ductwork.toml", environ={}).retention_days == 30


def test_a_statsd_host_that_cannot_be_looked_up_stops_the_scheduler_with_one_clear_error(
    cli: Cli, tmp_path: Path
) -> None:
    """The scheduler ended in a socket.gaierror traceback."""
    (tmp_path / "flows").mkdir()
    result = cli("scheduler", env={"DUCTWORK_STATSD_ADDRESS": "stats.invalid:8125"})
    assert result.exit_code == 2
    assert "statsd_address 'stats.invalid:8125': cannot look up the host 'stats.invalid'" in result.output
