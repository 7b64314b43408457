"""Metrics and traces of a real scheduler running real runs.

- ``/metrics`` of the web server and of the scheduler's metrics port, scraped while a run runs
  and parsed by prometheus_client's own parser, show the run's tries moving through their
  states; StatsD packets arrive at a UDP server for the same run; ``metrics_token`` guards the
  web server's ``/metrics``.
- OpenTelemetry: the SDK's in-memory exporter collects one span per try, children of one span
  per run.
"""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo

FLOW = """
    import os, time
    from pathlib import Path
    from ductwork import Flow, PythonOperator

    def nap():
        time.sleep(1.0)

    def flaky(ti):
        marker = Path(os.environ["DUCTWORK_TEST_MARKS"]) / f"flaky-{ti.run_id}"
        if not marker.exists():
            marker.write_text("once")
            raise RuntimeError("the first try fails on purpose")

    with Flow("watched", schedule=None) as watched:
        PythonOperator(task_id="one", python_callable=nap) >> PythonOperator(task_id="two", python_callable=nap) \\
            >> PythonOperator(task_id="three", python_callable=nap)

    with Flow("traced", schedule=None) as traced:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=0) \\
            >> PythonOperator(task_id="after", python_callable=lambda: 1)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _values(text: str, name: str, flow: str) -> dict[str, float]:
    """Samples of metric ``name`` for ``flow``, by their ``state`` label."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("flow") == flow:
                out[sample.labels.get("state", "")] = sample.value
    return out


def _one(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels} in the scrape")


class Udp:
    """A StatsD server: collects the packets it is sent."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            self.lines += data.decode().splitlines()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "telemetry.py").write_text(textwrap.dedent(FLOW))
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("DUCTWORK_TEST_MARKS", str(marks))
    return folder


@contextmanager
def _scheduler(settings: Settings, **kwargs: Any) -> Iterator[SchedulerService]:
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    options = SchedulerOptions(poll_interval=0.1, parse_interval=0.3)
    service = SchedulerService(settings, options=options, **kwargs)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:

        def parsed() -> bool:
            with read_transaction(engine) as conn:
                return {"watched", "traced"} <= {f.flow_id for f in flow_repo.list_flows(conn)}

        _wait(parsed, "the flows to be parsed")
        yield service
    finally:
        service.stop()
        thread.join(60)
        engine.dispose()


def test_metrics_scraped_during_a_run_show_its_tries_move(flows: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ductwork.api.app import create_app

    udp = Udp()
    port = free_port()
    settings = Settings(
        home=tmp_path / "home",
        flows_folder=flows,
        database_url=f"sqlite:///{tmp_path / 'ductwork.db'}",
        parallelism=2,
        metrics_port=port,
        statsd_address=f"127.0.0.1:{udp.port}",
    )
    try:
        with _scheduler(settings) as service:
            engine = service.engine
            web = TestClient(create_app(settings, create_engine(settings.db_url)))
            record = run_service.trigger(engine, "watched", run_id="watch_me")
            seen_store: list[dict[str, float]] = []
            seen_scheduler: list[dict[str, float]] = []

            def finished() -> bool:
                store = web.get("/metrics")
                assert store.status_code == 200 and store.headers["content-type"].startswith("text/plain")
                seen_store.append(_values(store.text, "ductwork_store_task_instances", "watched"))
                own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                seen_scheduler.append(_values(own.text, "ductwork_tasks", "watched"))
                with read_transaction(engine) as conn:
                    run = run_repo.get_run_by_pk(conn, record.pk)
                return run is not None and run.state.is_terminal

            _wait(finished, "the run to finish")
            final = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            store_text = web.get("/metrics").text
    finally:
        udp.close()

    # The store's view while the run ran: tasks running, then more and more of them successful.
    assert any(s.get("running", 0) >= 1 for s in seen_store), seen_store
    successes = [s.get("success", 0) for s in seen_store if s]  # empty: the run was not active yet, or any more
    # (a loaded machine may scrape too slowly to see every step; some step in between must show)
    assert any(0 < n < 3 for n in successes) and successes == sorted(successes), successes
    assert any(s.get("running", 0) >= 1 for s in seen_scheduler), seen_scheduler
    # The scheduler's own counters after the run: every task went through every state once.
    transitions = _values(final, "ductwork_task_transitions_total", "watched")
    assert {k: transitions[k] for k in ("scheduled", "queued", "running", "success")} == dict.fromkeys(
        ("scheduled", "queued", "running", "success"), 3.0
    )
    assert _values(final, "ductwork_tries_total", "watched") == {"success": 3.0}
    assert _values(final, "ductwork_runs_finished_total", "watched") == {"success": 1.0}
    assert _one(final, "ductwork_try_duration_seconds_count", flow="watched", state="success") == 3
    assert _one(final, "ductwork_try_duration_seconds_sum", flow="watched", state="success") >= 3.0
    assert _one(final, "ductwork_ready_to_start_seconds_count", flow="watched") == 3
    assert _one(final, "ductwork_db_write_seconds_count") > 0
    assert _one(final, "ductwork_parse_seconds_count") >= 1
    assert _one(final, "ductwork_scheduler_poll_seconds_count") > 0
    assert _one(final, "ductwork_slots") == 2 and _one(final, "ductwork_workers") == 2
    assert _one(store_text, "ductwork_store_runs", flow="watched", state="success") == 1
    assert _one(store_text, "ductwork_store_import_errors") == 0
    assert 0 <= _one(store_text, "ductwork_store_scheduler_heartbeat_age_seconds") < 60
    # Every series the Grafana dashboard draws is one these servers export (the remote worker
    # groups' own, ductwork_worker_*, are checked by tests/remote/test_worker_metrics.py).
    import json
    import re

    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana" / "ductwork.json").read_text())
    exprs = json.dumps([t["expr"] for p in dashboard["panels"] for t in p["targets"]])
    wanted = {name for name in re.findall(r"ductwork_\w+", exprs) if not name.startswith("ductwork_worker_")}
    exported = {s.name for text in (final, store_text) for f in text_string_to_metric_families(text) for s in f.samples}
    assert wanted and wanted <= exported, wanted - exported
    # StatsD heard the same run.
    assert "ductwork.tries.watched.success:1|c" in udp.lines
    assert any(line.startswith("ductwork.try_duration.watched.success:") and line.endswith("|ms") for line in udp.lines)


def test_the_metrics_token_guards_the_web_servers_metrics(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ductwork.api.app import create_app

    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'm.db'}", metrics_token="s3cret")
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    client = TestClient(create_app(settings, engine))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200 and "ductwork_store_runs" in allowed.text
    # A header beyond ASCII is a wrong token (it was a TypeError: a 500 and a traceback).
    accented = client.get("/metrics", headers={"Authorization": "Bearer s3crét".encode()})
    assert accented.status_code == 401, accented.text[:300]
    # Remote worker groups (ductwork worker) report through the database: their slots show here.
    from ductwork.store.engine import transaction
    from ductwork.store.repo import remote as remote_repo

    with transaction(engine) as conn:
        remote_repo.register_worker(
            conn, "w1@host", hostname="host", pid=7, kind="celery", queues=["default"], concurrency=4, version="x"
        )
    text = client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).text
    assert _one(text, "ductwork_store_worker_slots", worker="w1@host") == 4
    assert _one(text, "ductwork_store_worker_slots_in_use", worker="w1@host") == 0
    assert 0 <= _one(text, "ductwork_store_worker_heartbeat_age_seconds", worker="w1@host") < 60
    engine.dispose()


def test_traces_have_one_span_per_try(flows: Path, tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ductwork.telemetry.tracing import TracingTelemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'ductwork.db'}", parallelism=2
    )
    telemetry = TracingTelemetry(tracer=provider.get_tracer("ductwork"))
    with _scheduler(settings, telemetry=telemetry) as service:
        record = run_service.trigger(service.engine, "traced", run_id="trace_me")

        def ended() -> bool:
            return any(s.name.startswith("run ") for s in exporter.get_finished_spans())

        _wait(ended, "the run's span to end")
        with read_transaction(service.engine) as conn:
            assert run_repo.get_run_by_pk(conn, record.pk).state.value == "success"  # type: ignore[union-attr]
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name.startswith("run ")]
    tries = sorted((s for s in spans if s is not run), key=lambda s: s.start_time or 0)
    assert [(s.name, s.attributes["ductwork.try_number"], s.attributes["ductwork.state"]) for s in tries] == [
        ("flaky", 1, "up_for_retry"),
        ("flaky", 2, "success"),
        ("after", 1, "success"),
    ]
    assert {s.context.trace_id for s in spans} == {run.context.trace_id}
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in tries)
    assert all(s.attributes["ductwork.flow"] == "traced" and s.attributes["ductwork.run"] == "trace_me" for s in tries)
    assert run.attributes["ductwork.state"] == "success"
    assert tries[0].status.status_code.name == "ERROR" and "fails on purpose" in (tries[0].status.description or "")
    assert all((s.end_time or 0) >= (s.start_time or 0) for s in spans)


def test_the_schedulers_metrics_port_asks_for_the_metrics_token_when_set(flows: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        home=tmp_path / "home",
        flows_folder=flows,
        database_url=f"sqlite:///{tmp_path / 'ductwork.db'}",
        parallelism=1,
        metrics_port=port,
        metrics_token="scrape-me-7Qx",
    )
    with _scheduler(settings):
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        allowed = httpx.get(url, headers={"Authorization": "Bearer scrape-me-7Qx"}, timeout=5)
        assert allowed.status_code == 200 and "ductwork_" in allowed.text


def test_ductwork_run_sends_traces_and_statsd_metrics_as_the_scheduler_does(flows: Path, tmp_path: Path) -> None:
    """``ductwork run`` (and ``build``) sent no trace and no StatsD metric, whatever the
    settings said: a team tracing its pipelines saw only the scheduler's runs."""
    import json
    import os
    import subprocess
    import sys

    udp = Udp()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_TRACING": "console",
        "DUCTWORK_STATSD_ADDRESS": f"127.0.0.1:{udp.port}",
        "DUCTWORK_TEST_MARKS": os.environ["DUCTWORK_TEST_MARKS"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "run", f"{flows / 'telemetry.py'}:traced", "--no-progress"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        _wait(lambda: "ductwork.tries.traced.success:1|c" in udp.lines, "the StatsD counters")
    finally:
        udp.close()
    decoder = json.JSONDecoder()
    spans, text = [], done.stdout
    while (start := text.find('{\n    "name"')) != -1:  # the console exporter's JSON, one object a span
        span, end = decoder.raw_decode(text, start)
        spans.append(span)
        text = text[end:]
    tries = sorted((s for s in spans if not s["name"].startswith("run ")), key=lambda s: s["start_time"])
    assert [(s["name"], s["attributes"]["ductwork.state"]) for s in tries] == [
        ("flaky", "up_for_retry"),
        ("flaky", "success"),
        ("after", "success"),
    ], done.stdout
    (run,) = [s for s in spans if s["name"].startswith("run ")]
    assert run["resource"]["attributes"]["service.name"] == "ductwork-manual", run
    assert {s["context"]["trace_id"] for s in spans} == {run["context"]["trace_id"]}
