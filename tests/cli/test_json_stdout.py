"""With ``--json``, standard output holds the JSON document alone.

A ``print`` at a flow file's or module's top level, ``os.write(1, ...)`` in a task or a program
it started wrote before ``ductwork run --json``'s document (and ``build --json``, ``tasks render
--json``, ``config --module --json``), so a script's ``json.load`` of it failed. What the user's
code writes to standard output goes to standard error meanwhile.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.ductwork_process import ductwork_process

NOISY_FLOW = textwrap.dedent(
    """
    import os
    import subprocess
    import sys

    from ductwork import Flow, PythonOperator, Task

    print("printed at import")


    def noisy():
        print("printed by the task")
        os.write(1, b"written on fd 1\\n")
        sys.__stdout__.write("written on sys.__stdout__\\n")
        sys.__stdout__.flush()
        subprocess.run(["echo", "a child's output"], check=True)


    with Flow("noisy", schedule=None) as f:
        PythonOperator(task_id="a", python_callable=noisy, op_kwargs={})


    class Noisy(Task):
        def complete(self):
            return False

        def run(self):
            noisy()
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ("run", "noisy.py:noisy", "--json"),
        ("build", "--module", "noisy.py", "Noisy", "--json", "--no-lock"),
        ("tasks", "render", "noisy.py:noisy", "a", "--json"),
        ("config", "--module", "noisy.py", "--json"),
    ],
)
def test_json_output_is_the_document_alone(tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "noisy.py").write_text(NOISY_FLOW)
    done = ductwork_process(*args, env={"DUCTWORK_HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # nothing before or after it
    assert "printed at import" in done.stderr, done.stderr  # not lost: on standard error
