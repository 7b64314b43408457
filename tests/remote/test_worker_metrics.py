"""The Prometheus metrics of ``ductwork worker`` groups: two real workers on a real broker run
a flow, and their metrics ports, scraped over HTTP, count the tries each of them ran, as the
database recorded them."""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from private_services import private_redis
from tests.remote.support import Cluster, wait_for

ROOT = Path(__file__).resolve().parents[2]

METERED = """
def boom():
    raise RuntimeError("this task fails on purpose")

with Flow("metered", schedule=None) as metered:
    a = PythonOperator(task_id="a", python_callable=work, op_args=["a"], op_kwargs={"seconds": 0.3})
    bs = [PythonOperator(task_id=f"b{i}", python_callable=work, op_args=[f"b{i}"]) for i in range(4)]
    bad = PythonOperator(task_id="bad", python_callable=boom)
    a >> bs
    a >> bad
"""
TOKEN = "worker-metrics-s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` in a scrape, by their labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by_state(text: str, name: str, flow: str) -> Counter[str]:
    return Counter(
        {dict(labels)["state"]: int(v) for labels, v in samples(text, name).items() if dict(labels)["flow"] == flow}
    )


def one(text: str, name: str) -> float:
    found = samples(text, name)
    assert len(found) == 1, (name, found)
    return next(iter(found.values()))


def ran_where(db_url: str) -> dict[str, Counter[str]]:
    """Outcomes of the run's tries, by the worker that ran them (as the database has it)."""
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            run = run_repo.get_run(conn, "metered", "m1")
            assert run is not None
            instances = task_repo.list_task_instances(conn, run.pk)
    finally:
        engine.dispose()
    out: dict[str, Counter[str]] = {}
    for ti in instances:
        assert ti.hostname and ti.try_number == 1, ti
        out.setdefault(ti.hostname.split("@")[0], Counter())[ti.state.value] += 1
    return out


def test_each_worker_group_serves_metrics_of_the_tries_it_ran(tmp_path: Path) -> None:
    began = time.time()
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("metered.py", METERED)
        flag_port = setting_port = free_port()
        while setting_port == flag_port:
            setting_port = free_port()
        try:
            cluster.scheduler()
            cluster.wait_schema()
            # One worker group takes its port from the flag and guards it with the token ...
            guarded = cluster.worker(
                "w1", concurrency=2, env={"DUCTWORK_METRICS_TOKEN": TOKEN}, extra=["--metrics-port", str(flag_port)]
            )
            # ... the other from the metrics_port setting, open to any scraper.
            cluster.worker("w2", concurrency=3, env={"DUCTWORK_METRICS_PORT": str(setting_port)})
            urls = {"w1": f"http://127.0.0.1:{flag_port}/metrics", "w2": f"http://127.0.0.1:{setting_port}/metrics"}
            auth = {"w1": {"Authorization": f"Bearer {TOKEN}"}, "w2": {}}

            def scrape(name: str) -> str:
                response = httpx.get(urls[name], headers=auth[name], timeout=5)
                assert response.status_code == 200, response.text
                return response.text

            def up(name: str) -> bool:
                try:
                    return one(scrape(name), "ductwork_worker_heartbeat_timestamp_seconds") > 0
                except httpx.TransportError:
                    return False

            for name in urls:
                wait_for(lambda name=name: up(name), 60, f"the metrics of {name}", cluster)

            assert httpx.get(urls["w1"], timeout=5).status_code == 401
            wrong = httpx.get(urls["w1"], headers={"Authorization": "Bearer nope"}, timeout=5)
            assert wrong.status_code == 401 and "metrics token" in wrong.json()["detail"]

            done = cluster.cli("trigger", "metered", "--run-id", "m1")
            assert done.returncode == 0, done.stderr
            wait_for(lambda: _ended(db_url), 90, "the run to end", cluster)
            where = ran_where(db_url)
            assert sum(where.values(), Counter()) == Counter({"success": 5, "failed": 1}), where

            def caught_up() -> bool:
                texts = {name: scrape(name) for name in urls}
                return all(
                    by_state(texts[n], "ductwork_worker_tries_finished_total", "metered") == where.get(n, Counter())
                    for n in urls
                )

            wait_for(caught_up, 30, "the metrics to count every try", cluster)
            for name, slots in (("w1", 2), ("w2", 3)):
                text = scrape(name)
                ran = where.get(name, Counter())
                started = samples(text, "ductwork_worker_tries_started_total")
                assert started.get((("flow", "metered"),), 0) == sum(ran.values()), (name, started)
                assert samples(text, "ductwork_worker_tries_dropped_total") == {}
                durations = by_state(text, "ductwork_worker_try_duration_seconds_count", "metered")
                assert durations == ran, (name, durations)
                assert one(text, "ductwork_worker_slots") == slots
                assert 0 <= one(text, "ductwork_worker_slots_in_use") <= slots
                assert one(text, "ductwork_worker_heartbeat_timestamp_seconds") >= began
                info = samples(text, "ductwork_worker_info")
                assert [dict(labels)["worker"].split("@")[0] for labels in info] == [name]
                assert dict(next(iter(info)))["queues"] == "default"
            # Task a sleeps 0.3 s: the durations of all the tries cannot add up to less.
            total = sum(sum(samples(scrape(n), "ductwork_worker_try_duration_seconds_sum").values()) for n in urls)
            assert total >= 0.3

            # Every worker series the Grafana dashboard draws is one a worker exports.
            dashboard = json.loads((ROOT / "deploy" / "grafana" / "ductwork.json").read_text())
            exprs = json.dumps([t["expr"] for p in dashboard["panels"] for t in p["targets"]])
            wanted = set(re.findall(r"ductwork_worker_\w+", exprs))
            families = list(text_string_to_metric_families(scrape("w2")))
            exported = {s.name for f in families for s in f.samples}
            exported |= {f"{f.name}_total" for f in families if f.type == "counter"}  # none counted yet
            assert wanted and wanted <= exported, wanted - exported

            # A port that is taken: the worker says which, and stops before it registers.
            clash = cluster.cli("worker", "--name", "w3", "--metrics-port", str(setting_port), timeout=60)
            assert clash.returncode == 2, clash.stdout + clash.stderr
            assert f"cannot serve metrics on 0.0.0.0:{setting_port}" in clash.stderr
            listed = json.loads(cluster.cli("workers", "list", "--all", "--json").stdout)
            assert sorted(w["name"].split("@")[0] for w in listed["workers"]) == ["w1", "w2"]
            assert guarded.alive()
        finally:
            cluster.stop_all()


def _ended(db_url: str) -> bool:
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            run = run_repo.get_run(conn, "metered", "m1")
        return run is not None and run.state.is_terminal
    finally:
        engine.dispose()
