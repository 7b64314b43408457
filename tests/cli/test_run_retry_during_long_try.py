"""``ductwork run``: a retry (or a sensor's next poke) comes due while a long try runs alone in
the run loop's own thread, and starts then, in another thread (it waited for the long try's
end: a 6 s task held back a 1 s retry delay by 6 s)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.ductwork_process import ductwork_process

FLOW = textwrap.dedent(
    """
    import os, time
    from datetime import timedelta
    from pathlib import Path
    from ductwork import Flow, PythonOperator

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    def long():
        # Runs until the other task's retry has run, or gives up after 60 s.
        deadline = time.monotonic() + 60
        while not (MARKS / "retried").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (MARKS / "long_saw").write_text("retried" if (MARKS / "retried").exists() else "nothing")

    def flaky(ti=None):
        if ti.try_number == 1:
            raise ValueError("the first try fails")
        (MARKS / "retried").write_text(str(ti.try_number))

    with Flow("retry_meanwhile", schedule=None) as flow:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=2, retry_delay=timedelta(seconds=0.5))
        PythonOperator(task_id="long", python_callable=long)
    """
)


def test_a_retry_runs_while_a_long_try_holds_the_run_loop(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "retry_meanwhile.py").write_text(FLOW)
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_TEST_MARKS": str(marks)}
    ran = ductwork_process("run", "retry_meanwhile.py", "--no-progress", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["state"] == "success"
    assert (marks / "long_saw").read_text() == "retried"
    assert (marks / "retried").read_text() == "2"
