"""Ductwork's own settings: one typed object, read once by an entry point and passed down.

Each value comes from, in order: a command-line flag, a ``DUCTWORK_*`` environment variable,
the ``[ductwork]`` section of ``ductwork.toml``, or the default. ``ductwork config`` prints the
values and where each came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ductwork.core.config import ParamSource
from ductwork.errors import DefinitionError

_ENV = "DUCTWORK_"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".ductwork")
    flows_folder: Path = field(default_factory=lambda: Path("flows"))
    database_url: str = ""
    log_dir: Path | None = None
    parallelism: int = 4
    fernet_key: str = ""
    config_path: Path | None = None
    resources: Mapping[str, int] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    sources: Mapping[str, ParamSource] = field(default_factory=dict)
    file: Mapping[str, Any] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.log_dir or self.home / "logs"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ductwork.db'}"

    @classmethod
    def load(
        cls,
        *,
        config_path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        path = Path(config_path or environ.get(f"{_ENV}CONFIG", "ductwork.toml"))
        file: dict[str, Any] = {}
        if path.is_file():
            try:
                file = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise DefinitionError(f"{path}: invalid TOML: {exc}") from None
        elif config_path is not None:
            raise DefinitionError(f"config file {str(path)!r} does not exist")
        section = file.get("ductwork", {})
        values: dict[str, Any] = {}
        sources: dict[str, ParamSource] = {}
        for f in fields(cls):
            if f.name in ("config_path", "resources", "pools", "sources", "file"):
                continue
            env_key = f"{_ENV}{f.name.upper()}"
            if overrides and overrides.get(f.name) is not None:
                values[f.name], sources[f.name] = overrides[f.name], ParamSource.CLI
            elif env_key in environ:
                values[f.name], sources[f.name] = environ[env_key], ParamSource.ENV
            elif f.name in section:
                values[f.name], sources[f.name] = section[f.name], ParamSource.CONFIG_FILE
            else:
                sources[f.name] = ParamSource.DEFAULT
        for name in ("home", "flows_folder", "log_dir"):
            if values.get(name):
                values[name] = Path(str(values[name])).expanduser()
        if "parallelism" in values:
            try:
                values["parallelism"] = int(values["parallelism"])
            except ValueError:
                raise DefinitionError(f"parallelism must be an integer, got {values['parallelism']!r}") from None
        return cls(
            **values,
            config_path=path if file else None,
            resources={str(k): int(v) for k, v in file.get("resources", {}).items()},
            pools={str(k): int(v) for k, v in file.get("pools", {}).items()},
            sources=sources,
            file=file,
        )

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, value, source) rows for ``ductwork config``."""
        rows = []
        for name in ("home", "flows_folder", "database_url", "log_dir", "parallelism"):
            value: Any = getattr(self, name)
            if name == "database_url":
                value = self.db_url
            if name == "log_dir":
                value = self.logs
            rows.append((name, str(value), self.sources.get(name, ParamSource.DEFAULT).name.lower()))
        return rows
