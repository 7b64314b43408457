"""Public code the conformance tests run unchanged, fetched at test time (never committed).

``pip download`` brings the pinned apache-airflow wheel and luigi sdist into a cache folder
(``$DUCTWORK_CONFORMANCE_CACHE``, default ``~/.cache/ductwork-conformance``); the tests extract
the files README.md lists from them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

AIRFLOW_VERSION = "2.10.5"
LUIGI_VERSION = "3.6.0"


def cache_dir() -> Path:
    root = os.environ.get("DUCTWORK_CONFORMANCE_CACHE") or str(Path.home() / ".cache" / "ductwork-conformance")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _download(spec: str, pattern: str, *extra: str) -> Path:
    folder = cache_dir()
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), *extra, spec],
        check=True,
        timeout=600,
    )
    found = sorted(folder.glob(pattern))
    assert found, f"pip download {spec} left no {pattern} in {folder}"
    return found[0]


def airflow_wheel() -> Path:
    return _download(f"apache-airflow=={AIRFLOW_VERSION}", f"apache_airflow-{AIRFLOW_VERSION}-*.whl")


def luigi_sdist() -> Path:
    return _download(f"luigi=={LUIGI_VERSION}", f"luigi-{LUIGI_VERSION}.tar.gz", "--no-binary", ":all:")


def extract_airflow_examples(names: list[str], dest: Path) -> dict[str, Path]:
    """The named files of ``airflow/example_dags`` from the wheel, copied into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with zipfile.ZipFile(airflow_wheel()) as wheel:
        for name in names:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)  # "sql/sample.sql": a template file beside them
            target.write_bytes(wheel.read(f"airflow/example_dags/{name}"))
            out[name] = target
    return out


def extract_luigi_tests(dest: Path) -> Path:
    """Luigi's ``test/`` folder from the sdist, extracted under ``dest``; returns that folder."""
    with tarfile.open(luigi_sdist()) as sdist:
        members = [m for m in sdist.getmembers() if m.name.startswith(f"luigi-{LUIGI_VERSION}/test/")]
        sdist.extractall(dest, members=members, filter="data")
    return dest / f"luigi-{LUIGI_VERSION}" / "test"
