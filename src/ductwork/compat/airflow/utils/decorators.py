"""``airflow.utils.decorators.apply_defaults``: Airflow 1.10's decorator for operator
constructors. Airflow 2 applies ``default_args`` without it and keeps it as a no-op for old
custom operators; so does Ductwork."""

from __future__ import annotations

from typing import TypeVar

_F = TypeVar("_F")


def apply_defaults(func: _F) -> _F:
    return func


__all__ = ["apply_defaults"]
