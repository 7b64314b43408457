"""``luigi.cmdline``: the ``luigi`` command (``luigi --module m Task --local-scheduler``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .retcodes import run_with_retcodes


def luigi_run(argv: Sequence[str] | None = None) -> None:
    run_with_retcodes(sys.argv[1:] if argv is None else list(argv))


def luigi(argv: Sequence[str] | None = None) -> None:
    luigi_run(argv)


def luigid(argv: Sequence[str] | None = None) -> None:
    sys.exit(
        "luigid (Luigi's central scheduler) is not part of Ductwork's shim: run `ductwork scheduler` "
        "and `ductwork webserver` instead"
    )
