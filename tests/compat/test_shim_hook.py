"""The shims are a fallback: real packages win, ``DUCTWORK_COMPAT`` turns them off, a missing
extra says which one to install. Each case runs in a fresh interpreter, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_COMPAT")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_shims_are_served_when_the_real_packages_are_absent(tmp_path: Path) -> None:
    proc = _python("import airflow, _ductwork_compat as c; print(c.is_shim(airflow))", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]


def test_a_real_package_always_wins(tmp_path: Path) -> None:
    for name in ("airflow", "luigi"):
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text("REAL = True\n")
    proc = _python(
        "import airflow, luigi; print(getattr(airflow, 'REAL', False), getattr(luigi, 'REAL', False))",
        tmp_path,
        PYTHONPATH=str(tmp_path / "site"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_ductwork_compat_none_turns_them_off(tmp_path: Path) -> None:
    proc = _python(
        "import importlib.util as u\nfor n in ('airflow',):\n"
        "    try:\n        __import__(n); print('imported')\n    except ImportError:\n        print('absent')",
        tmp_path,
        DUCTWORK_COMPAT="none",
    )
    assert proc.stdout.split() == ["absent"], proc.stderr


def test_only_the_named_shim(tmp_path: Path) -> None:
    proc = _python(
        "try:\n    import airflow\nexcept ImportError:\n    print('no airflow')",
        tmp_path,
        DUCTWORK_COMPAT="luigi",
    )
    assert proc.stdout.strip() == "no airflow", proc.stderr


def test_missing_extra_names_it(tmp_path: Path) -> None:
    """Without pendulum (the [airflow] extra), importing airflow fails as it would without the
    shim, but says what to install; code probing with try/except ImportError still works."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pendulum':\n            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    proc = _python(
        "try:\n    import airflow\nexcept ImportError as exc:\n    print(type(exc).__name__, exc)",
        tmp_path,
        PYTHONPATH=str(blocker),
    )
    assert "ModuleNotFoundError" in proc.stdout, proc.stderr
    assert "pip install 'ductwork[airflow]'" in proc.stdout


def test_the_pth_hook_is_installed_with_ductwork() -> None:
    import site

    folders = [*site.getsitepackages(), site.getusersitepackages()]
    assert any((Path(f) / "ductwork-compat.pth").is_file() for f in folders)


def test_luigi_is_served_too_and_a_plain_folder_named_like_them_does_not_shadow_them(tmp_path: Path) -> None:
    """``~/airflow`` (AIRFLOW_HOME) or ``/tmp/luigi`` (Luigi's lock folder) in the working
    directory would otherwise become empty namespace packages."""
    (tmp_path / "airflow" / "dags").mkdir(parents=True)
    (tmp_path / "luigi").mkdir()
    proc = _python("import airflow, luigi\nprint(hasattr(airflow, 'DAG'), hasattr(luigi, 'Task'))", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_the_hook_adds_nothing_heavy_to_every_interpreter_start(tmp_path: Path) -> None:
    """``ductwork-compat.pth`` runs in every Python process of the environment (each CLI command,
    each worker): it must not import the typing module or importlib's abstract classes (which
    pull in ``importlib.resources`` and ``pathlib``: 30 ms of every start), yet still be installed."""
    proc = _python(
        "import sys; print(any(type(f).__name__ == 'ShimFinder' for f in sys.meta_path)); "
        "print(sorted({'typing', 'importlib.abc', 'importlib.util', 'pathlib', 'threading'} & set(sys.modules)))",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["True", "[]"]
