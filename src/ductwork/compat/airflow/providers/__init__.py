"""``airflow.providers``: only ``airflow.providers.standard`` (Airflow 3's home of the standard
operators and sensors) is shimmed.

``import airflow.providers.postgres.hooks.postgres`` fails, as without the provider package, but
says so: that Ductwork's shim provides no other provider, what Ductwork has instead, and that
installing Airflow itself runs them (a real Airflow always wins over the shim).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

_PROVIDED = ("standard",)


def _integrations() -> list[str]:
    import pkgutil

    import ductwork.integrations

    return sorted(m.name for m in pkgutil.iter_modules(ductwork.integrations.__path__) if not m.name.startswith("_"))


def not_provided(fullname: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(
        f"No module named {fullname!r}: Ductwork's Airflow shim provides only the standard provider "
        f"(airflow.providers.standard: Bash, Python, Empty, branch, trigger operators and sensors; "
        f"`ductwork doctor` lists what it supports). Use ductwork.integrations "
        f"({', '.join(_integrations())}) instead, or install Airflow and the provider, "
        "which Ductwork then runs in place of the shim.",
        name=fullname,
    )


class _ProvidersFinder:
    """Last in ``sys.meta_path``: asked only when no other finder has an ``airflow.providers.*``
    module, it fails the import of any provider but the standard one with ``not_provided``'s
    message (a standard module the shim lacks stays a plain ``ModuleNotFoundError``)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        prefix = __name__ + "."
        if fullname.startswith(prefix) and fullname[len(prefix) :].split(".")[0] not in _PROVIDED:
            raise not_provided(fullname)


def __getattr__(name: str) -> Any:
    """``from airflow.providers import postgres``: the same message (the import system would
    otherwise replace it with a bare "cannot import name")."""
    if name.startswith("_") or name in _PROVIDED:
        raise AttributeError(name)
    raise not_provided(f"{__name__}.{name}")


if not any(isinstance(f, _ProvidersFinder) for f in sys.meta_path):
    sys.meta_path.append(_ProvidersFinder())
