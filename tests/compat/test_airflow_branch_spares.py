"""A branch spares a task below it that is also below a task it chose, even when it does not
lead to the chosen task directly (Airflow's ``skip_all_except``): a ``@task_group`` call returns
its last task's output, so ``pick >> grp()`` draws ``pick >> grp.after`` while ``grp.left`` has
no upstream task, and choosing ``grp.left`` skipped ``grp.after`` and everything after it."""

from __future__ import annotations

from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

DAG = """
    import pendulum
    from airflow.decorators import dag, task, task_group
    from airflow.operators.empty import EmptyOperator

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, params={"mode": "a"})
    def spares():
        @task.branch
        def pick(params=None):
            return "grp.left" if params["mode"] == "a" else "right"

        @task_group
        def grp():
            @task
            def left():
                return "L"

            @task(trigger_rule="none_failed")
            def after(x):
                return x + "!"

            return after(left())

        right = EmptyOperator(task_id="right")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        p = pick()
        p >> grp() >> join
        p >> right >> join

    spares()
"""


def test_a_task_below_the_chosen_task_is_not_skipped(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, DAG))
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states == {
        "pick": "success",
        "grp.left": "success",
        "grp.after": "success",
        "right": "skipped",
        "join": "success",
    }
    assert summary.result("grp.after") == "L!"


def test_the_other_branch_still_skips_it(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, DAG), params={"mode": "b"})
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states["grp.after"] == "skipped" and states["right"] == "success" and states["join"] == "success"
