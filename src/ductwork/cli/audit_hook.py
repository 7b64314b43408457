"""Every change made from the command line goes into the audit log, recorded in one place.

``instrument_command(name, command)`` wraps the callback of each mutating command named in ``MUTATIONS``: when
the command has done its work (it returned, or exited on purpose after changing something,
as ``trigger --wait`` does when the run failed), one entry is written with the operating-system
user, the host, the action, its target and the command's options (secrets redacted by
``services.audit``). A dry run, a refused change and an aborted confirmation record nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

import click

from ductwork.cli.state import CliState

Target = Callable[[Mapping[str, Any]], str]


def _run(p: Mapping[str, Any]) -> str:
    return f"{p['flow_id']}/{p['run_id']}"


def _key(name: str) -> Target:
    return lambda p: str(p.get(name) or "")


MUTATIONS: dict[tuple[str, ...], tuple[str, Target]] = {
    ("trigger",): ("run.trigger", _key("flow_ref")),
    ("backfill",): ("run.backfill", _key("flow_ref")),
    ("runs", "cancel"): ("run.cancel", _run),
    ("runs", "delete"): ("run.delete", _run),
    ("tasks", "clear"): ("tasks.clear", _run),
    ("tasks", "mark"): ("tasks.mark", _run),
    ("flows", "pause"): ("flow.pause", _key("flow_ref")),
    ("flows", "unpause"): ("flow.unpause", _key("flow_ref")),
    ("pools", "set"): ("pool.set", _key("name")),
    ("pools", "delete"): ("pool.delete", _key("name")),
    ("users", "create"): ("user.create", _key("username")),
    ("users", "delete"): ("user.delete", _key("username")),
    ("users", "password"): ("user.change", _key("username")),  # as the API and the UI record it
    ("users", "role"): ("user.change", _key("username")),
    ("tokens", "create"): ("token.create", _key("username")),
    ("tokens", "revoke"): ("token.delete", _key("number")),  # not "token_id": redacted as a secret-looking name
    ("connections", "add"): ("connection.set", _key("name")),
    ("connections", "delete"): ("connection.delete", _key("name")),
    ("connections", "rotate-key"): ("connection.rotate_key", lambda p: "*"),
    ("variables", "set"): ("variable.set", _key("name")),
    ("variables", "delete"): ("variable.delete", _key("name")),
    ("db", "clean"): ("db.clean", lambda p: str(p.get("flow_id") or "*")),
    ("db", "reset"): ("db.reset", lambda p: "*"),
    ("pipelines", "put"): ("pipeline.put", lambda p: str(p.get("name") or p.get("file") or "")),
    ("pipelines", "activate"): ("pipeline.activate", _key("name")),
    ("pipelines", "deactivate"): ("pipeline.deactivate", _key("name")),
    ("assets", "update"): ("asset.update", _key("uri")),
    ("triggers", "dead-letters", "replay"): ("dead_letter.replay", lambda p: ",".join(map(str, p["letter_ids"]))),
    ("triggers", "dead-letters", "drop"): (
        "dead_letter.drop",
        lambda p: str(p.get("flow_id") or ",".join(map(str, p["letter_ids"]))),
    ),
}
_QUIET = frozenset({"as_json"})
"""Options that change only how the outcome is shown."""


def instrument_command(name: str, top: click.Command) -> None:
    """Wrap the mutating commands at or under the top-level command ``name`` (loaded on first
    use by the CLI's group) so that they are audited."""
    for path, (action, target) in MUTATIONS.items():
        if path[0] != name:
            continue
        command: click.Command | None = top
        for part in path[1:]:
            command = command.commands.get(part) if isinstance(command, click.Group) else None
        if command is not None and command.callback is not None and not getattr(command.callback, "audited", False):
            command.callback = _audited(command.callback, action, target)


def _audited(callback: Callable[..., Any], action: str, target: Target) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        params = dict(ctx.params)
        if params.get("dry_run"):
            return callback(*args, **kwargs)
        from ductwork.services import audit  # noqa: F401 - imported now, not after the change (trigger --wait returns sooner)
        from ductwork.store.types import utcnow

        # When the change was asked for: the entry is written once the command ends, which for
        # `trigger --wait` is the run's end, minutes or hours after the run was made.
        asked = utcnow()
        try:
            result = callback(*args, **kwargs)
        except SystemExit as exc:
            if exc.code in (None, 0, 1, 3):  # the change was made; the exit status reports on it (3: a
                # `trigger --wait` that timed out)
                _record(ctx, action, target(params), params, exit_status=exc.code or 0, at=asked)
            raise
        _record(ctx, action, target(params), params, at=asked)
        return result

    wrapper.audited = True  # type: ignore[attr-defined]
    return wrapper


def command_details(params: Mapping[str, Any], exit_status: int | None = None) -> dict[str, Any]:
    """What the audit entry of a command keeps of its parameters: those given, except how the
    outcome is shown, and the exit status when it was not 0."""
    details = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in params.items()
        if k not in _QUIET and v not in (None, False, (), [], "")
    }
    if exit_status:
        details["exit_status"] = exit_status
    return details


def _record(
    ctx: click.Context,
    action: str,
    target: str,
    params: Mapping[str, Any],
    *,
    exit_status: int | None = None,
    at: dt.datetime | None = None,
) -> None:
    from ductwork.services import audit
    from ductwork.store.engine import create_engine

    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - the root group always sets it
        return
    details = command_details(params, exit_status)
    # The command's own engine when it made one (its pool holds a connection already).
    engine = state.engine if state.engine is not None else create_engine(state.settings.db_url)
    try:
        audit.record(engine, audit.cli_actor(), action, target, details, at=at)
    finally:
        if engine is not state.engine:
            engine.dispose()
