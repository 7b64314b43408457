"""Arguments that are not UTF-8 text are refused by name, before a command uses them.

A shell passes bytes; Python hands a byte that is not UTF-8 (``K\\xf6ln`` typed in a Latin-1
terminal, a name read from an old file) to the command as a lone surrogate, which no database,
JSON document or log file can hold. ``variables set city $'K\\xf6ln'``, ``pools set``,
``runs show``, ``trigger --conf`` and most other commands ended in a ``UnicodeEncodeError``
traceback from the database driver (exit status 1, as if the command had found a failure).
File paths (``click.Path`` options) are left alone: the file system takes any bytes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import click


def undecodable(value: object) -> str | None:
    """The first string in ``value`` (a string, or the tuple of a repeated option or of
    ``nargs=-1``) that holds bytes that were not UTF-8, or None."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    for item in items:
        if isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def check_text(ctx: click.Context) -> None:
    """Refuse (click's usage error, exit status 2) the first text parameter of ``ctx``'s
    command whose value is not UTF-8, naming the parameter and the first byte that is not
    (not the value: it may be a password or a URI holding one)."""
    for param in ctx.command.params:
        if isinstance(param.type, (click.Path, click.File)):
            continue
        bad = undecodable(ctx.params.get(param.name or ""))
        if bad is not None:
            at = next((i for i, char in enumerate(bad) if "\udc80" <= char <= "\udcff"), 0)
            raise click.BadParameter(
                f"not UTF-8 text: character {at + 1} is the byte {os.fsencode(bad[at])!r} "
                "(typed in another encoding?); names and values are kept as UTF-8",
                ctx=ctx,
                param=param,
            )


def check_text_arguments(command: click.Command) -> None:
    """Have ``command`` and every command under it check their text parameters first."""
    for leaf in _leaves(command):
        callback = leaf.callback
        if callback is not None and not getattr(callback, "checks_text", False):
            leaf.callback = _checked(callback)


def _leaves(command: click.Command) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _leaves(sub)


def _checked(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_text(click.get_current_context())
        return callback(*args, **kwargs)

    wrapper.checks_text = True  # type: ignore[attr-defined]
    return wrapper
