"""Task and run ids holding a ``/`` (Luigi-style ids with a path parameter, a run id given by
hand) are reachable in the API and the UI when the slash is sent as ``%2F`` (issue 9, item 14)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from ductwork import EmptyOperator, Flow
from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.states import TaskState
from ductwork.store.engine import transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD

TASKS = ("Copy(src=/data/in, dst=/data/out)", "load/eu", "plain")
RUN_ID = "by_hand/2024-01-01"


def _seed(engine: Any) -> None:
    """Such ids come from Luigi-style class tasks (``Copy(src=/data/in, dst=/data/out)``) and
    from records kept from before operators' ids followed Airflow's rule: the graph is made
    as the store holds them, not through an operator, which refuses them now."""
    with Flow("slashes", schedule=None) as flow:
        EmptyOperator(task_id="placeholder")
    meta = flow.to_graph().meta
    nodes = {t: NodeSpec(t, (TASKS[i - 1],) if i else (), kind="class_task") for i, t in enumerate(TASKS)}
    graph = FlowGraph(meta, nodes)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph, fileloc="/flows/slashes.py")
        run_repo.create_run(
            conn,
            graph,
            run_id=RUN_ID,
            logical_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            params={},
            states=dict.fromkeys(TASKS, TaskState.SUCCESS),
        )


def _q(value: str) -> str:
    return quote(value, safe="")


def test_ids_with_slashes_are_reachable(engine: Any, operator: Api, app: Any) -> None:
    _seed(engine)
    run = f"/flows/slashes/runs/{_q(RUN_ID)}"
    assert operator.get(run).json()["run_id"] == RUN_ID
    listed = operator.get(run + "/tasks").json()
    assert set(TASKS) <= {t["task_id"] for t in (listed["items"] if isinstance(listed, dict) else listed)}
    for task_id in TASKS:
        for tail in ("", "/tries", "/results"):
            response = operator.get(f"{run}/tasks/{_q(task_id)}{tail}")
            assert response.status_code == 200, (task_id, tail, response.text)
        assert operator.get(f"{run}/tasks/{_q(task_id)}").json()["task_id"] == task_id
        logs = operator.get(f"{run}/tasks/{_q(task_id)}/logs", params={"follow": "false"})
        assert logs.status_code in (200, 404), logs.text  # no try ran: a clear "no log" is fine
    cleared = operator.post(run + "/tasks/clear", json={"task_ids": [TASKS[1]], "dry_run": True})
    assert cleared.status_code == 200 and cleared.json()["task_ids"][0] == TASKS[1]
    # an id that does not exist is still a 404 naming it, not a routing accident
    missing = operator.get(f"{run}/tasks/{_q('load/us')}")
    assert missing.status_code == 404 and "load/us" in missing.json()["detail"]

    browser = TestClient(app)
    login(browser, "viewer", PASSWORD)
    for task_id in TASKS:
        page = browser.get(f"/flows/slashes/runs/{_q(RUN_ID)}/tasks/{_q(task_id)}")
        assert page.status_code == 200, (task_id, page.text[:300])
        assert task_id.replace(">", "&gt;") in page.text or _q(task_id) in page.text
    graph = browser.get(f"/flows/slashes/runs/{_q(RUN_ID)}/graph")
    assert graph.status_code == 200


@given(
    st.lists(
        st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_each_encoded_segment_comes_back_whole(segments: list[str]) -> None:
    from ductwork.api.slashes import restore_slashes, segment_path

    raw = "/".join(quote(s, safe="") for s in segments).encode("ascii")
    assert [restore_slashes(s) for s in segment_path(raw).split("/")] == segments


def test_a_nul_in_the_path_is_refused_not_read_as_a_slash(operator: Api) -> None:
    """%00 decoded to the marker the in-segment slash uses: the answer was "no flow '/'"."""
    for path in ("/flows/%00", "/flows/demo/runs/a%00b", "/pools/%2F%00"):
        response = operator.get(path)
        assert response.status_code == 422, (path, response.text)
        assert "%00" in response.json()["detail"] and response.json()["error"] == "validation_error"
        assert "'/'" not in response.json()["detail"]


def test_an_id_too_long_is_counted_in_characters(operator: Api) -> None:
    response = operator.get("/flows/" + "x" * 251)
    assert response.status_code == 422
    assert "at most 250 characters" in response.json()["detail"], response.json()
