"""``airflow.hooks.base_hook``: Airflow 1.10's module name for ``BaseHook``."""

from __future__ import annotations

from .base import BaseHook

__all__ = ["BaseHook"]
