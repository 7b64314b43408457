"""Data-aware: a file landing in a watched store retrains a model, only when its data changed.

``watch_landing`` watches the landing folder (any fsspec store would do: ``s3://bucket/landing``):
its sensor waits, without holding a worker, until a CSV file lands, and ``ingest`` moves the file
into the lake. Its outlet, the lake's ``training.csv``, is an asset: each ingest records an update
of it, and ``retrain`` is scheduled on that asset, so every landing starts a ``retrain`` run.
``retrain`` caches by content (``cache="content"``): ``load`` reads the asset by its content hash,
so a file that lands again with the same data finds every task up to date and nothing is
retrained; changed data retrains the model. ``ductwork why retrain train`` says which.

    DUCTWORK_FLOWS_FOLDER=examples/data_aware ductwork scheduler
    cp new_batch.csv demo-output/retrain/landing/
"""

from __future__ import annotations

import csv
import json
import os
import pickle
from pathlib import Path
from typing import Any

from ductwork import Asset, Flow, PythonOperator, flow, task
from ductwork.integrations.fs import FileSensor

ROOT = Path(os.environ.get("DUCTWORK_DEMO_OUTPUT", "demo-output")).resolve() / "retrain"
LANDING = ROOT / "landing"
LAKE = ROOT / "lake"
TRAINING = Asset(f"file://{LAKE / 'training.csv'}", extra={"version": "content"})


def ingest(ti: Any) -> str:
    """Move the newest landed file into the lake (atomically) and drop the others."""
    found = sorted(Path(url.removeprefix("file://")) for url in ti.xcom_pull("wait_for_file"))
    newest = max(found, key=lambda p: p.stat().st_mtime_ns)
    LAKE.mkdir(parents=True, exist_ok=True)
    os.replace(newest, LAKE / "training.csv")
    for other in found:
        if other != newest:
            other.unlink(missing_ok=True)
    print(f"ingested {newest.name} into {LAKE / 'training.csv'}")
    return newest.name


with Flow("watch_landing", schedule="5s", max_active_runs=1, catchup=False, tags=["data-aware"]) as watch_landing:
    wait = FileSensor(
        task_id="wait_for_file", path=str(LANDING / "*.csv"), mode="reschedule", poke_interval=1, timeout=3600
    )
    wait >> PythonOperator(task_id="ingest", python_callable=ingest, outlets=[TRAINING])


@task(inlets=[TRAINING])
def load() -> dict[str, Any]:
    with (LAKE / "training.csv").open() as fh:
        rows = list(csv.reader(fh))
    X = [[float(v) for v in row[:-1]] for row in rows[1:]]
    y = [row[-1] for row in rows[1:]]
    print(f"loaded {len(y)} rows")
    return {"X": X, "y": y}


@task
def train(data: dict[str, Any]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    model = LogisticRegression(max_iter=500)
    score = float(cross_val_score(model, data["X"], data["y"], cv=3).mean())
    model.fit(data["X"], data["y"])
    (ROOT / "model.pkl").write_bytes(pickle.dumps(model))
    print(f"TRAINED a model on {len(data['y'])} rows: cross-validated accuracy {score:.3f}")
    return {"rows": len(data["y"]), "accuracy": round(score, 4)}


@task
def publish(metrics: dict[str, Any]) -> None:
    (ROOT / "metrics.json").write_text(json.dumps(metrics, indent=2))


@flow(schedule=[TRAINING], cache="content", tags=["data-aware"])
def retrain() -> None:
    """Retrain the model when the training data changed."""
    publish(train(load()))
