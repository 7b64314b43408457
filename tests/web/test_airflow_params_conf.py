"""An Airflow DAG's ``params`` go into ``dag_run.conf`` and a conf is checked against them, the
same way from the trigger form, the REST API and ``ductwork trigger`` (as Airflow's trigger form
and ``create_dagrun`` do): a wrong type or bound is refused naming the param, defaults fill the
params not given, and a Ductwork flow's conf stays free-form."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Cli
from tests.web.conftest import login
from tests.web.seed import PASSWORD

PARAMS_DAG = Path(__file__).parents[1] / "compat" / "dags" / "params_dag.py"
DEFAULTS = {"rows": 10, "mode": "fast", "tags": ["a"], "note": "plain default"}


@pytest.fixture(scope="module")
def recorded(engine: Engine) -> None:
    """params_dag.py recorded as the scheduler's parser records it."""
    from ductwork.loading import load_file
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    loaded = load_file(PARAMS_DAG)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    with transaction(engine) as conn:
        for flow in loaded.flows:
            flow_repo.upsert_flow(conn, flow.to_graph())


@pytest.fixture(scope="module")
def operator_browser(app: Any, recorded: None) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app) as browser:
        yield browser, login(browser, "operator", PASSWORD)


def test_the_trigger_form_puts_the_params_in_dag_run_conf(
    operator_browser: tuple[TestClient, str], operator: Any
) -> None:
    browser, csrf = operator_browser
    posted = browser.post(
        "/flows/params_dag/trigger",
        data={"csrf_token": csrf, "param.rows": "20", "run_id": "form_params", "conf": '{"extra": 1}'},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text[-1500:]
    run = operator.get("/flows/params_dag/runs/form_params").json()
    assert run["conf"] == {**DEFAULTS, "rows": 20, "extra": 1}
    assert run["params"] == {**DEFAULTS, "rows": 20}


@pytest.mark.parametrize(
    ("conf", "said"),
    [
        ('{"rows": 0}', "parameter &#39;rows&#39;"),
        ('{"rows": "many"}', "parameter &#39;rows&#39;"),
        ('{"mode": "slow"}', "parameter &#39;mode&#39;"),
    ],
)
def test_a_conf_the_params_refuse_gives_the_form_back_naming_the_param(
    operator_browser: tuple[TestClient, str], operator: Any, conf: str, said: str
) -> None:
    from markupsafe import escape

    browser, csrf = operator_browser
    refused = browser.post(
        "/flows/params_dag/trigger",
        data={"csrf_token": csrf, "param.note": "kept", "run_id": "bad_conf", "conf": conf},
    )
    assert refused.status_code == 422 and said in refused.text, refused.text[-1500:]
    assert f">{escape(conf)}</textarea>" in refused.text and 'value="kept"' in refused.text
    assert operator.get("/flows/params_dag/runs/bad_conf").status_code == 404


def test_the_api_checks_a_conf_and_fills_it_as_the_form_does(operator: Any, recorded: None) -> None:
    refused = operator.post("/flows/params_dag/runs", json={"conf": {"rows": 5000}, "run_id": "api_bad"})
    assert refused.status_code == 422 and "'rows'" in refused.json()["detail"], refused.text
    assert operator.get("/flows/params_dag/runs/api_bad").status_code == 404
    queued = operator.post("/flows/params_dag/runs", json={"conf": {"mode": "thorough"}, "run_id": "api_ok"})
    assert queued.status_code == 201, queued.text
    assert queued.json()["conf"] == {**DEFAULTS, "mode": "thorough"}
    assert queued.json()["params"] == {**DEFAULTS, "mode": "thorough"}


def test_a_ductwork_flow_keeps_its_conf_as_given(operator: Any, recorded: None) -> None:
    queued = operator.post("/flows/demo/runs", json={"conf": {"n": "anything"}, "run_id": "free_conf"})
    assert queued.status_code == 201, queued.text
    assert queued.json()["conf"] == {"n": "anything"}


def test_ductwork_trigger_checks_and_fills_the_conf_too(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    shutil.copy(PARAMS_DAG, tmp_path / "flows" / PARAMS_DAG.name)
    refused = cli("trigger", "params_dag", "--conf", '{"rows": -1}')
    assert refused.exit_code != 0 and "'rows'" in refused.output, refused.output
    queued = cli("trigger", "params_dag", "--conf", '{"tags": ["x", "y"]}', "--json")
    assert queued.exit_code == 0, queued.output
    assert json.loads(queued.stdout)["conf"] == {**DEFAULTS, "tags": ["x", "y"]}


def test_ductwork_run_checks_the_conf_as_airflow_dags_test_does(cli: Cli, tmp_path: Path) -> None:
    shutil.copy(PARAMS_DAG, tmp_path / PARAMS_DAG.name)
    refused = cli("run", PARAMS_DAG.name, "--conf", '{"mode": "slow"}', "--no-record")
    assert refused.exit_code == 2 and "parameter 'mode'" in refused.output, refused.output
    ran = cli("run", PARAMS_DAG.name, "--conf", '{"rows": 30}', "--no-record", "--no-progress")
    assert ran.exit_code == 0, ran.output


def test_the_trigger_form_says_what_each_param_wants(operator_browser: tuple[TestClient, str]) -> None:
    """Every Airflow Param was a text box helped by the one word "schema"."""
    import re

    browser, _csrf = operator_browser
    page = browser.get("/flows/params_dag/trigger").text
    assert re.search(
        r'<input id="param-rows" type="number" step="1" min="1" max="1000" name="param.rows" value="10"', page
    )
    assert "integer, 1 to 1000" in page
    assert re.search(r"<textarea id=\"param-tags\" name=\"param.tags\"[^>]*>\[&#34;a&#34;\]</textarea>", page)
    assert "array as JSON" in page
    assert ">schema<" not in page and "schema ·" not in page


BOOL_DAG = """
    import pendulum
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.empty import EmptyOperator

    with DAG("bool_params", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
             params={"dry": Param(False, type="boolean"), "notify": Param(True, type="boolean"),
                     "maybe": Param(None, type=["null", "boolean"])}):
        EmptyOperator(task_id="t")
"""


def test_a_boolean_param_is_a_checkbox_on_the_trigger_form(
    operator_browser: tuple[TestClient, str], operator: Any, engine: Engine, tmp_path: Path
) -> None:
    """``Param(False, type="boolean")`` was a text box that took only ``true``/``false``: ``False``
    (a Python habit) was refused as "expected JSON", where Airflow's form shows a switch."""
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo
    from tests.compat.dag_files import load_dag

    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, load_dag(tmp_path, BOOL_DAG).to_graph())
    browser, csrf = operator_browser
    form = browser.get("/flows/bool_params/trigger").text
    assert '<input id="param-dry" type="checkbox" name="param.dry" >' in form, form
    assert '<input id="param-notify" type="checkbox" name="param.notify" checked>' in form
    assert 'id="param-maybe" type="checkbox"' not in form  # null or a boolean: typed, as before
    posted = browser.post(  # what a browser sends: "on" for the ticked box, nothing for the other
        "/flows/bool_params/trigger",
        data={"csrf_token": csrf, "param.dry": "on", "run_id": "bool_form", "conf": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text[-1500:]
    assert operator.get("/flows/bool_params/runs/bool_form").json()["conf"] == {
        "dry": True,
        "notify": False,
        "maybe": None,
    }


def test_a_refused_form_keeps_an_unticked_box_unticked(
    operator_browser: tuple[TestClient, str], engine: Engine, tmp_path: Path
) -> None:
    """A browser sends nothing for an unticked box: the form given back after a refusal (a conf
    typo) showed ``notify`` (default True) ticked again, and the corrected submit sent True."""
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo
    from tests.compat.dag_files import load_dag

    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, load_dag(tmp_path, BOOL_DAG).to_graph())
    browser, csrf = operator_browser
    refused = browser.post(
        "/flows/bool_params/trigger",
        data={"csrf_token": csrf, "param.dry": "on", "run_id": "bool_refused", "conf": "{oops"},
    )
    assert refused.status_code == 422, refused.text[-1500:]
    assert '<input id="param-notify" type="checkbox" name="param.notify" >' in refused.text
    assert '<input id="param-dry" type="checkbox" name="param.dry" checked>' in refused.text
