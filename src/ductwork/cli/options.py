"""Options several commands share, parsed the same way everywhere."""

from __future__ import annotations

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
            raise ParameterError(f"--param {key.strip()!r} is given twice, as {out[key.strip()]!r} and {value!r}")
        out[key.strip()] = value
    return out


def conf_option(text: str | None) -> dict[str, Any]:
    """``--conf '{"k": "v"}'``: a run's configuration, a JSON object (Airflow's ``dag_run.conf``)."""
    return json_object_option(text, "--conf")


def json_object_option(text: str | None, option: str) -> dict[str, Any]:
    """An option whose value is a JSON object (``--conf``, ``--task-params``); empty when not given."""
    return json_object(text, option, example='{"key": "value"}')
