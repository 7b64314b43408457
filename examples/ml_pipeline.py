"""A machine-learning pipeline written as decorated functions.

Load scikit-learn's bundled wine data set, split it, train a classifier, evaluate it, and write
the metrics. Return values travel between tasks as data.

    ductwork run examples/ml_pipeline.py:ml_pipeline --param test_size=0.3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ductwork import flow, task


@task
def load_data() -> dict[str, Any]:
    from sklearn.datasets import load_wine

    data = load_wine()
    print(f"loaded {len(data.target)} samples with {len(data.feature_names)} features")
    return {"X": data.data.tolist(), "y": data.target.tolist(), "names": list(data.target_names)}


@task(multiple_outputs=True)
def split(dataset: dict[str, Any], test_size: float, seed: int) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        dataset["X"], dataset["y"], test_size=test_size, random_state=seed, stratify=dataset["y"]
    )
    return {"train": {"X": X_train, "y": y_train}, "test": {"X": X_test, "y": y_test}}


@task
def train(train_set: dict[str, Any], seed: int) -> dict[str, Any]:
    import pickle

    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=50, random_state=seed)
    model.fit(train_set["X"], train_set["y"])
    return {"model": pickle.dumps(model).hex(), "n_train": len(train_set["y"])}


@task
def evaluate(trained: dict[str, Any], test_set: dict[str, Any]) -> dict[str, float]:
    import pickle

    from sklearn.metrics import accuracy_score, f1_score

    model = pickle.loads(bytes.fromhex(trained["model"]))
    predicted = model.predict(test_set["X"])
    metrics = {
        "accuracy": round(float(accuracy_score(test_set["y"], predicted)), 4),
        "f1_macro": round(float(f1_score(test_set["y"], predicted, average="macro")), 4),
        "n_train": trained["n_train"],
        "n_test": len(test_set["y"]),
    }
    print(f"metrics: {metrics}")
    return metrics


@task
def write_metrics(metrics: dict[str, float], output_dir: str, ds: str) -> str:
    path = Path(output_dir) / f"metrics_{ds}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return str(path)


@flow(schedule="@weekly", start_date="2024-01-01", tags=["example", "ml"])
def ml_pipeline(test_size: float = 0.25, seed: int = 7, output_dir: str = "demo-output/ml") -> None:
    """Train and evaluate a wine classifier."""
    parts = split(load_data(), test_size, seed)
    model = train(parts["train"], seed)
    write_metrics(evaluate(model, parts["test"]), output_dir)
