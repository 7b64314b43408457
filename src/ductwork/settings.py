"""Ductwork's own settings: one typed object, read once by an entry point and passed down.

Each value comes from, in order: a command-line flag, a ``DUCTWORK_*`` environment variable,
the ``[ductwork]`` section of ``ductwork.toml``, or the default. ``ductwork config`` prints the
values and where each came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ductwork.core.config import ParamSource, read_toml
from ductwork.errors import DefinitionError, did_you_mean

_ENV = "DUCTWORK_"
_LOGIN_LIMITS = ("login_max_failures", "login_max_failures_per_address", "login_failure_window", "login_concurrency")
EXECUTORS = ("local", "celery", "kubernetes")
_DAYS = ("retention_days", "audit_retention_days")
_TELEMETRY = ("metrics_port", "statsd_address", "statsd_prefix", "tracing")
_NOT_SETTINGS = ("config_path", "resources", "pools", "sources", "file", "fernet_key_file")
"""Fields that say where the settings came from, not settings one can set."""
_EMPTY_IS_UNSET = ("home", "flows_folder", "log_dir", "database_url")
"""Settings whose empty ``DUCTWORK_*`` variable (``DUCTWORK_DATABASE_URL=``, a secret a service
manager left unfilled) is as if unset, so ductwork.toml's value holds: taken as given, it put
the home in ~/.ductwork and the database in a new SQLite file there, another database than the
file names, with nothing said."""
FERNET_KEY_FILE = "fernet.key"
"""The home's own Fernet key, made by ``ductwork standalone`` on its first start (mode 0600) and
read by every command on that home when no ``fernet_key`` is set by a flag, the environment or
``ductwork.toml`` (those win: the file is never read then, nor replaced)."""


def _default_home() -> Path:
    return Path.home() / ".ductwork"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    flows_folder: Path = field(default_factory=lambda: Path("flows"))
    database_url: str = ""
    log_dir: Path | None = None
    parallelism: int = 4
    worker_mode: str = "warm"
    """``warm``: worker processes run many tries; ``fresh``: a new process for every try."""
    worker_prefetch: int = 8
    """Tries a warm worker is handed at once; quick tries then run back to back without a
    round trip to the scheduler. A try that runs longer than 10 ms gives the rest back."""
    backfill_max_runs: int = 1000
    """The most runs one backfill (CLI or API) may create; a larger one is refused with the
    number it would create."""
    fernet_key: str = ""
    """Fernet key(s) that encrypt stored connections and variables (comma-separated to rotate)."""
    results_offload_url: str = ""
    """An fsspec URL (``s3://bucket/prefix``, ``file:///path``) where results larger than
    ``results_offload_threshold`` bytes are kept; empty keeps every result in the database."""
    results_offload_threshold: int = 64 * 1024
    results_pickle: bool = False
    """Allow the pickle serializer for results (written and read): values JSON cannot hold are
    pickled, and tasks may ask for it (``result_serializer="pickle"``). Only for trusted stores."""
    secrets_backends: str = "environment,database"
    """Where connections and variables are looked up, in order; ``plugin:NAME`` for a backend
    registered in the ``ductwork.secrets`` entry-point group."""
    smtp_url: str = ""
    """The mail server when no ``smtp_default`` connection is defined
    (``smtp://user:pass@host:587?starttls=true&sender=etl@example.com``); empty: localhost:25."""
    parse_timeout: float = 60.0
    """Seconds a flow file may take to import (in the scheduler's and the CLI's parsing
    processes) before it is stopped, with the processes it started, and reported."""
    login_max_failures: int = 5
    """Failed logins for one user name within ``login_failure_window`` seconds after which its
    logins are refused until the oldest failure leaves the window (0: no limit)."""
    login_max_failures_per_address: int = 20
    """The same for one client address, whatever the user names (0: no limit)."""
    login_failure_window: int = 900
    login_concurrency: int = 2
    """Password hashes (argon2, 64 MiB each) the web server computes at once; more logins wait."""
    executor: str = "local"
    """Where tries run: ``local`` (the scheduler's own worker pool), ``celery`` (``ductwork worker``
    processes on any host, through ``broker_url``) or ``kubernetes`` (a pod per try)."""
    broker_url: str = ""
    """The Celery broker (``redis://host:6379/0``, ``amqp://user:pass@host:5672//``)."""
    remote_log_url: str = ""
    """An fsspec URL where workers on other hosts write try logs while tries run
    (``s3://bucket/logs``, ``file:///shared/logs``); empty: the ``log_dir`` of each worker."""
    bundle_url: str = ""
    """An fsspec URL where code bundles of the flows folder are kept; empty: in the database."""
    flows_git_url: str = ""
    """A git repository workers check out the flows from (at the commit the scheduler's flows
    folder is at) instead of fetching bundles."""
    tries_per_message: int = 16
    """The most tries one Celery message carries when a queue has more tries than live slots
    (ADR 0017); 1 sends every try in a message of its own."""
    worker_heartbeat: float = 2.0
    """Seconds between a remote worker's heartbeats (its row and its running tries)."""
    worker_lost_after: float = 15.0
    """A remote worker silent this long is lost: its tries fail or are retried by their policy."""
    requeue_after: float = 60.0
    """Seconds a try may stay queued for a Celery worker while its queue has free slots before
    the scheduler sends it again (a message lost with a broker that lost its data); a try
    waiting in a queue whose workers are all busy is not sent again."""
    scheduler_lease: float = 15.0
    """Seconds within which another scheduler takes over the runs of a scheduler that died
    (several schedulers on PostgreSQL or MariaDB)."""
    kubernetes_namespace: str = "default"
    kubernetes_image: str = ""
    """The image of try pods (Ductwork and the flows' dependencies installed)."""
    kubernetes_pending_timeout: float = 300.0
    """Seconds a try pod may stay Pending (an image that cannot be pulled, a Secret missing, no
    node that fits) before its try fails with the pod's reason (Airflow's
    ``worker_pods_pending_timeout``)."""
    trigger_handoff: bool = True
    """``ductwork trigger`` hands the run to the scheduler running on this machine for the same
    home, flows folder and database, over a local socket (ADR 0023; Linux); false: the command
    always writes the run itself. Read by the command before anything else (from its
    environment or ``ductwork.toml``), so it is not a scheduler's setting."""
    triggerer: str = "scheduler"
    """Where the listeners of flows' message triggers run: ``scheduler`` (inside the scheduler
    process) or ``separate`` (only in a ``ductwork triggerer`` process)."""
    metrics_port: int = 0
    """The port on which the scheduler, or a ``ductwork worker`` (its ``--metrics-port`` wins),
    serves Prometheus metrics at /metrics; 0: none."""
    metrics_token: str = ""
    """When set, the web server's /metrics and the metrics ports of the scheduler and of a
    ``ductwork worker`` answer only requests that send it as a bearer token
    (``Authorization: Bearer <metrics_token>``); empty: they answer any scraper."""
    statsd_address: str = ""
    """``host:port`` of a StatsD server the scheduler sends its metrics to; empty: none."""
    statsd_prefix: str = "ductwork"
    tracing: str = ""
    """OpenTelemetry traces of runs and tries: ``otlp`` (the standard ``OTEL_EXPORTER_OTLP_*``
    variables say where), ``console``, or ``global`` (the tracer provider the process has)."""
    retention_days: int = 90
    """The scheduler deletes finished runs (with their tries, results, logs and events) that
    ended longer ago than this, in the background; 0 keeps everything."""
    audit_retention_days: int = 365
    """How long the audit log keeps its entries; 0 keeps them all."""
    config_path: Path | None = None
    resources: Mapping[str, int] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    sources: Mapping[str, ParamSource] = field(default_factory=dict)
    file: Mapping[str, Any] = field(default_factory=dict)
    fernet_key_file: Path | None = None
    """The home's key file ``fernet_key`` was read from (``FERNET_KEY_FILE``); None when it came
    from elsewhere or there is none."""

    @property
    def logs(self) -> Path:
        return self.log_dir or self.home / "logs"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        # A home with "?", "#" or "%" in its path: escaped, or the URL would end at them and two
        # homes ("/srv/dw?a", "/srv/dw?b") share the database file "/srv/dw".
        path = str(self.home / "ductwork.db").replace("%", "%25").replace("?", "%3F").replace("#", "%23")
        return f"sqlite:///{path}"

    @property
    def db_url_shown(self) -> str:
        """The database URL without its password: for banners, ``ductwork config`` and logs."""
        return redact_url(self.db_url)

    @classmethod
    def load(
        cls,
        *,
        config_path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        path = Path(config_path or environ.get(f"{_ENV}CONFIG", "ductwork.toml"))
        file = read_toml(path)
        if not path.is_file() and (config_path is not None or environ.get(f"{_ENV}CONFIG")):
            named = "--config" if config_path is not None else f"{_ENV}CONFIG"
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise DefinitionError(f"config file {str(path)!r} {what} (named by {named})")
        section = file.get("ductwork", {})
        if not isinstance(section, dict):
            raise DefinitionError(f"{path}: [ductwork] must be a table of settings, got {section!r}")
        known = {f.name for f in fields(cls)} - set(_NOT_SETTINGS)
        _settings_outside_their_table(path, file, known)
        for key in section:
            if key not in known:
                raise DefinitionError(
                    f"{path}: unknown setting {key!r} in [ductwork].{did_you_mean(str(key), known)} "
                    "`ductwork config` lists the settings"
                )
        values: dict[str, Any] = {}
        sources: dict[str, ParamSource] = {}
        for f in fields(cls):
            if f.name in _NOT_SETTINGS:
                continue
            env_key = f"{_ENV}{f.name.upper()}"
            if overrides and overrides.get(f.name) is not None:
                values[f.name], sources[f.name] = overrides[f.name], ParamSource.CLI
            elif env_key in environ and not (f.name in _EMPTY_IS_UNSET and environ[env_key].strip() == ""):
                values[f.name], sources[f.name] = environ[env_key], ParamSource.ENV
            elif f.name in section:
                values[f.name], sources[f.name] = section[f.name], ParamSource.CONFIG_FILE
            else:
                sources[f.name] = ParamSource.DEFAULT
        text = {f.name for f in fields(cls) if f.type in ("str", "Path", "Path | None")}
        for name, value in values.items():
            if name in text and isinstance(value, str) and sources[name] != ParamSource.CLI:
                # A variable filled from a secret file ends in its newline: a home "home\n" was
                # another folder with a new empty database, a URL named a database "db\n".
                values[name] = value = value.strip()
            # TOML has numbers, lists and tables; a text setting given one was kept as it was,
            # and met later as a traceback (fernet_key = 7) or a folder named "[1, 2]" (home).
            if name in text and sources[name] == ParamSource.CONFIG_FILE and not isinstance(value, str):
                raise DefinitionError(
                    f"{name} must be text, in quotes, got {value!r} (from {_origin(name, sources[name], path)})"
                )
        for name in ("home", "flows_folder", "log_dir"):
            if values.get(name) == "":  # DUCTWORK_HOME= (set but empty): as if unset
                del values[name]
                sources[name] = ParamSource.DEFAULT
        try:
            for name in ("home", "flows_folder", "log_dir"):
                if name in values:
                    values[name] = Path(str(values[name])).expanduser()
                    if sources[name] == ParamSource.CONFIG_FILE:  # relative to the file, from any folder
                        values[name] = path.parent / values[name]
            for name in ("home", "log_dir"):  # the database, logs and journals go in them
                if name in values and values[name].exists() and not values[name].is_dir():
                    raise DefinitionError(f"{name} {str(values[name])!r} is a file, not a folder")
            for name in (
                *("worker_heartbeat", "worker_lost_after", "requeue_after", "scheduler_lease"),
                "kubernetes_pending_timeout",
            ):
                if name in values:
                    try:
                        values[name] = float(values[name])
                    except (TypeError, ValueError):
                        raise DefinitionError(f"{name} must be a number of seconds, got {values[name]!r}") from None
                    if not values[name] > 0:  # NaN too
                        raise DefinitionError(f"{name} must be more than 0 seconds, got {values[name]!r}")
                    _at_most_seconds(name, values[name])
            heartbeat = values.get("worker_heartbeat", cls.worker_heartbeat)
            lost_after = values.get("worker_lost_after", cls.worker_lost_after)
            if lost_after < 2 * heartbeat:
                # A worker is judged by its last heartbeat: with less than two heartbeats'
                # time, one late beat shows a live worker as lost, and its running tries fail.
                why = "a live worker would be taken for lost between two heartbeats, and its tries failed"
                if "worker_lost_after" in values:
                    raise DefinitionError(
                        f"worker_lost_after must be at least twice worker_heartbeat ({heartbeat:g}s), "
                        f"got {lost_after:g}s: {why}"
                    )
                raise DefinitionError(
                    f"worker_heartbeat must be at most half of worker_lost_after ({lost_after:g}s), "
                    f"got {heartbeat:g}s: {why}"
                )
            if values.get("executor", "local") not in EXECUTORS:
                raise DefinitionError(f"executor must be one of {', '.join(EXECUTORS)}, got {values['executor']!r}")
            for name in (
                "parallelism",
                "worker_prefetch",
                "backfill_max_runs",
                "results_offload_threshold",
                "metrics_port",
                "tries_per_message",
                *_LOGIN_LIMITS,
                *_DAYS,
            ):
                if name in values:
                    values[name] = _integer(name, values[name])
            if "parse_timeout" in values:
                given = values["parse_timeout"]
                try:
                    values["parse_timeout"] = float(given)
                except (TypeError, ValueError):
                    raise DefinitionError(f"parse_timeout must be a number of seconds, got {given!r}") from None
                if not values["parse_timeout"] > 0:
                    raise DefinitionError(f"parse_timeout must be positive, got {given!r}")
                _at_most_seconds("parse_timeout", values["parse_timeout"])
            for name in _LOGIN_LIMITS:
                least = 1 if name in ("login_failure_window", "login_concurrency") else 0
                if values.get(name, least) < least:
                    raise DefinitionError(f"{name} must be at least {least}, got {values[name]!r}")
            if values.get("parallelism", 1) < 1:
                raise DefinitionError(f"parallelism must be at least 1, got {values['parallelism']!r}")
            if values.get("results_offload_threshold", 0) < 0:
                raise DefinitionError(
                    f"results_offload_threshold must be 0 or more bytes, got {values['results_offload_threshold']!r}"
                )
            if values.get("tries_per_message", 1) < 1:
                raise DefinitionError(f"tries_per_message must be at least 1, got {values['tries_per_message']!r}")
            if not 0 <= values.get("metrics_port", 0) <= 65535:
                raise DefinitionError(f"metrics_port must be a port number (0: none), got {values['metrics_port']!r}")
            if values.get("tracing", "") not in ("", "otlp", "console", "global"):
                raise DefinitionError(f"tracing must be otlp, console or global (or empty), got {values['tracing']!r}")
            for name in _DAYS:
                if values.get(name, 0) < 0:
                    raise DefinitionError(
                        f"{name} must be 0 (keep everything) or a number of days, got {values[name]!r}"
                    )
                if values.get(name, 0) > MAX_RETENTION_DAYS:  # the cut-off date must exist, as for db clean
                    raise DefinitionError(
                        f"{name} must be at most {MAX_RETENTION_DAYS} days (1000 years), got {values[name]!r}"
                    )
            if values.get("worker_prefetch", 1) < 1:
                raise DefinitionError(f"worker_prefetch must be at least 1, got {values['worker_prefetch']!r}")
            if values.get("backfill_max_runs", 1) < 1:
                raise DefinitionError(f"backfill_max_runs must be at least 1, got {values['backfill_max_runs']!r}")
            if values.get("worker_mode", "warm") not in ("warm", "fresh"):
                raise DefinitionError(f"worker_mode must be 'warm' or 'fresh', got {values['worker_mode']!r}")
            if values.get("triggerer", "scheduler") not in ("scheduler", "separate"):
                raise DefinitionError(f"triggerer must be 'scheduler' or 'separate', got {values['triggerer']!r}")
            if "secrets_backends" in values:
                _check_secrets_backends(str(values["secrets_backends"]))
            for name in ("results_pickle", "trigger_handoff"):
                if name in values:
                    values[name] = _boolean(name, values[name])
            if values.get("statsd_address"):
                host_port("statsd_address", str(values["statsd_address"]))
            resources, pools = _amounts(file, "resources"), _amounts(file, "pools")
            key_file = None
            if "fernet_key" not in values:
                key_file = values.get("home", _default_home()) / FERNET_KEY_FILE
                values["fernet_key"] = read_key_file(key_file)
                key_file = key_file if values["fernet_key"] else None
        except DefinitionError as exc:  # name where the bad value came from
            setting = str(exc).split(" ", 1)[0]
            if setting in sources and sources[setting] != ParamSource.DEFAULT:
                raise DefinitionError(f"{exc} (from {_origin(setting, sources[setting], path)})") from None
            raise
        return cls(
            **values,
            config_path=path if file else None,
            resources=resources,
            pools=pools,
            sources=sources,
            file=file,
            fernet_key_file=key_file,
        )

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, value, source) rows for ``ductwork config``."""
        rows = []
        shown = (
            *("home", "flows_folder", "database_url", "log_dir", "parallelism", "worker_mode", "worker_prefetch"),
            "backfill_max_runs",
            *("results_offload_url", "results_offload_threshold", "results_pickle", "secrets_backends"),
            "parse_timeout",
            *_LOGIN_LIMITS,
            *("executor", "broker_url", "remote_log_url", "bundle_url", "flows_git_url", "tries_per_message"),
            *("worker_heartbeat", "worker_lost_after", "requeue_after", "scheduler_lease"),
            *("kubernetes_namespace", "kubernetes_image", "kubernetes_pending_timeout"),
            "trigger_handoff",
            "triggerer",
            *_DAYS,
            *_TELEMETRY,
            *("metrics_token", "fernet_key", "smtp_url"),
        )
        for name in shown:
            value: Any = getattr(self, name)
            if name in ("metrics_token", "fernet_key") and value:
                value = "***"  # whether it is set, and where from: never the value
            source = self.sources.get(name, ParamSource.DEFAULT).name.lower()
            if name == "fernet_key" and self.fernet_key_file is not None:
                value, source = f"*** ({self.fernet_key_file})", "home"
            if name == "smtp_url":
                value = redact_url(self.smtp_url)
            if name == "database_url":
                value = self.db_url_shown
            if name in ("results_offload_url", "remote_log_url", "bundle_url", "flows_git_url"):
                # a git deploy token (https://deploy:TOKEN@...) or an fsspec password is a password too
                value = redact_url(value)
            if name == "log_dir":
                value = self.logs
            if name == "broker_url":
                value = redact_url(self.broker_url)
            rows.append((name, str(value), source))
        # The file's [pools] and [resources] are settings too: ``ductwork config`` left them out,
        # so a pool that limited ``ductwork run`` could not be traced to the file that set it.
        for table, amounts in (("pools", self.pools), ("resources", self.resources)):
            for name, amount in sorted(amounts.items()):
                rows.append((f"[{table}] {name}", str(amount), ParamSource.CONFIG_FILE.name.lower()))
        return rows


def read_key_file(path: Path) -> str:
    """The key in the home's ``fernet.key``; empty when there is no such file. One that cannot
    be read is an error naming it: taken for "no key", secrets would be refused as if none had
    ever been made, or stored again with a new one."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DefinitionError(
            f"fernet_key: cannot read the home's key file {path}: {why} (set fernet_key or DUCTWORK_FERNET_KEY "
            "to use another key)"
        ) from None


_USER_PASSWORD = re.compile(r"^(?P<scheme>[\w+.-]+://)(?P<user>[^:/@]*):(?P<password>[^@]*)@")
"""Read as SQLAlchemy reads a URL: the password runs from the first ``:`` to the first ``@``."""


def redact_url(url: str) -> str:
    """``url`` with its password shown as ``***``: in the user part, and in a query parameter
    (``?password=...``, as drivers also take it); the URL otherwise as given."""
    url = _USER_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url, count=1)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}=***", url)


_QUERY_SECRET = re.compile(r"(?<=[?&;])(?P<key>(?:password|passwd|pwd|secret|token|api_key|apikey)[^=&]*)=[^&#]*", re.I)


MAX_SECONDS = 365 * 86400
"""The longest wait a setting in seconds may ask for (a year): past it (``inf``, ``1e12``) the
timers that wait for it (``signal.setitimer``, ``threading.Event.wait``) raise
``OverflowError``, which ended ``ductwork run`` in a traceback when ``parse_timeout`` was one."""
MAX_LEASE_SECONDS = 86400
"""``scheduler_lease`` is also the database sessions' idle-in-transaction limit, which
PostgreSQL keeps in milliseconds as a 32-bit number (24 days at most); a day is ample."""
MAX_RETENTION_DAYS = 365_000
"""1000 years, as ``db clean --older-than``: the cut-off date of a longer one does not exist,
and every retention pass failed on it."""


def _at_most_seconds(name: str, seconds: float) -> None:
    limit = MAX_LEASE_SECONDS if name == "scheduler_lease" else MAX_SECONDS
    if not seconds <= limit:
        span = "a day" if limit == MAX_LEASE_SECONDS else "a year"
        raise DefinitionError(f"{name} must be at most {limit} seconds ({span}), got {seconds:g}")


def _integer(name: str, value: Any) -> int:
    """A whole number from text or a number; 4.7 or a list is an error, not 4 or a traceback."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise DefinitionError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DefinitionError(f"{name} must be an integer, got {value!r}") from None


def host_port(name: str, text: str) -> tuple[str, int]:
    """The host and port of a ``host:port`` setting (``statsd_address``; ``[::1]:8125`` for an
    IPv6 address). Checked when the settings are read, so that a port out of range is named with
    where it came from, not met later as a traceback from the socket library."""
    host, sep, port = text.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DefinitionError(
            f"{name} {text!r}: expected host:port with a port from 1 to 65535, such as 127.0.0.1:8125"
        )
    return host.strip("[]"), int(port)


SECRETS_BACKENDS = ("environment", "env", "database", "db")
"""The backends ``engine.services_setup.build_secrets`` knows by name (besides ``plugin:NAME``)."""


def _check_secrets_backends(text: str) -> None:
    """Each name of ``secrets_backends`` is a backend: a typo (``enviroment``) passed ``ductwork
    config`` unseen, then stopped the scheduler and every lookup with an error that named neither
    where it was set nor the backend meant. Whether a plugin exists is asked when it is used."""
    for name in (n.strip() for n in text.split(",")):
        if not name or name in SECRETS_BACKENDS or (name.startswith("plugin:") and name[len("plugin:") :].strip()):
            continue
        if name.startswith("plugin:"):
            raise DefinitionError(f"secrets_backends names 'plugin:' without a plugin: write plugin:NAME, got {text!r}")
        raise DefinitionError(
            f"secrets_backends names no backend {name!r}.{did_you_mean(name, ('environment', 'database'))} "
            f"Use 'environment', 'database' or 'plugin:NAME', got {text!r}"
        )


def _amounts(file: Mapping[str, Any], table: str) -> dict[str, int]:
    """``[resources]`` or ``[pools]`` of the settings file: names to whole numbers, none below 0
    (``pools set`` refuses those; from the file a pool of -2 slots made every task of it "need 1
    slot of -2" and pointed at ``pools set``, which the file then overrode)."""
    given = file.get(table, {})
    if not isinstance(given, dict):
        raise DefinitionError(f"[{table}] must be a table of NAME = NUMBER, got {given!r}")
    amounts = {str(k): _integer(f"[{table}] {k}", v) for k, v in given.items()}
    for name, amount in amounts.items():
        if amount < 0:
            raise DefinitionError(f"[{table}] {name} must be 0 or more, got {amount}")
    return amounts


def _origin(name: str, source: ParamSource, path: Path) -> str:
    if source == ParamSource.ENV:
        return f"{_ENV}{name.upper()}"
    if source == ParamSource.CONFIG_FILE:
        return f"{path} [ductwork] {name}"
    return f"--{name.replace('_', '-')}"


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise DefinitionError(f"{name} must be true or false, got {value!r}")


def _settings_outside_their_table(path: Path, file: Mapping[str, Any], known: set[str]) -> None:
    """Settings the file holds where they are not read: at its top (before any table) or in a
    misspelt ``[ductwork]`` (``[ductworks]``, ``[Ductwork]``). Other tables are Luigi's task
    sections and are left alone. Ignored without a word, they left ``retention_days = 30`` at 90."""
    import difflib

    for key, value in file.items():
        if key in known and not isinstance(value, dict):
            raise DefinitionError(
                f"{path}: setting {key!r} is outside the [ductwork] table, where it is not read; "
                "put it under a [ductwork] line"
            )
        meant = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if meant and not isinstance(value, dict):  # `paralelism = 8` at the top: misspelt and misplaced
            raise DefinitionError(
                f"{path}: {key!r} is outside the [ductwork] table, where nothing reads it. "
                f"Did you mean the setting {meant[0]!r}? Put it under a [ductwork] line"
            )
        if (
            key != "ductwork"
            and isinstance(value, dict)
            and difflib.get_close_matches(key.lower(), ["ductwork"], n=1, cutoff=0.8)
            and any(name in known for name in value)
        ):
            raise DefinitionError(f"{path}: table [{key}] is not read: settings go in [ductwork]")
