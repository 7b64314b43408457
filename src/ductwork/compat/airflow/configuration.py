"""``airflow.configuration.conf``: Airflow's settings as DAG files read them.

DAG files and hooks read a handful of settings (``conf.get("core", "dags_folder")`` to find SQL
files, ``conf.get("webserver", "base_url")`` for links in alerts, ``conf.getboolean("email",
"default_email_on_failure")``). There is no ``airflow.cfg`` under Ductwork: a value comes from
Airflow's environment variable ``AIRFLOW__{SECTION}__{KEY}`` (what a deployment moved from
Airflow already sets), else from what Ductwork does in its place (``dags_folder`` is Ductwork's
flows folder, ``base_log_folder`` its log folder), else from Airflow 2's default. A key that has
none of these raises ``AirflowConfigException`` naming it, as Airflow does, unless the call gives
a ``fallback``. Nothing is read when the module is imported: each call looks again.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import AirflowConfigException

_UNSET: Any = object()


def _flows_folder() -> str:
    from ductwork.settings import Settings

    return str(Settings.load().flows_folder.resolve())


def _log_folder() -> str:
    from ductwork.settings import Settings

    return str(Settings.load().logs.resolve())


def _home() -> str:
    from ductwork.settings import Settings

    return os.environ.get("AIRFLOW_HOME") or str(Settings.load().home)


# Airflow 2.10's defaults of the settings DAG files are seen to read; a callable is what Ductwork
# does in Airflow's place, looked up at the call.
_DEFAULTS: dict[str, dict[str, str | Callable[[], str]]] = {
    "core": {
        "airflow_home": _home,
        "dags_folder": _flows_folder,
        "default_timezone": "utc",
        "executor": "LocalExecutor",
        "parallelism": "32",
        "max_active_tasks_per_dag": "16",
        "max_active_runs_per_dag": "16",
        "dags_are_paused_at_creation": "False",
        "load_examples": "False",
        "unit_test_mode": "False",
        "default_task_retries": "0",
        "default_task_retry_delay": "300",
        "default_task_execution_timeout": "",
        "dagbag_import_timeout": "30.0",
        "killed_task_cleanup_time": "60",
        "dag_run_conf_overrides_params": "True",
        "xcom_backend": "airflow.models.xcom.BaseXCom",
        "test_connection": "Disabled",
    },
    "logging": {
        "base_log_folder": _log_folder,
        "logging_level": "INFO",
        "remote_logging": "False",
    },
    "webserver": {
        "base_url": "http://localhost:8080",
        "web_server_host": "0.0.0.0",
        "web_server_port": "8080",
        "default_ui_timezone": "UTC",
        "instance_name": "Airflow",
    },
    "scheduler": {
        "catchup_by_default": "True",
        "dag_dir_list_interval": "300",
        "min_file_process_interval": "30",
    },
    "operators": {
        "default_owner": "airflow",
        "default_queue": "default",
        "default_cpus": "1",
        "default_ram": "512",
        "default_disk": "512",
        "default_gpus": "0",
        "allow_illegal_arguments": "False",
    },
    "email": {
        "email_backend": "airflow.utils.email.send_email_smtp",
        "email_conn_id": "smtp_default",
        "default_email_on_retry": "True",
        "default_email_on_failure": "True",
    },
    "smtp": {
        "smtp_host": "localhost",
        "smtp_starttls": "True",
        "smtp_ssl": "False",
        "smtp_port": "25",
        "smtp_mail_from": "airflow@example.com",
        "smtp_timeout": "30",
        "smtp_retry_limit": "5",
    },
}

_TRUE = ("t", "true", "1")
_FALSE = ("f", "false", "0")


class AirflowConfigParser:
    """The object ``conf`` is: ``get`` and the typed getters of Airflow's parser. ``set`` changes
    a value for this process only (DAG tests do it); nothing is written anywhere."""

    def __init__(self, defaults: Mapping[str, Mapping[str, str | Callable[[], str]]] | None = None) -> None:
        self._defaults = {s.lower(): {k.lower(): v for k, v in keys.items()} for s, keys in (defaults or {}).items()}
        self._set: dict[tuple[str, str], str] = {}

    def _lookup(self, section: str, key: str) -> str | None:
        section, key = section.lower(), key.lower()
        if (section, key) in self._set:
            return self._set[section, key]
        env = os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
        if env is not None:
            return env
        default = self._defaults.get(section, {}).get(key)
        if callable(default):
            return default()
        return default

    def get(self, section: str, key: str, fallback: Any = _UNSET, **kwargs: Any) -> Any:
        """The value as text; ``fallback`` when the key is unknown (else ``AirflowConfigException``)."""
        value = self._lookup(section, key)
        if value is not None:
            return value
        if fallback is not _UNSET:
            return fallback
        raise AirflowConfigException(
            f"section/key [{section}/{key}] not found in config: under Ductwork set "
            f"AIRFLOW__{section.upper()}__{key.upper()} in the environment, or pass fallback="
        )

    def getboolean(self, section: str, key: str, fallback: Any = _UNSET, **kwargs: Any) -> Any:
        value = self.get(section, key, fallback=fallback)
        if not isinstance(value, str):
            return value  # the fallback, as given
        text = value.split("#", 1)[0].strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise AirflowConfigException(
            f'Failed to convert value to bool. Please check "{key}" key in "{section}" section. '
            f'Current value: "{value}".'
        )

    def getint(self, section: str, key: str, fallback: Any = _UNSET, **kwargs: Any) -> Any:
        return self._convert(section, key, fallback, int, "int")

    def getfloat(self, section: str, key: str, fallback: Any = _UNSET, **kwargs: Any) -> Any:
        return self._convert(section, key, fallback, float, "float")

    def _convert(self, section: str, key: str, fallback: Any, kind: Callable[[str], Any], name: str) -> Any:
        value = self.get(section, key, fallback=fallback)
        if not isinstance(value, str):
            return value
        try:
            return kind(value.strip())
        except ValueError:
            raise AirflowConfigException(
                f'Failed to convert value to {name}. Please check "{key}" key in "{section}" section. '
                f'Current value: "{value}".'
            ) from None

    def getlist(self, section: str, key: str, delimiter: str = ",", fallback: Any = _UNSET, **kwargs: Any) -> Any:
        value = self.get(section, key, fallback=fallback)
        if not isinstance(value, str):
            return value
        return [item.strip() for item in value.split(delimiter) if item.strip()]

    def getjson(self, section: str, key: str, fallback: Any = None, **kwargs: Any) -> Any:
        value = self.get(section, key, fallback=None)
        if value is None or value == "":
            return fallback
        try:
            return json.loads(value)
        except ValueError as exc:
            raise AirflowConfigException(f"Unable to parse [{section}] {key!r} as valid json") from exc

    def has_option(self, section: str, option: str, **kwargs: Any) -> bool:
        return self._lookup(section, option) is not None

    def getsection(self, section: str) -> dict[str, Any] | None:
        """The section's keys known here (defaults, environment, ``set``), or ``None``."""
        section = section.lower()
        keys = builtins.set(self._defaults.get(section, {}))  # the module's `set` is Airflow's
        prefix = f"AIRFLOW__{section.upper()}__"
        keys |= {name[len(prefix) :].lower() for name in os.environ if name.startswith(prefix)}
        keys |= {k for s, k in self._set if s == section}
        if not keys:
            return None
        return {key: self._lookup(section, key) for key in sorted(keys)}

    def set(self, section: str, option: str, value: str) -> None:
        self._set[section.lower(), option.lower()] = str(value)

    def remove_option(self, section: str, option: str, remove_default: bool = True) -> None:
        self._set.pop((section.lower(), option.lower()), None)


conf = AirflowConfigParser(_DEFAULTS)

# Airflow 2's module-level shortcuts (deprecated there, still in old DAG files).
get = conf.get
getboolean = conf.getboolean
getint = conf.getint
getfloat = conf.getfloat
getsection = conf.getsection
has_option = conf.has_option
set = conf.set

__all__ = ["AirflowConfigParser", "conf"]
