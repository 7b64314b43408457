"""DAG files written for the documented Airflow features (tests/compat/dags), run under the shim."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from ductwork.errors import ParameterError
from ductwork.loading import load_file

DAGS = Path(__file__).parent / "dags"


def _flows(name: str) -> dict[str, object]:
    loaded = load_file(DAGS / name)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return {f.flow_id: f for f in loaded.flows}


def test_unbound_with_block_is_registered_and_dag_kwarg_gets_default_args() -> None:
    flows = _flows("unbound_with_block.py")
    assert set(flows) == {"unbound", "bound_later"}
    unbound = flows["unbound"]
    interval = unbound.schedule.interval_starting(dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    assert interval.end - interval.start == dt.timedelta(days=1)  # Airflow 2's default schedule: one day
    assert unbound.catchup is True  # Airflow 2's default
    assert unbound.tasks["stamp"].retries == 2
    summary = run_locally(unbound, logical_date=dt.date(2024, 3, 1))
    assert summary.result("stamp") == "unbound__stamp__20240301 2024-03-02"


def test_dag_kwarg_default_args_start_date_owner_doc_md_and_task_params() -> None:
    bound = _flows("unbound_with_block.py")["bound_later"]
    assert bound.start_date == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert bound.owner == "ana"
    assert bound.meta().owner == "ana"
    assert bound.doc.startswith("# Bound later")
    summary = run_locally(bound, logical_date=dt.datetime(2024, 3, 1, 6, 30, tzinfo=dt.UTC))
    assert summary.result("first") == "2024-03-01 20240301T063000"
    assert summary.result("second") == ["2024-03-01 20240301T063000", "task-level", "bound_later"]


def test_param_schema_validation() -> None:
    flow = _flows("params_dag.py")["params_dag"]
    described = flow.meta().params
    assert described["rows"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    summary = run_locally(flow, params={"rows": "20", "mode": "thorough"})
    assert summary.result("show") == [20, "thorough", ["a"], "plain default"]
    with pytest.raises(ParameterError, match="rows"):
        flow.resolve_params({"rows": "0"})
    with pytest.raises(ParameterError, match="mode"):
        flow.resolve_params({"mode": "slow"})


def test_unsupported_feature_fails_at_parse_time_naming_file_line_and_feature() -> None:
    loaded = load_file(DAGS / "unsupported_feature.py")
    assert loaded.flows == []  # nothing half-registered, not even the DAG defined before
    [error] = loaded.errors
    source = (DAGS / "unsupported_feature.py").read_text().splitlines()
    assert error.line == next(i for i, text in enumerate(source, 1) if "run_as_user" in text)
    assert "run_as_user" in str(error) and "unsupported_feature.py" in str(error)


def test_dynamic_task_mapping_partial_expand_kwargs_and_empty_lists() -> None:
    flow = _flows("mapping_dag.py")["mapping_dag"]
    summary = run_locally(flow)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert summary.result("join") == sorted(["a.csv:5kB", "a.csv:50kB", "b.csv:5kB", "b.csv:50kB"])
    assert summary.result("size[1]") == "a.csv:50kB"  # names x scales, in order
    assert summary.result("echoed") == ["one", "two"]
    assert states["size__1"] == "skipped"  # an empty list: nothing to map, as in Airflow
    assert states["after_empty"] == "skipped"
    assert {t for t in states if t.startswith("size[")} == {f"size[{i}]" for i in range(4)}


def test_setup_and_teardown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETUP_TEARDOWN_MARKS", str(tmp_path))
    flow = _flows("setup_teardown_dag.py")["setup_teardown_dag"]
    assert set(flow.tasks["delete_cluster"].upstream_task_ids) == {"create_cluster", "work"}
    ok = run_locally(flow)
    assert ok.state.value == "success" and (tmp_path / "deleted").read_text() == "cluster-1"
    (tmp_path / "deleted").unlink()
    failed_work = run_locally(flow, params={"fail_work": True})
    states = {t: s.value for t, s in failed_work.task_states.items()}
    assert states == {"create_cluster": "success", "work": "failed", "delete_cluster": "success"}
    assert failed_work.state.value == "failed"  # the work decides the run, not the teardown
    assert (tmp_path / "deleted").exists()  # cleaned up all the same
    failed_teardown = run_locally(flow, params={"fail_teardown": True})
    assert failed_teardown.task_states["delete_cluster"].value == "failed"
    assert failed_teardown.state.value == "success"  # a teardown's failure does not fail the run


def test_setup_teardown_examples_keep_their_shape(tmp_path: Path) -> None:
    from tests.compat.conformance import extract_airflow_examples

    files = extract_airflow_examples(["example_setup_teardown_taskflow.py"], tmp_path)
    [flow] = load_file(files["example_setup_teardown_taskflow.py"]).flows
    teardown = flow.tasks["outer_teardown"]
    assert {"outer_work", "section_1.inner_teardown", "outer_setup"} <= set(teardown.upstream_task_ids)
    assert "outer_setup" in flow.tasks["outer_work"].upstream_task_ids
    assert run_locally(flow).state.value == "success"


def test_labelled_edges_keep_their_dependency_and_branching_follows_airflow() -> None:
    flow = _flows("branch_labels_dag.py")["branch_labels"]
    upstream = {t: sorted(n.upstream_task_ids) for t, n in flow.tasks.items()}  # type: ignore[attr-defined]
    assert upstream["branch_a"] == ["branching"]  # task >> Label(...) >> task: the edge is there
    assert upstream["load"] == ["extract"]
    assert upstream["report"] == ["load"]  # task << Label(...) << task
    summary = run_locally(flow)  # type: ignore[arg-type]
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states == {
        "run_this_first": "success",
        "branching": "success",
        "branch_a": "skipped",
        "follow_a": "skipped",
        "branch_b": "success",
        "follow_b": "success",
        "branch_c": "skipped",
        "follow_c": "skipped",
        "join": "success",
        "extract": "success",
        "load": "success",
        "report": "success",
        "empty_branch": "success",
        "task1": "success",
        "after": "success",  # directly below the branch, but also below task1: kept, as in Airflow
    }


def test_hooks_and_connections_as_airflow_code_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCTWORK_CONN_WAREHOUSE", "postgres://ana:s3cret@db.example:5433/sales?region=eu")
    summary = run_locally(_flows("hook_dag.py")["hook_dag"])  # type: ignore[arg-type]
    assert summary.result("through_hook") == {
        "host": "db.example",
        "port": 5433,
        "login": "ana",
        "password": "s3cret",
        "schema": "sales",
        "region": "eu",
    }
    assert summary.result("through_connection") == ["warehouse", "postgres", "db.example:5433/sales?region=eu"]
    assert "connection 'nowhere' is not defined" in summary.result("missing")


def test_xcom_pull_without_task_ids_and_the_arguments_not_followed() -> None:
    summary = run_locally(_flows("xcom_pull_dag.py")["xcom_pull_dag"])  # type: ignore[arg-type]
    assert summary.result("pull") == [42, 42, 7]  # task_ids=None: any task of the run, as Airflow 2
    assert summary.result("here") == 42  # include_prior_dates: this run's value comes first
    assert "earlier runs' XComs are not read" in (summary["prior"].tries[0].error or "")
    assert "another DAG's XComs is not supported" in (summary["other"].tries[0].error or "")
