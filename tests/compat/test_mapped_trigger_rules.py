"""Trigger rules below a mapped task count its instances one by one, as Airflow does: after
instances that succeeded and one that was skipped, ``none_failed_min_one_success`` (the usual
join) and ``one_success`` run, ``all_skipped`` does not. They were decided on the mapped task's
single state (skipped when one instance was), which no counting rule fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

MAPPED_RULES = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowSkipException
    from airflow.operators.empty import EmptyOperator

    with DAG("mapped_rules", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None) as dag:
        @task
        def maybe(x):
            if x == 2:
                raise AirflowSkipException("two")
            return x

        @task
        def bad(x):
            if x == 2:
                raise ValueError("two")
            return x

        @task
        def fine(x):
            return x

        many = {"skipmix": maybe.expand(x=[1, 2, 3]), "failmix": bad.expand(x=[1, 2, 3]), "allok": fine.expand(x=[1, 2])}
        for name, mapped in many.items():
            for rule in ["all_success", "none_failed", "none_failed_min_one_success", "one_success", "one_done",
                         "all_skipped", "all_failed", "one_failed", "all_done", "none_skipped"]:
                mapped >> EmptyOperator(task_id=f"{name}__{rule}", trigger_rule=rule)
"""

# What Airflow does with each rule after instances (success, skipped, success), (success,
# failed, success) and (success, success).
EXPECTED = {
    "skipmix": {
        "all_success": "skipped",
        "none_failed": "success",
        "none_failed_min_one_success": "success",
        "one_success": "success",
        "one_done": "success",
        "all_skipped": "skipped",
        "all_failed": "skipped",
        "one_failed": "skipped",
        "all_done": "success",
        "none_skipped": "skipped",
    },
    "failmix": {
        "all_success": "upstream_failed",
        "none_failed": "upstream_failed",
        "none_failed_min_one_success": "upstream_failed",
        "one_success": "success",
        "one_done": "success",
        "all_skipped": "skipped",
        "all_failed": "skipped",
        "one_failed": "success",
        "all_done": "success",
        "none_skipped": "success",
    },
    "allok": {
        "all_success": "success",
        "none_failed": "success",
        "none_failed_min_one_success": "success",
        "one_success": "success",
        "one_done": "success",
        "all_skipped": "skipped",
        "all_failed": "skipped",
        "one_failed": "skipped",
        "all_done": "success",
        "none_skipped": "success",
    },
}


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder: Path = tmp_path_factory.mktemp("mapped_rules")
    summary = run_locally(load_dag(folder, MAPPED_RULES))
    return {t: s.value for t, s in summary.task_states.items()}


@pytest.mark.parametrize("mix", sorted(EXPECTED))
def test_rules_below_a_mapped_task_count_its_instances(states: dict[str, str], mix: str) -> None:
    got = {rule: states[f"{mix}__{rule}"] for rule in EXPECTED[mix]}
    assert got == EXPECTED[mix]
