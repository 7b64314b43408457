"""The web UI in real headless Chromium (Debian's, driven by Playwright), against a real
``ductwork standalone`` (scheduler, worker pool and web server) started for this module.

Log in, trigger a flow with a parameter from the form, watch its graph turn green, read a
task's log, clear a failed task and see it run again, and check that a viewer cannot trigger.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = os.environ.get("DUCTWORK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FLOWS = Path(__file__).with_name("browser_flows")
VIEWER_PASSWORD = "viewer-password-1"
WAIT_MS = 60_000

pytestmark = pytest.mark.timeout(600)


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium: scripts/system-deps.sh)"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and DUCTWORK_REQUIRE_SERVICES=1 makes the browser tests mandatory")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Standalone:
    url: str
    admin_password: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", *args],
            env=self.env,
            cwd=self.home.parent,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@contextmanager
def running_standalone(root: Path, flows: Path, **extra_env: str) -> Iterator[Standalone]:
    """``ductwork standalone`` (two workers) on a free port over ``flows``, from ``root``, until
    the block ends; its admin password read from what it prints, and healthy before it is handed out."""
    home = root / "home"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(home),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        **extra_env,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ductwork.cli",
            "standalone",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Standalone(f"http://127.0.0.1:{port}", "", home, env, process)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.admin_password:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            server.output.append(line)
            found = re.search(r"admin password: (\S+)", line)
            if found:
                server.admin_password = found.group(1)
        assert server.admin_password, "standalone did not print the admin password:\n" + "".join(server.output)
        _wait_healthy(server.url)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's) under Playwright, closed when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    _need_chromium()
    root = tmp_path_factory.mktemp("standalone")
    flows = root / "flows"
    shutil.copytree(FLOWS, flows)
    with running_standalone(root, flows) as server:
        server.cli("users", "create", "viewer", "--role", "viewer", "--password-stdin", input=VIEWER_PASSWORD + "\n")
        yield server


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            body = httpx.get(url + "/api/v1/health", timeout=2).json()
            if body["scheduler"] == "alive":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError("the standalone server never became healthy")


@pytest.fixture(scope="module")
def browser(standalone: Standalone) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Session:
    """A logged-in browser tab that fails the test on any script error or CSP violation."""

    def __init__(self, browser: Any, server: Standalone, username: str, password: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.goto(server.url + "/flows")
        assert "/login" in self.page.url
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/flows")

    def open(self, path: str) -> Any:
        self.page.goto(self.server.url + path)
        return self.page

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors


@pytest.fixture
def admin_tab(browser: Any, standalone: Standalone) -> Iterator[Session]:
    tab = Session(browser, standalone, "admin", standalone.admin_password)
    yield tab
    tab.close()


def _wait_for_flow(tab: Session, flow_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tab.open("/flows")
        if tab.page.locator(f'tr[data-flow-id="{flow_id}"]').count():
            return
        time.sleep(1)
    raise AssertionError(f"the scheduler never registered {flow_id}")


def _graph_states(page: Any) -> dict[str, str]:
    nodes = page.locator("g.node")
    return {
        nodes.nth(i).get_attribute("data-id"): nodes.nth(i).get_attribute("data-state") for i in range(nodes.count())
    }


def test_trigger_with_a_parameter_watch_the_graph_turn_green_and_read_a_log(admin_tab: Session) -> None:
    page = admin_tab.page
    _wait_for_flow(admin_tab, "greet")
    page.click('tr[data-flow-id="greet"] a.button')  # ▶ Trigger
    page.wait_for_selector("#trigger-form")
    assert page.input_value("#param-times") == "2"
    page.fill("#param-times", "3")
    page.click("#trigger-submit")
    page.wait_for_url(re.compile(r".*/flows/greet/runs/manual__.*/graph"))
    page.wait_for_selector("body[data-drawn=graph]")
    assert set(_graph_states(page)) == {"work.hello", "work.count", "done"}
    page.wait_for_selector('body[data-finished="success"]')
    assert set(_graph_states(page).values()) == {"success"}, "the graph did not turn green"
    assert page.inner_text("#run-state") == "success"

    page.click('g.node[data-id="work.hello"] rect')
    page.wait_for_url(re.compile(r".*/tasks/work\.hello$"))
    page.wait_for_selector("body[data-log-loaded]")
    log = page.inner_text("#task-log")
    assert "hello 1" in log and "hello 3" in log, log
    page.wait_for_selector("#task-rendered pre")
    assert "seq 3" in page.inner_text("#task-rendered")


def test_clear_a_failed_task_and_see_it_run_again(admin_tab: Session, standalone: Standalone) -> None:
    page = admin_tab.page
    _wait_for_flow(admin_tab, "flaky")
    page.click('tr[data-flow-id="flaky"] a.button')
    page.click("#trigger-submit")
    page.wait_for_selector('body[data-finished="failed"]')
    states = _graph_states(page)
    assert states == {"prepare": "success", "fragile": "failed", "after": "upstream_failed"}

    page.click('g.node[data-id="fragile"] rect')
    page.wait_for_selector('#task-state[data-state="failed"]')
    assert "the first try fails on purpose" in page.inner_text("#task-tries")
    page.click("#clear-task")
    page.wait_for_selector("#preview-list")
    assert page.inner_text("#preview-list").split() == ["fragile", "after"]
    page.click("#confirm-ok")
    page.wait_for_selector('#task-state[data-state="success"]')
    assert page.locator("#task-tries tbody tr").count() >= 2
    page.wait_for_selector("body[data-log-loaded]")
    page.select_option("#log-try", "2")
    # data-log-loaded may already say 2 (the live log of try 2, read as it ran): wait for the text
    page.locator("#task-log", has_text="second time lucky").wait_for()

    page.click("text=Graph")
    page.wait_for_selector('body[data-finished="success"]')
    assert set(_graph_states(page).values()) == {"success"}


def test_other_pages_draw_without_errors(admin_tab: Session) -> None:
    _wait_for_flow(admin_tab, "greet")
    page = admin_tab.open("/flows/greet/grid")
    page.wait_for_selector("body[data-drawn=grid]")
    assert re.search(r"^3 tasks . 1 of 1 runs", page.inner_text("#grid-status"))
    page.click("text=Gantt (latest run)")
    page.wait_for_selector("body[data-drawn=gantt]")
    page = admin_tab.open("/luigi")
    page.wait_for_selector("body[data-drawn=luigi]")
    assert page.locator('#families tr[data-family="BashOperator"]').count() == 1
    page = admin_tab.open("/import-errors")
    assert "imports cleanly" in page.inner_text("main")


def test_a_long_task_id_in_the_gantt_chart_is_shortened_not_hidden(admin_tab: Session, standalone: Standalone) -> None:
    """A task id longer than the Gantt chart's label column ran on under its bar, its end cut
    off, and the last time on the axis was cut at the chart's edge ("+2."): the id is shortened
    with an ellipsis within the column, the whole id in its tooltip, and the axis ends inside."""
    task_id = "load_the_daily_orders_from_the_eu_warehouse_into_the_reporting_schema"
    _wait_for_flow(admin_tab, "long_names")
    standalone.cli("trigger", "long_names", "--run-id", "long", "--wait")
    page = admin_tab.open("/flows/long_names/runs/long/gantt")
    page.wait_for_selector("body[data-drawn=gantt]")
    name = page.locator("#gantt-svg text.name").first
    shown = name.evaluate("n => n.firstChild.textContent")
    assert "…" in shown and shown.startswith("load_the") and shown.endswith("schema"), shown
    assert name.locator("title").text_content() == task_id
    label, bar = name.bounding_box(), page.locator("#gantt-svg rect.bar").first.bounding_box()
    assert label is not None and bar is not None
    assert label["x"] + label["width"] <= bar["x"], (label, bar)
    chart = page.locator("#gantt-svg").bounding_box()
    last = page.locator("#gantt-svg text.axis").last.bounding_box()
    assert chart is not None and last is not None
    assert last["x"] + last["width"] <= chart["x"] + chart["width"], (last, chart)


def test_a_viewer_cannot_trigger(browser: Any, standalone: Standalone) -> None:
    tab = Session(browser, standalone, "viewer", VIEWER_PASSWORD)
    try:
        page = tab.open("/flows")
        page.wait_for_selector('tr[data-flow-id="greet"]')
        assert page.locator("a.button", has_text="Trigger").count() == 0
        assert page.locator(".pause-toggle").count() == 0
        response = page.goto(standalone.url + "/flows/greet/trigger")
        assert response is not None and response.status == 403
        assert "viewer role" in page.inner_text("#page-error")
        tab.errors.clear()  # the 403 page load is logged by Chromium as a console error
        page = tab.open("/flows/greet/grid")
        page.wait_for_selector("body[data-drawn=grid]")
        assert page.locator("#trigger-link").count() == 0
    finally:
        tab.close()


def test_assets_lineage_and_why_a_task_did_not_run(admin_tab: Session, standalone: Standalone) -> None:
    _wait_for_flow(admin_tab, "sales_report")
    standalone.cli("trigger", "sales_producer", "--wait", "--timeout", "60")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"asset_triggered"' not in standalone.cli(
        "runs", "list", "sales_report", "--json"
    ):
        time.sleep(0.5)
    page = admin_tab.open("/assets")
    page.wait_for_selector("body[data-drawn=assets]")
    row = page.locator('#assets-table tr[data-uri="s3://warehouse/sales"]')
    assert "sales_producer" in row.inner_text() and "sales_report" in row.inner_text()
    for node in ("flow:sales_producer", "asset:s3://warehouse/sales", "flow:sales_report"):
        assert page.locator(f'g.lineage-node[data-id="{node}"]').count() == 1
    row.locator("a").first.click()
    page.wait_for_url("**/assets/detail?uri=*")
    assert "sales_producer · publish" in page.inner_text("#asset-producers")
    assert "sales_report" in page.inner_text("#asset-consumers")
    events = page.inner_text("#asset-events")
    assert '"rows": 42' in events and "asset_triggered__" in events
    page = admin_tab.open("/flows")
    assert "on assets" in page.inner_text('tr[data-flow-id="sales_report"]')
    page = admin_tab.open("/flows/sales_report/grid")
    assert page.inner_text("#flow-assets") == "s3://warehouse/sales"

    standalone.cli("trigger", "cached_square", "--wait", "--timeout", "60")
    second = standalone.cli("trigger", "cached_square", "--wait", "--timeout", "60", "--json")
    run_id = re.search(r'"run_id": "([^"]+)"', second)
    assert run_id is not None
    page = admin_tab.open(f"/flows/cached_square/runs/{run_id.group(1)}/tasks/square")
    page.wait_for_selector("#task-why[data-decision=up_to_date]")
    assert "did not run: up to date" in page.inner_text("#task-why")
    assert page.inner_text("#task-why-title") == "Why it did not run"  # not "Why it ran" above "did not run"
    page = admin_tab.open(f"/flows/cached_square/runs/{run_id.group(1)}/graph")  # the hit shows on the graph too
    page.wait_for_selector("body[data-drawn=graph]")
    node = page.locator('g.node[data-id="square"]')
    assert node.get_attribute("data-reused") and "square · cached" in (node.text_content() or "")


def test_delete_a_run_from_its_page_see_its_code_and_the_audit_log(admin_tab: Session, standalone: Standalone) -> None:
    """The run page's Delete button shows the dry run and deletes; the run header shows the code
    the run was created from and links to the comparison; the audit log names the deletion."""
    import json

    _wait_for_flow(admin_tab, "greet")
    older = json.loads(standalone.cli("trigger", "greet", "--run-id", "to_delete", "--wait", "--json"))
    assert older["state"] == "success"
    newer = json.loads(standalone.cli("trigger", "greet", "--run-id", "to_keep", "--wait", "--json"))
    page = admin_tab.open("/flows/greet/runs/to_keep/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    assert newer["code"]["hash"] in page.inner_text("#run-code")
    page.click("#run-compare")
    page.wait_for_selector("#diff-code")
    assert "same graph" in page.inner_text("main") and "same code" in page.inner_text("main")

    page = admin_tab.open("/flows/greet/runs/to_delete/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    page.click("#delete-run")
    page.wait_for_selector("#delete-preview")
    assert "3 task instance(s), 3 tr(ies)" in page.inner_text("#delete-preview")
    page.click("#confirm-ok")
    page.wait_for_url(re.compile(r".*/flows/greet/grid$"))
    runs = json.loads(standalone.cli("runs", "list", "greet", "--json"))["runs"]
    assert "to_delete" not in [r["run_id"] for r in runs] and "to_keep" in [r["run_id"] for r in runs]

    page = admin_tab.open("/audit?action=run.")
    rows = page.locator("#audit-table tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert any("run.delete" in t and "greet/to_delete" in t and "ui" in t for t in texts), texts
    assert any("run.trigger" in t and "cli" in t for t in texts), texts


def test_delete_run_is_offered_only_when_the_run_can_be_deleted(admin_tab: Session, standalone: Standalone) -> None:
    """The latest run of a flow is never deleted, yet its page offered *Delete run*, which then
    always answered 409: the button is off, with the reason as its tooltip, on the latest run and
    on it still once its live state says it ended; an older finished run's button is on."""
    _wait_for_flow(admin_tab, "greet")
    standalone.cli("trigger", "greet", "--run-id", "deletable_older", "--wait")
    standalone.cli("trigger", "greet", "--run-id", "kept_latest", "--wait")
    page = admin_tab.open("/flows/greet/runs/kept_latest/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    assert page.is_disabled("#delete-run")
    assert "latest run of flow 'greet'" in (page.get_attribute("#delete-run", "title") or "")
    page.evaluate("import('/static/js/common.js').then((m) => m.setRunState('success'))")  # a live update
    page.wait_for_function("document.getElementById('run-state').textContent === 'success'")
    assert page.is_disabled("#delete-run"), "the run's end does not make the latest run deletable"
    page.evaluate("import('/static/js/common.js').then((m) => m.setRunState('running'))")
    page.wait_for_function("document.getElementById('run-state').textContent === 'running'")
    assert "only finished runs" in (page.get_attribute("#delete-run", "title") or "")

    page = admin_tab.open("/flows/greet/runs/deletable_older/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    assert not page.is_disabled("#delete-run")
    assert (page.get_attribute("#delete-run", "title") or "").startswith("Delete this finished run")


def test_mark_changes_the_task_alone_unless_downstream_is_ticked_and_lists_what_it_changes(
    admin_tab: Session, standalone: Standalone
) -> None:
    """As in Airflow, Mark success/failed starts with Downstream unticked (Clear keeps it ticked),
    and the confirmation lists the tasks the mark would change (a dry run of the same call)."""
    import json

    _wait_for_flow(admin_tab, "greet")
    done = json.loads(standalone.cli("trigger", "greet", "--run-id", "to_mark", "--wait", "--json"))
    assert done["state"] == "success"
    page = admin_tab.open("/flows/greet/runs/to_mark/tasks/work.hello")
    page.wait_for_selector('#task-state[data-state="success"]')
    assert page.is_checked("#opt-downstream") and not page.is_checked("#mark-downstream")

    page.click("#mark-failed")
    page.wait_for_selector("#preview-list")
    assert page.inner_text("#preview-list").split() == ["work.hello"]
    page.click("#confirm-ok")
    page.wait_for_selector('#task-state[data-state="failed"]')
    states = {
        k: v["state"] for k, v in json.loads(standalone.cli("tasks", "state", "greet", "to_mark", "--json")).items()
    }
    assert states == {"work.hello": "failed", "work.count": "success", "done": "success"}

    page.check("#mark-downstream")
    page.click("#mark-failed")
    page.wait_for_selector("#preview-list")
    assert page.inner_text("#preview-list").split() == ["work.count", "done"]  # hello is failed already
    page.click("#confirm button[value=cancel]")
    states = {
        k: v["state"] for k, v in json.loads(standalone.cli("tasks", "state", "greet", "to_mark", "--json")).items()
    }
    assert states["done"] == "success", "cancelling the confirmation changed nothing"


def test_a_refused_run_action_says_why(admin_tab: Session, standalone: Standalone) -> None:
    """Cancel on a page that still shows the run unfinished (it ended meanwhile) is refused by the
    server (409): the page says so under the run header, with no uncaught promise rejection."""
    _wait_for_flow(admin_tab, "greet")
    standalone.cli("trigger", "greet", "--run-id", "ended_meanwhile", "--wait")
    page = admin_tab.open("/flows/greet/runs/ended_meanwhile/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    page.evaluate("document.getElementById('cancel-run').disabled = false")  # as the page drawn before the end
    page.click("#cancel-run")
    page.click("#confirm-ok")
    page.wait_for_selector("#run-action-result .error")
    assert "already finished (success)" in page.inner_text("#run-action-result")
    assert all("409" in e for e in admin_tab.errors), admin_tab.errors  # Chromium logs the refused request
    admin_tab.errors.clear()


def test_a_run_cancelled_while_shown_says_why_and_its_unrun_task_says_it_never_ran(
    admin_tab: Session, standalone: Standalone
) -> None:
    """The header of a run's graph said "failed" when the run was cancelled, and "cancelled from
    the web" only after a reload; the task the cancel skipped read "try 0 of 1" over an empty
    tries table. The reason shows as the run ends, and the task says it never ran, and why."""
    _wait_for_flow(admin_tab, "stoppable")
    standalone.cli("trigger", "stoppable", "--run-id", "stopped_while_shown")
    page = admin_tab.open("/flows/stoppable/runs/stopped_while_shown/graph")
    page.wait_for_selector('g.node[data-id="wait"][data-state="running"]')
    assert page.locator("#run-reason").count() == 0
    page.click("#cancel-run")
    page.click("#confirm-ok")
    page.locator("#run-reason", has_text="cancelled from the web").wait_for()
    page.click('g.node[data-id="then"] rect')
    page.wait_for_selector('#task-state[data-state="skipped"]')
    assert page.inner_text("#task-summary") == "BashOperator · never ran"
    assert page.inner_text("#no-tries") == "no tries: the task ended skipped without running (cancelled from the web)"
    page.wait_for_selector("#task-why[data-decision=not_run]")
    assert page.inner_text("#task-why-title") == "Why it did not run"
    assert page.inner_text("#task-why") == "did not run: it ended skipped (cancelled from the web)"


def test_pausing_a_flow_on_the_flows_page_updates_its_next_run(admin_tab: Session) -> None:
    """Paused with its switch, a flow kept showing the next run it would no longer start (and,
    unpaused, showed none) until the page was loaded again."""
    _wait_for_flow(admin_tab, "future_daily")
    page = admin_tab.page
    row = 'tr[data-flow-id="future_daily"]'
    assert page.inner_text(f"{row} .next-run").startswith("2100-01-02 00:00")
    page.click(f"{row} .switch")
    page.locator(f"{row} .next-run", has_text="—").wait_for()
    page.reload()
    assert page.inner_text(f"{row} .next-run") == "—"
    page.click(f"{row} .switch")
    page.locator(f"{row} .next-run", has_text="2100-01-02 00:00").wait_for()
    assert "logical date 2100-01-01 00:00" in page.inner_text(f"{row} .next-run")


def test_the_cancel_run_dialog_says_keep_running_not_cancel(admin_tab: Session, standalone: Standalone) -> None:
    """The dialog of Cancel run read "Cancel" and "Cancel run": which one cancels the run? The
    button that closes it says "Keep running"; the same dialog asked next (clear) says Cancel."""
    _wait_for_flow(admin_tab, "greet")
    standalone.cli("trigger", "greet", "--run-id", "kept_running", "--wait")
    standalone.cli("trigger", "greet", "--run-id", "after_kept_running", "--wait")  # the latest is not deleted
    page = admin_tab.open("/flows/greet/runs/kept_running/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    page.evaluate("document.getElementById('cancel-run').disabled = false")  # as if still running
    page.click("#cancel-run")
    page.wait_for_selector("#confirm[open]")
    assert page.inner_text("#confirm-cancel") == "Keep running"
    assert page.inner_text("#confirm-ok") == "Cancel run"
    page.click("#confirm-cancel")
    assert page.inner_text("#run-action-result") == "", "closing the dialog sent nothing"

    page.click("#delete-run")
    page.wait_for_selector("#delete-preview")
    assert page.inner_text("#confirm-cancel") == "Keep the run" and page.inner_text("#confirm-ok") == "Delete run"
    page.keyboard.press("Escape")
    page.click('g.node[data-id="done"] rect')
    page.wait_for_selector('#task-state[data-state="success"]')
    page.click("#clear-task")
    page.wait_for_selector("#preview-list")
    assert page.inner_text("#confirm-cancel") == "Cancel" and page.inner_text("#confirm-ok") == "Clear"
    page.click("#confirm-cancel")
    assert page.locator("#confirm[open]").count() == 0
    assert "kept_running" in standalone.cli("runs", "list", "greet"), "Keep the run deleted nothing"


_LUMA = (
    "(c) => { const [r, g, b] = c.match(/\\d+/g).map(Number); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; }"
)
_GRID_HEADER_LUMA = (
    "() => { const d = document.querySelector('#grid + canvas').getContext('2d').getImageData(4, 4, 1, 1).data;"
    " return (0.2126 * d[0] + 0.7152 * d[1] + 0.0722 * d[2]) / 255; }"
)


def test_the_pages_follow_the_systems_dark_mode(admin_tab: Session) -> None:
    """There was no dark mode: a browser set to dark (prefers-color-scheme) got white pages and a
    white grid. Pages, panels, form fields and the grid's canvas now follow the preference, and
    the grid redraws when it changes while the page is open."""
    page = admin_tab.page
    page.emulate_media(color_scheme="dark")
    admin_tab.open("/flows")
    luma = f"(sel) => ({_LUMA})(getComputedStyle(document.querySelector(sel)).backgroundColor)"
    text = f"(sel) => ({_LUMA})(getComputedStyle(document.querySelector(sel)).color)"
    assert page.evaluate(luma, "body") < 0.15 and page.evaluate(text, "body") > 0.8
    assert page.evaluate(luma, "table.list") < 0.15
    admin_tab.open("/flows/greet/trigger")
    assert page.evaluate(luma, "#conf") < 0.15 and page.evaluate(text, "#conf") > 0.8

    admin_tab.open("/flows/greet/grid")
    page.wait_for_selector("body[data-drawn=grid]")
    assert page.evaluate(_GRID_HEADER_LUMA) < 0.15, "the grid's canvas is dark too"
    page.emulate_media(color_scheme="light")
    deadline = time.monotonic() + 60  # redrawn light, without a reload
    while page.evaluate(_GRID_HEADER_LUMA) < 0.9 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert page.evaluate(_GRID_HEADER_LUMA) > 0.9, "the grid follows a change of scheme"
    assert page.evaluate(luma, "body") > 0.9


def test_back_after_logging_out_shows_the_login_page_not_the_data(browser: Any, standalone: Standalone) -> None:
    tab = Session(browser, standalone, "viewer", VIEWER_PASSWORD)
    try:
        page = tab.open("/flows/greet/grid")
        page.wait_for_selector("body[data-drawn=grid]")
        page.click("header form button")  # Log out
        page.wait_for_url("**/login*")
        page.go_back()
        page.wait_for_load_state("networkidle")
        assert "/login" in page.url and page.locator("#grid").count() == 0, page.url
        tab.errors.clear()  # the grid's last requests, cut short by the logout
    finally:
        tab.close()


def test_the_grid_opens_on_the_newest_runs_and_links_to_every_run(browser: Any, standalone: Standalone) -> None:
    """A grid wider than the window starts scrolled to its right end (the newest runs); "all
    runs" lists every run, newest first, each linking to its page."""
    import json

    tab = Session(browser, standalone, "viewer", VIEWER_PASSWORD)
    try:
        _wait_for_flow(tab, "ticks")
        for i in range(24):  # wider than the window, the names' column taking 40% of it
            standalone.cli("trigger", "ticks", "--run-id", f"tick_{i:02d}")
        tab.page.set_viewport_size({"width": 560, "height": 700})
        page = tab.open("/flows/ticks/grid")
        page.wait_for_selector("body[data-drawn=grid]")
        left, width, seen = page.evaluate(
            "(() => { const g = document.getElementById('grid'); return [g.scrollLeft, g.scrollWidth, g.clientWidth]; })()"
        )
        assert width > seen and left + seen >= width - 1, (left, width, seen)

        page.click("#all-runs")
        page.wait_for_selector("#runs-table")
        newest = json.loads(standalone.cli("runs", "list", "ticks", "--json"))["runs"][0]["run_id"]
        assert page.locator("#runs-table tbody tr").first.get_attribute("data-run-id") == newest
        page.click(f'#runs-table tr[data-run-id="{newest}"] a')
        page.wait_for_selector("body[data-drawn=graph]")
        assert newest in page.inner_text("#run-header")
    finally:
        tab.close()


def test_saving_a_pool_without_a_name_says_a_name_is_needed(admin_tab: Session) -> None:
    page = admin_tab.open("/pools")
    page.wait_for_selector("body[data-drawn=pools]")
    said: list[str] = []
    page.on("dialog", lambda d: (said.append(d.message), d.dismiss()))
    page.fill("#pool-form [name=name]", "   ")  # passes the browser's "required"
    page.fill("#pool-form [name=slots]", "2")
    page.click("#pool-form button[type=submit]")
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert said == ["A pool needs a name."]


def test_a_task_without_a_log_says_why_and_asks_for_none(admin_tab: Session, standalone: Standalone) -> None:
    """A skipped task never ran; an EmptyOperator's try ran nowhere: the log panel says so, and
    the page asks the server for no log (no 404 in the console: the tab fails on any error)."""
    _wait_for_flow(admin_tab, "short_circuit")
    standalone.cli("trigger", "short_circuit", "--run-id", "gated", "--wait")
    page = admin_tab.open("/flows/short_circuit/runs/gated/tasks/skipped_step")
    page.wait_for_selector("body[data-drawn=task]")  # after the log panel is filled
    assert page.inner_text("#task-state") == "skipped"
    assert page.inner_text("#task-log") == "no log: the task was skipped, so it never ran (skipped by gate)"

    standalone.cli("trigger", "greet", "--run-id", "empty_done", "--wait")
    page = admin_tab.open("/flows/greet/runs/empty_done/tasks/done")
    page.wait_for_selector('body[data-log-loaded="1"]')
    assert page.inner_text("#task-log") == (
        "no log: try 1 ended success without writing one (an EmptyOperator has nothing to run)"
    )


def test_the_api_docs_page_without_internet_says_so_and_links_the_openapi_document(admin_tab: Session) -> None:
    """Swagger UI comes from a CDN (it is not installed with Ductwork): offline the page is not blank."""
    admin_tab.context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    page = admin_tab.open("/api/v1/docs")
    page.wait_for_load_state("load")
    assert "cannot reach the internet" in page.inner_text("#docs-offline")
    page.click("#docs-offline a")
    page.wait_for_url("**/api/v1/openapi.json")
    assert '"openapi"' in page.content()
    admin_tab.errors.clear()  # the blocked CDN requests, and Swagger's script that never came


def _expire_sessions(server: Standalone) -> None:
    """What twelve hours without a login do to every open session of the server."""
    import datetime as dt

    import sqlalchemy as sa

    from ductwork.store.engine import create_engine
    from ductwork.store.tables import web_sessions

    engine = create_engine(f"sqlite:///{server.home / 'ductwork.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(web_sessions).values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    finally:
        engine.dispose()


def test_an_expired_session_logs_in_again_back_to_the_page_with_its_query(browser: Any, standalone: Standalone) -> None:
    """A page's script that meets the expired session sends the user to the login page, which
    brings them back to the same page with its filters (the query string), not to its bare path."""
    tab = Session(browser, standalone, "admin", standalone.admin_password)
    try:
        _wait_for_flow(tab, "ticks")
        page = tab.open("/flows?tag=browser&paused=no")
        page.wait_for_selector("body[data-drawn=flows]")
        _expire_sessions(standalone)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.click('tr[data-flow-id="ticks"] .pause-toggle')  # the PATCH meets the expired session
        page.wait_for_url("**/login?next=*")
        assert "next=%2Fflows%3Ftag%3Dbrowser%26paused%3Dno" in page.url, page.url
        page.fill("#username", "admin")
        page.fill("#password", standalone.admin_password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/flows\?tag=browser&paused=no$"))
        assert page.locator('tr[data-flow-id="ticks"] .pause-toggle').is_checked()  # nothing was paused
        assert dialogs == [], dialogs  # no error box on the way to the login page
        tab.errors = [e for e in tab.errors if "401" not in e]  # Chromium logs the refused request
    finally:
        tab.close()


def test_a_narrow_window_keeps_the_menu_the_pages_and_the_grid_usable(browser: Any, standalone: Standalone) -> None:
    """On a phone-sized window (390 px) the menu's links stay inside the top bar instead of
    spilling over the page, pages do not scroll sideways, and the grid's task names leave room
    for the runs' cells."""
    tab = Session(browser, standalone, "admin", standalone.admin_password)
    try:
        standalone.cli("trigger", "greet")
        page = tab.page
        page.set_viewport_size({"width": 390, "height": 844})
        for path in ("/flows", "/flows/greet/runs", "/flows/greet/trigger", "/users"):
            tab.open(path).wait_for_load_state("networkidle")
            scroll_width, width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert scroll_width <= width, (path, scroll_width, width)
            bar_bottom = page.evaluate("document.querySelector('header.top').getBoundingClientRect().bottom")
            links_bottom = page.evaluate(
                "Math.max(...[...document.querySelectorAll('header.top nav a, header.top .who button')]"
                ".map((a) => a.getBoundingClientRect().bottom))"
            )
            assert links_bottom <= bar_bottom, (path, links_bottom, bar_bottom)
        tab.open("/flows/greet/grid").wait_for_selector("body[data-drawn=grid]")
        box = page.locator("#grid").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.41 + 2, box["y"] + 64 + 9)  # the first row, left of the middle
        tip = page.inner_text("#tooltip")
        assert "manual__" in tip, f"no run's cell under the pointer, only {tip!r}"
    finally:
        tab.close()


def test_the_graph_is_usable_with_the_keyboard(admin_tab: Session, standalone: Standalone) -> None:
    """Tab reaches the graph's boxes; Enter opens a group in place (its first task then has the
    focus) and a task's page, as a click does."""
    import json

    standalone.cli("trigger", "greet")
    runs = json.loads(standalone.cli("runs", "list", "greet", "--json"))["runs"]
    page = admin_tab.open(f"/flows/greet/runs/{quote(runs[0]['run_id'], safe='')}/graph")
    page.wait_for_selector("body[data-drawn=graph]")
    page.click("#graph-collapse")
    page.wait_for_selector('g.node[data-kind=group][data-id="work"]')
    page.focus("#graph-search")
    for _ in range(10):  # Tab from the search box: the buttons, then the boxes
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset?.id") == "work":
            break
    else:
        raise AssertionError("Tab never reached the group's box")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("group work")
    page.keyboard.press("Enter")
    page.wait_for_selector('g.node[data-id="work.hello"]:focus')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tasks/work\.hello$"))


def test_a_tasks_log_follows_its_retry_unless_an_older_try_is_chosen(
    admin_tab: Session, standalone: Standalone
) -> None:
    """The log stayed on the first try it showed: watching a retrying task, one read the failed
    try's log while the retry ran. It now moves to the newest try, unless one picks an older one."""
    _wait_for_flow(admin_tab, "retry_once")
    queued = re.search(r"run retry_once (\S+): queued", standalone.cli("trigger", "retry_once"))
    assert queued is not None
    page = admin_tab.open(f"/flows/retry_once/runs/{quote(queued.group(1), safe='')}/tasks/wobbly")
    page.wait_for_selector("#task-state[data-state=up_for_retry]")
    page.wait_for_selector("#task-log:has-text('first try, failing')")
    page.wait_for_selector("#task-state[data-state=success]")
    page.wait_for_selector("#task-log:has-text('second try, succeeding')")
    assert page.input_value("#log-try") == "2"
    page.select_option("#log-try", "1")  # an older try, chosen: it stays
    page.wait_for_selector("#task-log:has-text('first try, failing')")
    page.wait_for_timeout(1500)
    assert page.input_value("#log-try") == "1"


def test_the_grids_choice_of_runs_is_kept_in_the_address(admin_tab: Session) -> None:
    """Choosing 50 runs and reloading (or bookmarking) showed 25 again."""
    page = admin_tab.open("/flows/greet/grid")
    page.wait_for_selector("body[data-drawn=grid]")
    page.select_option("#grid-limit", "50")
    page.wait_for_url(re.compile(r".*/flows/greet/grid\?runs=50$"))
    page.reload()
    page.wait_for_selector("body[data-drawn=grid]")
    assert page.input_value("#grid-limit") == "50"


def test_clear_failed_tasks_of_a_mapped_task_clears_the_failed_instance_not_the_others(
    admin_tab: Session, standalone: Standalone
) -> None:
    """``double`` is failed because ``double[1]`` failed; clearing ``double`` clears all its
    instances, so "Clear failed tasks" ran the two that had succeeded again."""
    _wait_for_flow(admin_tab, "one_bad_instance")
    queued = re.search(r"run one_bad_instance (\S+): queued", standalone.cli("trigger", "one_bad_instance"))
    assert queued is not None
    page = admin_tab.open(f"/flows/one_bad_instance/runs/{quote(queued.group(1), safe='')}/graph")
    page.wait_for_selector("body[data-finished=failed]")
    page.click("#clear-failed")
    page.wait_for_selector("#preview-list")
    assert page.locator("#preview-list li").all_inner_texts() == ["double[1]", "double", "added"]
    page.click("#confirm-ok")
    page.wait_for_selector("#run-action-result .ok")
    assert "cleared 3 task(s)" in page.inner_text("#run-action-result")


def test_the_grid_is_usable_with_the_keyboard_and_lists_mapped_instances_under_their_task(
    admin_tab: Session, standalone: Standalone
) -> None:
    """The grid is drawn on a canvas: it could only be used with a mouse. Tab now gives it the
    focus, the arrow keys move from cell to cell (each said in a live region and the tooltip),
    and Enter opens what a click opens. A mapped task's instances come right under it (they
    were listed below every other task)."""
    _wait_for_flow(admin_tab, "one_bad_instance")
    queued = re.search(r"run one_bad_instance (\S+): queued", standalone.cli("trigger", "one_bad_instance"))
    assert queued is not None
    admin_tab.open(f"/flows/one_bad_instance/runs/{quote(queued.group(1), safe='')}/graph")
    admin_tab.page.wait_for_selector("body[data-finished=failed]")
    page = admin_tab.open("/flows/one_bad_instance/grid")
    page.wait_for_selector("body[data-drawn=grid]")
    page.focus("#collapse-all")
    seen = []
    for _ in range(5):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.outerHTML.slice(0, 80)"))
        if page.evaluate("document.activeElement.id") == "grid":
            break
    else:
        raise AssertionError(f"Tab never reached the grid: {seen}")
    said = [page.inner_text("#grid-cursor")]
    for _ in range(5):
        page.keyboard.press("ArrowDown")
        said.append(page.inner_text("#grid-cursor"))
    assert [s.split(",")[0] for s in said] == [
        "task three",
        "task double",
        "task double[0]",
        "task double[1]",
        "task double[2]",
        "task added",
    ], said
    assert said[3].endswith("failed: Enter opens it"), said[3]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tasks/double%5B1%5D$"))
    page.go_back()
    page.wait_for_selector("body[data-drawn=grid]")
    page.focus("#grid")
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowUp")  # the runs' bars
    assert page.inner_text("#grid-cursor").startswith("run ")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/runs/[^/]+/graph$"))


def test_a_tasks_times_say_they_are_utc_in_a_browser_elsewhere(
    admin_tab: Session, browser: Any, standalone: Standalone
) -> None:
    """The run header said "logical date ... UTC", but the task page's started, ended and tries
    showed bare times: read in Kolkata, 23:39 looked like local time, 5.5 hours off."""
    _wait_for_flow(admin_tab, "greet")
    queued = re.search(r"run greet (\S+): success", standalone.cli("trigger", "greet", "--wait"))
    assert queued is not None
    context = browser.new_context(timezone_id="Asia/Kolkata", viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(standalone.url + "/login")
        page.fill("#username", "admin")
        page.fill("#password", standalone.admin_password)
        page.click("button[type=submit]")
        page.wait_for_url("**/flows")
        page.goto(standalone.url + f"/flows/greet/runs/{quote(queued.group(1), safe='')}/tasks/work.hello")
        page.wait_for_selector("#task-tries tbody td:nth-child(3)")
        details = page.inner_text("#task-details")
        started = re.search(r"started\s+(\S+ \S+ ?\S*)", details)
        assert started is not None and started.group(1).endswith("UTC"), details
        assert re.search(r"ended\s+\S+ \S+ UTC", details), details
        assert page.inner_text("#task-tries tbody td:nth-child(3)").endswith("UTC")
    finally:
        context.close()
