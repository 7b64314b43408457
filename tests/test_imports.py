"""No import-time side effects: importing Ductwork writes nothing and pulls in nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = [
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "jinja2",
    "rich",
    "click",
    "croniter",
    "sklearn",
    "httpx",
    "celery",
    "fsspec",
    "pyarrow",
    "pandas",
]


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "HOME": str(cwd), "DUCTWORK_HOME": str(cwd / "home")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def test_import_ductwork_is_light(tmp_path: Path) -> None:
    out = _python(
        f"import sys, json, ductwork; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))", tmp_path
    )
    assert json.loads(out) == []


def test_importing_every_module_touches_no_files(tmp_path: Path) -> None:
    code = (
        "import importlib, pkgutil, ductwork\n"
        "names = [m.name for m in pkgutil.walk_packages(ductwork.__path__, 'ductwork.')\n"
        "         if not m.name.startswith('ductwork.store.migrations.')  # Alembic scripts, run by Alembic\n"
        "         and not m.name.endswith('.__main__')]  # entry points: importing them runs them\n"
        "failed = []\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append((name, str(exc)))\n"
        "print(len(names), failed)\n"
    )
    out = _python(code, tmp_path)
    count, _, failed = out.partition(" ")
    assert int(count) > 30
    assert failed.strip() == "[]", failed
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "importing created files"
