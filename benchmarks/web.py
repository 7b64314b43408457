"""UI/API benchmark, and the screenshots of the web UI.

    python benchmarks/web.py                       # the benchmark (also: benchmarks/run.py --sections web)
    python benchmarks/web.py --screenshots docs/screenshots   # what `make screenshots` runs

Benchmark: flows of 10,000 tasks with 25 recorded runs each, seeded straight into the store
(bulk inserts, no scheduler), served by the real application over HTTP. It times the grid and
run-graph API calls (median of several) and, in headless Chromium, how long the grid and graph
pages take from navigation until they are drawn (the pages set a ``performance`` mark when
they are). Targets (issue 4): each API call under 500 ms, pages usable within 2 s.

Screenshots: a real ``ductwork standalone`` (scheduler, workers, web server) runs a few demo
flows, then Chromium photographs every page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState

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
PASSWORD = "benchmark-password"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# --- shapes ------------------------------------------------------------------------------------
def grouped_graph(flow_id: str, n_tasks: int, groups: int) -> FlowGraph:
    """``groups`` task groups in a chain; inside each, a fan-out from a first task to the others
    and a fan-in to the last one (how large Airflow pipelines are usually built)."""
    per = n_tasks // groups
    nodes: dict[str, NodeSpec] = {}
    previous_last: str | None = None
    for g in range(groups):
        gid = f"part_{g:03d}"
        first, last = f"{gid}.start", f"{gid}.merge"
        nodes[first] = NodeSpec(first, (previous_last,) if previous_last else (), group=gid, operator="EmptyOperator")
        middle = [f"{gid}.load_{i:03d}" for i in range(per - 2)]
        for task_id in middle:
            nodes[task_id] = NodeSpec(task_id, (first,), group=gid, operator="PythonOperator")
        nodes[last] = NodeSpec(last, tuple(middle), group=gid, operator="EmptyOperator")
        previous_last = last
    groups_meta = {f"part_{g:03d}": {"parent": None, "tooltip": ""} for g in range(groups)}
    return FlowGraph(FlowMeta(flow_id, schedule="None", tags=("benchmark",)), nodes, groups_meta)


def lanes_graph(flow_id: str, layers: int, lanes: int, seed: int = 7) -> FlowGraph:
    """No groups: ``lanes`` parallel chains of ``layers`` tasks with cross links to the next lane."""
    rng = random.Random(seed)
    nodes: dict[str, NodeSpec] = {}
    for layer in range(layers):
        for lane in range(lanes):
            task_id = f"step_{layer:03d}_{lane:03d}"
            up: list[str] = []
            if layer:
                up.append(f"step_{layer - 1:03d}_{lane:03d}")
                if lane + 1 < lanes and rng.random() < 0.2:
                    up.append(f"step_{layer - 1:03d}_{lane + 1:03d}")
            nodes[task_id] = NodeSpec(task_id, tuple(up), operator="BashOperator")
    return FlowGraph(FlowMeta(flow_id, schedule="None", tags=("benchmark",)), nodes, {})


def run_states(graph: FlowGraph, index: int, newest: int, rng: random.Random) -> dict[str, TaskState]:
    """Finished runs are mostly green with the odd failure; the newest run is half-way through."""
    ids = list(graph.nodes)
    if index == newest:
        cut = len(ids) // 2
        return {
            t: TaskState.SUCCESS if i < cut else TaskState.RUNNING if i < cut + 8 else TaskState.NONE
            for i, t in enumerate(ids)
        }
    states = dict.fromkeys(ids, TaskState.SUCCESS)
    if rng.random() < 0.3:
        for t in rng.sample(ids, 3):
            states[t] = TaskState.FAILED
    return states


def seed_flow(engine: Any, graph: FlowGraph, n_runs: int, *, live: bool = True) -> list[str]:
    """The flow and ``n_runs`` runs (one executemany per run); returns run ids, newest first.
    With ``live`` the newest run is left running half-way (no scheduler will move it)."""
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo

    rng = random.Random(1)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
    run_ids = []
    for i in range(n_runs):
        states = run_states(graph, i, n_runs - 1 if live else -1, rng)
        finished = i != n_runs - 1 or not live
        state = RunState.FAILED if TaskState.FAILED in states.values() else RunState.SUCCESS
        with transaction(engine) as conn:
            record = run_repo.create_run(
                conn,
                graph,
                run_id=f"scheduled__{i:03d}",
                logical_date=T0 + dt.timedelta(days=i),
                run_type="scheduled",
                states=states,
                state=RunState.RUNNING,
            )
            if finished:
                run_repo.set_run_state(conn, record.pk, state)
        run_ids.append(record.run_id)
    return run_ids[::-1]


# --- serving -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(engine: Any, home: Path) -> Iterator[str]:
    """The real application on a free port, in a thread (uvicorn)."""
    from ductwork.api.app import create_app
    from ductwork.cli.webserver_cmd import make_server
    from ductwork.settings import Settings

    port = free_port()
    server = make_server(create_app(Settings(home=home), engine), "127.0.0.1", port, "error")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def time_call(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and worst time (ms) of ``repeat`` calls after one warm-up, and the body size."""
    size = len(client.get(path).raise_for_status().content)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), size


@contextmanager
def chromium_page(url: str, username: str, password: str, *, bypass_csp: bool = True) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=bypass_csp)
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(url + "/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/flows")
        try:
            yield page
        finally:
            browser.close()


def time_page(page: Any, url: str, name: str, repeat: int) -> tuple[float, float]:
    """Median (ms) from navigation start to the page's "drawn" mark, and wall time of the first load."""
    marks, walls = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(f"body[data-drawn={name}]", state="attached")
        walls.append((time.perf_counter() - started) * 1000)
        marks.append(page.evaluate(f"performance.getEntriesByName('ductwork:{name}:drawn')[0].startTime"))
    return statistics.median(marks), walls[0]


# --- the benchmark -----------------------------------------------------------------------------
def run_web(tasks: int = 10_000, runs: int = 25, repeat: int = 7, database_url: str | None = None) -> int:
    from ductwork.services import accounts
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="ductwork-web-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        engine = create_engine(url)
        migrate.upgrade(engine)
        started = time.perf_counter()
        grouped = seed_flow(engine, grouped_graph("big_grouped", tasks, 100), runs)
        flat = seed_flow(engine, lanes_graph("big_flat", 100, tasks // 100), runs)
        thousand = seed_flow(engine, lanes_graph("thousand", 20, 50), 1)
        seeded_s = time.perf_counter() - started
        accounts.create_user(engine, "bench", PASSWORD, "viewer")
        token = accounts.issue_token(engine, "bench", "benchmark").token
        backend = engine.url.get_backend_name()
        print(f"\n# Web UI and API — {tasks:,} tasks x {runs} runs per flow, {backend}; seeded in {seeded_s:.1f} s")
        with serve(engine, Path(tmp)) as base:
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            newest = f"/flows/big_grouped/runs/{quote(grouped[0])}"
            for label, path in [
                (f"grid API, {runs} runs x {tasks:,} tasks (groups)", f"/api/v1/flows/big_grouped/grid?limit={runs}"),
                (f"grid API, {runs} runs x {tasks:,} tasks (no groups)", f"/api/v1/flows/big_flat/grid?limit={runs}"),
                (f"run graph API, {tasks:,} tasks", f"/api/v1{newest}/graph"),
                (f"run states API (live poll), {tasks:,} tasks", f"/api/v1{newest}/states"),
                (f"Luigi families API, {2 * runs + 1} runs", "/api/v1/luigi/families?hours=24"),
                ("Luigi task list API, failed tasks", "/api/v1/luigi/tasks?state=failed&limit=100"),
            ]:
                median, worst, size = time_call(client, path, repeat)
                rows.append((label, f"{median:.0f} ms (max {worst:.0f})", f"{size / 1024:.0f} KiB"))
            if Path(CHROMIUM).exists():
                with chromium_page(base, "bench", PASSWORD) as page:
                    flat_graph = f"/flows/big_flat/runs/{quote(flat[0])}/graph"
                    thousand_graph = f"/flows/thousand/runs/{quote(thousand[0])}/graph"
                    for label, path, name in [
                        (f"grid page, {runs} x {tasks:,}", "/flows/big_grouped/grid", "grid"),
                        (f"graph page, {tasks:,} tasks in 100 groups", f"{newest}/graph", "graph"),
                        (f"graph page, {tasks:,} tasks, no groups (focus view)", flat_graph, "graph"),
                        ("graph page, 1,000 tasks, no groups (all drawn)", thousand_graph, "graph"),
                    ]:
                        drawn, first = time_page(page, base + path, name, max(3, repeat // 2))
                        rows.append((label, f"{drawn / 1000:.2f} s drawn", f"first load {first / 1000:.2f} s"))
            else:
                rows.append(("pages", f"skipped: no Chromium at {CHROMIUM}", ""))
        engine.dispose()
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | {'median':<20} | {'notes':<18} |")
    print(f"|{'-' * (width + 2)}|{'-' * 22}|{'-' * 20}|")
    for label, value, note in rows:
        print(f"| {label:<{width}} | {value:<20} | {note:<18} |")
    print(
        f"(median of {repeat} API calls after a warm-up; pages: median of {max(3, repeat // 2)} loads, navigation "
        "start to drawn; one machine, so figures move with its load)"
    )
    return 0


# --- screenshots -------------------------------------------------------------------------------
DEMO_FLOWS = '''"""Demo flows for the screenshots of the web UI."""
import datetime as dt
import os
import random
import time
from pathlib import Path

from ductwork import (BashOperator, BranchPythonOperator, EmptyOperator, Flow, IntParameter, LocalTarget,
                      DateParameter, Parameter, PythonOperator, Task, TaskGroup, WrapperTask)

with Flow("orders_daily", schedule="@daily", start_date="2024-01-01", owner="data-platform", tags=["sales", "etl"],
          description="Orders from the shop and the marketplace, cleaned and loaded into the warehouse",
          params={"limit": IntParameter(default=1000, description="rows per source"), "region": "eu"}) as orders:
    with TaskGroup("extract"):
        fetch = "echo fetching {} for {{{{ ds }}}}; sleep 1; echo {{{{ params.limit }}}} rows"
        sources = [BashOperator(task_id=f"fetch_{s}", bash_command=fetch.format(s))
                   for s in ("shop", "marketplace", "returns")]
    with TaskGroup("transform"):
        clean = PythonOperator(task_id="clean", python_callable=lambda params: time.sleep(1.5) or params["limit"] * 3)
        dedupe = PythonOperator(task_id="dedupe", python_callable=lambda: time.sleep(0.5) or {"duplicates": 12})
        clean >> dedupe
    load = BashOperator(task_id="load_warehouse", bash_command="echo loading; sleep 1; echo done")
    pick = BranchPythonOperator(
        task_id="pick_report", python_callable=lambda params: "report_full" if params["limit"] > 500 else "report_short"
    )
    full, short = EmptyOperator(task_id="report_full"), EmptyOperator(task_id="report_short")
    notify = EmptyOperator(task_id="notify", trigger_rule="none_failed_min_one_success")
    sources >> clean
    dedupe >> load >> pick >> [full, short] >> notify


def flaky_upload(run_id, try_number):
    print("uploading the report")
    if run_id == "manual__upload" and try_number == 1:
        raise ConnectionError("the report server closed the connection")
    print("uploaded")


with Flow("report_upload", schedule="@hourly", start_date="2024-01-01", owner="analytics", tags=["reports"]) as upload:
    render = BashOperator(task_id="render", bash_command="echo rendering; sleep 1")
    send = PythonOperator(task_id="upload", python_callable=flaky_upload)
    archive = EmptyOperator(task_id="archive")
    render >> send >> archive


class Events(Task):
    date = DateParameter()
    def output(self):
        return LocalTarget(Path(os.environ["DUCTWORK_HOME"]) / "out" / f"events-{self.date}.csv")
    def run(self):
        time.sleep(0.5)
        with self.output().open("w") as fh:
            fh.write("region,amount\\nnorth,3\\n")


class RegionReport(Task):
    date = DateParameter()
    region = Parameter()
    resources = {"warehouse": 1}
    def requires(self):
        return Events(date=self.date)
    def output(self):
        return LocalTarget(Path(os.environ["DUCTWORK_HOME"]) / "out" / f"{self.region}-{self.date}.txt")
    def run(self):
        time.sleep(random.random())
        with self.output().open("w") as fh:
            fh.write(self.region)


class AllReports(WrapperTask):
    date = DateParameter(default=dt.date(2024, 1, 31))
    def requires(self):
        return [RegionReport(date=self.date, region=r) for r in ("north", "south", "east", "west")]


region_reports = Flow.from_task(AllReports, flow_id="region_reports", schedule="@daily", date_param="date",
                                start_date="2024-01-01", tags=["luigi"], paused_on_creation=True)
'''

BROKEN_FLOW = """from ductwork import Flow, EmptyOperator

with Flow("half_written") as f:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id=undefined_name)
"""


DEMO_PIPELINE = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
        {"id": "ExtractLogs", "type": "ShellCommandActivity", "command": "sleep 0.2; echo extracted"},
        {
            "id": "CountRequests",
            "type": "ShellCommandActivity",
            "command": "echo counted",
            "dependsOn": {"ref": "ExtractLogs"},
            "maximumRetries": "2",
        },
        {
            "id": "LoadRedshift",
            "type": "ShellCommandActivity",
            "command": "echo loaded",
            "dependsOn": {"ref": "CountRequests"},
        },
    ]
}
"""An AWS Data Pipeline definition in the demo's flows folder (the pipelines page's picture)."""


def _standalone(root: Path, port: int) -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    flows = root / "flows"
    flows.mkdir()
    (flows / "demo.py").write_text(DEMO_FLOWS)
    (flows / "half_written.py").write_text(BROKEN_FLOW)
    (flows / "ApacheWebLogs.json").write_text(json.dumps(DEMO_PIPELINE))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(root / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        "PYTHONUNBUFFERED": "1",
    }
    (root / "ductwork.toml").write_text("[resources]\nwarehouse = 2\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ductwork.cli",
            "standalone",
            "--port",
            str(port),
            "--workers",
            "3",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    password = ""
    deadline = time.monotonic() + 60
    while not password and time.monotonic() < deadline:
        found = re.search(r"admin password: (\S+)", process.stdout.readline())
        password = found.group(1) if found else ""
    if not password:
        process.kill()
        raise RuntimeError("ductwork standalone did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()  # keep the pipe drained
    return process, password, env


def _wait(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("timed out waiting for the demo to get there")


def pipelines_shot(base: str, api: Any, page: Any, out: Path) -> None:
    """The pipelines page: a folder pipeline that ran twice, opened on its objects' instances,
    and a stored one not activated yet (PENDING)."""
    for _ in range(2):
        api.post("/flows/ApacheWebLogs/runs", json={}).raise_for_status()
    stored = json.dumps({**DEMO_PIPELINE, "objects": DEMO_PIPELINE["objects"][:2]})
    api.put("/pipelines/CopyRedshift", json={"definition": stored, "format": "json"}).raise_for_status()
    _wait(lambda: api.get("/pipelines/ApacheWebLogs").json()["schedule_state"] == "FINISHED", 180)
    page.goto(base + "/pipelines")
    page.wait_for_selector("body[data-drawn=pipelines]", state="attached")
    page.click('tbody[data-pipeline="ApacheWebLogs"] button.expand')
    page.wait_for_timeout(400)
    page.screenshot(path=str(out / "pipelines.png"))
    print(out / "pipelines.png")


def screenshots(out: Path) -> int:
    """Photograph every page of a real standalone server running the demo flows."""
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine

    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ductwork-shots-"))
    home = root / "home"
    engine = create_engine(f"sqlite:///{home / 'ductwork.db'}")
    migrate.upgrade(engine)
    big = seed_flow(engine, grouped_graph("warehouse_rebuild", 10_000, 100), 25, live=False)
    engine.dispose()
    port = free_port()
    process, password, env = _standalone(root, port)
    base = f"http://127.0.0.1:{port}"
    try:
        token = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "tokens", "create", "admin", "--name", "screenshots"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        api = httpx.Client(base_url=base + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        _wait(lambda: {"orders_daily", "report_upload"} <= {f["flow_id"] for f in api.get("/flows").json()["items"]})
        for day, limit in ((28, 200), (29, 1500), (30, 1000)):
            body = {"logical_date": f"2024-01-{day}T00:00:00Z", "params": {"limit": limit}}
            api.post("/flows/orders_daily/runs", json=body).raise_for_status()
        upload = api.post("/flows/report_upload/runs", json={"run_id": "manual__upload"}).json()
        api.post("/flows/region_reports/runs", json={"run_id": "manual__reports"}).raise_for_status()
        _wait(lambda: api.get("/runs?state=queued&state=running").json()["total"] == 0, 180)
        orders = api.get("/flows/orders_daily/runs?limit=1").json()["items"][0]["run_id"]
        with chromium_page(base, "admin", password, bypass_csp=False) as page:
            live = api.post("/flows/orders_daily/runs", json={"params": {"limit": 5000}}).json()["run_id"]
            page.goto(f"{base}/flows/orders_daily/runs/{quote(live, safe='')}/graph")
            page.wait_for_selector('g.node[data-id="transform.clean"][data-state=running]', state="attached")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "graph-live.png"))
            print(out / "graph-live.png")
            shots = [
                ("flows", "/flows", "flows"),
                ("grid", "/flows/orders_daily/grid", "grid"),
                ("graph", f"/flows/orders_daily/runs/{quote(orders, safe='')}/graph", "graph"),
                ("gantt", f"/flows/orders_daily/runs/{quote(orders, safe='')}/gantt", "gantt"),
                ("task", f"/flows/orders_daily/runs/{quote(orders, safe='')}/tasks/extract.fetch_shop", "task"),
                ("task-failed", f"/flows/report_upload/runs/{quote(upload['run_id'], safe='')}/tasks/upload", "task"),
                ("trigger", "/flows/orders_daily/trigger", None),
                ("luigi", "/luigi", "luigi"),
                ("import-errors", "/import-errors", None),
                ("pools", "/pools", None),
                ("grid-10000-tasks", "/flows/warehouse_rebuild/grid", "grid"),
                ("graph-10000-tasks", f"/flows/warehouse_rebuild/runs/{quote(big[0], safe='')}/graph", "graph"),
            ]
            pipelines_shot(base, api, page, out)
            for name, path, drawn in shots:
                page.goto(base + path)
                if drawn:
                    page.wait_for_selector(f"body[data-drawn={drawn}]", state="attached")
                if name == "task":
                    page.wait_for_selector("body[data-log-loaded]", state="attached")
                if name == "graph-10000-tasks":  # open one group of 100 tasks
                    page.click('g.node[data-id="part_001"] rect')
                    page.wait_for_selector('g.node[data-id="part_001.start"]', state="attached")
                page.wait_for_timeout(700)
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"{out / (name + '.png')}")
            page.context.clear_cookies()
            page.goto(base + "/login")
            page.screenshot(path=str(out / "login.png"))
            print(out / "login.png")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    parser.add_argument("--screenshots", type=Path, default=None, help="Write PNGs of every page here instead.")
    args = parser.parse_args(argv)
    if args.screenshots is not None:
        return screenshots(args.screenshots)
    return run_web(args.tasks, args.runs, args.repeat, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
