"""``ductwork tasks test`` of a mapped task: Airflow's ``tasks test --map-index N`` runs one
instance; without it every instance runs and each one's log is shown (the collector's alone
said "success" with nothing of what ran)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Cli

DAG = textwrap.dedent(
    """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task, task_group
    from airflow.operators.bash import BashOperator

    with DAG("mapped", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily") as dag:
        @task
        def nums():
            return [1, 2, 3]

        @task
        def double(x, factor):
            print("doubling", x)
            return x * factor

        @task_group
        def per_item(x):
            @task
            def first(x):
                return x + 100

            @task
            def second(y):
                print("second got", y)
                return y

            return second(first(x))

        double.partial(factor=10).expand(x=nums())
        BashOperator.partial(task_id="echo").expand(bash_command=["echo item-a", "echo item-b"])
        per_item.expand(x=[7, 8])
    """
)


def _write(tmp_path: Path) -> None:
    (tmp_path / "mapped.py").write_text(DAG)


def test_a_mapped_task_without_map_index_shows_every_instance(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path)
    tested = cli("tasks", "test", "mapped.py", "echo")
    assert tested.exit_code == 0, tested.output
    assert "item-a" in tested.output and "item-b" in tested.output
    assert "echo[0]: success" in tested.output and "echo[1]: success" in tested.output


def test_map_index_runs_one_instance(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path)
    tested = cli("tasks", "test", "mapped.py", "echo", "--map-index", "1")
    assert tested.exit_code == 0, tested.output
    assert "item-b" in tested.output and "item-a" not in tested.output
    assert "echo[1]: success" in tested.output
    by_id = cli("tasks", "test", "mapped.py", "echo[0]")
    assert by_id.exit_code == 0, by_id.output
    assert "item-a" in by_id.output and "item-b" not in by_id.output


def test_map_index_reads_the_upstream_results_of_the_recorded_run(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path)
    assert cli("run", "mapped.py", "--date", "2024-01-31").exit_code == 0
    tested = cli("tasks", "test", "mapped.py", "double", "2024-01-31", "--map-index", "2")
    assert tested.exit_code == 0, tested.output
    assert "doubling 3" in tested.output and "doubling 1" not in tested.output
    grouped = cli("tasks", "test", "mapped.py", "per_item.second", "2024-01-31", "--map-index", "1")
    assert grouped.exit_code == 0, grouped.output
    assert "second got 108" in grouped.output


def test_map_index_of_a_task_that_is_not_mapped_is_refused(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path)
    refused = cli("tasks", "test", "mapped.py", "nums", "--map-index", "0")
    assert refused.exit_code == 2
    assert "task 'nums' is not mapped" in refused.output


def test_state_and_logs_take_a_map_index(cli: Cli, tmp_path: Path) -> None:
    """``airflow tasks state ... --map-index N``: the instance ``TASK[N]`` of a recorded run."""
    _write(tmp_path)
    assert cli("run", "mapped.py", "--date", "2024-01-31").exit_code == 0
    run_id = "manual__2024-01-31T00:00:00+00:00"
    shown = cli("tasks", "state", "mapped", run_id, "double", "--map-index", "2")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("double[2]: success")
    logged = cli("tasks", "logs", "mapped", run_id, "double", "--map-index", "2")
    assert logged.exit_code == 0, logged.output
    assert "doubling 3" in logged.output and "doubling 1" not in logged.output
    twice = cli("tasks", "state", "mapped", run_id, "double[1]", "--map-index", "2")
    assert twice.exit_code == 2 and "already names an instance" in twice.output


def test_render_takes_a_map_index(cli: Cli, tmp_path: Path) -> None:
    """``airflow tasks render --map-index N``: it said only that the task is mapped."""
    _write(tmp_path)
    one = cli("tasks", "render", "mapped.py", "echo", "--map-index", "1")
    assert one.exit_code == 0, one.output
    assert "echo item-b" in one.output and "item-a" not in one.output
    by_id = cli("tasks", "render", "mapped.py", "echo[0]")
    assert by_id.exit_code == 0 and "echo item-a" in by_id.output
    past = cli("tasks", "render", "mapped.py", "echo", "--map-index", "5")
    assert past.exit_code == 2 and "has no map index 5" in past.output
