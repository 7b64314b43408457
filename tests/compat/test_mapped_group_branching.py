"""A branch or short-circuit inside a mapped task group decides for its own map index, as in
Airflow: instance ``i`` of ``@task.branch`` returning ``"group.task"`` follows ``group.task[i]``
and skips the other tasks at index ``i`` only. The chosen id never matched an instance's id, so
every instance of every branch was skipped (and the group's expander with them) and the run
ended success having done nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

BRANCH = """
    import pendulum
    from airflow.decorators import dag, task, task_group

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def routed():
        @task_group
        def per_file(f):
            @task.branch
            def route(f):
                return "per_file.big" if f.startswith("b") else "per_file.small"

            @task
            def big(f):
                return f + "-big"

            @task
            def small(f):
                return f + "-small"

            @task(trigger_rule="none_failed_min_one_success")
            def done(f, ti=None):
                return ti.xcom_pull(task_ids=["per_file.big", "per_file.small"])

            r = route(f)
            b, s = big(f), small(f)
            r >> [b, s]
            d = done(f)
            [b, s] >> d
            return d

        @task
        def report(values):
            return list(values)

        report(per_file.expand(f=["a.csv", "b.csv", "c.csv"]))

    routed()
"""


def test_a_branch_in_a_mapped_group_follows_its_own_map_index(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, BRANCH)
    summary = run_locally(dag)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states["per_file.small[0]"] == "success"
    assert states["per_file.big[0]"] == "skipped"
    assert states["per_file.big[1]"] == "success"
    assert states["per_file.small[1]"] == "skipped"
    assert states["per_file.small[2]"] == "success"
    assert all(states[f"per_file.done[{i}]"] == "success" for i in range(3)), states
    assert states["report"] == "success", states
    assert summary.result("report") == [["a.csv-small"], ["b.csv-big"], ["c.csv-small"]]
    assert summary.state.value == "success"


SHORT_CIRCUIT = """
    import pendulum
    from airflow.decorators import dag, task, task_group

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def gated():
        @task_group
        def per_day(n):
            @task.short_circuit
            def has_data(n):
                return n != 2

            @task
            def load(n):
                return n * 10

            return has_data(n) >> load(n)

        @task(trigger_rule="none_failed")
        def report(values):
            return list(values)

        report(per_day.expand(n=[1, 2, 3]))

    gated()
"""


def test_a_short_circuit_in_a_mapped_group_skips_only_its_own_map_index(tmp_path: Path) -> None:
    dag: Any = load_dag(tmp_path, SHORT_CIRCUIT)
    summary = run_locally(dag)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states["per_day.load[0]"] == "success", states
    assert states["per_day.load[1]"] == "skipped", states
    assert states["per_day.load[2]"] == "success", states
    assert states["report"] == "success", states
    assert summary.result("report") == [10, 30]


MAPPED_SHORT_CIRCUIT = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.operators.empty import EmptyOperator

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def mapped_gate():
        @task.short_circuit
        def has_rows(n):
            return n > 1

        @task.branch
        def pick(n):
            return "left"

        report = EmptyOperator(task_id="report")
        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        has_rows.expand(n=[1, 2]) >> report
        pick.expand(n=[1, 2]) >> [left, right]

    mapped_gate()
"""


def test_a_mapped_short_circuit_or_branch_skips_only_its_own_map_index(tmp_path: Path) -> None:
    """As in Airflow, whose skip from instance ``i`` reaches only the tasks' instances at map
    index ``i``: a task after a mapped short-circuit or branch (not itself mapped) is not skipped
    by one instance's decision, and follows its trigger rule. ``has_rows[0]`` returning False
    skipped ``report`` (and everything below it), and ``pick`` skipped ``right`` for good."""
    dag: Any = load_dag(tmp_path, MAPPED_SHORT_CIRCUIT)
    summary = run_locally(dag)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states["has_rows[0]"] == "success"
    assert states["report"] == "success", states
    assert states["left"] == "success", states
    assert states["right"] == "success", states
