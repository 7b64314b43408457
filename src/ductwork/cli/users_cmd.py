"""``ductwork users`` and ``ductwork tokens``: who may use the web UI and the REST API."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable

import click

from ductwork.cli.engine_state import store
from ductwork.cli.options import RECORD_ID
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.cli.tables import DataTable

ROLES = ("admin", "operator", "viewer")


def _password(generate: bool, from_stdin: bool, on_command_line: str | None) -> tuple[str, bool]:
    """The password to set: generated, read from stdin, or asked for (hidden, twice). Never from
    the command line, where the shell history and every process listing would keep it."""
    from ductwork.errors import ParameterError
    from ductwork.services import accounts

    if on_command_line is not None:
        raise ParameterError(
            "--password would leave the password in the shell history and the process list: "
            "type it at the prompt, pipe it with --password-stdin, or use --generate"
        )
    if generate and from_stdin:
        raise ParameterError("--generate and --password-stdin exclude each other")
    if generate:
        return accounts.generate_password(), True
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ParameterError("--password-stdin: nothing was read from stdin")
        return line, False
    if not _has_terminal():
        return _password_without_terminal(), False
    try:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True), False
    except click.exceptions.Abort:  # stdin ended (a script, a pipe) or Ctrl-C: it said only "Aborted!"
        raise ParameterError(
            "no password was typed: type it at the prompt, pipe it with --password-stdin, or use --generate"
        ) from None


def _has_terminal() -> bool:
    """Whether a hidden prompt can be shown: stdin is a terminal, or the process has one
    (``/dev/tty``, where ``getpass`` asks when stdin is redirected)."""
    if sys.stdin.isatty():
        return True
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _password_without_terminal() -> str:
    """The password from stdin when there is no terminal to ask at (a script, a container,
    ``</dev/null``): its first line, and the second, when given, must repeat it as a typed
    confirmation would. ``getpass`` printed a ``GetPassWarning`` with its source line (read
    as a traceback) and "Password input may be echoed" before failing on an empty stdin."""
    from ductwork.errors import ParameterError

    first = sys.stdin.readline()
    if not first.rstrip("\r\n"):
        raise ParameterError(
            "no password was typed (there is no terminal to ask at, and stdin is empty): "
            "pipe it with --password-stdin, or use --generate"
        )
    second = sys.stdin.readline()
    if second and second.rstrip("\r\n") != first.rstrip("\r\n"):
        raise ParameterError("the two passwords read from stdin differ")
    return first.rstrip("\r\n")


def _password_options(func: Callable[..., None]) -> Callable[..., None]:
    func = click.option("--generate", is_flag=True, help="Generate a random password and print it once.")(func)
    func = click.option(
        "--password-stdin", "password_stdin", is_flag=True, help="Read the password from the first line of stdin."
    )(func)
    return click.option("--password", "password_argv", default=None, hidden=True, expose_value=True)(func)


@click.group()
def users() -> None:
    """Create, list, change and delete users of the web UI (roles: admin, operator, viewer)."""


@users.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="viewer",
    show_default=True,
    help=(
        "viewer reads everything; operator also triggers, clears, marks, pauses and cancels; "
        "admin also manages pools and users."
    ),
)
@_password_options
@click.pass_obj
def create_user(
    state: CliState, username: str, role: str, password_argv: str | None, password_stdin: bool, generate: bool
) -> None:
    """Add a user; the password is asked for (or --password-stdin, --generate) and stored as an
    argon2 hash only."""
    from ductwork.services import accounts

    secret, generated = _password(generate, password_stdin, password_argv)
    user = accounts.create_user(store(state), username, secret, role)
    click.echo(f"user {user.username} created with the {user.role} role")
    if generated:
        click.echo(f"password (shown once): {secret}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_users(state: CliState, as_json: bool) -> None:
    """Every user with their role, when they were created and when they last logged in."""
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import users as repo

    with read_transaction(store(state)) as conn:
        found = repo.list_users(conn)
    if as_json:
        print_json(  # what the table shows: a script finding users who never logged in needs last_login_at
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "created_at": u.created_at.isoformat(),
                    "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                }
                for u in found
            ]
        )
        return
    table = DataTable("user", "role", "created", "last login")
    for u in found:
        table.add_row(
            u.username,
            u.role,
            u.created_at.isoformat(timespec="seconds"),
            u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "",
        )
    console().print(table)


@users.command("delete")
@click.argument("username")
@click.pass_obj
def delete_user(state: CliState, username: str) -> None:
    """Delete a user with their tokens and sessions."""
    from ductwork.store.engine import transaction
    from ductwork.store.repo import users as repo

    with transaction(store(state)) as conn:
        repo.delete_user(conn, username)
    click.echo(f"user {username} deleted")


@users.command("password")
@click.argument("username")
@_password_options
@click.pass_obj
def set_password(
    state: CliState, username: str, password_argv: str | None, password_stdin: bool, generate: bool
) -> None:
    """Set a user's password (asked for, or --password-stdin, --generate); it ends the user's
    sessions in the web UI."""
    from ductwork.services import accounts

    secret, generated = _password(generate, password_stdin, password_argv)
    accounts.set_password(store(state), username, secret)
    click.echo(f"password of {username} changed" + (f"; new password (shown once): {secret}" if generated else ""))


@users.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def set_role(state: CliState, username: str, role: str) -> None:
    """Give a user another role; it ends the user's sessions in the web UI."""
    from ductwork.services import accounts

    user = accounts.set_role(store(state), username, role)
    click.echo(f"user {user.username} now has the {user.role} role")


@click.group()
def tokens() -> None:
    """API tokens for scripts (send them as 'Authorization: Bearer <token>'): create, list, revoke."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), default=None, help="Default: never expires."
)  # as the API: 99999999 days was an OverflowError traceback
@click.pass_obj
def create_token(state: CliState, username: str, name: str, expires_in_days: int | None) -> None:
    """Create a token acting as USERNAME; it is printed once and stored only as a digest."""
    from ductwork.services import accounts

    expires = dt.timedelta(days=expires_in_days) if expires_in_days else None
    issued = accounts.issue_token(store(state), username, name, expires_in=expires)
    click.echo(issued.token)
    click.echo(f"(API token {issued.record.id} for {username}, {name!r}; shown once)", err=True)


@tokens.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens (default: every user's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_tokens(state: CliState, username: str | None, as_json: bool) -> None:
    """The API tokens and whom they act as (never their secrets): the ID is what `tokens revoke`
    takes. A leaked or forgotten token could be revoked only in the web UI or with another token."""
    from ductwork.errors import NotFoundError
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import users as repo

    with read_transaction(store(state)) as conn:
        user_id = None
        if username is not None:
            user = repo.get_user(conn, username)
            if user is None:
                raise NotFoundError(f"no user {username!r}")
            user_id = user.id
        found = repo.list_tokens(conn, user_id)
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "username": t.username,
                    "name": t.name,
                    "prefix": t.prefix,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                }
                for t in found
            ]
        )
        return
    table = DataTable("id", "user", "name", "starts with", "created", "last used", "expires")
    for t in found:
        table.add_row(
            str(t.id),
            t.username,
            t.name,
            t.prefix,
            t.created_at.isoformat(timespec="seconds"),
            t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "",
            t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
        )
    console().print(table)


@tokens.command("revoke")
@click.argument("number", type=RECORD_ID, metavar="TOKEN_ID")
@click.pass_obj
def revoke_token(state: CliState, number: int) -> None:
    """Revoke the API token TOKEN_ID (see `tokens list`): requests sending it are refused from now on."""
    from ductwork.store.engine import transaction
    from ductwork.store.repo import users as repo

    with transaction(store(state)) as conn:
        repo.delete_token(conn, number)
    click.echo(f"API token {number} revoked")
