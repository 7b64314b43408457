"""Airflow's ``all_done_setup_success`` (the rule of teardown tasks): with no setup task
upstream, the task runs once everything upstream is done, whatever their outcome; with a setup
upstream, it waits for one that succeeded. A clean-up task given this rule after a failed task
was skipped, as if it had a setup that never ran."""

from __future__ import annotations

from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

NO_SETUP = """
    import pendulum
    from airflow.decorators import dag, task, teardown
    from airflow.utils.trigger_rule import TriggerRule

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def cleanup_after_failure():
        @task
        def extract():
            raise ValueError("source down")

        @task(trigger_rule=TriggerRule.ALL_DONE_SETUP_SUCCESS)
        def cleanup():
            return "cleaned"

        @teardown
        def release():
            return "released"

        extract() >> [cleanup(), release()]

    cleanup_after_failure()
"""

FAILED_SETUP = """
    import pendulum
    from airflow.decorators import dag, setup, task, teardown

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def setup_failed():
        @setup
        def create_cluster():
            raise ValueError("no capacity")

        @task
        def work():
            return "worked"

        @teardown
        def delete_cluster():
            return "deleted"

        cluster = create_cluster()
        cluster >> work() >> delete_cluster().as_teardown(setups=cluster)

    setup_failed()
"""


def test_a_task_with_the_rule_and_no_setup_runs_after_a_failure(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, NO_SETUP))
    assert summary.task_states["extract"].value == "failed"
    assert summary.task_states["cleanup"].value == "success"
    assert summary.result("cleanup") == "cleaned"
    assert summary.task_states["release"].value == "success"


def test_a_teardown_whose_setup_failed_does_not_run(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, FAILED_SETUP))
    assert summary.task_states["create_cluster"].value == "failed"
    assert summary.task_states["delete_cluster"].value in ("skipped", "upstream_failed")


SKIPPED_SETUP = """
    import pendulum
    from airflow.decorators import dag, setup, task, teardown

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def setup_skipped():
        @task.short_circuit
        def gate():
            return False

        @setup
        def create_cluster():
            return "created"

        @teardown
        def delete_cluster():
            return "deleted"

        cluster = create_cluster()
        gate() >> cluster >> delete_cluster().as_teardown(setups=cluster)

    setup_skipped()
"""


def test_a_teardown_whose_setup_failed_is_upstream_failed_as_in_airflow(tmp_path: Path) -> None:
    """Airflow marks such a teardown ``upstream_failed`` (its setup failed), not ``skipped``
    (which a user reads as "nothing went wrong upstream")."""
    summary = run_locally(load_dag(tmp_path, FAILED_SETUP))
    assert summary.task_states["delete_cluster"].value == "upstream_failed"
    assert summary.state.value == "failed"


def test_a_teardown_whose_setup_was_skipped_is_skipped(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, SKIPPED_SETUP))
    assert summary.task_states["create_cluster"].value == "skipped"
    assert summary.task_states["delete_cluster"].value == "skipped"


FAILED_SETUP_BESIDE_A_SUCCESS = """
    import pendulum
    from airflow.decorators import dag, setup, task, teardown

    @dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None)
    def setup_failed_beside_a_success():
        @setup
        def create_cluster():
            raise ValueError("no capacity")

        @task
        def report():
            return "reported"

        @teardown
        def delete_cluster():
            return "deleted"

        cluster = create_cluster()
        cleanup = delete_cluster().as_teardown(setups=cluster)
        report() >> cleanup

    setup_failed_beside_a_success()
"""


def test_a_teardown_counts_its_setups_not_its_other_upstream_tasks(tmp_path: Path) -> None:
    """Another upstream task that succeeded made a teardown run whose setup had failed: it
    cleaned up a cluster that was never created. Airflow looks at the setups only."""
    summary = run_locally(load_dag(tmp_path, FAILED_SETUP_BESIDE_A_SUCCESS))
    assert summary.task_states["report"].value == "success"
    assert summary.task_states["delete_cluster"].value == "upstream_failed"
