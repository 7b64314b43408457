"""``luigi.contrib``: Luigi's third-party integrations are not shimmed (use ``ductwork.integrations``),
but for ``external_program``, which runs a program and needs no other service.

``import luigi.contrib.s3`` fails, as without the module, but says so: that Ductwork's shim does
not provide Luigi's contrib modules, what Ductwork has instead, and that installing Luigi itself
runs them (a real Luigi always wins over the shim).
"""

from __future__ import annotations

from ductwork.compat.unshimmed import Unshimmed

_UNSHIMMED = Unshimmed(
    __name__,
    provided=("external_program",),
    says="Ductwork's Luigi shim does not provide Luigi's contrib modules (but external_program)",
    instead="install Luigi itself (pip install luigi)",
)
__getattr__ = _UNSHIMMED.install()
