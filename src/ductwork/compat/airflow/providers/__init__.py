"""``airflow.providers``: only ``airflow.providers.standard`` (Airflow 3's home of the standard
operators and sensors) is shimmed.

``import airflow.providers.postgres.hooks.postgres`` fails, as without the provider package, but
says so: that Ductwork's shim provides no other provider, what Ductwork has instead, and that
installing Airflow itself runs them (a real Airflow always wins over the shim).
"""

from __future__ import annotations

from ductwork.compat.unshimmed import Unshimmed

_UNSHIMMED = Unshimmed(
    __name__,
    provided=("standard",),
    says="Ductwork's Airflow shim provides only the standard provider (airflow.providers.standard: "
    "Bash, Python, Empty, branch, trigger operators and sensors)",
    instead="install Airflow and the provider",
)
__getattr__ = _UNSHIMMED.install()
