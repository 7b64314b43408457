"""``airflow.macros``: what templates reach as ``macros.NAME``, importable by DAG code too
(``from airflow.macros import ds_add``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from random import random
from typing import Any

import dateutil

from ductwork.core.templating import MACROS

from .._context import _diff_for_humans


def ds_add(ds: str, days: int) -> str:
    """``ds`` (``YYYY-MM-DD``) plus ``days`` (which may be negative), as ``YYYY-MM-DD``."""
    return str(MACROS["ds_add"](ds, days))


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """``ds`` read with ``input_format`` and written with ``output_format``."""
    return str(MACROS["ds_format"](ds, input_format, output_format))


def datetime_diff_for_humans(dt: Any, since: Any = None) -> str:
    """How long ago (or in how long) ``dt`` is, in words: ``"2 days ago"``."""
    return _diff_for_humans(dt, since)


__all__ = [
    "datetime",
    "datetime_diff_for_humans",
    "dateutil",
    "ds_add",
    "ds_format",
    "json",
    "random",
    "time",
    "timedelta",
    "uuid",
]
