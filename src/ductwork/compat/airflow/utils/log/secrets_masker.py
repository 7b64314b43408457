"""``airflow.utils.log.secrets_masker``: ``mask_secret`` and ``redact``, over Ductwork's masker.

DAG code hands a value it fetched (a token from an API, a password read from a file) to
``mask_secret`` so that it shows as ``***`` in the task's log; Ductwork's masker does the same
for every log line and rendered field of the process (``ductwork.core.masking``).
"""

from __future__ import annotations

from typing import Any

from ductwork.core.masking import MASKER, is_secret_name
from ductwork.core.masking import mask_secret as _mask_secret


def mask_secret(secret: Any, name: str | None = None) -> None:
    """Hide ``secret`` (a string, or every string in a dict or list) from now on."""
    _mask_secret(secret)


def redact(value: Any, name: str | None = None, max_depth: int | None = None) -> Any:
    """``value`` with the registered secrets masked (all of it when ``name`` looks secret)."""
    if name is not None and should_hide_value_for_key(name) and value not in (None, ""):
        return "***"
    return MASKER.mask_value(value)


def should_hide_value_for_key(name: Any) -> bool:
    """Whether a value under ``name`` (``password``, ``api_key``...) is a secret."""
    return isinstance(name, str) and is_secret_name(name)


__all__ = ["mask_secret", "redact", "should_hide_value_for_key"]
