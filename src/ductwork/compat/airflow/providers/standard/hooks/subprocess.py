"""``airflow.providers.standard.hooks.subprocess``: ``airflow.hooks.subprocess``'s shim."""

from __future__ import annotations

from ....hooks.subprocess import SubprocessHook, SubprocessResult, working_directory

__all__ = ["SubprocessHook", "SubprocessResult", "working_directory"]
