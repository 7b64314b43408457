"""Luigi's own tests of its core behaviour, from the pinned luigi sdist (unchanged), run against
the shim. tests/compat/README.md lists the files and the tests left out (they patch Luigi's
internal scheduler or worker classes)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import ductwork
from tests.compat.conformance import extract_luigi_tests

FILES = [
    "fib_test.py",
    "factorial_test.py",
    "wrap_test.py",
    "instance_wrap_test.py",
    "decorator_test.py",
    "retcodes_test.py",
    "range_test.py",
]
LEFT_OUT = {
    # They replace methods of luigi.scheduler.Scheduler / luigi.worker.Worker with mocks.
    "retcodes_test.py::RetcodesTest::test_already_running",
    "retcodes_test.py::RetcodesTest::test_unhandled_exception",
    "retcodes_test.py::RetcodesTest::test_unknown_reason",
}


def test_luigi_core_tests_pass_against_the_shim(tmp_path: Path) -> None:
    tests = extract_luigi_tests(tmp_path / "sdist")
    report = tmp_path / "report.xml"
    deselect = [arg for test_id in sorted(LEFT_OUT) for arg in ("--deselect", test_id)]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DUCTWORK_COMPAT", "LUIGI_CONFIG", "PYTEST_"))},
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        # The ductwork this test imported (a relative PYTHONPATH would not survive the cwd below).
        "PYTHONPATH": os.pathsep.join(
            [str(Path(ductwork.__file__).parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tests),
            "--junitxml",
            str(report),
            *deselect,
            *FILES,
        ],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    root = ET.parse(report).getroot()
    cases = list(root.iter("testcase"))
    failed = [
        f"{c.get('classname')}.{c.get('name')}"
        for c in cases
        if c.find("failure") is not None or c.find("error") is not None
    ]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert not failed, proc.stdout[-4000:]
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert len(cases) - len(skipped) >= 100, f"only {len(cases)} tests ran"
    ran = {(c.get("classname"), c.get("name")) for c in cases if c.get("classname", "").startswith("range_test")}
    assert len(ran) == 57, sorted(ran)  # every test of range_test.py: none is left out
