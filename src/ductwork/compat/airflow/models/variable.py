"""``airflow.models.Variable``: Ductwork's variables (environment ``DUCTWORK_VAR_*``, then the
metadata database, as the ``secrets_backends`` setting says)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from ..models.param import NOTSET


def current_secrets() -> Any:
    """The running try's secrets, or those a worker lends the file it imports, or (elsewhere)
    the ones the settings name."""
    from ductwork.core.context import get_current_context

    try:
        secrets = get_current_context().get("secrets")
        if secrets is not None:
            return secrets
    except RuntimeError:
        pass
    from ductwork.core.connections import lent_secrets

    lent = lent_secrets()  # a worker importing a DAG file: its own secrets, the scheduler's database
    if lent is not None:
        return lent
    from ductwork.engine.services_setup import build_secrets, existing_database
    from ductwork.settings import Settings

    settings = Settings.load()
    return build_secrets(settings, engine=existing_database(settings))


@contextlib.contextmanager
def _database(*, create: bool) -> Iterator[Any]:
    """The metadata database's variables, where ``Variable.set``/``delete`` write (as Airflow's
    do: an environment variable or another secrets backend is read-only). With ``create`` a new
    home's database is created, as ``ductwork variables set`` does (a seeding script may run
    before any ``ductwork`` command); without it, ``None`` when there is no database yet."""
    from ductwork.engine.services_setup import existing_database
    from ductwork.settings import Settings
    from ductwork.store.crypto import Cipher
    from ductwork.store.engine import create_engine
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.secrets import DatabaseSecrets

    settings = Settings.load()
    engine = create_engine(settings.db_url) if create else existing_database(settings)
    if engine is None:
        yield None
        return
    try:
        ensure_schema(engine)
        yield DatabaseSecrets(engine, Cipher(settings.fernet_key))
    finally:
        engine.dispose()


def _json_of(key: str, text: str) -> Any:
    """The variable's value read as JSON; an error names the variable (Airflow's bare
    "Expecting value: line 1 column 1" left the user to find which of a task's variables it
    was) and is still a ``json.JSONDecodeError``, which DAG code catches."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(f"variable {key!r} is not valid JSON: {exc.msg}", exc.doc, exc.pos) from None


class Variable:
    @classmethod
    def get(cls, key: str, default_var: Any = NOTSET, deserialize_json: bool = False) -> Any:
        from ductwork.errors import NotFoundError

        try:
            value = current_secrets().get_variable(key)
        except (NotFoundError, KeyError):
            if default_var is NOTSET:
                raise KeyError(f"Variable {key} does not exist") from None
            return default_var
        return _json_of(key, value) if deserialize_json else value

    @classmethod
    def set(cls, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        from ductwork.services.names import check_new_key

        text = json.dumps(value) if serialize_json else str(value)
        with _database(create=True) as database:
            check_new_key("variable", key, database.engine)  # 'my var' could not be read back in a template
            database.set_variable(key, text, description=description or "")

    @classmethod
    def update(cls, key: str, value: Any, serialize_json: bool = False) -> None:
        """Change a variable that exists (Airflow's ``KeyError`` when it does not)."""
        cls.get(key)
        cls.set(key, value, serialize_json=serialize_json)

    @classmethod
    def delete(cls, key: str) -> int:
        """Delete a variable from the metadata database; how many were deleted (0 when there
        was none), as Airflow's."""
        from ductwork.errors import NotFoundError

        with _database(create=False) as database:
            if database is None:
                return 0
            try:
                database.delete_variable(key)
            except NotFoundError:
                return 0
        return 1

    @classmethod
    def setdefault(cls, key: str, default: Any, description: str | None = None, deserialize_json: bool = False) -> Any:
        try:
            return cls.get(key, deserialize_json=deserialize_json)
        except KeyError:
            cls.set(key, default, serialize_json=deserialize_json)
            return default


__all__ = ["Variable"]
