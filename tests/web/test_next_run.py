"""The flows page and API say when a flow's next run starts, not only its logical date.

A scheduled run's logical date is the start of the interval it covers; it starts when that
interval ends (Airflow's "Run After"). The page's "Next run" showed the logical date alone, so an
@weekly flow read "2026-12-06 00:00" on 2026-12-07, a date already past, for a run due on the 13th.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ductwork import EmptyOperator, Flow
from ductwork.core.schedule import DataInterval
from ductwork.engine.scheduling import next_run_after
from ductwork.store.engine import transaction
from ductwork.store.repo import flows as flow_repo
from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def _scheduled(engine: Any, flow: Flow, last: DataInterval | None) -> None:
    """Record ``flow`` and its next run as the scheduler does after its last scheduled run."""
    graph = flow.to_graph()
    following = next_run_after(graph.meta, last, NOW)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        flow_repo.set_next_run(
            conn,
            graph.flow_id,
            logical_date=following.start if following else None,
            interval_start=following.start if following else None,
            interval_end=following.end if following else None,
        )


@pytest.fixture(scope="module")
def scheduled_flows(engine: Any) -> None:
    with Flow("weekly_report", schedule="@weekly", start_date="2026-11-01") as weekly:
        EmptyOperator(task_id="only")
    _scheduled(
        engine, weekly, DataInterval(dt.datetime(2026, 11, 29, tzinfo=dt.UTC), dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    )
    with Flow("once_later", schedule="@once", start_date="2026-12-20T06:30:00") as once:
        EmptyOperator(task_id="only")
    _scheduled(engine, once, None)


@pytest.fixture(scope="module")
def browser(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        login(client, "viewer", PASSWORD)
        yield client


def _row(page: str, flow_id: str) -> str:
    return page[page.index(f'data-flow-id="{flow_id}"') :].split("</tr>")[0]


def test_the_flows_page_says_when_the_next_run_starts_and_its_logical_date(
    scheduled_flows: None, browser: TestClient
) -> None:
    row = _row(browser.get("/flows").text, "weekly_report")
    cell = re.search(r'<td class="next-run"[^>]*>(.*?)</td>', row, re.S)
    assert cell is not None, row
    shown = re.sub(r"<[^>]+>", " ", cell.group(1))
    assert "2026-12-13 00:00" in shown, shown  # when it starts: the end of its interval
    assert "logical date 2026-12-06 00:00" in shown, shown  # the date it runs for, still visible
    assert shown.index("2026-12-13") < shown.index("2026-12-06")


def test_an_once_flow_starts_at_its_start_date(scheduled_flows: None, browser: TestClient) -> None:
    row = _row(browser.get("/flows").text, "once_later")
    cell = re.search(r'<td class="next-run"[^>]*>(.*?)</td>', row, re.S)
    assert cell is not None and "2026-12-20 06:30" in cell.group(1)


def test_the_api_gives_the_next_runs_start_and_its_data_interval(scheduled_flows: None, viewer: Api) -> None:
    items = {f["flow_id"]: f for f in viewer.get("/flows").json()["items"]}
    weekly = items["weekly_report"]
    assert weekly["next_logical_date"].startswith("2026-12-06T00:00:00")
    assert weekly["next_data_interval_start"].startswith("2026-12-06T00:00:00")
    assert weekly["next_data_interval_end"].startswith("2026-12-13T00:00:00")
    assert weekly["next_run_after"].startswith("2026-12-13T00:00:00")
    assert items["once_later"]["next_run_after"].startswith("2026-12-20T06:30:00")
    assert viewer.get("/flows/weekly_report").json()["next_run_after"].startswith("2026-12-13T00:00:00")
    unscheduled = [f for f in items.values() if f["schedule"] == "None"]
    assert all(f["next_run_after"] is None for f in unscheduled)


@pytest.fixture(scope="module")
def weekly_pipeline(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Ductwork pipeline file (@weekly) recorded as the scheduler records it, and a paused one."""
    from ductwork.declarative.files import compile_file

    folder = tmp_path_factory.mktemp("pipelines")
    for name in ("weekly_pipe", "paused_pipe"):
        path = folder / f"{name}.yaml"
        path.write_text(
            f"flow: {name}\nschedule: '@weekly'\nstart_date: 2026-11-01\ntasks:\n  a:\n    operator: EmptyOperator\n"
        )
        (flow,) = compile_file(path)
        _scheduled(
            engine,
            flow,
            DataInterval(dt.datetime(2026, 11, 29, tzinfo=dt.UTC), dt.datetime(2026, 12, 6, tzinfo=dt.UTC)),
        )
    with transaction(engine) as conn:
        flow_repo.set_paused(conn, "paused_pipe", True)


def test_a_pipelines_next_run_is_when_it_starts_not_its_logical_date(weekly_pipeline: None, viewer: Api) -> None:
    """The pipelines API gave the logical date as ``next_run``: on 2026-12-07 an @weekly pipeline's
    next run read 2026-12-06, already past, for a run due on the 13th. It now gives when the run
    starts (as the flows page), its logical date beside it, and nothing for a paused pipeline."""
    listed = {p["name"]: p for p in viewer.get("/pipelines").json()}
    weekly = listed["weekly_pipe"]
    assert weekly["next_run"].startswith("2026-12-13T00:00:00"), weekly
    assert weekly["next_logical_date"].startswith("2026-12-06T00:00:00"), weekly
    assert viewer.get("/pipelines/weekly_pipe").json()["next_run"].startswith("2026-12-13T00:00:00")
    paused = listed["paused_pipe"]
    assert paused["schedule_state"] == "INACTIVE" and paused["next_run"] is None, paused


def test_the_pipelines_page_shows_the_next_run(weekly_pipeline: None, browser: TestClient) -> None:
    text = browser.get("/pipelines").text
    row = text[text.index('data-pipeline="weekly_pipe"') :].split("</tr>")[0]
    cell = re.search(r'<td class="next-run"[^>]*>(.*?)</td>', row, re.S)
    assert cell is not None and "2026-12-13 00:00" in cell.group(1), row
