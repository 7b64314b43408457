"""Submodules of a shimmed package that the shim does not provide, refused with a message that
helps: ``airflow.providers.*`` but the standard provider, all of ``luigi.contrib.*``.

Without this, ``import luigi.contrib.s3`` fails like any missing module, and the user cannot
tell a typo from a part of Luigi that Ductwork leaves out. The refusal names what is missing,
what the shim provides, what Ductwork has instead (``ductwork.integrations``) and that installing
the real package runs it (a real Airflow or Luigi always wins over the shim). Both shims refuse
through this one finder, so they say it alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any


def integrations() -> list[str]:
    """The integration modules Ductwork has, by name (``sql``, ``http``...), for the message."""
    import pkgutil

    import ductwork.integrations

    return sorted(m.name for m in pkgutil.iter_modules(ductwork.integrations.__path__) if not m.name.startswith("_"))


class Unshimmed:
    """The refusal of one package's unprovided submodules: ``install`` puts it last in
    ``sys.meta_path``, so it is asked only when no other finder has the module, and the package
    uses ``module_getattr`` as its ``__getattr__`` for ``from package import name``."""

    def __init__(self, package: str, provided: Sequence[str], says: str, instead: str) -> None:
        self.package = package
        self.provided = tuple(provided)
        """Direct submodules the shim has (a missing module below one of them stays a plain
        ``ModuleNotFoundError``: a name the real package lacks too, probably)."""
        self.says = says
        """What the shim provides, as a clause after "No module named '...': "."""
        self.instead = instead
        """The real thing to install, which Ductwork then runs in place of the shim."""

    def error(self, fullname: str) -> ModuleNotFoundError:
        return ModuleNotFoundError(
            f"No module named {fullname!r}: {self.says}; `ductwork doctor` lists what it supports. "
            f"Use ductwork.integrations ({', '.join(integrations())}) instead, or {self.instead}, "
            "which Ductwork then runs in place of the shim.",
            name=fullname,
        )

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        prefix = self.package + "."
        if fullname.startswith(prefix) and fullname[len(prefix) :].split(".")[0] not in self.provided:
            raise self.error(fullname)

    def module_getattr(self, name: str) -> Any:
        """``from airflow.providers import postgres``: the same message (the import system would
        otherwise replace it with a bare "cannot import name")."""
        if name.startswith("_") or name in self.provided:
            raise AttributeError(name)
        raise self.error(f"{self.package}.{name}")

    def install(self) -> Callable[[str], Any]:
        """Put the finder in place (once per package, however often the package is imported
        again) and hand back the package's ``__getattr__``."""
        if not any(isinstance(f, Unshimmed) and f.package == self.package for f in sys.meta_path):
            sys.meta_path.append(self)
        return self.module_getattr
