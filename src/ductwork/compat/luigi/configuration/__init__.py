"""``luigi.configuration``: ``luigi.cfg`` / ``luigi.toml`` settings."""

from __future__ import annotations

from .core import LuigiConfigParser, LuigiTomlParser, add_config_path, get_config

__all__ = ["LuigiConfigParser", "LuigiTomlParser", "add_config_path", "get_config"]
