"""The workers view: the REST API and the page show each remote worker (host, queues, slots in
use, current tries, last heartbeat), lost ones as lost, and queues no live worker serves."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from starlette.testclient import TestClient

from ductwork.store.engine import transaction
from ductwork.store.repo import remote as remote_repo
from ductwork.store.tables import runs, task_instances
from tests.web.conftest import Api, login
from tests.web.seed import PASSWORD


def _setup(engine: Engine) -> list[str]:
    """The labels of w1's current tries."""
    now = dt.datetime.now(dt.UTC)
    with transaction(engine) as conn:
        pk, run_id = conn.execute(sa.select(runs.c.id, runs.c.run_id).order_by(runs.c.id).limit(1)).one()
        conn.execute(sa.update(runs).where(runs.c.id == pk).values(state="running"))
        flow_id = conn.execute(sa.select(runs.c.flow_id).where(runs.c.id == pk)).scalar_one()
        tasks = list(
            conn.execute(
                sa.select(task_instances.c.task_id)
                .where(task_instances.c.run_pk == pk)
                .order_by(task_instances.c.task_id)
            ).scalars()
        )[:3]
        # Two tries running on w1 (one in its first try, one in its second), and a task whose try
        # waits in the same message (a batch) and has not started: not current.
        for task_id, state, number in zip(tasks, ["running", "running", "queued"], [1, 2, 1], strict=True):
            conn.execute(
                sa.update(task_instances)
                .where(task_instances.c.run_pk == pk, task_instances.c.task_id == task_id)
                .values(state=state, try_number=number)
            )
        remote_repo.register_worker(
            conn, "w1@alpha", hostname="alpha", pid=11, kind="celery", queues=["default"], concurrency=8, version="t"
        )
        labels = {(pk, t, n): f"{flow_id}/{run_id} {t} #{n}" for t, n in zip(tasks, [1, 2, 1], strict=True)}
        remote_repo.worker_heartbeat(conn, "w1@alpha", tries=labels, slots_used=2)
        remote_repo.register_worker(
            conn,
            "w2@beta",
            hostname="beta",
            pid=12,
            kind="celery",
            queues=["default", "io"],
            concurrency=4,
            version="t",
            now=now - dt.timedelta(minutes=5),
        )
        # w2's last heartbeat, before it went silent, had a try running (since retried elsewhere).
        first = {(pk, tasks[0], 1): labels[(pk, tasks[0], 1)]}
        remote_repo.worker_heartbeat(conn, "w2@beta", tries=first, slots_used=1, now=now - dt.timedelta(minutes=5))
        conn.execute(
            sa.update(task_instances)
            .where(task_instances.c.run_pk == pk, task_instances.c.task_id == tasks[2])
            .values(queue="gpu")
        )
    return [labels[(pk, tasks[0], 1)], labels[(pk, tasks[1], 2)]]


def test_workers_in_the_api_and_the_page(engine: Engine, viewer: Api, app: Any) -> None:
    current = _setup(engine)
    body = viewer.get("/workers").json()
    by_name = {w["name"]: w for w in body["workers"]}
    assert by_name["w1@alpha"]["state"] == "running"
    assert by_name["w1@alpha"]["slots_used"] == 2 and by_name["w1@alpha"]["concurrency"] == 8
    assert by_name["w1@alpha"]["current"] == current
    assert by_name["w2@beta"]["state"] == "lost" and by_name["w2@beta"]["slots_used"] == 0
    assert by_name["w2@beta"]["current"] == []  # a lost worker runs nothing now
    assert body["unserved_queues"] == {"gpu": 1}

    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        page = browser.get("/workers")
    assert page.status_code == 200
    html = page.text
    assert 'data-worker="w1@alpha" data-state="running"' in html
    assert 'data-worker="w2@beta" data-state="lost"' in html
    assert current[0] in html and "2 / 8" in html
    assert "Queue gpu:</strong> 1 queued try, and no live worker listens on it" in html


def _painted_classes() -> set[str]:
    """The badge classes the stylesheet gives a background: a ``.state`` badge is white text,
    so one without such a class is white on white."""
    css = (Path(__file__).resolve().parents[2] / "src/ductwork/web/static/css/ductwork.css").read_text()
    return set(re.findall(r"\.([\w-]+)\s*\{[^}]*background", css))


def test_each_workers_state_is_drawn_in_a_colour_of_its_own(engine: Engine, app: Any) -> None:
    """The state column is what tells an operator a worker is lost: its badge carries a class
    the stylesheet paints (it named classes that do not exist, and showed nothing)."""
    _setup(engine)
    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        html = browser.get("/workers").text
    badges = dict(re.findall(r'<span class="state ([\w-]+)">(\w+)</span>', html))
    assert set(badges.values()) == {"running", "lost"}
    painted = _painted_classes()
    assert set(badges) <= painted, f"badge classes without a colour: {set(badges) - painted}"
    by_state = {state: cls for cls, state in badges.items()}
    assert by_state["running"] != by_state["lost"]


def test_a_task_page_says_its_queue_has_no_worker(engine: Engine, app: Any) -> None:
    """The task queued on 'gpu' (no live worker listens there) says so on its page; a task
    whose queue has a live worker does not."""
    from urllib.parse import quote

    _setup(engine)
    with transaction(engine) as conn:
        pk, flow_id, run_id = conn.execute(
            sa.select(runs.c.id, runs.c.flow_id, runs.c.run_id).where(runs.c.state == "running").order_by(runs.c.id)
        ).first()
        gpu_task = conn.execute(
            sa.select(task_instances.c.task_id).where(task_instances.c.run_pk == pk, task_instances.c.queue == "gpu")
        ).scalar_one()
        conn.execute(
            sa.update(task_instances)
            .where(task_instances.c.run_pk == pk, task_instances.c.task_id == gpu_task)
            .values(state="queued")
        )
        other = conn.execute(
            sa.select(task_instances.c.task_id).where(
                task_instances.c.run_pk == pk, task_instances.c.queue != "gpu", task_instances.c.state == "running"
            )
        ).first()[0]
        conn.execute(
            sa.update(task_instances)
            .where(task_instances.c.run_pk == pk, task_instances.c.task_id == other)
            .values(state="queued")
        )
    base = f"/flows/{flow_id}/runs/{quote(run_id, safe='')}/tasks/"
    with TestClient(app) as browser:
        login(browser, "viewer", PASSWORD)
        waiting = browser.get(base + quote(gpu_task, safe=""))
        served = browser.get(base + quote(other, safe=""))
    assert waiting.status_code == served.status_code == 200
    assert '<p class="panel error unserved" data-queue="gpu"><strong>Queued on gpu:</strong>' in waiting.text
    assert "ductwork worker --queues gpu" in waiting.text
    assert "unserved" not in served.text
