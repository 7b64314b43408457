"""``ductwork`` run as a user runs it: a process of its own, with the test's environment added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def ductwork_process(*args: str, env: dict[str, str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ductwork.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )
