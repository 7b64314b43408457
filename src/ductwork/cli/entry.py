"""The ``ductwork`` console script.

``ductwork trigger`` is first offered to a scheduler running on this machine for the same home
(``cli.fast_trigger``, ADR 0023), before click, Rich or SQLAlchemy are imported; every other
command, and a trigger no scheduler takes, goes to the click CLI (``cli.main``).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if "trigger" in sys.argv[1:8]:  # the command comes after at most three global options
        from ductwork.cli.fast_trigger import attempt

        status = attempt(sys.argv[1:], os.environ, os.getcwd())
        if status is not None:
            from ductwork.cli.quick_exit import leave

            leave(SystemExit(status))  # no interpreter teardown: Rich's objects are not freed one by one
    from ductwork.cli.main import main as cli_main

    cli_main()
