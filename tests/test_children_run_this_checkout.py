"""A process a test starts runs the ductwork under test, not whichever copy is installed.

``pyproject.toml`` puts the checkout's ``src`` first on the test process's path only; a child
started with ``env={**os.environ, ...}`` (``test_chaos``, ``test_outage``,
``test_login_throttle`` and a dozen more start ``python -m ductwork.cli`` so) imported the
ductwork the virtual environment had installed: a clone tested with another checkout's
environment ran that checkout's scheduler and web server, and passed or failed on its code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ductwork


def test_a_child_started_with_the_test_environment_imports_this_checkout(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", "import ductwork; print(ductwork.__file__)"],
        env={**os.environ, "DUCTWORK_HOME": str(tmp_path)},
        cwd=tmp_path,  # not the checkout: a relative path would not find its src from here
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(shown.stdout.strip()).resolve() == Path(ductwork.__file__).resolve()
