"""Airflow's own example DAGs (from the pinned apache-airflow wheel, unchanged) run under the shim
with the task states and XComs Airflow documents for them (tests/compat/README.md lists them)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from ductwork.loading import load_file
from tests.compat.conformance import extract_airflow_examples

EXAMPLES = [
    "example_bash_operator.py",
    "example_xcom.py",
    "example_xcomargs.py",
    "tutorial_taskflow_api.py",
    "tutorial_dag.py",
    "example_task_group.py",
    "example_task_group_decorator.py",
    "example_short_circuit_operator.py",
    "example_short_circuit_decorator.py",
    "example_skip_dag.py",
    "example_nested_branch_dag.py",
    "example_branch_labels.py",
    "example_complex.py",
    "example_python_operator.py",
    "example_display_name.py",
    "example_sensors.py",
    "example_latest_only.py",
    "example_branch_day_of_week_operator.py",
    "example_dag_decorator.py",
    "example_dynamic_task_mapping.py",
    "example_dynamic_task_mapping_with_no_taskflow_operators.py",
    "example_setup_teardown.py",
    "example_setup_teardown_taskflow.py",
    "sql/sample.sql",  # example_python_operator.py's templates_dict names it (templates_exts=[".sql"])
]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return extract_airflow_examples(EXAMPLES, tmp_path_factory.mktemp("example_dags"))


def _run(path: Path, dag_id: str | None = None, **kwargs: object) -> object:
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    flows = {f.flow_id: f for f in loaded.flows}
    flow = flows[dag_id] if dag_id else next(iter(flows.values()))
    return run_locally(flow, parallelism=4, **kwargs)  # type: ignore[arg-type]


def _states(summary: object) -> dict[str, str]:
    return {task_id: state.value for task_id, state in summary.task_states.items()}  # type: ignore[attr-defined]


def test_bash_operator_exit_99_skips_and_the_skip_spreads(examples: dict[str, Path]) -> None:
    summary = _run(examples["example_bash_operator.py"], logical_date=dt.date(2024, 3, 1))
    states = _states(summary)
    assert states["this_will_skip"] == "skipped"
    assert states["run_this_last"] == "skipped"  # all_success with a skipped upstream
    assert {states[f"runme_{i}"] for i in range(3)} == {"success"}
    assert states["also_run_this"] == "success"
    assert summary.result("runme_1") == "example_bash_operator__runme_1__20240301"  # type: ignore[attr-defined]
    assert summary.result("also_run_this") == "ti_key=example_bash_operator__also_run_this__20240301"  # type: ignore[attr-defined]
    assert summary.state.value == "success"  # type: ignore[attr-defined]


def test_xcom_push_pull_and_templated_xcom_args(examples: dict[str, Path]) -> None:
    summary = _run(examples["example_xcom.py"])
    assert set(_states(summary).values()) == {"success"}  # puller raises if a pulled value differs
    assert summary.result("bash_push") == "value_by_return"  # type: ignore[attr-defined]
    assert summary.result("bash_push", "manually_pushed_value") == "manually_pushed_value"  # type: ignore[attr-defined]
    assert summary.result("push", "value from pusher 1") == [1, 2, 3]  # type: ignore[attr-defined]


def test_xcomargs_two_dags_in_one_file(examples: dict[str, Path]) -> None:
    for dag_id in ("example_xcom_args", "example_xcom_args_with_operators"):
        summary = _run(examples["example_xcomargs.py"], dag_id)
        assert set(_states(summary).values()) == {"success"}
    assert _states(summary).keys() == {"c", "d", "print_value", "print_value__1"}


def test_taskflow_tutorial_passes_values_between_tasks(examples: dict[str, Path]) -> None:
    summary = _run(examples["tutorial_taskflow_api.py"])
    assert summary.result("transform") == {"total_order_value": 1236.7}  # type: ignore[attr-defined]
    assert summary.result("extract") == {"1001": 301.27, "1002": 433.21, "1003": 502.22}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "example_short_circuit_operator.py",
            {
                "true_1": "success",
                "false_1": "skipped",
                "false_2": "skipped",
                "task_4": "skipped",
                "task_6": "skipped",
                "task_5": "success",
                "task_7": "success",
            },
        ),
        (
            "example_skip_dag.py",
            {"skip_operator_1": "skipped", "final_1": "skipped", "one_success": "success", "final_2": "success"},
        ),
        (
            "example_nested_branch_dag.py",
            {
                "true_1": "success",
                "false_1": "skipped",
                "branch_2": "skipped",
                "join_2": "skipped",
                "join_1": "success",
            },
        ),
        ("example_branch_labels.py", {"report": "success", "email_error": "success"}),
    ],
)
def test_skips_branches_and_trigger_rules(examples: dict[str, Path], name: str, expected: dict[str, str]) -> None:
    states = _states(_run(examples[name]))
    assert {k: states[k] for k in expected} == expected


@pytest.mark.parametrize(
    "name",
    [
        "tutorial_dag.py",
        "example_task_group.py",
        "example_task_group_decorator.py",
        "example_short_circuit_decorator.py",
        "example_complex.py",
        "example_python_operator.py",
        "example_display_name.py",
        "example_setup_teardown.py",
        "example_setup_teardown_taskflow.py",
    ],
)
def test_examples_run_to_success(examples: dict[str, Path], name: str) -> None:
    summary = _run(examples[name])
    assert summary.state.value == "success", _states(summary)  # type: ignore[attr-defined]
    assert "failed" not in _states(summary).values()


def test_task_group_ids_are_prefixed(examples: dict[str, Path]) -> None:
    states = _states(_run(examples["example_task_group_decorator.py"]))
    assert "task_group_function__1.task_1" in states and "task_group_function__4.task_3" in states


def test_python_dag_file_runs_dag_test(examples: dict[str, Path], tmp_path: Path) -> None:
    """``python example_bash_operator.py`` runs ``dag.test()`` with Airflow absent."""
    proc = subprocess.run(
        [sys.executable, str(examples["example_bash_operator.py"])],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DUCTWORK_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "[dag.test] this_will_skip: skipped" in proc.stdout
    assert "[dag.test] runme_0: success" in proc.stdout
    assert ": success" in proc.stdout.splitlines()[-1]


class _FastClock:
    """Virtual time that moves by whole waits while real time moves by a tenth of a second at
    most: sensors waiting on each other (a file another task writes after three real seconds)
    still meet, and minute-long poke intervals cost nothing."""

    def __init__(self, at: dt.datetime) -> None:
        from ductwork.testing import FrozenClock

        self._frozen = FrozenClock(at)

    def now(self) -> dt.datetime:
        return self._frozen.now()

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(min(max(seconds, 0.0), 0.1))
        self._frozen.sleep(seconds)


def test_standard_sensors_with_soft_fail_and_deferral(examples: dict[str, Path]) -> None:
    """Soft-failing sensors end skipped, the others succeed, as Airflow's example documents."""
    now = dt.datetime.now(dt.UTC)
    summary = _run(examples["example_sensors.py"], clock=_FastClock(now), logical_date=now)
    states = _states(summary)
    for task_id in ("Sensor_fails_after_3_seconds", "failure_timeout_sensor_python"):
        assert states[task_id] == "skipped", states
    # The example waits for the time of day an hour after its import. From 23:00 UTC that time
    # is past midnight, so today's has gone by already and the sensor fires at once (as
    # Airflow's TimeSensor does): the example only soft-fails before 23:00.
    wrapped = [(moment + dt.timedelta(hours=1)).date() != moment.date() for moment in (now, dt.datetime.now(dt.UTC))]
    if wrapped[0] == wrapped[1]:  # not a run that straddles 23:00
        expected = "success" if wrapped[0] else "skipped"
        assert states["timeout_after_second_date_in_the_future"] == expected, states
    for task_id in (
        "wait_some_seconds",
        "wait_some_seconds_async",
        "fire_immediately",
        "Sensor_succeeds",
        "wait_for_file",
        "wait_for_file_async",
        "success_sensor_python",
    ):
        assert states[task_id] == "success", states
    monday = now.astimezone(dt.UTC).isoweekday() == 1
    assert states["week_day_sensor_failing_on_timeout"] == ("success" if monday else "skipped")
    deferred = summary["wait_some_seconds_async"].tries  # type: ignore[index]
    assert deferred[0].state.value == "up_for_reschedule"  # the worker slot was freed while waiting


def test_latest_only_skips_all_but_the_latest_scheduled_run(examples: dict[str, Path]) -> None:
    old = _run(
        examples["example_latest_only.py"], run_type="scheduled", logical_date=dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    )
    assert _states(old) == {"latest_only": "success", "task1": "skipped"}
    manual = _run(examples["example_latest_only.py"], logical_date=dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    assert _states(manual) == {"latest_only": "success", "task1": "success"}


def test_branch_day_of_week(examples: dict[str, Path]) -> None:
    from ductwork.testing import FrozenClock

    saturday = dt.datetime(2024, 3, 2, 12, tzinfo=dt.UTC)
    states = _states(_run(examples["example_branch_day_of_week_operator.py"], clock=FrozenClock(saturday)))
    assert states == {
        "make_choice": "success",
        "branch_true": "skipped",
        "branch_false": "success",
        "make_weekend_choice": "success",
        "branch_weekend": "success",
        "branch_mid_week": "skipped",
    }
    monday = dt.datetime(2024, 3, 4, 12, tzinfo=dt.UTC)
    states = _states(_run(examples["example_branch_day_of_week_operator.py"], clock=FrozenClock(monday)))
    assert (states["branch_true"], states["branch_false"], states["branch_weekend"]) == (
        "success",
        "skipped",
        "skipped",
    )


def test_dag_decorator_params_reach_templated_fields(examples: dict[str, Path]) -> None:
    flow = load_file(examples["example_dag_decorator.py"]).flows[0]
    send = flow.tasks["send_email"]
    assert send.to == ["{{ params.email }}"] or send.to == "{{ params.email }}"
    assert set(send.upstream_task_ids) == {"prepare_email"}


@pytest.mark.parametrize(
    ("name", "dag_id"),
    [
        ("example_dynamic_task_mapping.py", "example_dynamic_task_mapping"),
        ("example_dynamic_task_mapping_with_no_taskflow_operators.py", None),
    ],
)
def test_dynamic_task_mapping(examples: dict[str, Path], name: str, dag_id: str | None) -> None:
    summary = _run(examples[name], dag_id)
    states = _states(summary)
    assert summary.state.value == "success", states  # type: ignore[attr-defined]
    assert {t for t in states if t.startswith("add_one[")} == {"add_one[0]", "add_one[1]", "add_one[2]"}
    assert summary.result("add_one") == [2, 3, 4]  # type: ignore[attr-defined]
    assert summary.result("add_one[1]") == 3  # type: ignore[attr-defined]
    if name.endswith("operators.py"):
        assert summary.result("sum_it") == 9  # type: ignore[attr-defined]
