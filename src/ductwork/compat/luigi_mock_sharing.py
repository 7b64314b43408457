"""The ``MockTarget`` data of a build that forks its tasks (ADR 0028), shared with them only if
the build's code uses ``luigi.mock`` at all: sharing starts a ``multiprocessing`` manager."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

_NAMES = ("luigi.mock", "ductwork.compat.luigi.mock")
"""The module under the name user code imports it by (the shim's ``luigi``), or its own."""


def mock_data_shared(fork: bool) -> contextlib.AbstractContextManager[Any]:
    if fork:
        for name in _NAMES:
            module = sys.modules.get(name)
            if module is not None:
                return module.shared_with_children()
    return contextlib.nullcontext()
