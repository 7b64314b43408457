"""`ductwork_store_scheduler_heartbeat_age_seconds` is the age of the last scheduler heartbeat,
also once the scheduler has stopped or died. It was NaN as soon as no scheduler was alive (a
clean stop at once, a crash after 5 minutes): an alert such as `... > 120` stopped firing, and
the dashboard showed NaN, exactly when no scheduler ran."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

from fastapi.testclient import TestClient


def _age(text: str) -> float:
    found = re.search(r"^ductwork_store_scheduler_heartbeat_age_seconds (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


def test_the_heartbeat_age_keeps_growing_after_the_scheduler_stopped(tmp_path: Path) -> None:
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.repo import jobs as job_repo
    from ductwork.store.types import utcnow

    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'h.db'}")
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    with TestClient(create_app(settings, engine)) as client:
        assert math.isnan(_age(client.get("/metrics").text))  # no scheduler ever: NaN
        now = utcnow()
        with transaction(engine) as conn:
            old = job_repo.start_job(conn, "scheduler", hostname="a", pid=1, now=now - dt.timedelta(hours=2))
            job_repo.end_job(conn, old, now=now - dt.timedelta(hours=1))
            crashed = job_repo.start_job(conn, "scheduler", hostname="b", pid=2, now=now - dt.timedelta(minutes=20))
        assert 20 * 60 <= _age(client.get("/metrics").text) < 21 * 60  # crashed 20 minutes ago
        with transaction(engine) as conn:
            job_repo.end_job(conn, crashed, now=now - dt.timedelta(minutes=10))  # stopped 10 minutes ago
        assert 10 * 60 <= _age(client.get("/metrics").text) < 11 * 60
        with transaction(engine) as conn:
            job_repo.start_job(conn, "triggerer", hostname="c", pid=3, now=now)  # not a scheduler
        assert _age(client.get("/metrics").text) >= 10 * 60
        with transaction(engine) as conn:
            job_repo.start_job(conn, "scheduler", hostname="d", pid=4, now=now)
        assert _age(client.get("/metrics").text) < 60
    engine.dispose()


def test_health_gives_the_last_heartbeat_of_a_scheduler_that_is_gone(tmp_path: Path) -> None:
    """`GET /api/v1/health` said `"scheduler": "not_running", "scheduler_heartbeat": null` once
    the scheduler had died: when it died was lost (Airflow's health gives the latest heartbeat
    of an unhealthy scheduler too). It says not_running with the last heartbeat now."""
    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.repo import jobs as job_repo
    from ductwork.store.types import utcnow

    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'h.db'}")
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    with TestClient(create_app(settings, engine)) as client:
        body = client.get("/api/v1/health").json()
        assert body["scheduler"] == "not_running" and body["scheduler_heartbeat"] is None  # never one
        crashed_at = utcnow() - dt.timedelta(minutes=20)
        with transaction(engine) as conn:
            job_repo.start_job(conn, "scheduler", hostname="b", pid=2, now=crashed_at)
            job_repo.start_job(conn, "triggerer", hostname="c", pid=3)  # not a scheduler
        body = client.get("/api/v1/health").json()
        assert body["scheduler"] == "not_running"
        assert dt.datetime.fromisoformat(body["scheduler_heartbeat"]) == crashed_at
        with transaction(engine) as conn:
            job_repo.start_job(conn, "scheduler", hostname="d", pid=4)
        body = client.get("/api/v1/health").json()
        assert body["scheduler"] == "alive"
        assert dt.datetime.fromisoformat(body["scheduler_heartbeat"]) > crashed_at + dt.timedelta(minutes=19)
    engine.dispose()
