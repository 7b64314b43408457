"""``ductwork connections`` and ``ductwork variables``: kept in the metadata database, encrypted.

Listing never prints a password (nor a secret-looking extra or variable); ``connections get``
shows where a connection was found (an environment variable overrides the database).
"""

from __future__ import annotations

import json
from typing import Any

import click

from ductwork.cli.engine_state import store
from ductwork.cli.options import NegativeNumberValues
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable
from ductwork.core.connections import Connection
from ductwork.core.json_text import NotJsonNumber, loads_finite
from ductwork.core.masking import MASK, is_secret_name
from ductwork.errors import DefinitionError, NotFoundError
from ductwork.services.names import check_new_key
from ductwork.store.crypto import Cipher, generate_key
from ductwork.store.secrets import DatabaseSecrets


def _database(state: CliState) -> DatabaseSecrets:
    return DatabaseSecrets(store(state), Cipher(state.settings.fernet_key))


@click.group()
def connections() -> None:
    """Add, list, get and delete connections (how tasks reach other systems)."""


@connections.command("add")
@click.argument("name")
@click.argument("uri", required=False)
# Each option also answers to Airflow's name (`airflow connections add NAME --conn-uri URI`,
# `--conn-host`...): typed as Airflow's, `--conn-uri` was "Did you mean '--conn-type'?".
@click.option("--conn-uri", default=None, help="The URI (Airflow's option; the same as the URI argument).")
@click.option("--conn-json", default=None, help="Airflow's JSON form of the connection's fields.")
@click.option("--conn-type", default=None, help="Type (postgres, mysql, sqlite, http, https, smtp, ...).")
@click.option("--host", "--conn-host", "host", default=None, help="Host name or address.")
@click.option(  # 0-65535, as the API and the web form
    "--port", "--conn-port", "port", type=click.IntRange(0, 65535), default=None, help="Port."
)
@click.option("--login", "--conn-login", "login", default=None, help="User name.")
@click.option(
    "--password", "--conn-password", "password", default=None, help="Better: put it in the URI from a file or a prompt."
)
@click.option("--schema", "--conn-schema", "schema", default=None, help="Database, path or base path.")
@click.option("--extra", "--conn-extra", "extra", default=None, help="A JSON object of extra settings.")
@click.option(
    "--description", "--conn-description", "description", default=None, help="What it is for (default: the one it has)."
)
@click.pass_obj
def add_connection(
    state: CliState, name: str, uri: str | None, conn_uri: str | None, conn_json: str | None, **fields: Any
) -> None:
    """Add (or replace) a connection, from a URI (type://login:password@host:port/schema?k=v) or options."""
    if sum(given is not None for given in (uri, conn_uri, conn_json)) > 1:
        raise click.UsageError("give one of URI, --conn-uri or --conn-json")
    base = None
    if conn_json is not None:
        from ductwork.core.connections import connection_from_env

        base = connection_from_env(name, "--conn-json", conn_json)
        if fields["description"] is None and base.description:
            fields["description"] = base.description
    database = _database(state)
    check_new_key("connection", name, database.engine)
    if fields["description"] is None:
        fields["description"] = _stored_description(database, "connection", name)
    connection = _connection_from(name, uri or conn_uri, fields, base)
    database.put_connection(connection)
    click.echo(f"connection {name} saved ({connection.conn_type or 'no type'}, {connection.host or 'no host'})")


def _connection_from(name: str, uri: str | None, fields: dict[str, Any], base: Connection | None = None) -> Connection:
    """The connection the options make: over ``uri``'s (or ``base``'s, from ``--conn-json``)
    fields, the options given."""
    description = fields.pop("description") or ""
    extra_text = fields.pop("extra")
    try:
        extra = loads_finite(extra_text) if extra_text else None
    except NotJsonNumber as exc:  # NaN, Infinity: refused as the API refuses them
        raise DefinitionError(f"connection {name!r}: --extra: {exc}: give a finite number") from None
    except ValueError:
        extra = ""  # not JSON at all: the same message as a JSON value that is not an object
    if extra is not None and not isinstance(extra, dict):
        raise DefinitionError(f'connection {name!r}: --extra is not a JSON object (such as {{"timeout": 5}})')
    if uri:
        base = Connection.from_uri(name, uri)
    if base is not None:
        given = {k: v for k, v in fields.items() if v is not None}
        values = {**base.__dict__, **given}
    else:
        if not fields.get("conn_type"):
            raise DefinitionError(f"connection {name!r}: give a URI or at least --conn-type")
        values = {"conn_id": name, **{k: v for k, v in fields.items() if v is not None}}
    values["description"] = description
    if extra is not None:
        values["extra"] = extra
    return Connection(**values)


def _stored_description(database: DatabaseSecrets, kind: str, name: str) -> str:
    """The description stored with a connection or variable ('' for a new one): setting a new
    value without ``--description`` erased it, where ``pools set`` keeps a pool's."""
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import connections as conn_repo
    from ductwork.store.repo import variables as var_repo

    with read_transaction(database.engine) as conn:
        row = conn_repo.get_connection(conn, name) if kind == "connection" else var_repo.get_variable(conn, name)
    return row.description if row is not None else ""


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_connections(state: CliState, as_json: bool) -> None:
    """The connections in the database (passwords are never shown)."""
    rows = [c.describe() for c in _database(state).list_connections()]
    if as_json:
        print_json(rows)
        return
    table = DataTable("name", "type", "host", "port", "schema", "login", "password", "description")
    for r in rows:
        table.add_row(*(str(r[k] if r[k] is not None else "") for k in table_keys()))
    console().print(table)


def table_keys() -> tuple[str, ...]:
    return ("conn_id", "conn_type", "host", "port", "schema", "login", "password", "description")


@connections.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def get_connection(state: CliState, name: str, as_json: bool) -> None:
    """One connection as tasks would see it (environment first, then the database); no password."""
    from ductwork.engine.services_setup import build_secrets

    secrets = build_secrets(state.settings, engine=store(state))
    found = secrets.get_connection(name)
    shown = found.describe()
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        if value not in (None, "", {}):
            click.echo(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")


@connections.command("delete")
@click.argument("name")
@click.pass_obj
def delete_connection(state: CliState, name: str) -> None:
    """Delete connection NAME from the database (one set in the environment stays)."""
    _database(state).delete_connection(name)
    click.echo(f"connection {name} deleted")


@connections.command("generate-key")
def generate_fernet_key() -> None:
    """Print a new Fernet key for the fernet_key setting (DUCTWORK_FERNET_KEY)."""
    click.echo(generate_key())


@connections.command("rotate-key")
@click.option("--dry-run", is_flag=True, help="Say what would be re-encrypted (each value is read), change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rotate_key(state: CliState, dry_run: bool, as_json: bool) -> None:
    """Re-encrypt the stored connections and variables with the first key of fernet_key.

    \b
    Rotating: set fernet_key to NEW,OLD (every process), run this, then set it to NEW alone.
    Without it the values stored with OLD stay OLD's, and dropping OLD made them unreadable.
    One transaction: a value no configured key reads stops it, naming it, before any change."""
    from ductwork.services.key_rotation import rotate

    keys = [k for k in state.settings.fernet_key.split(",") if k.strip()]
    done = rotate(store(state), Cipher(state.settings.fernet_key), dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "connections": list(done.connections), "variables": list(done.variables)})
        return
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    click.echo(
        f"{verb} {len(done.connections)} connection(s) and {len(done.variables)} variable(s) with the first "
        f"of {len(keys)} key(s)"
        + (": " + ", ".join([*done.connections, *done.variables]) if done.connections or done.variables else "")
    )
    if not dry_run and len(keys) > 1:
        click.echo("the other keys are no longer needed for them: fernet_key may now be the first key alone")


@click.group()
def variables() -> None:
    """Set, get, list and delete variables ({{ var.value.NAME }} in templates)."""


@variables.command("set", cls=NegativeNumberValues)  # `variables set offset -5`, as Airflow's
@click.argument("name")
@click.argument("value")
@click.option("--description", default=None, help="What it is for (default: the one it has).")
@click.pass_obj
def set_variable(state: CliState, name: str, value: str, description: str | None) -> None:
    """Create variable NAME or change its VALUE (encrypted when a Fernet key is set)."""
    database = _database(state)
    check_new_key("variable", name, database.engine)
    if description is None:
        description = _stored_description(database, "variable", name)
    encrypted = database.set_variable(name, value, description=description)
    click.echo(f"variable {name} set{' (encrypted)' if encrypted else ''}")


@variables.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Parse the value as JSON and print it formatted.")
@click.option(
    "--default",
    "-d",
    default=None,
    help="Print this, as it is, when the variable is defined nowhere (else that is an error, exit status 2).",
)
@click.pass_obj
def get_variable(state: CliState, name: str, as_json: bool, default: str | None) -> None:
    """Print a variable's value (environment first, then the database)."""
    from ductwork.engine.services_setup import build_secrets

    secrets = build_secrets(state.settings, engine=store(state))
    # Airflow's `variables get NAME --default VALUE`: a script reading an optional variable
    # had no way but to read the error (-d was "No such option").
    value = secrets.get_variable(name) if default is None else secrets.get_variable(name, default=None)
    if value is None:
        click.echo(default)
        return
    if as_json:
        try:
            print_json(json.loads(value))
        except ValueError:
            raise DefinitionError(f"variable {name!r} is not JSON") from None
        return
    click.echo(value)


@variables.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_variables(state: CliState, as_json: bool) -> None:
    """Variables in the database; values of secret-looking names are shown as ***."""
    database = _database(state)
    rows: list[dict[str, Any]] = []
    for row in database.list_variables():
        value = MASK if is_secret_name(row.key) else database.get_variable(row.key)
        rows.append({"key": row.key, "value": value, "encrypted": row.is_encrypted, "description": row.description})
    if as_json:
        print_json(rows)
        return
    table = DataTable("name", "value", "encrypted", "description")
    for r in rows:
        table.add_row(r["key"], _short(str(r["value"])), "yes" if r["encrypted"] else "no", r["description"])
    console().print(table)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@variables.command("delete")
@click.argument("name")
@click.pass_obj
def delete_variable(state: CliState, name: str) -> None:
    """Delete variable NAME from the database (one set in the environment stays)."""
    _database(state).delete_variable(name)
    click.echo(f"variable {name} deleted")


__all__ = ["NotFoundError", "connections", "variables"]
