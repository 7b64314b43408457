"""``ductwork trigger`` handed to the scheduler running on the same home (ADR 0023).

A ``ductwork trigger`` that writes the run itself spends 0.4-0.5 s starting (SQLAlchemy alone
imports in 0.25 s, a PostgreSQL driver 0.2 s more) for a write of a few milliseconds; the
scheduler, which has all of it loaded, starts the task 10 ms after the write. So when a
scheduler runs on this machine for the same home, flows folder and database, the command
sends it what was typed over a local socket: the scheduler does exactly what the command
would (records the flow as its file is now, queues the run, writes the audit entry as the
command's user, and with ``--wait`` answers when the run ends) and the command prints the
answer. Launch to the task's start is then the interpreter's start plus that work.

This module runs before the rest of the CLI is imported, so it imports only the standard
library's light modules until the run exists; Rich comes after, to print.

Whenever the scheduler cannot or should not do it (no scheduler, another home or database, an
option this module does not read, ``--help``, bad input, an error of any kind before the run
exists) the answer is ``None`` and the command runs as before: its errors and messages are the
CLI's own, word for word. Once the scheduler has said the run exists, the command never writes
it again.
"""

from __future__ import annotations

import os
import sys
import time

from ductwork.cli import scheduler_socket

TYPE_CHECKING = False  # ``typing`` and ``dataclasses`` would double the command's start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

GLOBAL_VALUES = {"--config": "config_path", "--home": "home", "--flows-folder": "flows_folder"}
TRIGGER_VALUES = {
    "--param": "param_values",
    "-p": "param_values",
    "--conf": "conf_text",
    "--date": "logical_date",
    "--run-id": "run_id",
    "--timeout": "timeout",
}
TRIGGER_FLAGS = {"--wait": "wait", "--json": "as_json"}


class Typed:
    """What was typed, with the names the click command gives its parameters."""

    def __init__(self) -> None:
        self.flow_ref = ""
        self.param_values: list[str] = []
        self.conf_text: str | None = None
        self.logical_date: str | None = None
        self.run_id: str | None = None
        self.wait = False
        self.timeout: float | None = None
        self.as_json = False
        self.config_path: str | None = None
        self.home: str | None = None
        self.flows_folder: str | None = None

    def command_params(self) -> dict[str, Any]:
        """The parameters as the click command receives them (the audit entry records these)."""
        return {
            "flow_ref": self.flow_ref,
            "param_values": list(self.param_values),
            "conf_text": self.conf_text,
            "logical_date": self.logical_date,
            "run_id": self.run_id,
            "wait": self.wait,
            "timeout": self.timeout,
            "as_json": self.as_json,
        }


def _option(argv: list[str], i: int, values: dict[str, str], flags: dict[str, str], into: Typed) -> int | None:
    """Read the option at ``argv[i]`` into ``into``; the index after it, or None for anything
    this reader does not take as click would (the CLI then reads it itself)."""
    token = argv[i]
    if token in flags:
        setattr(into, flags[token], True)
        return i + 1
    name, eq, value = token.partition("=")
    if eq and name.startswith("--") and name in values:
        _set(into, values[name], value)
        return i + 1
    if token in values:
        if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
            return None
        _set(into, values[token], argv[i + 1])
        return i + 2
    if token.startswith("-p") and len(token) > 2 and "-p" in values and not token.startswith("-p="):
        _set(into, values["-p"], token[2:])
        return i + 1
    return None


def _set(into: Typed, name: str, value: str) -> None:
    if name == "param_values":
        into.param_values.append(value)
    else:
        setattr(into, name, value)


def parse(argv: list[str]) -> Typed | None:
    """``ductwork [global options] trigger FLOW [options]`` as click reads it, or None for any
    other command line (another command, ``--help``, an option or form not handled here, or
    one that click would refuse)."""
    if any("\0" in token for token in argv):  # never from a shell: click would fail on it
        return None
    if not all(_utf8(token) for token in argv):  # bytes of another encoding: the CLI refuses them by name
        return None
    typed = Typed()
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        after = _option(argv, i, GLOBAL_VALUES, {}, typed)
        if after is None:
            return None
        i = after
    if i >= len(argv) or argv[i] != "trigger":
        return None
    i += 1
    flow: str | None = None
    while i < len(argv):
        token = argv[i]
        if token.startswith("-") and token != "-":
            after = _option(argv, i, TRIGGER_VALUES, TRIGGER_FLAGS, typed)
            if after is None:
                return None
            i = after
        elif flow is None:
            flow = token
            i += 1
        else:
            return None  # click: unexpected extra argument
    if flow is None:
        return None
    typed.flow_ref = flow
    if typed.timeout is not None:
        try:
            typed.timeout = float(typed.timeout)
        except ValueError:
            return None
        if not typed.timeout >= 0 or not typed.wait:  # click refuses these (NaN too): the CLI says why
            return None
    if typed.config_path is not None and os.path.isdir(typed.config_path):
        return None  # click refuses a folder for --config (dir_okay=False)
    return typed


def _utf8(token: str) -> bool:
    """Whether ``token`` came as UTF-8 (the others hold lone surrogates, which the scheduler
    could not record: it logged a warning and left the command to fail)."""
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Where:
    """The home, flows folder and database the command would use, as ``Settings.load`` reads
    them (flag, then ``DUCTWORK_*`` variable, then ``ductwork.toml``, then the default)."""

    def __init__(self, home: str, flows_folder: str, database_url: str, cwd: str) -> None:
        self.home = home
        self.flows_folder = flows_folder
        self.database_url = database_url
        self.cwd = cwd


_EMPTY_IS_UNSET = ("home", "flows_folder", "database_url")
"""Settings whose empty variable is as if unset, as ``Settings.load`` reads them (its own
``_EMPTY_IS_UNSET``; this path imports no settings module): ``DUCTWORK_DATABASE_URL=`` in front
of a ductwork.toml naming a database took the default one here while the command used the
file's (``tests/cli/test_fast_trigger.py`` checks the two agree)."""


def locate(typed: Typed, environ: Mapping[str, str], cwd: str) -> Where | None:
    """Where the command would work, or None when it cannot be told cheaply and surely here
    (a settings file that does not parse or is missing while named: the CLI says why)."""
    config = typed.config_path or environ.get("DUCTWORK_CONFIG") or "ductwork.toml"
    config_file = os.path.join(cwd, config)
    section: dict[str, Any] = {}
    if os.path.isfile(config_file):
        import tomllib

        try:
            with open(config_file, "rb") as f:
                section = tomllib.load(f).get("ductwork", {})
        except (OSError, ValueError):
            return None
        if not isinstance(section, dict):
            return None
    elif typed.config_path is not None or environ.get("DUCTWORK_CONFIG"):
        return None  # a settings file named but missing: the CLI says so

    def pick(name: str, flag: str | None) -> str | None:
        if flag is not None:
            return flag
        key = f"DUCTWORK_{name.upper()}"
        if key in environ and not (name in _EMPTY_IS_UNSET and environ[key].strip() == ""):
            return environ[key].strip()  # as Settings.load: a secret file's newline is not part of it
        value = section.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value is not None and name in ("home", "flows_folder"):  # relative to the file, as Settings reads it
            return os.path.join(os.path.dirname(config), os.path.expanduser(str(value)))
        return None if value is None else str(value)

    handoff = pick("trigger_handoff", None)
    if handoff is not None and handoff.strip().lower() not in ("1", "true", "yes", "on"):
        return None  # off (the command writes its runs itself), or not a boolean: the CLI says so
    home = pick("home", typed.home)
    if home is None:
        home = os.path.join(os.path.expanduser("~"), ".ductwork")
    flows = pick("flows_folder", typed.flows_folder)
    if flows is None:
        flows = "flows"
    if not home or not flows:
        return None
    database_url = pick("database_url", None) or ""
    return Where(
        home=scheduler_socket.real_home(os.path.join(cwd, os.path.expanduser(home))),
        flows_folder=os.path.realpath(os.path.join(cwd, os.path.expanduser(flows))),
        database_url=database_url,
        cwd=cwd,
    )


def _flow_ref(ref: str, cwd: str) -> str:
    """A flow named by its file, with the file's path made absolute (the scheduler's working
    folder is not the command's)."""
    file_part, colon, rest = ref.partition(":")
    if file_part.endswith((".py", ".json", ".yaml", ".yml")) or os.path.isfile(os.path.join(cwd, file_part)):
        return os.path.join(cwd, file_part) + colon + rest
    return ref


_USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")
"""Where ``getpass.getuser`` looks first, in its order: the audit entry names the same user."""


def request(typed: Typed, where: Where, environ: Mapping[str, str]) -> dict[str, Any]:
    user = next((environ[k] for k in _USER_VARIABLES if environ.get(k)), None)
    return {
        "protocol": scheduler_socket.PROTOCOL,
        "command": "trigger",
        "home": where.home,
        "flows_folder": where.flows_folder,
        "database_url": where.database_url,
        "cwd": where.cwd,
        "user": user,
        "flow": _flow_ref(typed.flow_ref, where.cwd),
        "params": typed.command_params(),
    }


def attempt(argv: list[str], environ: Mapping[str, str], cwd: str) -> int | None:
    """Have the scheduler on this home do ``ductwork trigger``: the command's exit status, or
    None when the command must do it itself (nothing was done on its behalf)."""
    if not scheduler_socket.available():
        return None
    typed = parse(argv)
    if typed is None:
        return None
    where = locate(typed, environ, cwd)
    if where is None:
        return None
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(scheduler_socket.address(where.home))
            asked = time.time()
            sock.sendall(json.dumps(request(typed, where, environ)).encode() + b"\n")
        except OSError:  # no scheduler here, or it went away: nothing was sent
            return None
        _prepare_output(typed)  # while the scheduler queues the run (another process, another core)
        lines = scheduler_socket.Lines(sock)
        try:
            answer = lines.next()
        except (OSError, ValueError):
            # The request was sent and no answer came: the scheduler stopped at that moment.
            # A run named by --run-id can be looked up; any other cannot be told from a run
            # someone else queued, and writing it again could queue it twice.
            found = _named_run(typed, asked)
            if found is not None:
                return _report(typed, found, None)
            sys.stderr.write(
                "Error: the scheduler stopped while taking this trigger; the run may or may not have been "
                f"queued: see `ductwork runs list {typed.flow_ref}`\n"
            )
            return 2
        if "run" not in answer:
            return None  # declined: the command does it itself, and says what went wrong if anything did
        return _report(typed, answer, lines)
    finally:
        sock.close()


def _prepare_output(typed: Typed) -> None:
    """Import what printing the answer needs now, not after the answer came: a short run ends
    before Rich is imported (30-40 ms), and ``--wait`` would return that much after its end."""
    from ductwork.cli import output  # noqa: F401

    if typed.wait and not typed.as_json:
        import rich.table  # noqa: F401


def _named_run(typed: Typed, asked: float) -> dict[str, Any] | None:
    """The run this command named, if the database holds it (None when it does not, or the
    command named its flow by file and so cannot know the flow's id without loading it)."""
    if typed.run_id is None or ":" in typed.flow_ref or typed.flow_ref.endswith((".py", ".json", ".yaml", ".yml")):
        return None
    import datetime as dt

    from ductwork.cli.runs_cmd import run_named_in_database
    from ductwork.errors import DuctworkError

    try:
        since = dt.datetime.fromtimestamp(asked - 1.0, dt.UTC)  # the clock's grain in the database
        return run_named_in_database(typed, typed.flow_ref, typed.run_id, since)
    except DuctworkError:  # the database is away too: the command says it cannot tell
        return None


def _report(typed: Typed, created: dict[str, Any], lines: scheduler_socket.Lines | None) -> int:
    """Print what the command prints once the run exists; with ``--wait``, after its end.
    Without ``lines`` (the scheduler stopped before answering) the wait is on the database."""
    from ductwork.cli import output

    if not typed.wait:
        _print_run(typed, created["run"])
        return 0
    try:
        try:
            if lines is None:
                raise OSError("the scheduler stopped before it answered")
            ended = lines.next()
            while "note" in ended:  # said while it waits, as the command waiting itself says it
                sys.stderr.write(f"{ended['note']}\n")
                ended = lines.next()
        except (OSError, ValueError):  # the scheduler stopped: wait on the database instead
            from ductwork.cli.runs_cmd import wait_in_database
            from ductwork.errors import DuctworkError

            try:
                ended = wait_in_database(typed, created["pk"])
            except DuctworkError as exc:  # as the CLI shows its errors
                sys.stderr.write(f"Error: {exc}\n")
                return 2
    except KeyboardInterrupt:
        from ductwork.cli.wait_status import stopped_waiting

        return stopped_waiting(created["run"]["flow_id"], created["run"]["run_id"])
    run = ended["run"]
    if typed.as_json:
        output.print_json(output.waited_run_json(run, ended["tasks"], ended["reason"], ended.get("errors")))
    else:
        _print_run(typed, run)
        notes = {**output.error_notes(ended.get("errors")), **(ended.get("notes") or {})}
        output.print_run_states(run["flow_id"], run["run_id"], run["state"], ended["tasks"], ended["reason"], notes)
    from ductwork.cli.wait_status import wait_status

    return wait_status(run["state"], typed.timeout)


def _print_run(typed: Typed, run: dict[str, Any]) -> None:
    from ductwork.cli import output

    if typed.as_json:
        output.print_json(run)
    else:
        from rich.markup import escape

        output.console().print(f"run {escape(run['flow_id'])} {escape(run['run_id'])}: {output.styled(run['state'])}")
