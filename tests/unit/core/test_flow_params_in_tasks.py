"""Flow parameters holding dicts reach tasks as plain dicts, as Airflow's params do."""

from __future__ import annotations

import json

from ductwork import BashOperator, Flow, PythonOperator, flow, task
from ductwork.testing import run_flow


def test_a_dict_parameter_is_a_dict_in_tasks_and_templates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # It was a mappingproxy: json.dumps(params["d"]) failed with "Object of type mappingproxy is not
    # JSON serializable", and so did {{ params.d | tojson }}.
    out = tmp_path / "out.json"
    with Flow("dict_params", params={"d": {"k": [1, {"z": 2}]}, "n": 3}) as f:
        PythonOperator(task_id="dump", python_callable=lambda params: json.dumps(dict(params), sort_keys=True))
        BashOperator(task_id="tpl", bash_command=f"echo '{{{{ params.d | tojson }}}}' > {out}")
    result = run_flow(f)
    assert result.state == "success", [(t, s.tries[-1].error) for t, s in result.tasks.items() if s.tries]
    assert json.loads(result.result("dump")) == {"d": {"k": [1, {"z": 2}]}, "n": 3}
    assert json.loads(out.read_text()) == {"k": [1, {"z": 2}]}


@task
def dumps(d: dict) -> str:
    return json.dumps(d)


@flow
def decorated(d: dict = {"a": {"b": 1}}) -> None:  # noqa: B006
    dumps(d)


def test_a_dict_argument_of_a_flow_function_is_a_dict_in_its_tasks() -> None:
    result = run_flow(decorated, params={"d": {"x": {"y": [1]}}})
    assert result.state == "success"
    assert json.loads(result.result("dumps")) == {"x": {"y": [1]}}
