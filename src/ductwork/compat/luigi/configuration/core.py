"""Luigi's configuration files, read the way Luigi reads them, feeding Ductwork's parameter
sources: ``/etc/luigi/luigi.cfg``, ``luigi.cfg`` (and ``client.cfg``) in the working directory,
``$LUIGI_CONFIG_PATH``, and ``luigi.toml``. A task parameter ``n`` of ``Fib`` is set by
``[Fib] n = 10``; ``--Fib-n 10`` on the command line wins, as in Luigi.
"""

from __future__ import annotations

import configparser
import contextvars
import os
import re
import tomllib
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ductwork.core.config import ParamSource, ParamSources, current_sources


class InterpolationMissingEnvvarError(configparser.InterpolationError):
    """A value refers to an environment variable (``${NAME}``) that is not set."""

    def __init__(self, option: str, section: str, value: str, envvar: str) -> None:
        msg = (
            f"Config refers to a nonexisting environment variable {envvar}. "
            f"Section [{section}], option {option}={value}"
        )
        super().__init__(option, section, msg)


class EnvironmentInterpolation(configparser.Interpolation):
    """``${NAME}`` in a value is the environment variable ``NAME``, as in Luigi's files
    (``root = ${HOME}/data``); a variable that is not set is an error naming it."""

    _ENVRE = re.compile(r"\$\{([^}]+)\}")

    def before_get(self, parser: Any, section: str, option: str, value: str, defaults: Any) -> str:
        parts: list[str] = []
        rest = value
        while rest:
            match = self._ENVRE.search(rest)
            if match is None:
                parts.append(rest)
                break
            envvar = match.group(1)
            if envvar not in os.environ:
                raise InterpolationMissingEnvvarError(option, section, value, envvar)
            parts += [rest[: match.start()], os.environ[envvar]]
            rest = rest[match.end() :]
        return "".join(parts)


class CombinedInterpolation(configparser.Interpolation):
    """Several interpolations in turn: Luigi's ``%(name)s`` then ``${NAME}``."""

    def __init__(self, interpolations: list[configparser.Interpolation]) -> None:
        self._interpolations = interpolations

    def before_get(self, parser: Any, section: str, option: str, value: str, defaults: Any) -> str:
        for interpolation in self._interpolations:
            value = interpolation.before_get(parser, section, option, value, defaults)
        return value

    def before_read(self, parser: Any, section: str, option: str, value: str) -> str:
        for interpolation in self._interpolations:
            value = interpolation.before_read(parser, section, option, value)
        return value

    def before_set(self, parser: Any, section: str, option: str, value: str) -> str:
        for interpolation in self._interpolations:
            value = interpolation.before_set(parser, section, option, value)
        return value

    def before_write(self, parser: Any, section: str, option: str, value: str) -> str:
        for interpolation in self._interpolations:
            value = interpolation.before_write(parser, section, option, value)
        return value


class LuigiConfigParser(configparser.ConfigParser):
    """Luigi's INI settings; one shared instance (``instance()``), as Luigi has. As Luigi's,
    option names keep their case (a parameter ``batchSize`` is ``[Task] batchSize``), values
    may use ``%(name)s`` and ``${ENV_VAR}``, and ``some_key`` finds ``some-key`` too."""

    NO_DEFAULT = object()
    _instance: ClassVar[LuigiConfigParser | None] = None
    _config_paths: ClassVar[list[str]] = [
        "/etc/luigi/client.cfg",
        "/etc/luigi/luigi.cfg",
        "client.cfg",
        "luigi.cfg",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "interpolation", CombinedInterpolation([configparser.BasicInterpolation(), EnvironmentInterpolation()])
        )
        super().__init__(*args, **kwargs)
        self.version = 0

    def optionxform(self, optionstr: str) -> str:
        return optionstr

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
        """As Luigi's: a section not there yet is added."""
        self.version += 1
        if not super().has_section(section):
            super().add_section(section)
        super().set(section, option, value)

    def add_section(self, section: str) -> None:
        self.version += 1
        super().add_section(section)

    def _get_with_default(
        self, method: Callable[..., Any], section: str, option: str, default: Any, expected_type: Any = None, **kw: Any
    ) -> Any:
        """``method``'s value of ``[section] option`` (written with underscores or dashes),
        else ``default`` when one is given (of ``expected_type``, or ``None``), as Luigi's."""
        try:
            try:
                return method(self, section, option.replace("-", "_"), **kw)
            except (configparser.NoOptionError, configparser.NoSectionError):
                return method(self, section, option.replace("_", "-"), **kw)
        except (configparser.NoOptionError, configparser.NoSectionError):
            if default is self.NO_DEFAULT:
                raise
            if expected_type is not None and default is not None and not isinstance(default, expected_type):
                raise
            return default

    def has_option(self, section: str, option: str) -> bool:
        return super().has_option(section, option.replace("-", "_")) or super().has_option(
            section, option.replace("_", "-")
        )

    def get(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._get_with_default(configparser.ConfigParser.get, section, option, default, **kwargs)

    def getboolean(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        method = configparser.ConfigParser.getboolean
        return self._get_with_default(method, section, option, default, bool, **kwargs)

    def getint(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        return self._get_with_default(configparser.ConfigParser.getint, section, option, default, int, **kwargs)

    def getfloat(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        return self._get_with_default(configparser.ConfigParser.getfloat, section, option, default, float, **kwargs)

    def getintdict(self, section: str) -> dict[str, int]:
        """``[section]`` as whole numbers (``[resources]``), without the ``[DEFAULT]`` keys."""
        if not super().has_section(section):
            return {}
        defaults = set(self.defaults())
        return {key: int(value) for key, value in self.items(section) if key not in defaults}


class LuigiTomlParser:
    """Luigi's TOML settings: ``/etc/luigi/luigi.toml``, ``luigi.toml``, and the files given to
    ``add_config_path`` or ``$LUIGI_CONFIG_PATH`` that end in ``.toml``. The files are read
    again whenever the parameter sources are rebuilt; what ``set`` gives stays over them."""

    NO_DEFAULT = object()
    _instance: ClassVar[LuigiTomlParser | None] = None
    _config_paths: ClassVar[list[str]] = ["/etc/luigi/luigi.toml", "luigi.toml"]
    version: ClassVar[int] = 0
    """Bumped by ``set`` and ``add_config_path``, so that cached parameter sources are rebuilt."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self._set: dict[str, dict[str, Any]] = {}

    @classmethod
    def instance(cls) -> LuigiTomlParser:
        if cls._instance is None:
            cls._instance = cls()
            cls._instance.reload()
        return cls._instance

    @classmethod
    def add_config_path(cls, path: str) -> None:
        cls._config_paths.append(path)
        LuigiTomlParser.version += 1
        cls.instance().reload()

    def reload(self) -> dict[str, dict[str, Any]]:
        paths = list(self._config_paths)
        env = os.environ.get("LUIGI_CONFIG_PATH")
        if env and env.endswith(".toml"):
            paths.append(env)
        return self.read(paths)

    def read(self, config_paths: list[str] | str = "luigi.toml") -> dict[str, dict[str, Any]]:
        """The sections of the files that exist, later files over earlier ones."""
        data: dict[str, dict[str, Any]] = {}
        for path in [config_paths] if isinstance(config_paths, str) else config_paths:
            file = Path(path)
            if not file.is_file():
                continue
            with file.open("rb") as fh:
                for section, values in tomllib.load(fh).items():
                    if isinstance(values, Mapping):
                        data.setdefault(section, {}).update(values)
        for section, values in self._set.items():
            data.setdefault(section, {}).update(values)
        self.data = data
        return data

    def get(self, section: str, option: str, default: Any = NO_DEFAULT, **kwargs: Any) -> Any:
        try:
            return self.data[section][option]
        except KeyError:
            if default is self.NO_DEFAULT:
                raise
            return default

    getboolean = getint = getfloat = get

    def getintdict(self, section: str) -> dict[str, Any]:
        return self.data.get(section, {})

    def set(self, section: str, option: str, value: Any = None) -> None:
        self._set.setdefault(section, {})[option] = value
        self.data.setdefault(section, {})[option] = value
        LuigiTomlParser.version += 1

    def has_option(self, section: str, option: str) -> bool:
        return section in self.data and option in self.data[section]

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.data[name]


def get_config(parser: str | None = None) -> Any:
    """The shared parser: the INI one, or the TOML one with ``parser="toml"`` (or
    ``$LUIGI_CONFIG_PARSER=toml``), as Luigi's. Tasks read both kinds of files either way."""
    if (parser or os.environ.get("LUIGI_CONFIG_PARSER", "cfg")) == "toml":
        return LuigiTomlParser.instance()
    return LuigiConfigParser.instance()


def add_config_path(path: str) -> bool:
    """Read ``path`` too (after the files read so far): a ``.toml`` file as TOML, else as INI."""
    if not os.path.isfile(path):
        warnings.warn(f"Config file does not exist: {path}", stacklevel=2)
        return False
    if path.endswith(".toml"):
        LuigiTomlParser.add_config_path(path)
    else:
        LuigiConfigParser.add_config_path(path)
    return True


class _Section(Mapping[str, Any]):
    """One section of the INI files for the parameter sources, each value interpolated when a
    parameter reads it: a ``${NAME}`` that is not set fails the task that reads that option
    (naming it), as in Luigi, not every task of the build. ``some_key`` also finds ``some-key``."""

    def __init__(self, parser: LuigiConfigParser, section: str) -> None:
        self._parser = parser
        self._section = section
        names = parser.options(section)
        self._names = list(dict.fromkeys([*names, *(n.replace("-", "_") for n in names)]))

    def __getitem__(self, key: str) -> Any:
        if key not in self._names:
            raise KeyError(key)
        return self._parser.get(self._section, key)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_CACHE: dict[tuple[Any, ...], tuple[ParamSources, tuple[Any, ...]]] = {}
"""Sources by the identity of what they were built from; the entry keeps those objects alive
so that their ids cannot be reused by others while it is cached."""


def _sections(parser: LuigiConfigParser) -> dict[str, Mapping[str, Any]]:
    return {section: _Section(parser, section) for section in parser.sections()}


_CMDLINE: contextvars.ContextVar[Any] = contextvars.ContextVar("luigi_cmdline", default=None)


def set_cmdline(parser: Any) -> contextvars.Token[Any]:
    """Make ``parser`` (a ``CmdlineParser``) the command line whose options tasks read."""
    return _CMDLINE.set(parser)


def reset_cmdline(token: contextvars.Token[Any]) -> None:
    _CMDLINE.reset(token)


@dataclass(frozen=True)
class _LuigiSources(ParamSources):
    """The sources of a Luigi task, which say a value read from luigi.cfg or luigi.toml was
    written there: a wrong value in luigi.cfg was said to be "in the config file", or in
    ductwork.toml when there was one, which sent the user to the wrong file."""

    ini: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    toml: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def where(self, section: str, name: str, source: ParamSource) -> str:
        if source is ParamSource.CONFIG_FILE:
            for sections, parser in ((self.ini, LuigiConfigParser), (self.toml, LuigiTomlParser)):
                values = sections.get(section)
                if values is not None and name in values:
                    return f"[{section}] {name} in {_files_of(parser)}"
        return super().where(section, name, source)


def config_files() -> list[str]:
    """Every file a build reads Luigi settings from, present or not, as absolute paths: a flow
    whose parameter defaults come from them is parsed again when one changes or appears."""
    paths = [*LuigiConfigParser._config_paths, *LuigiTomlParser._config_paths]
    env = os.environ.get("LUIGI_CONFIG_PATH")
    if env:
        paths.append(env)
    return [os.path.abspath(p) for p in dict.fromkeys(paths)]


def _files_of(parser: type[LuigiConfigParser] | type[LuigiTomlParser]) -> str:
    """The files of that kind a build reads (luigi.cfg files, or luigi.toml files), as named."""
    toml = parser is LuigiTomlParser
    paths = list(parser._config_paths)
    env = os.environ.get("LUIGI_CONFIG_PATH")
    if env:
        paths.append(env)
    found = [p for p in dict.fromkeys(paths) if p.endswith(".toml") == toml and Path(p).is_file()]
    return ", ".join(found) or ("luigi.toml" if toml else "luigi.cfg")


def luigi_sources() -> ParamSources:
    """Ductwork's active parameter sources with Luigi's files and command line added: the
    command line first, then the environment, then luigi.cfg/luigi.toml, then ductwork.toml."""
    base = current_sources()
    parser = LuigiConfigParser.instance()
    cmdline = _CMDLINE.get()
    key = (id(base), id(parser), parser.version, LuigiTomlParser.version, id(cmdline))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached[0]
    # Sections are layered, not copied: a value is read (and interpolated) when a task uses it.
    file: dict[str, Mapping[str, Any]] = {k: v for k, v in base.file.items() if isinstance(v, Mapping)}
    tomls: dict[str, Mapping[str, Any]] = {}
    for section, values in LuigiTomlParser.instance().reload().items():
        toml = tomls[section] = {k.replace("-", "_"): v for k, v in values.items()}
        file[section] = ChainMap(toml, file.get(section, {}))  # type: ignore[arg-type]
    inis = _sections(parser)
    for section, ini in inis.items():
        file[section] = ChainMap(ini, file.get(section, {}))  # type: ignore[arg-type]
    cli = {k: dict(v) for k, v in base.cli.items()}
    if cmdline is not None:
        for section, values in cmdline.sections.items():
            cli.setdefault(section, {}).update(values)
    sources = _LuigiSources(cli=cli, env=base.env, file=file, file_path=base.file_path, ini=inis, toml=tomls)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (sources, (base, parser, cmdline))
    return sources
