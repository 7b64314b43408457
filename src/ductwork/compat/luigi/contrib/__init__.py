"""``luigi.contrib``: Luigi's third-party integrations are not shimmed (use ``ductwork.integrations``).

``import luigi.contrib.s3`` fails, as without the module, but says so: that Ductwork's shim does
not provide Luigi's contrib modules, what Ductwork has instead, and that installing Luigi itself
runs them (a real Luigi always wins over the shim).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def _integrations() -> list[str]:
    import pkgutil

    import ductwork.integrations

    return sorted(m.name for m in pkgutil.iter_modules(ductwork.integrations.__path__) if not m.name.startswith("_"))


def not_provided(fullname: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(
        f"No module named {fullname!r}: Ductwork's Luigi shim does not provide Luigi's contrib "
        f"modules (`ductwork doctor` lists what it supports). Use ductwork.integrations "
        f"({', '.join(_integrations())}) instead, or install Luigi itself (pip install luigi), "
        "which Ductwork then runs in place of the shim.",
        name=fullname,
    )


class _ContribFinder:
    """Last in ``sys.meta_path``: asked only when no other finder has a ``luigi.contrib.*``
    module, it fails the import with ``not_provided``'s message."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        if fullname.startswith(__name__ + "."):
            raise not_provided(fullname)


def __getattr__(name: str) -> Any:
    """``from luigi.contrib import s3``: the same message (the import system would otherwise
    replace it with a bare "cannot import name")."""
    if name.startswith("_"):
        raise AttributeError(name)
    raise not_provided(f"{__name__}.{name}")


if not any(isinstance(f, _ContribFinder) for f in sys.meta_path):
    sys.meta_path.append(_ContribFinder())
