"""Consumers scheduled on datasets: any of two (Airflow 2.x ``|``) and all of two (Airflow 3's
``airflow.sdk`` assets, ``AssetAll``); each writes the triggering events it saw to a file."""

import json
import os
from pathlib import Path

import pendulum
from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.sdk import Asset, AssetAll

MARKS = Path(os.environ["SHIM_TEST_MARKS"])
START = pendulum.datetime(2024, 1, 1, tz="UTC")


def _events(found):
    return {
        getattr(key, "uri", key): [
            {
                "uri": e.uri,
                "extra": e.extra,
                "source_dag_id": e.source_dag_id,
                "source_run_id": e.source_run_id,
                "source_task_id": e.source_task_id,
                "timestamp": e.timestamp.isoformat(),
                "key_type": type(key).__name__,
            }
            for e in events
        ]
        for key, events in found.items()
    }


with DAG("on_any", start_date=START, schedule=Dataset("s3://lake/orders") | Dataset("customers")):

    @task(inlets=[Dataset("s3://lake/orders")])
    def seen_any(triggering_dataset_events=None, inlet_events=None, run_id=None):
        (MARKS / f"on_any-{run_id.replace(':', '_')}.json").write_text(json.dumps(_events(triggering_dataset_events)))
        recorded = [[e.extra, e.source_dag_id] for e in inlet_events[Dataset("s3://lake/orders")]]
        (MARKS / f"on_any-inlets-{run_id.replace(':', '_')}.json").write_text(json.dumps(recorded))

    seen_any() >> BashOperator(
        task_id="templated",
        bash_command="echo first from {{ (triggering_dataset_events.values() | first | first).source_dag_run.dag_id }}",
    )

with DAG("on_all", start_date=START, schedule=AssetAll(Asset("s3://lake/orders"), Asset(name="customers"))):

    @task
    def seen_all(run_id=None):
        from airflow.operators.python import get_current_context

        found = get_current_context()["triggering_asset_events"]
        orders = found[Asset("s3://lake/orders")]  # looked up by asset, as Airflow 3 does
        assert orders[0].extra == {"rows": 3}, orders
        (MARKS / f"on_all-{run_id.replace(':', '_')}.json").write_text(json.dumps(_events(found)))

    seen_all()
