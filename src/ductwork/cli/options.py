"""Options several commands share, parsed the same way everywhere."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

import click

from ductwork.core.json_text import json_object
from ductwork.errors import ParameterError

LOG_LEVEL = click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False)
"""``--log-level`` of the long-running commands: a misspelt level is click's one-line error
naming the choices (it was a traceback from the logging module, or from uvicorn's table)."""


def parse_param_options(values: Sequence[str]) -> dict[str, str]:
    """``--param k=v`` options as a dict; a value without ``=`` is an error naming it."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--param {item!r}: expected NAME=VALUE")
        if key.strip() in out and out[key.strip()] != value:  # which one was meant? (it kept the last)
            # A list parameter (an AWS isArray one) takes its items as one JSON list.
            items = json.dumps([out[key.strip()], value])
            raise ParameterError(
                f"--param {key.strip()!r} is given twice, as {out[key.strip()]!r} and {value!r}; "
                f"for a list, give it once: --param '{key.strip()}={items}'"
            )
        out[key.strip()] = value
    return out


def conf_option(text: str | None) -> dict[str, Any]:
    """``--conf '{"k": "v"}'``: a run's configuration, a JSON object (Airflow's ``dag_run.conf``)."""
    return json_object_option(text, "--conf")


def json_object_option(text: str | None, option: str) -> dict[str, Any]:
    """An option whose value is a JSON object (``--conf``, ``--task-params``); empty when not given."""
    return json_object(text, option, example='{"key": "value"}')


RECORD_ID = click.IntRange(1, 2**31 - 1)
"""The id of a recorded thing (a dead letter, an API token, a pipeline version), as the REST API
takes it: a number past what the database's integer column holds was an ``OverflowError``
traceback (SQLite) where it names nothing."""

OFFSET = click.IntRange(0, 1_000_000_000)
"""``--offset`` of a listing, as the REST API's ``MAX_OFFSET``."""


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class NegativeNumberValues(click.Command):
    """A command whose last argument may be a negative number, as argparse (Airflow's CLI) takes
    it: ``ductwork variables set offset -5`` said "No such option '-5'". A negative number
    typed before ``--`` is moved after it, where click reads it as the value it is; options
    keep their meaning, and a misspelt one (``--descripton``) is still refused."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            head, tail = args[:cut], args[cut + 1 :]
        else:
            head, tail = args, []
        first = next((i for i, a in enumerate(head) if not a.startswith("-")), len(head))
        moved = [i for i, a in enumerate(head) if i > first and _NEGATIVE_NUMBER.match(a)]
        if moved:  # only after the first value (NAME): `set -5 x` must not become `set x -5`
            kept = [a for i, a in enumerate(head) if i not in moved]
            args = [*kept, "--", *(head[i] for i in moved), *tail]
        return super().parse_args(ctx, args)


FIRST_YEAR, LAST_YEAR = 1900, 9000
"""The years a logical date may fall in (in UTC), as ``services.runs.check_logical_date`` and
the REST API allow: a schedule computing past them reaches the end of what a datetime holds."""


def date_option(text: str | None, option: str) -> dt.datetime | None:
    """An ISO date or date-time typed for ``option`` (``--date``, ``--start``, ``--since``, a
    ``LOGICAL_DATE`` argument); ``Z`` for UTC. Each command read these its own way, and a year
    such as 9999 (or 0001) ended most of them in an ``OverflowError`` traceback, or was recorded
    by ``run`` while ``trigger`` refused it: one reader, one message, for every command."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{option} {text!r}: expected an ISO date such as 2024-01-31") from None
    try:
        year = value.astimezone(dt.UTC).year if value.tzinfo is not None else value.year
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        year = LAST_YEAR + 1
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ParameterError(
            f"{option} {text!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR} (in UTC), "
            "the years a schedule computes with"
        )
    return value
