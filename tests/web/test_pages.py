"""The server-rendered pages: each renders for a logged-in user, shows what it must, and the
trigger form is built from the flow's typed parameters."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import login
from tests.web.seed import PASSWORD, Seeded


@pytest.fixture(scope="module")
def operator_browser(app: Any) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app) as browser:
        yield browser, login(browser, "operator", PASSWORD)


@pytest.fixture(scope="module")
def viewer_browser(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        yield browser


def test_flows_page_shows_schedule_owner_tags_and_recent_runs(viewer_browser: TestClient) -> None:
    page = viewer_browser.get("/flows").text
    row = page[page.index('data-flow-id="demo"') :].split("</tr>")[0]
    assert "data-team" in row and "@daily" in row and ">web<" in row
    assert re.findall(r'class="dot s-(\w+)"', row)[-3:] == ["success", "failed", "running"]
    assert "nightly_paused" in page and "1 import error" in page
    assert "pause-toggle" not in page, "viewers get no pause switch"
    filtered = viewer_browser.get("/flows?tag=ops").text
    assert 'data-flow-id="nightly_paused"' in filtered and 'data-flow-id="demo"' not in filtered


def test_run_pages_render(viewer_browser: TestClient, seeded: Seeded) -> None:
    run = quote(seeded.failed_run, safe="")
    for path, marker in [
        ("/flows/demo/grid", 'id="grid"'),
        (f"/flows/demo/runs/{run}/graph", 'id="graph-svg"'),
        (f"/flows/demo/runs/{run}/gantt", 'id="gantt"'),
        (f"/flows/demo/runs/{run}/tasks/load", 'id="task-log"'),
        ("/luigi", 'id="families"'),
        ("/pools", 'id="pools-table"'),
        ("/account", 'id="token-form"'),
    ]:
        response = viewer_browser.get(path)
        assert response.status_code == 200, path
        assert marker in response.text, path
    assert viewer_browser.get(f"/flows/demo/runs/{run}", follow_redirects=False).headers["location"].endswith("/graph")
    assert viewer_browser.get("/", follow_redirects=False).headers["location"] == "/flows"


def test_import_errors_page(viewer_browser: TestClient) -> None:
    page = viewer_browser.get("/import-errors").text
    assert "/flows/broken.py:3" in page and "NameError" in page and "Traceback" in page


def test_unknown_things_get_an_html_404(viewer_browser: TestClient) -> None:
    response = viewer_browser.get("/flows/dmeo/grid")
    assert response.status_code == 404 and "text/html" in response.headers["content-type"]
    assert "Did you mean &#39;demo&#39;" in response.text
    assert viewer_browser.get("/flows/demo/runs/nope/graph").status_code == 404
    assert viewer_browser.get("/flows/demo/runs/nope/tasks/x").status_code == 404


def test_a_bad_query_string_on_a_page_gets_the_html_error_page(viewer_browser: TestClient) -> None:
    """A person's browser shows the error page, naming the bad value, not a JSON body."""
    response = viewer_browser.get("/flows?paused=maybe")
    assert response.status_code == 422 and "text/html" in response.headers["content-type"]
    assert "paused" in response.text
    assert viewer_browser.get("/api/v1/flows?paused=maybe").headers["content-type"].startswith("application/json")


def test_viewer_has_no_trigger_form(viewer_browser: TestClient) -> None:
    response = viewer_browser.get("/flows/demo/trigger")
    assert response.status_code == 403 and "viewer role" in response.text
    assert "Clear failed tasks" not in viewer_browser.get("/flows/demo/grid").text


def test_trigger_form_is_built_from_typed_parameters(operator_browser: tuple[TestClient, str]) -> None:
    browser, _csrf = operator_browser
    page = browser.get("/flows/demo/trigger").text
    assert re.search(r'<input id="param-n" type="number" step="1" name="param.n" value="3"', page)
    assert re.search(
        r'<select id="param-mode" name="param.mode"><option selected>fast</option><option>slow</option>', page
    )
    assert 'id="param-label" type="text"' in page


def test_trigger_form_names_a_bad_parameter_and_keeps_the_values(operator_browser: tuple[TestClient, str]) -> None:
    browser, csrf = operator_browser
    response = browser.post(
        "/flows/demo/trigger",
        data={"csrf_token": csrf, "param.n": "lots", "param.label": "kept", "run_id": "form__bad"},
    )
    assert response.status_code == 422
    assert "parameter &#39;n&#39; wants int" in response.text
    assert 'value="kept"' in response.text and 'value="form__bad"' in response.text
    bad_conf = browser.post("/flows/demo/trigger", data={"csrf_token": csrf, "conf": "[1]"})
    assert bad_conf.status_code == 422 and "JSON object" in bad_conf.text
    typo = browser.post("/flows/demo/trigger", data={"csrf_token": csrf, "conf": '{\n "a": 1,\n}'})
    assert typo.status_code == 422
    assert "conf: not valid JSON: Expecting property name enclosed in double quotes (line 3, column 1)" in typo.text


@pytest.mark.parametrize(
    ("field", "value", "names"),
    [
        ("run_id", "x" * 300, "run id: must be 1 to 250 characters"),
        ("run_id", "a/b", "may not be"),
        ("run_id", "nul\x00id", "may not be"),
        ("run_id", "..", "may not be"),
        ("logical_date", "9999-12-31T23:59", "between 1900 and 9000"),
        ("logical_date", "0001-01-01T00:00", "between 1900 and 9000"),
        ("param.bogus", "1", "unknown parameter &#39;bogus&#39;"),
    ],
)
def test_trigger_form_refuses_what_the_api_refuses(
    operator_browser: tuple[TestClient, str], operator: Any, field: str, value: str, names: str
) -> None:
    """The form queues runs through the same checks as the API: a run id too long for its log
    folder, a year no schedule can compute with, an unknown parameter."""
    browser, csrf = operator_browser
    before = len(operator.get("/flows/demo/runs?limit=500").json()["items"])
    response = browser.post("/flows/demo/trigger", data={"csrf_token": csrf, field: value})
    assert response.status_code == 422, response.text[:300]
    assert names in response.text
    assert len(operator.get("/flows/demo/runs?limit=500").json()["items"]) == before


def test_trigger_form_queues_a_run(operator_browser: tuple[TestClient, str], operator: Any) -> None:
    browser, csrf = operator_browser
    response = browser.post(
        "/flows/demo/trigger",
        data={
            "csrf_token": csrf,
            "param.n": "11",
            "param.mode": "slow",
            "param.label": "",
            "run_id": "form__ok",
            "conf": '{"a": 1}',
            "logical_date": "2024-05-01T06:30",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/flows/demo/runs/form__ok/graph"
    run = operator.get("/flows/demo/runs/form__ok").json()
    assert run["params"] == {"n": 11, "mode": "slow", "label": "x"} and run["conf"] == {"a": 1}
    assert run["logical_date"].startswith("2024-05-01T06:30")


def test_static_files_and_vendored_layout_library(anonymous: Any, client: TestClient) -> None:
    assert client.get("/static/js/graph.js").status_code == 200
    dagre = client.get("/static/vendor/dagre-1.1.4.min.js")
    assert dagre.status_code == 200 and "dagre" in dagre.text[:2000]
    assert (
        "MIT" in client.get("/static/vendor/LICENSE-dagre.txt").text
        or "Permission" in client.get("/static/vendor/LICENSE-dagre.txt").text
    )


def test_grid_page_of_a_very_large_flow_starts_with_fewer_runs(viewer_browser: TestClient, engine: Any) -> None:
    from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    nodes = {f"t{i}": NodeSpec(f"t{i}") for i in range(60_000)}
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, FlowGraph(FlowMeta("very_wide"), nodes, {}))

    def menu(flow_id: str) -> tuple[list[str], list[str]]:
        page = viewer_browser.get(f"/flows/{flow_id}/grid").text
        select = page[page.index('id="grid-limit"') :].split("</select>")[0]
        return re.findall(r"<option[^>]*>(\d+)<", select), re.findall(r"<option selected>(\d+)<", select)

    assert menu("demo") == (["10", "25", "50", "100"], ["25"])
    assert menu("very_wide") == (["8", "10", "25", "50", "100"], ["8"]), "500,000 cells: 8 runs of 60,000 tasks"


def test_json_values_show_as_typed_and_markup_in_them_stays_text(
    operator_browser: tuple[TestClient, str], client: TestClient, operator: Any
) -> None:
    """The run header, the task page and the audit log show a value with <, >, ', & and accents
    as it was typed (not as \\u003c escapes), and a <script> in it is text, never markup."""
    label = "<script>alert('x')</script> & café > ½"
    made = operator.post("/flows/demo/runs", json={"params": {"label": label}, "run_id": "marked_up"})
    assert made.status_code == 201, made.text
    shown = "&#34;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; café &gt; ½&#34;"
    browser, _csrf = operator_browser
    for path in ("/flows/demo/runs/marked_up/graph", "/flows/demo/runs/marked_up/tasks/load"):
        text = browser.get(path).text
        assert shown in text, path
        assert "\\u003c" not in text and "<script>alert" not in text, path
    with TestClient(client.app) as admin_browser:
        login(admin_browser, "admin", PASSWORD)
        audit = admin_browser.get("/audit").text
    assert "café &gt; ½" in audit and "\\u003c" not in audit and "<script>alert" not in audit


def test_pages_and_api_answers_are_not_stored_by_the_browser_but_static_files_are(
    viewer_browser: TestClient, viewer: Any, seeded: Seeded
) -> None:
    """Back after logging out must not show a page from the browser's cache."""
    run = quote(seeded.success_run, safe="")
    for response in (
        viewer_browser.get("/flows"),
        viewer_browser.get(f"/flows/demo/runs/{run}/tasks/load"),
        viewer_browser.get("/no-such-page"),
        viewer.get("/flows"),
        viewer.get(f"/flows/demo/runs/{run}/tasks/load/logs"),
    ):
        assert response.headers["cache-control"] == "no-store", response.url
    assert "no-store" not in viewer_browser.get("/static/js/common.js").headers.get("cache-control", "")


def test_the_run_header_shows_the_runs_conf_and_note(viewer_browser: TestClient, operator: Any) -> None:
    """conf as JSON (what sits under a secret-looking key hidden, as everywhere on the pages)."""
    conf = {"source": "s3://bucket/2024", "password": "hunter2-conf", "nested": {"api_key": "k-1", "n": 2}}
    made = operator.post(
        "/flows/demo/runs", json={"conf": conf, "note": "rerun after the <b>outage</b>", "run_id": "with_conf"}
    )
    assert made.status_code == 201, made.text
    for view in ("graph", "gantt"):
        page = viewer_browser.get(f"/flows/demo/runs/with_conf/{view}").text
        shown = re.search(r'<code id="run-conf">([^<]*)</code>', page)
        assert shown is not None, view
        assert json.loads(html.unescape(shown.group(1))) == {
            "nested": {"api_key": "***", "n": 2},
            "password": "***",
            "source": "s3://bucket/2024",
        }
        assert "hunter2-conf" not in page and "k-1" not in page
        assert "rerun after the &lt;b&gt;outage&lt;/b&gt;" in page.split('id="run-note"')[1].split("</p>")[0]


def test_runs_page_pages_through_every_run_newest_first_by_state_and_base_date(
    viewer_browser: TestClient, engine: Any
) -> None:
    """The grid shows the latest 100 runs at most; the Runs tab reaches all of them."""
    import datetime as dt

    from ductwork import EmptyOperator, Flow
    from ductwork.core.states import RunState, TaskState
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo

    with Flow("many_runs", schedule="@daily", start_date="2024-01-01") as flow:
        EmptyOperator(task_id="only")
    graph = flow.to_graph()
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        for day in range(120):
            run_repo.create_run(
                conn,
                graph,
                run_id=f"scheduled__day{day:03d}",
                logical_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day),
                states={"only": TaskState.QUEUED},
                tries={"only": 1},
                state=RunState.FAILED if day % 10 == 0 else RunState.SUCCESS,
            )

    def shown(query: str = "") -> tuple[list[str], str]:
        response = viewer_browser.get("/flows/many_runs/runs" + query)
        assert response.status_code == 200, response.text[:300]
        return re.findall(r'<tr data-run-id="([^"]+)"', response.text), response.text

    first, text = shown()
    assert first == [f"scheduled__day{d:03d}" for d in range(119, 69, -1)]
    assert "120 runs" in text and "page 1 of 3" in text and 'id="runs-newer"' not in text
    assert 'href="/flows/many_runs/runs/scheduled__day119/graph"' in text
    assert 'id="runs-older" href="/flows/many_runs/runs?page=2"' in text
    last, text = shown("?page=3")
    assert last == [f"scheduled__day{d:03d}" for d in range(19, -1, -1)] and 'id="runs-older"' not in text
    failed, text = shown("?state=failed")
    assert failed == [f"scheduled__day{d:03d}" for d in range(110, -1, -10)] and "12 runs that match" in text
    before, text = shown("?base_date=2024-01-05&state=success")
    assert before == ["scheduled__day004", "scheduled__day003", "scheduled__day002", "scheduled__day001"]
    assert viewer_browser.get("/flows/many_runs/runs?state=lost").status_code == 422
    assert 'id="runs-tab"' in viewer_browser.get("/flows/many_runs/grid").text


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("?state=lost", "state &#39;lost&#39;: expected one of queued, running, success, failed"),
        ("?base_date=31.01.2024", "base date &#39;31.01.2024&#39;: expected a date such as 2024-01-31"),
        ("?base_date=2024-02-30", "base date &#39;2024-02-30&#39;: expected a date such as 2024-01-31"),
    ],
)
def test_a_runs_page_query_that_does_not_fit_is_named_in_words(
    viewer_browser: TestClient, query: str, said: str
) -> None:
    """A hand-edited link was answered with the regular expression it failed."""
    response = viewer_browser.get("/flows/demo/runs" + query)
    assert response.status_code == 422 and said in response.text, response.text[-1500:]
    assert "should match pattern" not in response.text


def test_a_runs_page_past_the_last_says_so_and_links_back_to_the_last(viewer_browser: TestClient) -> None:
    """A bookmark of page 7 after runs were deleted said "No runs yet" and linked to page 6."""
    text = viewer_browser.get("/flows/demo/runs?page=7").text
    assert "Page 7 is past the last page (1)." in text and "No runs yet" not in text
    assert 'id="runs-newer" href="/flows/demo/runs?page=1"' in text


def test_a_flows_doc_md_is_shown_as_markdown_and_html_in_it_as_text(viewer_browser: TestClient, engine: Any) -> None:
    from ductwork import EmptyOperator, Flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    doc = (
        "# Daily load\n\nLoads **orders** from `s3://in`; see [the runbook](https://wiki/runbook).\n\n"
        "| step | owner |\n| --- | --- |\n| load | data |\n\n"
        "<script>alert(1)</script> [bad](javascript:alert(1))\n"
    )
    with Flow("documented", doc=doc) as flow:
        EmptyOperator(task_id="only")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())
    page = viewer_browser.get("/flows/documented/grid").text
    shown = page.split('id="flow-doc"')[1].split("</details>")[0]
    assert "<h1>Daily load</h1>" in shown and "<strong>orders</strong>" in shown and "<code>s3://in</code>" in shown
    assert '<a href="https://wiki/runbook">the runbook</a>' in shown and "<td>load</td>" in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>" not in shown
    assert 'href="javascript:' not in shown


def test_a_taken_run_id_gives_the_form_back_as_filled_in(operator_browser: tuple[TestClient, str]) -> None:
    browser, csrf = operator_browser
    data = {"csrf_token": csrf, "param.n": "4", "param.label": "again", "run_id": "form__twice", "note": "kept note"}
    assert browser.post("/flows/demo/trigger", data=data, follow_redirects=False).status_code == 303
    again = browser.post("/flows/demo/trigger", data={**data, "conf": '{"k": 1}'}, follow_redirects=False)
    assert again.status_code == 409
    assert 'id="trigger-form"' in again.text and "already has a run with run id &#39;form__twice&#39;" in again.text
    for kept in ('value="again"', 'value="form__twice"', 'value="kept note"', "{&#34;k&#34;: 1}"):
        assert kept in again.text, kept


def test_list_and_dict_boxes_of_the_trigger_form_take_json_only(
    operator_browser: tuple[TestClient, str], operator: Any, engine: Any
) -> None:
    """The box says JSON: "not a list" is refused with what it wants, not stored as ["not a list"]."""
    from markupsafe import escape

    from ductwork import DictParameter, EmptyOperator, Flow, ListParameter
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    with Flow("listy", params={"items": ListParameter(default=[1, 2])}) as listy:
        EmptyOperator(task_id="only")
    with Flow("dicty", params={"opts": DictParameter(default={"a": 1})}) as dicty:
        EmptyOperator(task_id="only")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, listy.to_graph())
        flow_repo.upsert_flow(conn, dicty.to_graph())
    browser, csrf = operator_browser
    form = browser.get("/flows/listy/trigger").text
    shown = re.search(r'<textarea id="param-items"[^>]*>([^<]*)</textarea>', form)
    assert shown is not None
    as_shown = {"csrf_token": csrf, "param.items": html.unescape(shown.group(1))}
    queued = browser.post("/flows/listy/trigger", data={**as_shown, "run_id": "defaults"}, follow_redirects=False)
    assert queued.status_code == 303, queued.text[-2000:]
    assert operator.get("/flows/listy/runs/defaults").json()["params"] == {"items": [1, 2]}

    for flow_id, field, typed, said in [
        ("listy", "param.items", "not a list", "parameter &#39;items&#39; (list) wants a JSON list such as [1, 2]"),
        ("listy", "param.items", '{"a": 1}', "wants a JSON list"),
        ("dicty", "param.opts", "[1]", "parameter &#39;opts&#39; (dict) wants a JSON object"),
        ("dicty", "param.opts", "a=1", "is not valid JSON"),
    ]:
        refused = browser.post(f"/flows/{flow_id}/trigger", data={"csrf_token": csrf, field: typed, "run_id": "typo"})
        assert refused.status_code == 422 and said in refused.text, (typed, refused.text[-1500:])
        assert f">{escape(typed)}</textarea>" in refused.text  # the box keeps what was typed
        assert operator.get(f"/flows/{flow_id}/runs/typo").status_code == 404


def test_the_trigger_form_gives_none_to_a_parameter_that_takes_it(
    operator_browser: tuple[TestClient, str], operator: Any, engine: Any
) -> None:
    """An `int | None` parameter was a number box: `null` could not be typed, and an empty box
    gave the default, so a run could not be given None from the form."""
    from ductwork import EmptyOperator, flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    @flow
    def optional(limit: int | None = 5, tags: list | None = None) -> None:  # type: ignore[type-arg]
        EmptyOperator(task_id="only")

    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, optional.build().to_graph())
    browser, csrf = operator_browser
    form = browser.get("/flows/optional/trigger").text
    assert re.search(r'<input id="param-limit" type="text"', form), form
    assert "int or null" in form and "list as JSON or null" in form
    data = {"csrf_token": csrf, "param.limit": "null", "param.tags": "null", "run_id": "nulls"}
    queued = browser.post("/flows/optional/trigger", data=data, follow_redirects=False)
    assert queued.status_code == 303, queued.text[-2000:]
    assert operator.get("/flows/optional/runs/nulls").json()["params"] == {"limit": None, "tags": None}


@pytest.mark.parametrize("typed", ["nan", "inf", "-Infinity", "1e400"])
def test_the_trigger_form_refuses_a_number_json_cannot_hold(
    operator_browser: tuple[TestClient, str], operator: Any, engine: Any, typed: str
) -> None:
    """A float box took `nan` or `1e400` and queued a run whose `ratio` the API then showed as
    null (the API itself refuses them): the form says why and queues nothing."""
    from ductwork import EmptyOperator, flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    @flow
    def ratios(ratio: float = 0.5) -> None:
        EmptyOperator(task_id="only")

    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, ratios.build().to_graph())
    browser, csrf = operator_browser
    before = operator.get("/flows/ratios/runs").json()["total"]
    refused = browser.post("/flows/ratios/trigger", data={"csrf_token": csrf, "param.ratio": typed})
    assert refused.status_code == 422, refused.text[-2000:]
    assert "parameter &#39;ratio&#39;" in refused.text and "finite number" in refused.text
    assert f'value="{typed}"' in refused.text  # the form comes back as filled in
    assert operator.get("/flows/ratios/runs").json()["total"] == before


def test_the_grid_takes_its_number_of_runs_from_the_address(viewer_browser: TestClient) -> None:
    """``?runs=N`` (a bookmark, a reload after choosing in the menu) picks the menu's entry."""
    assert re.search(r"<option selected>50</option>", viewer_browser.get("/flows/demo/grid?runs=50").text)
    assert re.search(r"<option selected>7</option>", viewer_browser.get("/flows/demo/grid?runs=7").text)
    assert re.search(r"<option selected>25</option>", viewer_browser.get("/flows/demo/grid").text)
    refused = viewer_browser.get("/flows/demo/grid?runs=0")
    assert refused.status_code == 422 and "runs" in refused.text


def test_a_page_query_with_a_few_allowed_words_lists_them(viewer_browser: TestClient) -> None:
    page = viewer_browser.get("/flows?paused=maybe")
    assert page.status_code == 422
    assert "query parameter &#39;paused&#39;: &#39;maybe&#39; is not one of yes, no (or nothing)" in page.text


def test_the_diff_page_refuses_a_nul_in_the_other_run(viewer_browser: TestClient, seeded: Seeded) -> None:
    """On PostgreSQL, ?other=%00 reached the query and was a 500."""
    page = viewer_browser.get(f"/flows/demo/runs/{quote(seeded.success_run, safe='')}/diff", params={"other": "a\x00"})
    assert page.status_code == 422 and "other" in page.text


def test_a_run_compared_with_itself_is_refused_naming_it(
    viewer_browser: TestClient, viewer: Any, seeded: Seeded
) -> None:
    """``.../diff?other=<the same run>`` showed "The two runs recorded the same graph" under
    two columns of one run id, with another run selected in the menu: it is refused, on the
    page and in the API, saying to name another run."""
    run = quote(seeded.success_run, safe="")
    page = viewer_browser.get(f"/flows/demo/runs/{run}/diff", params={"other": seeded.success_run})
    assert page.status_code == 422, page.text[:300]
    assert "cannot be compared with itself" in page.text and "same graph" not in page.text
    answer = viewer.get(f"/flows/demo/runs/{run}/diff", params={"other": seeded.success_run})
    assert answer.status_code == 422 and "cannot be compared with itself" in answer.json()["detail"]
    assert viewer_browser.get(f"/flows/demo/runs/{run}/diff", params={"other": seeded.failed_run}).status_code == 200


def test_a_page_address_holding_a_nul_is_refused_with_a_page(viewer_browser: TestClient) -> None:
    """Opened in a browser, /flows/%00/grid showed the API's raw JSON error."""
    page = viewer_browser.get("/flows/%00/grid")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "Bad address" in page.text and "%00" in page.text


def test_the_assets_pages_show_times_as_the_other_pages_do(
    viewer_browser: TestClient, operator: Any, engine: Any
) -> None:
    """The Assets page showed ``2026-12-07T07:35:07+00:00`` and an asset's history
    ``2026-12-07T07:35:07.503134+00:00``, where every other page shows ``2026-12-07 07:35:07``."""
    from ductwork import Asset, EmptyOperator, Flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    with Flow("on_shown_times", schedule=Asset("s3://lake/shown_times")) as flow:
        EmptyOperator(task_id="t")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())
    made = operator.post("/assets/events", json={"uri": "s3://lake/shown_times"})
    assert made.status_code == 201, made.text
    at = made.json()["at"]  # ISO, in UTC
    shown = f"{at[:10]} {at[11:19]}"
    listing = viewer_browser.get("/assets").text
    row = listing[listing.index('data-uri="s3://lake/shown_times"') :].split("</tr>")[0]
    assert f">{shown}</td>" in row and f">{at[:10]}T" not in row, row
    assert "Last update (UTC)" in listing
    detail = viewer_browser.get("/assets/detail", params={"uri": "s3://lake/shown_times"}).text
    assert f">{shown}</td>" in detail and "When (UTC)" in detail
    assert f">{at[:10]}T" not in detail


def _back_links(page: str) -> list[tuple[str, str]]:
    found = re.search(r'<ul class="back-links" id="back-links">(.*?)</ul>', page, re.S)
    assert found is not None, page
    return [
        (html.unescape(label), html.unescape(href))
        for href, label in re.findall(r'<a href="([^"]*)">([^<]*)</a>', found.group(1))
    ]


def test_an_error_page_leads_back_to_the_nearest_page_that_exists(viewer_browser: TestClient, seeded: Seeded) -> None:
    """Every error page offered only "Back to the flows": a mistyped run id on a flow, a task
    that the run lacks, or a hand-edited filter left one to find the way from the flows list."""
    run = quote(seeded.failed_run, safe="")
    assert _back_links(viewer_browser.get("/flows/demo/runs/nope/graph").text) == [
        ("Back to flow demo", "/flows/demo/grid"),
        ("All flows", "/flows"),
    ]
    assert _back_links(viewer_browser.get(f"/flows/demo/runs/{run}/tasks/nope").text) == [
        (f"Back to run {seeded.failed_run}", f"/flows/demo/runs/{run}/graph"),
        ("Back to flow demo", "/flows/demo/grid"),
        ("All flows", "/flows"),
    ]
    assert _back_links(viewer_browser.get("/flows/dmeo/grid").text) == [("All flows", "/flows")]
    assert _back_links(viewer_browser.get("/flows/demo/runs?state=bogus").text) == [
        ("This page without its query", "/flows/demo/runs"),
        ("Back to flow demo", "/flows/demo/grid"),
        ("All flows", "/flows"),
    ]
    came_from = "http://testserver/flows/demo/runs?state=failed"
    assert _back_links(viewer_browser.get("/variables/nope/edit", headers={"Referer": came_from}).text) == [
        ("Back to the page you came from", "/flows/demo/runs?state=failed"),
        ("Back to Variables", "/variables"),
        ("All flows", "/flows"),
    ]
    elsewhere = viewer_browser.get("/flows/demo/runs/nope/graph", headers={"Referer": "https://evil.example/x"})
    assert ("Back to the page you came from", "/x") not in _back_links(elsewhere.text)


def test_a_server_error_is_a_page_that_leads_back_and_json_for_the_api(app: Any, seeded: Seeded) -> None:
    """An unforeseen failure showed the bare text "Internal Server Error", with no way on."""

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/flows/demo/broken-for-a-test", broken)
    app.add_api_route("/api/v1/broken-for-a-test", broken)
    with TestClient(app, raise_server_exceptions=False) as browser:
        login(browser, "viewer", PASSWORD)
        page = browser.get("/flows/demo/broken-for-a-test")
        assert page.status_code == 500 and "text/html" in page.headers["content-type"]
        assert "the server failed on this request (RuntimeError)" in page.text
        assert _back_links(page.text) == [("Back to flow demo", "/flows/demo/grid"), ("All flows", "/flows")]
        answer = browser.get(
            "/api/v1/broken-for-a-test", headers={"Authorization": f"Bearer {seeded.tokens['viewer']}"}
        )
        assert answer.status_code == 500
        assert answer.json() == {
            "detail": "the server failed on this request (RuntimeError); its log has the traceback",
            "error": "internal_error",
        }


def test_the_grid_says_how_many_messages_were_dead_lettered_and_links_them(
    viewer_browser: TestClient, engine: Any
) -> None:
    """Messages that could not start a run showed nowhere in the web UI: a flow whose messages
    were all malformed looked like a flow nobody sent anything to."""
    from ductwork.services import messages

    assert 'id="dead-letters"' not in viewer_browser.get("/flows/demo/grid").text
    for n in range(2):
        messages.receive(engine, "demo", source="rabbitmq:orders", message_id=f"bad-{n}", payload=b"not json")
    page = viewer_browser.get("/flows/demo/grid").text
    link = page[page.index('id="dead-letters"') :].split("</a>")[0]
    assert 'href="/api/v1/flows/demo/dead-letters"' in link and ">2 dead letters" in link
    listed = viewer_browser.get("/api/v1/flows/demo/dead-letters")  # the link works with the session
    assert listed.status_code == 200 and {d["message_id"] for d in listed.json()["items"]} >= {"bad-0", "bad-1"}


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/flows/demo/runs?stat=failed", "not a parameter of GET /flows/demo/runs (did you mean &#39;state&#39;?"),
        ("/flows?serch=demo", "not a parameter of GET /flows (did you mean &#39;search&#39;?"),
        ("/audit?actr=admin", "did you mean &#39;actor&#39;?"),
        ("/connections?page=2", "it takes: deleted, saved"),
        ("/luigi?hours=24", "it takes no query parameters"),
    ],
)
def test_a_query_parameter_a_page_does_not_take_is_refused_naming_it(
    operator_browser: tuple[TestClient, str], admin: Any, path: str, said: str
) -> None:
    """A typo'd filter (``?stat=failed``) showed every run as if they matched, where the API
    refuses it (422): the page says so, and links the page without its query."""
    browser, _csrf = operator_browser
    if path.startswith("/audit"):
        browser = admin.client  # the audit page is for admins: a token is as good as a session
        response = browser.get(path, headers=admin.headers)
    else:
        response = browser.get(path)
    assert response.status_code == 422 and "text/html" in response.headers["content-type"], response.text[-800:]
    assert said in response.text, response.text[-1500:]
    assert 'href="' + path.split("?")[0] + '"' in response.text  # this page without its query


def test_the_queries_the_pages_own_forms_and_links_send_are_taken(operator_browser: tuple[TestClient, str]) -> None:
    browser, _csrf = operator_browser
    for path in (
        "/flows?search=demo&tag=web&paused=no",
        "/flows/demo/runs?state=failed&base_date=2024-01-31&page=1",
        "/flows/demo/grid?runs=10",
        "/login?next=%2Fflows",
        "/assets/detail?uri=s3%3A%2F%2Fb%2Fk",
    ):
        assert browser.get(path).status_code in (200, 404), path


def test_the_trigger_form_refuses_a_flow_no_file_defines_now(
    operator_browser: tuple[TestClient, str], engine: Any
) -> None:
    """The flow's file was removed: the API refuses its runs, but the form queued one (303 to
    its graph), whose tasks then failed at once ("flow file ... does not exist"); and the grid
    offered ▶ Trigger without a word about it."""
    from ductwork import EmptyOperator, Flow
    from ductwork.store.engine import read_transaction, transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo

    with Flow("gone_from_folder") as flow:
        EmptyOperator(task_id="t")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph(), fileloc="/nowhere/gone_from_folder.py")
        assert flow_repo.deactivate_missing(conn, "/nowhere/gone_from_folder.py", []) == ["gone_from_folder"]
    browser, csrf = operator_browser
    grid = browser.get("/flows/gone_from_folder/grid")
    assert grid.status_code == 200 and 'id="flow-not-defined"' in grid.text and 'id="trigger-link"' not in grid.text
    assert "/nowhere/gone_from_folder.py" in grid.text
    form = browser.get("/flows/gone_from_folder/trigger")
    assert "not defined by any file now" in form.text
    posted = browser.post(
        "/flows/gone_from_folder/trigger",
        data={"csrf_token": csrf, "run_id": "ui__gone", "conf": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 404 and 'id="trigger-error"' in posted.text, posted.text[-1500:]
    assert "not defined by any file now" in posted.text and 'value="ui__gone"' in posted.text
    with read_transaction(engine) as conn:
        assert run_repo.get_run(conn, "gone_from_folder", "ui__gone") is None
    assert 'id="trigger-link"' in browser.get("/flows/demo/grid").text  # a defined flow keeps its button


@pytest.mark.parametrize(
    ("run_id", "said"),
    [
        (" nightly-fix", "has spaces before or after it, which are not trimmed; write &#39;nightly-fix&#39;"),
        ("nightly-fix ", "has spaces before or after it"),
        ("two\nlines", "it may not hold control characters"),
    ],
)
def test_a_run_id_with_spaces_around_it_or_a_line_break_is_refused(
    operator_browser: tuple[TestClient, str], operator: Any, run_id: str, said: str
) -> None:
    """A run id pasted with a space was taken (' nightly-fix', another run than the 'nightly-fix'
    the CLI then names), as was one holding a line break, where Airflow's run id pattern refuses both."""
    browser, csrf = operator_browser
    refused = browser.post("/flows/demo/trigger", data={"csrf_token": csrf, "run_id": run_id, "conf": ""})
    assert refused.status_code == 422 and said in refused.text, refused.text[-1500:]
    by_api = operator.post("/flows/demo/runs", json={"run_id": run_id})
    assert by_api.status_code == 422 and html.unescape(said) in by_api.json()["detail"], by_api.text


def test_the_trigger_forms_logical_date_says_it_is_read_in_the_flows_timezone(
    operator_browser: tuple[TestClient, str], operator: Any, engine: Any
) -> None:
    """In a Europe/Paris flow, 06:00 typed in the box is 06:00 in Paris (05:00 UTC, as the run's
    pages then show it), but the box said only "empty: now (Europe/Paris)"."""
    from ductwork import EmptyOperator, Flow
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    with Flow("in_paris", schedule="0 6 * * *", start_date="2024-01-01", timezone="Europe/Paris") as flow:
        EmptyOperator(task_id="t")
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph(), fileloc="/flows/in_paris.py")
    browser, csrf = operator_browser
    form = browser.get("/flows/in_paris/trigger").text
    assert "a date and time in Europe/Paris, the flow's timezone (the run's pages show it in UTC)" in form
    posted = browser.post(
        "/flows/in_paris/trigger",
        data={"csrf_token": csrf, "logical_date": "2024-03-01T06:00", "run_id": "paris_six", "conf": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text[-1500:]
    assert operator.get("/flows/in_paris/runs/paris_six").json()["logical_date"] == "2024-03-01T05:00:00Z"
