"""Build what tries are lent (``core.task_services.TaskServices``) from the settings.

The secrets chain follows the ``secrets_backends`` setting (``environment,database`` by
default; ``plugin:NAME`` loads a backend registered in the ``ductwork.secrets`` entry-point
group). The database backend, the store handle and the results backend need an engine: a
runtime without a database (in-process runs) gets the environment and plugins only, unless it
passes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ductwork.core.connections import Connection, EnvironmentSecrets, MemorySecrets, Secrets, SecretsBackend
from ductwork.core.task_services import TaskServices
from ductwork.errors import DefinitionError
from ductwork.settings import Settings

SMTP_DEFAULT = "smtp_default"
ENVIRONMENT = "environment"
DATABASE = "database"


def build_secrets(
    settings: Settings | None = None, *, engine: Any = None, environ: Mapping[str, str] | None = None
) -> Secrets:
    """The lookup chain named by ``settings.secrets_backends``."""
    settings = settings or Settings()
    if environ is None:  # this process's environment, with what was kept from tasks (engine.task_env)
        from ductwork.engine.task_env import secrets_environ

        environ = secrets_environ()
    backends: list[SecretsBackend] = []
    for name in [n.strip() for n in settings.secrets_backends.split(",") if n.strip()]:
        if name in (ENVIRONMENT, "env"):
            backends.append(EnvironmentSecrets(environ))
        elif name in (DATABASE, "db"):
            if engine is not None:
                from ductwork.store.crypto import Cipher
                from ductwork.store.secrets import DatabaseSecrets

                backends.append(DatabaseSecrets(engine, Cipher(settings.fernet_key)))
        elif name.startswith("plugin:"):
            from ductwork.plugins import secrets_backend

            backends.append(secrets_backend(name.split(":", 1)[1])(settings))
        else:
            raise DefinitionError(
                f"secrets_backends: unknown backend {name!r}; use 'environment', 'database' or 'plugin:NAME'"
            )
    if settings.smtp_url:  # the settings' mail server, when no backend defines smtp_default
        backends.append(_SettingsSecrets([Connection.from_uri(SMTP_DEFAULT, settings.smtp_url)]))
    return Secrets(backends)


class _SettingsSecrets(MemorySecrets):
    label = "settings (smtp_url)"


def build_task_services(
    settings: Settings | None = None,
    *,
    engine: Any = None,
    with_store: bool = False,
    environ: Mapping[str, str] | None = None,
) -> TaskServices:
    """Secrets, the failure e-mail, and (``with_store``, needs ``engine``) the store handle."""
    settings = settings or Settings()
    secrets = build_secrets(settings, engine=engine, environ=environ)
    store = None
    cache = None
    if with_store and engine is not None:
        from ductwork.services.flow_store import SqlFlowStore
        from ductwork.store.cache import SqlCacheStore

        store = SqlFlowStore(engine)
        cache = SqlCacheStore(engine)
    return TaskServices(secrets=secrets, store=store, failure_alert=_FailureEmail(secrets), cache=cache)


class _FailureEmail:
    """Sends the ``on_failure_email`` message; the e-mail code is imported only when one is sent."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def __call__(self, context: Mapping[str, Any], to: Sequence[str]) -> None:
        from ductwork.integrations.email.alerts import FlowFailureEmail

        FlowFailureEmail(self.secrets)(context, to)


def existing_database(settings: Settings) -> Any:
    """An engine on the settings' metadata database when there is one (for its connections and
    variables); a SQLite file that does not exist yet is not created."""
    from pathlib import Path

    from ductwork.store.engine import create_engine

    url = settings.db_url
    if url.startswith("sqlite:///"):
        import sqlalchemy as sa

        database = sa.make_url(url).database  # unescaped: a home may have "?" or "%" in its path
        if database and not database.startswith("file:") and not Path(database).exists():
            return None
    return create_engine(url)


def local_task_services(settings: Settings, *, lend_store: bool = False) -> TaskServices:
    """What in-process runs from the CLI lend tries: every configured secrets backend (the
    database one when the database exists), and with ``lend_store`` the store too (for tasks
    that look at other flows' runs: a recorded ``ductwork run``, ``tasks test``), but never the
    result cache (a test runs its task)."""
    engine = existing_database(settings)
    services = build_task_services(settings, engine=engine)
    if not lend_store or engine is None:
        return services
    from dataclasses import replace

    from ductwork.services.flow_store import SqlFlowStore

    return replace(services, store=SqlFlowStore(engine))
