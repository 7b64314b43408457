"""Make ``import airflow`` and ``import luigi`` work with Ductwork when the real ones are absent.

This module is imported at interpreter start by ``ductwork-compat.pth`` (and again by Ductwork's
own entry points), so every Python process of the environment pays for its imports: at start it
imports only ``os``, ``sys`` and ``_thread`` (already loaded), and the import machinery it needs
(``importlib.util``) only when ``airflow`` or ``luigi`` is imported. ``importlib.abc`` as a base
class cost 30 ms of every process's start (it imports ``importlib.resources`` and ``pathlib``);
``sys.meta_path`` needs no base class, only ``find_spec``.

``install()`` adds one finder to ``sys.meta_path`` that answers for the top-level names only
after asking every other finder: a real Airflow or Luigi (site-packages, an editable install,
``PYTHONPATH``) always wins and the shim is only ever a fallback (docs/adr/0007-compat-shims.md).

Which shims are served is decided when the name is imported:

- ``DUCTWORK_COMPAT`` (``airflow,luigi`` by default; ``none`` turns both off) lists them;
- the Airflow shim needs ``pendulum`` (installed by ``pip install 'ductwork[airflow]'``); without
  it ``import airflow`` fails as before, with a message that says which extra to install.
"""

from __future__ import annotations

import _thread
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every process 10 ms at start
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
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
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec("ductwork")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "compat")


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


class ShimFinder:
    """Serves the top-level ``airflow`` and ``luigi`` from ``ductwork/compat`` when no other
    finder has a real one. Submodules (``airflow.models.dag``) need nothing more: the path finder
    finds them in the shim package's ``__path__`` and loads them under the name asked for.

    It sits first in ``sys.meta_path`` but asks every other finder before answering: a regular
    module or package found anywhere (site-packages, an editable install, ``PYTHONPATH``) wins;
    a mere directory named ``airflow`` or ``luigi`` (which the path finder would turn into an
    empty namespace package, shadowing everything after it) does not.
    """

    _busy: set[int] = set()
    """Threads asking the other finders (so that this finder does not answer its own question)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in SHIMS:  # every import of every process asks: the cheap test first
            return None
        thread = _thread.get_ident()
        if fullname not in enabled() or thread in self._busy:
            return None
        self._busy.add(thread)
        try:
            if _real_spec(fullname, self) is not None:
                return None
        finally:
            self._busy.discard(thread)
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
        import importlib.util

        folder = os.path.join(base, fullname)
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )

    def __repr__(self) -> str:
        return "<ductwork compat shims (airflow, luigi): used only when no real package is found>"


def _real_spec(name: str, me: ShimFinder) -> ModuleSpec | None:
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
