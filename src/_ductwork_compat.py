"""Make ``import airflow`` and ``import luigi`` work with Ductwork when the real ones are absent.

This module is imported at interpreter start by ``ductwork-compat.pth`` (and again by Ductwork's
own entry points), so it must stay tiny: it imports nothing beyond the standard library's import
machinery and never imports Ductwork itself until someone imports ``airflow`` or ``luigi``.

``install()`` adds one finder to ``sys.meta_path`` that answers for the top-level names only
after asking every other finder: a real Airflow or Luigi (site-packages, an editable install,
``PYTHONPATH``) always wins and the shim is only ever a fallback (docs/adr/0007-compat-shims.md).

Which shims are served is decided when the name is imported:

- ``DUCTWORK_COMPAT`` (``airflow,luigi`` by default; ``none`` turns both off) lists them;
- the Airflow shim needs ``pendulum`` (installed by ``pip install 'ductwork[airflow]'``); without
  it ``import airflow`` fails as before, with a message that says which extra to install.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

SHIMS = ("airflow", "luigi")
"""Top-level names the finder can serve; each is the package ``ductwork/compat/<name>``."""

_EXTRA_NEEDS = {"airflow": "pendulum"}
"""A module each shim needs, installed by its extra (``ductwork[airflow]``)."""


def enabled() -> tuple[str, ...]:
    """The shims that ``DUCTWORK_COMPAT`` allows (all of them unless it says otherwise)."""
    raw = os.environ.get("DUCTWORK_COMPAT")
    if raw is None:
        return SHIMS
    words = {w.strip().lower() for w in raw.replace(";", ",").split(",") if w.strip()}
    return tuple(name for name in SHIMS if name in words)


def _compat_dir() -> str | None:
    spec = importlib.machinery.PathFinder.find_spec("ductwork")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "compat")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


class ShimFinder(importlib.abc.MetaPathFinder):
    """Serves the top-level ``airflow`` and ``luigi`` from ``ductwork/compat`` when no other
    finder has a real one. Submodules (``airflow.models.dag``) need nothing more: the path finder
    finds them in the shim package's ``__path__`` and loads them under the name asked for.

    It sits first in ``sys.meta_path`` but asks every other finder before answering: a regular
    module or package found anywhere (site-packages, an editable install, ``PYTHONPATH``) wins;
    a mere directory named ``airflow`` or ``luigi`` (which the path finder would turn into an
    empty namespace package, shadowing everything after it) does not.
    """

    _busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in SHIMS or fullname not in enabled() or getattr(self._busy, "active", False):
            return None
        self._busy.active = True
        try:
            if _real_spec(fullname, self) is not None:
                return None
        finally:
            self._busy.active = False
        needed = _EXTRA_NEEDS.get(fullname)
        if needed and not _importable(needed):
            raise ModuleNotFoundError(
                f"No module named {fullname!r}. Ductwork can run {fullname.capitalize()} code without it: "
                f"pip install 'ductwork[{fullname}]'",
                name=fullname,
            )
        base = _compat_dir()
        if base is None:
            return None
        folder = os.path.join(base, fullname)
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )

    def __repr__(self) -> str:
        return "<ductwork compat shims (airflow, luigi): used only when no real package is found>"


def _real_spec(name: str, me: ShimFinder) -> importlib.machinery.ModuleSpec | None:
    """A regular module or package ``name`` that another finder would import (not a namespace)."""
    for finder in list(sys.meta_path):
        if finder is me or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec(name, None)
        except ImportError:
            continue
        if spec is not None and spec.origin not in (None, "namespace"):
            return spec
    return None


def install() -> None:
    """Put the finder first in ``sys.meta_path`` once (idempotent, cheap)."""
    if not any(type(f).__name__ == "ShimFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, ShimFinder())


def is_shim(module: ModuleType) -> bool:
    """Whether an imported ``airflow``/``luigi`` module is Ductwork's shim (not the real one)."""
    return bool(getattr(module, "__ductwork_shim__", False))
