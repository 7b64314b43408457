"""Declarative pipelines over the REST API: validate, put (refused whole when invalid), activate,
deactivate, list with AWS's schedule states, describe, the JSON Schema; roles and the audit log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD

DEFINITION = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
        {"id": "Hello", "type": "ShellCommandActivity", "command": "echo #{myWho}"},
    ],
    "parameters": [{"id": "myWho", "type": "String", "default": "api"}],
}
YAML = "flow: ignored\ntasks:\n  a:\n    operator: EmptyOperator\n"


def _body(definition: Any, fmt: str = "json") -> dict[str, str]:
    return {"definition": json.dumps(definition) if not isinstance(definition, str) else definition, "format": fmt}


def test_validate_lists_every_problem_with_object_and_field(viewer: Api) -> None:
    bad = {
        "objects": [
            *DEFINITION["objects"],
            {"id": "Oops", "type": "ShellCommandActivity", "command": "#{1 +}", "dependsOn": {"ref": "Nowhere"}},
        ]
    }
    answer = viewer.post("/pipelines/validate", json=_body(bad)).json()
    assert answer["valid"] is False
    assert any(
        "object 'Oops', field 'dependsOn': reference to a missing object 'Nowhere'" in p for p in answer["problems"]
    )
    assert any("object 'Oops', field 'command', position 6" in p for p in answer["problems"])
    good = viewer.post("/pipelines/validate", json=_body(DEFINITION)).json()
    assert good == {"valid": True, "problems": [], "tasks": ["Hello"]}
    assert viewer.post("/pipelines/validate", json=_body(YAML, "yaml")).json()["tasks"] == ["a"]
    notjson = viewer.post("/pipelines/validate", json={"definition": "{", "format": "json"}).json()
    assert notjson["valid"] is False and "not valid JSON" in notjson["problems"][0]


def test_a_file_that_does_not_parse_is_refused_with_its_line(admin: Api, viewer: Api) -> None:
    broken = "flow: broken\ntasks:\n  a:\n    operator: EmptyOperator\n   b:\n    operator: EmptyOperator\n"
    answer = viewer.post("/pipelines/validate", json=_body(broken, "yaml")).json()
    assert answer["valid"] is False
    assert answer["problems"] == ["line 5: not valid YAML: expected <block end>, but found '<block mapping start>'"]
    refused = admin.put("/pipelines/broken", json=_body(broken, "yaml"))
    assert refused.status_code == 400 and "line 5: not valid YAML" in refused.json()["detail"]
    notjson = viewer.post("/pipelines/validate", json=_body('{"objects": [\n  {"id": "A"},\n]}', "json")).json()
    assert notjson["problems"] == ["line 3: not valid JSON: Expecting value (line 3, column 1)"]


def test_put_activate_deactivate_and_list(operator: Api, viewer: Api, admin: Api) -> None:
    assert viewer.put("/pipelines/api_pipe", json=_body(DEFINITION)).status_code == 403
    bad = admin.put("/pipelines/api_pipe", json=_body({"objects": [{"id": "X", "type": "Nope"}]}))
    assert bad.status_code == 400 and "nothing was stored or activated" in bad.json()["detail"]
    assert "api_pipe" not in [p["name"] for p in viewer.get("/pipelines").json()]

    stored = admin.put("/pipelines/api_pipe", json=_body(DEFINITION)).json()
    assert stored == {
        "name": "api_pipe",
        "version": 1,
        "format": "aws-datapipeline",
        "created": True,
        "tasks": ["Hello"],
    }
    listed = {p["name"]: p for p in viewer.get("/pipelines").json()}
    assert listed["api_pipe"]["schedule_state"] == "PENDING" and listed["api_pipe"]["source"] == "stored"

    activated = operator.post("/pipelines/api_pipe/activate", json={}).json()
    assert activated["schedule_state"] == "SCHEDULED"  # on demand: its run is asked for
    deactivated = operator.post("/pipelines/api_pipe/deactivate").json()
    assert deactivated["schedule_state"] == "INACTIVE"

    described = viewer.get("/pipelines/api_pipe").json()
    assert [(v["version"], v["active"]) for v in described["versions"]] == [(1, True)]
    assert described["versions"][0]["deactivated_at"] is not None
    assert viewer.get("/pipelines/nope").status_code == 404
    assert operator.post("/pipelines/nope/activate", json={}).status_code == 404

    actions = [e["action"] for e in admin.get("/audit?limit=50").json()["items"]]
    assert {"pipeline.put", "pipeline.activate", "pipeline.deactivate"} <= set(actions)


def test_the_schema_is_served_and_valid(viewer: Api) -> None:
    schema = viewer.get("/pipelines/schema").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors({"tasks": {"a": {"operator": "BashOperator", "bash_command": "echo"}}}))
    errors = list(validator.iter_errors({"tasks": {"a": {"operator": "BashOperator", "bash_comand": "echo"}}}))
    assert errors


def test_a_schedule_that_started_long_ago_is_refused_until_its_backfill_is_allowed(
    admin: Api, operator: Api, viewer: Api
) -> None:
    old = {
        "objects": [
            {"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Old"}},
            {"id": "Old", "type": "Schedule", "period": "1 days", "startDateTime": "2020-01-01T00:00:00"},
            {"id": "Tick", "type": "ShellCommandActivity", "command": "echo tick"},
        ]
    }
    assert admin.put("/pipelines/old_api", json=_body(old)).status_code == 200
    refused = operator.post("/pipelines/old_api/activate", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "backfill_refused" and refused.json()["start"] == "2020-01-01T00:00:00+00:00"
    assert "allow_backfill" in refused.json()["detail"]
    assert viewer.get("/pipelines/old_api").json()["schedule_state"] == "PENDING"
    allowed = operator.post("/pipelines/old_api/activate", json={"allow_backfill": True})
    assert allowed.status_code == 200 and allowed.json()["schedule_state"] == "SCHEDULED"


def test_only_admins_store_definitions_they_are_code_run_on_the_workers(operator: Api, admin: Api) -> None:
    """A definition's commands and templates run on the workers with the connections' real
    passwords: an operator who could store one read any password (``echo {{ conn.x.password }}
    | rev``) the API never shows them, and ran any command. Operators activate what admins store."""
    steal = (
        "flow: steal\ntasks:\n  t:\n    operator: BashOperator\n    bash_command: echo {{ conn.db.password }} | rev\n"
    )
    refused = operator.put("/pipelines/steal", json=_body(steal, "yaml"))
    assert refused.status_code == 403, refused.text
    assert "needs admin" in refused.json()["detail"]
    assert operator.get("/pipelines/steal").status_code == 404
    assert admin.put("/pipelines/steal", json=_body(steal, "yaml")).status_code == 200
    assert operator.post("/pipelines/steal/activate", json={}).status_code == 200


def test_an_on_demand_pipelines_schedule_is_ondemand_not_none(
    engine: Any, app: Any, viewer: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Once the scheduler had parsed an ondemand definition, the API gave its schedule as the
    text "None" (the flow's own, with no schedule), where ``pipelines list`` says 'ondemand', as
    AWS's scheduleType does; a client testing ``schedule is None`` or showing it read "None"."""
    from ductwork.declarative.files import compile_file
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    path = tmp_path_factory.mktemp("ondemand") / "on_call.json"
    path.write_text(json.dumps(DEFINITION))
    (flow,) = compile_file(path)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())
    listed = {p["name"]: p for p in viewer.get("/pipelines").json()}
    assert listed["on_call"]["schedule"] == "ondemand", listed["on_call"]
    assert viewer.get("/pipelines/on_call").json()["schedule"] == "ondemand"
    with TestClient(app) as browser:  # the page still says so in words
        login(browser, "viewer", PASSWORD)
        text = browser.get("/pipelines").text
    row = text[text.index('data-pipeline="on_call"') :].split("</tr>")[0]
    assert "On demand" in row and "Runs ondemand" not in row, row


def test_a_flows_folder_pipeline_deactivated_can_be_activated_again(
    engine: Any, operator: Api, viewer: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``pipelines deactivate`` (and the page's Deactivate button) paused a pipeline of the flows
    folder, but ``activate`` (and the Activate button the page then shows) said "no stored
    pipeline": it could only be resumed with ``ductwork flows unpause``. Activating it resumes its
    schedule; an on-demand one gets a run, as a stored one does."""
    from ductwork.declarative.files import compile_file
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    folder = tmp_path_factory.mktemp("folder")
    (folder / "folder_daily.yaml").write_text(
        "flow: folder_daily\nschedule: '@daily'\nstart_date: 2026-11-01\ntasks:\n  a:\n    operator: EmptyOperator\n"
    )
    (folder / "folder_now.json").write_text(json.dumps(DEFINITION))
    for name in ("folder_daily.yaml", "folder_now.json"):
        (flow,) = compile_file(folder / name)
        with transaction(engine) as conn:
            flow_repo.upsert_flow(conn, flow.to_graph())
    with transaction(engine) as conn:  # as the scheduler records the daily one's next run
        day = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
        flow_repo.set_next_run(
            conn, "folder_daily", logical_date=day, interval_start=day, interval_end=day + dt.timedelta(days=1)
        )
    for name in ("folder_daily", "folder_now"):
        assert operator.post(f"/pipelines/{name}/deactivate").json()["schedule_state"] == "INACTIVE"
        again = operator.post(f"/pipelines/{name}/activate", json={})
        assert again.status_code == 200, again.text
        assert again.json()["schedule_state"] == "SCHEDULED", again.json()
    runs = viewer.get("/flows/folder_now/runs").json()["items"]
    assert [r["run_type"] for r in runs] == ["manual"], runs  # the on-demand one's run
    assert operator.post("/pipelines/folder_daily/activate", json={"version": 2}).status_code == 400
