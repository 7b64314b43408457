"""Where parameter values come from, in a visible order of precedence.

A task or config class parameter takes the first value found in:

1. ``EXPLICIT``: given in code (``Report(date=...)``) or as the root task's own CLI options;
2. ``CLI``: ``--Section-param-name value`` on the command line;
3. ``ENV``: ``DUCTWORK_SECTION_PARAM_NAME`` in the environment;
4. ``CONFIG_FILE``: ``[Section] param_name = value`` in ``ductwork.toml``;
5. ``DEFAULT``: the parameter's default.

The sources are an explicit ``ParamSources`` value. Entry points (the CLI, a worker, the test
helpers) build one and activate it with ``use_sources``; nothing here reads the environment or a
file at import time, and there is no global mutable registry.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from ductwork.core.params import NO_DEFAULT, Parameter
from ductwork.errors import (
    DefinitionError,
    DuplicateParameterError,
    MissingParameterError,
    ParameterTypeError,
    UnknownParameterError,
    did_you_mean,
)

ENV_PREFIX = "DUCTWORK_"


class ParamSource(IntEnum):
    """Ordered from most to least explicit; a lower value wins."""

    EXPLICIT = 0
    CLI = 1
    ENV = 2
    CONFIG_FILE = 3
    DEFAULT = 4


def env_name(section: str, name: str) -> str:
    return f"{ENV_PREFIX}{section}_{name}".upper().replace("-", "_").replace(".", "_")


@dataclass(frozen=True)
class ParamSources:
    """Values for class parameters from the command line, the environment and a config file."""

    cli: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    file: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    file_path: str | None = None

    def lookup(self, section: str, name: str) -> tuple[Any, ParamSource] | None:
        """The most explicit raw value for ``section.name``, with where it came from."""
        cli_section = self.cli.get(section)
        if cli_section is not None and name in cli_section:
            return cli_section[name], ParamSource.CLI
        env_value = self.env.get(env_name(section, name))
        if env_value is not None:
            return env_value, ParamSource.ENV
        file_section = self.file.get(section)
        if file_section is not None and name in file_section:
            return file_section[name], ParamSource.CONFIG_FILE
        return None

    def where(self, section: str, name: str, source: ParamSource) -> str:
        """Where a value ``lookup`` found was written, in the user's words (for error messages)."""
        if source is ParamSource.CLI:
            return f"--{section}-{name.replace('_', '-')}"
        if source is ParamSource.ENV:
            return env_name(section, name)
        if source is ParamSource.CONFIG_FILE:
            return f"[{section}] {name} in {self.file_path or 'the config file'}"
        return ""

    def with_cli(self, cli: Mapping[str, Mapping[str, str]]) -> ParamSources:
        merged = {k: dict(v) for k, v in self.cli.items()}
        for section, values in cli.items():
            merged.setdefault(section, {}).update(values)
        return ParamSources(cli=merged, env=self.env, file=self.file, file_path=self.file_path)

    @classmethod
    def load(
        cls,
        *,
        config_path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        cli: Mapping[str, Mapping[str, str]] | None = None,
    ) -> ParamSources:
        """Read the config file (``ductwork.toml`` in the working directory unless named, or
        ``DUCTWORK_CONFIG``) and the ``DUCTWORK_*`` environment. Called by entry points only."""
        environ = dict(os.environ if environ is None else environ)
        path = Path(config_path or environ.get(f"{ENV_PREFIX}CONFIG", "ductwork.toml"))
        file = read_toml(path)
        env = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
        return cls(cli=dict(cli or {}), env=env, file=file, file_path=str(path) if file else None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, so a run can carry the sources it was started with to its workers."""
        return {
            "cli": {k: dict(v) for k, v in self.cli.items()},
            "env": dict(self.env),
            "file": {k: dict(v) for k, v in self.file.items() if isinstance(v, Mapping)},
            "file_path": self.file_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSources:
        return cls(
            cli=data.get("cli", {}),
            env=data.get("env", {}),
            file=data.get("file", {}),
            file_path=data.get("file_path"),
        )


def read_toml(path: Path) -> dict[str, Any]:
    """The contents of a TOML file, or nothing when there is no such file; a clear error (file
    and problem) when it is not valid TOML."""
    if not path.is_file():
        return {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        # TOML is UTF-8 whatever the locale says; a file saved as Latin-1 was a traceback, and
        # one that Notepad began with a byte-order mark an "invalid statement" at line 1
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DefinitionError(
            f"{path}: not UTF-8 text, as TOML must be: byte 0x{data[exc.start]:02x} on line {line}; "
            "save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{path}: invalid TOML: {exc}") from None


_ACTIVE: contextvars.ContextVar[ParamSources] = contextvars.ContextVar("ductwork_param_sources")
_EMPTY = ParamSources()


def current_sources() -> ParamSources:
    """The sources activated by the entry point, or empty ones (defaults and code only)."""
    return _ACTIVE.get(_EMPTY)


@contextlib.contextmanager
def use_sources(sources: ParamSources) -> Iterator[ParamSources]:
    token = _ACTIVE.set(sources)
    try:
        yield sources
    finally:
        _ACTIVE.reset(token)


class ParamHolder:
    """A class whose ``Parameter`` attributes get values on instantiation.

    Shared by class tasks and config classes: both resolve parameters the same way and both
    expose them the same way (``param_values()``, ``to_str_params()``).
    """

    @classmethod
    def section_name(cls) -> str:
        """The name used in ``--Section-param`` options, env variables and config sections."""
        return cls.__name__

    @classmethod
    def get_params(cls) -> dict[str, Parameter[Any]]:
        """Parameters by name, in declaration order, base classes first."""
        return cls.declared_params()

    @classmethod
    def declared_params(cls) -> dict[str, Parameter[Any]]:
        """Parameters by name, in declaration order, base classes first: what the engine reads
        (``get_params`` is the public face, which the Luigi shim gives Luigi's shape)."""
        cached = cls.__dict__.get("_ductwork_params")
        if cached is not None:
            return cached
        params: dict[str, Parameter[Any]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Parameter):
                    params.pop(name, None)
                    params[name] = value
        cls._ductwork_params = params  # type: ignore[attr-defined]
        return params

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values, sources = resolve_params(type(self), args, kwargs)
        self.__dict__.update(values)
        self._param_sources: dict[str, ParamSource] = sources

    def param_values(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in type(self).declared_params()}

    def param_source(self, name: str) -> ParamSource:
        return self._param_sources[name]

    def to_str_params(self, *, only_significant: bool = False) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, param in type(self).declared_params().items():
            if only_significant and not param.significant:
                continue
            out[name] = param.serialize_or_none(self.__dict__[name])
        return out

    def all_str_params(self) -> dict[str, str | None]:
        """Every parameter as text, what ``from_str_params`` rebuilds the object from (a Luigi
        task's ``to_str_params()`` leaves its private parameters out, as Luigi's does)."""
        return self.to_str_params()

    @classmethod
    def from_str_params(cls, params: Mapping[str, str | None]) -> Any:
        """Instantiate from serialized parameters (as recorded in a graph)."""
        declared = cls.declared_params()
        kwargs = {
            name: None if text is None else declared[name].parse(text)
            for name, text in params.items()
            if name in declared
        }
        return cls(**kwargs)


def _positional(cls: type[ParamHolder], params: Mapping[str, Parameter[Any]]) -> list[str]:
    """The parameters positional arguments bind to, in declaration order, past those declared
    keyword-only (Luigi's ``positional=False``); once per class, as a build makes thousands of
    instances of a few classes."""
    cached: list[str] | None = cls.__dict__.get("_ductwork_positional")
    if cached is None:
        cached = [n for n, p in params.items() if getattr(p, "positional", True)]
        cls._ductwork_positional = cached  # type: ignore[attr-defined]
    return cached


_TEXT_SOURCES = (ParamSource.CLI, ParamSource.ENV, ParamSource.CONFIG_FILE)
"""Where a parameter's value is text the user wrote, which its type parses."""


def resolve_params(
    cls: type[ParamHolder], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, ParamSource]]:
    """Bind positional and keyword arguments, then fill the rest from the active sources."""
    params = cls.declared_params()
    owner = cls.section_name()
    names = list(params)
    ordered = _positional(cls, params)
    if len(args) > len(ordered):
        raise UnknownParameterError(f"{owner}: takes {len(ordered)} parameters ({', '.join(ordered)}), got {len(args)}")
    given: dict[str, Any] = dict(zip(ordered, args, strict=False))
    for name, value in kwargs.items():
        if name not in params:
            raise UnknownParameterError(
                f"{owner}: unknown parameter {name!r}.{did_you_mean(name, names)} "
                f"Parameters: {', '.join(names) or '(none)'}"
            )
        if name in given:
            raise DuplicateParameterError(f"{owner}: parameter {name!r} given twice")
        given[name] = value
    sources = current_sources()
    values: dict[str, Any] = {}
    where: dict[str, ParamSource] = {}
    for name, param in params.items():
        if name in given:
            raw, source = given[name], ParamSource.EXPLICIT
        else:
            found = sources.lookup(owner, name)
            if found is not None:
                raw, source = found
            elif param.default is not NO_DEFAULT:
                raw, source = param.default, ParamSource.DEFAULT
            else:
                raise MissingParameterError(
                    f"{owner}: missing required parameter {name!r} ({param.describe_type()}). "
                    f"Give it in code, as --{owner}-{name.replace('_', '-')} on the command line, "
                    f"as {env_name(owner, name)} or in [{owner}] of ductwork.toml"
                )
        try:
            if raw == "" and source in _TEXT_SOURCES and param.empty_is_null:
                # Luigi's Optional*Parameter parses empty text as None, a text one's too
                # (``[Report] label =`` in luigi.cfg, ``--label ''``); given in code, "" stays "".
                values[name] = None
            else:
                values[name] = param.convert(raw, name=name, owner=owner)
        except ParameterTypeError as exc:
            written = sources.where(owner, name, source)
            if not written:
                raise
            raise ParameterTypeError(f"{exc}; it was given as {written}") from None
        where[name] = source
    return values, where


class Config(ParamHolder):
    """Luigi's global parameter classes: a named group of settings that tasks read.

    ``class GlobalParams(Config): log_dir = PathParameter(default="./logs")`` is set from
    ``--GlobalParams-log-dir``, ``DUCTWORK_GLOBALPARAMS_LOG_DIR`` or ``[GlobalParams]`` in
    ``ductwork.toml``. A config class is not a task: it has no dependencies and never runs.
    """

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.param_values().items())
        return f"{type(self).__name__}({inner})"


def config_classes() -> list[type[Config]]:
    """Every config class defined so far (in the modules imported)."""
    out: list[type[Config]] = []
    stack: list[type[Config]] = [Config]
    while stack:
        for sub in stack.pop().__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out
