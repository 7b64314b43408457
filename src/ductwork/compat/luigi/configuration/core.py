"""Luigi's configuration files, read the way Luigi reads them, feeding Ductwork's parameter
sources: ``/etc/luigi/luigi.cfg``, ``luigi.cfg`` (and ``client.cfg``) in the working directory,
``$LUIGI_CONFIG_PATH``, and ``luigi.toml``. A task parameter ``n`` of ``Fib`` is set by
``[Fib] n = 10``; ``--Fib-n 10`` on the command line wins, as in Luigi.
"""

from __future__ import annotations

import configparser
import contextvars
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ductwork.core.config import ParamSources, current_sources


class LuigiConfigParser(configparser.ConfigParser):
    """Luigi's INI settings; one shared instance (``instance()``), as Luigi has."""

    NO_DEFAULT = object()
    _instance: ClassVar[LuigiConfigParser | None] = None
    _config_paths: ClassVar[list[str]] = [
        "/etc/luigi/client.cfg",
        "/etc/luigi/luigi.cfg",
        "client.cfg",
        "luigi.cfg",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("interpolation", configparser.BasicInterpolation())
        super().__init__(*args, **kwargs)
        self.version = 0

    @classmethod
    def instance(cls, *args: Any, **kwargs: Any) -> LuigiConfigParser:
        if cls._instance is None:
            cls._instance = cls(*args, **kwargs)
            cls._instance.reload()
        return cls._instance

    @classmethod
    def add_config_path(cls, path: str) -> None:
        cls._config_paths.append(path)
        cls.reload_instance()

    @classmethod
    def reload_instance(cls) -> None:
        cls.instance().reload()

    def reload(self) -> list[str]:
        paths = list(self._config_paths)
        env = os.environ.get("LUIGI_CONFIG_PATH")
        if env:
            paths.append(env)
        self.version += 1
        return self.read([p for p in paths if not p.endswith(".toml")])

    def set(self, section: str, option: str, value: str | None = None) -> None:
        self.version += 1
        super().set(section, option, value)

    def add_section(self, section: str) -> None:
        self.version += 1
        super().add_section(section)

    def get(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().get(section, option, **kwargs)
        except (configparser.NoSectionError, configparser.NoOptionError):
            if default is self.NO_DEFAULT:
                raise
            return default

    def getint(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        value = self.get(section, option, default)
        return value if value is default else int(value)

    def getboolean(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        value = self.get(section, option, default)
        return (
            value if value is default or isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        )


class LuigiTomlParser:
    """``luigi.toml`` (read-only here)."""

    @staticmethod
    def read(path: str = "luigi.toml") -> dict[str, Any]:
        file = Path(path)
        if not file.is_file():
            return {}
        with file.open("rb") as fh:
            return tomllib.load(fh)


def get_config(parser: str = "cfg") -> LuigiConfigParser:
    return LuigiConfigParser.instance()


def add_config_path(path: str) -> None:
    LuigiConfigParser.add_config_path(path)


_CACHE: dict[tuple[Any, ...], tuple[ParamSources, tuple[Any, ...]]] = {}
"""Sources by the identity of what they were built from; the entry keeps those objects alive
so that their ids cannot be reused by others while it is cached."""


def _sections(parser: LuigiConfigParser) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        values: dict[str, str] = {}
        for key, value in parser.items(section):
            values[key] = value
            values.setdefault(key.replace("-", "_"), value)
        out[section] = values
    return out


_CMDLINE: contextvars.ContextVar[Any] = contextvars.ContextVar("luigi_cmdline", default=None)


def set_cmdline(parser: Any) -> contextvars.Token[Any]:
    """Make ``parser`` (a ``CmdlineParser``) the command line whose options tasks read."""
    return _CMDLINE.set(parser)


def reset_cmdline(token: contextvars.Token[Any]) -> None:
    _CMDLINE.reset(token)


def luigi_sources() -> ParamSources:
    """Ductwork's active parameter sources with Luigi's files and command line added: the
    command line first, then the environment, then luigi.cfg/luigi.toml, then ductwork.toml."""
    base = current_sources()
    parser = LuigiConfigParser.instance()
    cmdline = _CMDLINE.get()
    key = (id(base), id(parser), parser.version, id(cmdline))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached[0]
    file: dict[str, dict[str, Any]] = {k: dict(v) for k, v in base.file.items() if isinstance(v, Mapping)}
    for section, values in LuigiTomlParser.read().items():
        if isinstance(values, Mapping):
            file.setdefault(section, {}).update({k.replace("-", "_"): v for k, v in values.items()})
    for section, values in _sections(parser).items():
        file.setdefault(section, {}).update(values)
    cli = {k: dict(v) for k, v in base.cli.items()}
    if cmdline is not None:
        for section, values in cmdline.sections.items():
            cli.setdefault(section, {}).update(values)
    sources = ParamSources(cli=cli, env=base.env, file=file, file_path=base.file_path)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (sources, (base, parser, cmdline))
    return sources
