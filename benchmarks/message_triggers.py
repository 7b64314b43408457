"""Message-to-run latency: a message published on a broker until its run exists and until the run's
first task starts, under a real ``ductwork scheduler`` process (default settings, the listeners
inside it) on the shared brokers of this machine (RabbitMQ, Redis Streams, NATS JetStream,
Mosquitto).

For each broker, N messages are published one after another, each once the previous run's task
has started; times are read from the database's records (the run's creation, the try's start)
against this process's clock (one machine, one clock). Run: ``python benchmarks/message_triggers.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integrations.brokers import KINDS, cleanup, publish, trigger_for

FLOWS = """
    import os
    from ductwork import EmptyOperator, Flow, IntParameter, MqttTopic, NatsJetStream, RabbitMQ, RedisStream

    S = os.environ["BENCH_SUFFIX"]
    TRIGGERS = {
        "rabbitmq": RabbitMQ(queue=f"ductwork-test-{S}"),
        "redis": RedisStream(stream=f"ductwork-test-{S}"),
        "nats": NatsJetStream(subject=f"ductworktest.{S}", stream=f"DUCTWORKTEST_{S}"),
        "mqtt": MqttTopic(topic=f"ductwork-test/{S}/#", client_id=f"ductwork-test-{S}"),
    }
    for kind, trigger in TRIGGERS.items():
        with Flow(f"on_{kind}", params={"n": IntParameter(default=0)}, triggers=[trigger]) as flow:
            EmptyOperator(task_id="first")
        globals()[f"flow_{kind}"] = flow
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="messages per broker")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:8]
    root = Path(tempfile.mkdtemp(prefix="ductwork-bench-msg-"))
    flows = root / "flows"
    flows.mkdir()
    (flows / "bench_flows.py").write_text(textwrap.dedent(FLOWS))
    url = f"sqlite:///{root / 'ductwork.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")},
        "DUCTWORK_HOME": str(root / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        "DUCTWORK_DATABASE_URL": url,
        "BENCH_SUFFIX": suffix,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "scheduler", "--workers", "2", "--log-level", "warning"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    engine = sa.create_engine(url)
    kinds = [k for k in args.kinds.split(",") if k]
    rows = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    n = conn.execute(sa.text("select count(*) from flows where flow_id like 'on_%'")).scalar()
                if n == 4:
                    break
            except sa.exc.OperationalError:
                pass
            time.sleep(0.2)
        time.sleep(3.0)  # the triggerer's first look, and the listeners' connections
        for kind in kinds:
            trigger = trigger_for(kind, suffix=suffix)
            created, started = [], []
            for i in range(args.n + 1):
                message_id = f"{kind}-{i}"
                sent = dt.datetime.now(dt.UTC)
                publish(trigger, message_id, json.dumps({"n": i}).encode())
                run = None
                until = time.monotonic() + 30
                while time.monotonic() < until:
                    with engine.connect() as conn:
                        run = conn.execute(
                            sa.text(
                                "select r.created_at, t.start_date from runs r join task_instances t "
                                "on t.run_pk = r.id where r.flow_id = :f and r.triggered_by like :m "
                                "and t.start_date is not null"
                            ),
                            {"f": f"on_{kind}", "m": f'%"{message_id}"%'},
                        ).first()
                    if run is not None:
                        break
                    time.sleep(0.01)
                if run is None:
                    raise SystemExit(f"{kind}: message {message_id} started no task within 30 s")
                if i == 0:
                    continue  # the first message also warms the worker up
                made = dt.datetime.fromisoformat(str(run[0])).replace(tzinfo=dt.UTC)
                began = dt.datetime.fromisoformat(str(run[1])).replace(tzinfo=dt.UTC)
                created.append((made - sent).total_seconds())
                started.append((began - sent).total_seconds())
            rows.append((kind, len(started), created, started))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        for kind in kinds:
            cleanup(trigger_for(kind, suffix=suffix), f"on_{kind}")
        engine.dispose()
    print(f"message -> run (scheduler defaults: poll_interval 0.5 s; {os.cpu_count()} cores)")
    print(f"{'broker':10} {'n':>3} {'run created p50':>16} {'p90':>7} {'task started p50':>17} {'p90':>7} {'max':>7}")
    for kind, n, created, started in rows:
        made, began = statistics.median(created) * 1000, statistics.median(started) * 1000
        print(
            f"{kind:10} {n:>3} {made:>13.0f} ms {_percentile(created, 0.9) * 1000:>4.0f} ms"
            f" {began:>14.0f} ms {_percentile(started, 0.9) * 1000:>4.0f} ms {max(started) * 1000:>4.0f} ms"
        )


if __name__ == "__main__":
    main()
