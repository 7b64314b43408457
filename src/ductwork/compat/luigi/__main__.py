"""``python -m luigi``."""

from __future__ import annotations

from .cmdline import luigi

luigi()
