"""The pipelines page in Chromium against a real ``ductwork standalone``: an AWS Data Pipeline
definition from the flows folder and a stored one, listed as the AWS console listed them (schedule
state, health), each object's instances with their attempts, deactivated from the page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_browser import Session, Standalone, _need_chromium, chromium, running_standalone

pytestmark = pytest.mark.timeout(600)

FOLDER_PIPELINE = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        # Fails its first attempt, succeeds on the second: two attempts in the console.
        {
            "id": "Flaky",
            "type": "ShellCommandActivity",
            "maximumRetries": "1",
            "retryDelay": "1 seconds",
            "command": 'test -e "$HOME_MARK" || { touch "$HOME_MARK"; exit 1; }',
        },
        {"id": "Report", "type": "ShellCommandActivity", "command": "echo report", "dependsOn": {"ref": "Flaky"}},
    ]
}
STORED = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Only", "type": "ShellCommandActivity", "command": "echo stored"},
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    _need_chromium()
    root = tmp_path_factory.mktemp("pipelines-ui")
    flows = root / "flows"
    flows.mkdir()
    (flows / "folder_pipeline.json").write_text(json.dumps(FOLDER_PIPELINE))
    with running_standalone(root, flows, HOME_MARK=str(root / "flaky-once")) as server:
        yield server


@pytest.fixture(scope="module")
def browser(server: Standalone) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _wait(check: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never: {what}")


def test_pipelines_page_lists_states_health_and_instances(server: Standalone, browser: Any, tmp_path: Path) -> None:
    stored = tmp_path / "stored_pipeline.json"
    stored.write_text(json.dumps(STORED))
    server.cli("pipelines", "put", str(stored))
    listed = lambda: {p["name"]: p for p in json.loads(server.cli("pipelines", "list", "--json"))["pipelines"]}  # noqa: E731
    _wait(lambda: "folder_pipeline" in listed(), "the scheduler parsed the folder's pipeline")
    assert listed()["stored_pipeline"]["schedule_state"] == "PENDING"
    server.cli("trigger", "folder_pipeline")
    _wait(lambda: listed()["folder_pipeline"]["health"] == "HEALTHY", "the folder pipeline's run succeeded")

    tab = Session(browser, server, "admin", server.admin_password)
    try:
        page = tab.open("/pipelines")
        page.wait_for_selector("body[data-drawn=pipelines]")
        rows = page.locator("tbody.pipeline")
        names = [rows.nth(i).get_attribute("data-pipeline") for i in range(rows.count())]
        assert names == ["folder_pipeline", "stored_pipeline"]
        folder = page.locator('tbody[data-pipeline="folder_pipeline"]')
        assert folder.locator(".schedule-state").inner_text().startswith("FINISHED")
        assert "HEALTHY" in folder.locator(".health").inner_text()
        stored_row = page.locator('tbody[data-pipeline="stored_pipeline"]')
        assert "PENDING" in stored_row.locator(".schedule-state").inner_text()
        assert "Pipeline is not active" in stored_row.locator(".health").inner_text()

        instances = folder.locator("tr.objects")
        assert instances.is_hidden()
        folder.locator("button.expand").click()
        assert instances.is_visible()
        flaky = folder.locator('tr[data-object="Flaky"] td')
        assert [flaky.nth(i).inner_text() for i in (0, 1, 3, 4)] == ["Flaky", "ShellCommandActivity", "FINISHED", "2"]
        report = folder.locator('tr[data-object="Report"] td')
        assert [report.nth(i).inner_text() for i in (3, 4)] == ["FINISHED", "1"]

        stored_row.locator("button.pipeline-activate").click()
        page.wait_for_load_state()
        _wait(lambda: listed()["stored_pipeline"]["health"] == "HEALTHY", "the stored pipeline's activation run")
        page = tab.open("/pipelines")
        page.locator('tbody[data-pipeline="stored_pipeline"] button.pipeline-deactivate').click()
        page.wait_for_function(
            "() => document.querySelector('tbody[data-pipeline=stored_pipeline] .schedule-state')"
            ".textContent.includes('INACTIVE')"
        )
    finally:
        tab.close()
    assert listed()["stored_pipeline"]["schedule_state"] == "INACTIVE"


def test_a_schedule_that_started_long_ago_is_activated_with_its_backfill_when_the_person_agrees(
    server: Standalone, browser: Any, tmp_path: Path
) -> None:
    """The server refuses to backfill unasked (409 backfill_refused, with the start); the page
    asks "activate and backfill from START?" and, on yes, activates with allow_backfill."""
    import datetime as dt

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Daily"}},
            {
                "id": "Daily",
                "type": "Schedule",
                "period": "1 days",
                "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
                "endDateTime": (start + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            },
            {"id": "Tick", "type": "ShellCommandActivity", "command": "echo tick"},
        ]
    }
    stored = tmp_path / "old_start.json"
    stored.write_text(json.dumps(definition))
    server.cli("pipelines", "put", str(stored))
    listed = lambda: {p["name"]: p for p in json.loads(server.cli("pipelines", "list", "--json"))["pipelines"]}  # noqa: E731

    tab = Session(browser, server, "admin", server.admin_password)
    try:
        page = tab.open("/pipelines")
        page.wait_for_selector("body[data-drawn=pipelines]")
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        button = page.locator('tbody[data-pipeline="old_start"] button.pipeline-activate')
        button.click()
        page.wait_for_function(
            "() => !document.querySelector('tbody[data-pipeline=old_start] .pipeline-activate').disabled"
        )
        assert len(asked) == 1 and f"Activate and backfill from {start.isoformat()}?" in asked[0], asked
        assert listed()["old_start"]["schedule_state"] == "PENDING", "no means no"

        page.once("dialog", lambda d: d.accept())
        with page.expect_navigation():
            button.click()
        _wait(lambda: listed()["old_start"]["schedule_state"] != "PENDING", "activated with its backfill")
        runs = _wait(
            lambda: json.loads(server.cli("runs", "list", "old_start", "--json"))["runs"], "the backfill's runs"
        )
        assert start.strftime("%Y-%m-%d") in [r["logical_date"][:10] for r in runs]
        assert all("409" in e for e in tab.errors), tab.errors  # Chromium logs the two refusals
        tab.errors.clear()
    finally:
        tab.close()
