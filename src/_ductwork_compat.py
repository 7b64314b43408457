"""Make ``import airflow`` and ``import luigi`` work with Ductwork when the real ones are absent.

This module is imported at interpreter start by ``ductwork-compat.pth`` (and again by Ductwork's
own entry points), so it must stay tiny: it imports nothing beyond the standard library's import
machinery and never imports Ductwork itself until someone imports ``airflow`` or ``luigi``.

``install()`` appends one finder at the END of ``sys.meta_path``: every other finder (the path
finder that finds a real Airflow or Luigi in site-packages, editable installs, zip imports) is
asked first, so a real installation always wins and the shim is only ever a fallback
(docs/adr/0007-compat-shims.md).

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
    """Finds ``airflow.*`` and ``luigi.*`` in ``ductwork/compat`` and loads each file under the
    name asked for (``airflow.models.dag``), so classes keep the module names users know."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in SHIMS or top not in enabled():
            return None
        if top == fullname:
            needed = _EXTRA_NEEDS.get(top)
            if needed and not _importable(needed):
                raise ModuleNotFoundError(
                    f"No module named {top!r}. Ductwork can run {top.capitalize()} code without it: "
                    f"pip install 'ductwork[{top}]'",
                    name=fullname,
                )
        base = _compat_dir()
        if base is None:
            return None
        parts = fullname.split(".")
        folder = os.path.join(base, *parts)
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
            )
        file = folder + ".py"
        if os.path.isfile(file):
            return importlib.util.spec_from_file_location(fullname, file)
        return None

    def __repr__(self) -> str:
        return "<ductwork compat shims (airflow, luigi) at the end of sys.meta_path>"


def install() -> None:
    """Append the finder to ``sys.meta_path`` once (idempotent, cheap)."""
    if not any(isinstance(f, ShimFinder) or type(f).__name__ == "ShimFinder" for f in sys.meta_path):
        sys.meta_path.append(ShimFinder())


def is_shim(module: ModuleType) -> bool:
    """Whether an imported ``airflow``/``luigi`` module is Ductwork's shim (not the real one)."""
    return bool(getattr(module, "__ductwork_shim__", False))
