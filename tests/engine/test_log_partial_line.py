"""A task's output that ends mid-line, then the task's error: the error's log record ran on
after the text (``half a line[2026-...] ERROR ductwork.task: p failed``), hard to read and to
grep. A record starts on a line of its own."""

from __future__ import annotations

import sys

from ductwork import Flow, PythonOperator
from ductwork.engine.local import run_locally


def _half_then_fail() -> None:
    sys.stdout.write("half a line")
    raise ValueError("boom")


def _whole_lines() -> None:
    print("a whole line")


def test_a_log_record_after_a_partial_line_starts_a_line_of_its_own() -> None:
    with Flow("partial") as flow:
        PythonOperator(task_id="p", python_callable=_half_then_fail)
        PythonOperator(task_id="w", python_callable=_whole_lines)
    summary = run_locally(flow)
    lines = summary.logs[("p", 1)].splitlines()
    assert "half a line" in lines, lines
    assert any("boom" in line and line.startswith("[") for line in lines), lines
    whole = summary.logs[("w", 1)]
    assert "a whole line\n[" in whole, whole  # no empty line added after a whole one
