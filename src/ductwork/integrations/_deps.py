"""Lazy imports of optional client libraries, with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ductwork.errors import DuctworkError


class MissingDependencyError(DuctworkError, ImportError):
    """An optional library that an integration needs is not installed."""


def require(module: str, *, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming ``extra``.

    ``what`` says who needs it, e.g. ``"task 'load': HttpOperator"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the Python package {module.split('.')[0]!r}, which is not installed "
            f"({exc}); install it with: pip install 'ductwork[{extra}]'"
        ) from exc


def task_label(task_id: str, kind: str) -> str:
    return f"task {task_id!r} ({kind})"
