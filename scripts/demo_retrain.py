"""`make demo`, step (f): files land in a watched folder under a running scheduler; the model is
retrained when the data changed and not when the same data lands again (``ductwork why`` says so).

Starts ``ductwork scheduler`` on ``examples/data_aware`` (with ``$DUCTWORK_HOME/data-aware`` as its
home), drops three batches into the landing folder (new data, the same data again, more
data), waits for each ``retrain`` run, prints what ran, and stops the scheduler.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DW = [sys.executable, "-m", "ductwork.cli"]
OUT = Path(os.environ.get("DUCTWORK_DEMO_OUTPUT", "demo-output")).resolve() / "retrain"


def ductwork(*args: str) -> str:
    done = subprocess.run([*DW, *args], capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    if done.returncode not in (0, 1):
        raise SystemExit(f"ductwork {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# A home of its own: the scheduler must not pick up the other demo flows (recorded in the main
# demo database with their daily schedules) and start scheduled runs of them.
HOME = Path(os.environ.get("DUCTWORK_HOME", ROOT / ".ductwork")) / "data-aware"
ENV = {**os.environ, "DUCTWORK_FLOWS_FOLDER": str(ROOT / "examples" / "data_aware"), "DUCTWORK_HOME": str(HOME)}


def retrain_runs() -> list[dict[str, object]]:
    try:
        return [r for r in json.loads(ductwork("runs", "list", "retrain", "--json"))["runs"]]
    except (ValueError, KeyError):
        return []


def wait_for(count: int, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [r for r in retrain_runs() if r["state"] in ("success", "failed")]
        if len(done) >= count:
            return sorted(done, key=lambda r: str(r["logical_date"]))[-1]
        time.sleep(1)
    raise SystemExit(f"no retrain run number {count} within {timeout:.0f} s")


def iris_rows(limit: int) -> list[str]:
    from sklearn.datasets import load_iris

    data = load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for features, target in list(zip(data.data, data.target, strict=True))[:limit]:
        lines.append(",".join(f"{v:.1f}" for v in features) + f",{data.target_names[target]}")
    return lines


def land(name: str, lines: list[str]) -> None:
    landing = OUT / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    tmp = landing / f".{name}.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(landing / name)  # lands whole: the sensor never sees half a file
    print(f"-> landed {name} ({len(lines) - 1} rows) in {landing}")


def report(run: dict[str, object]) -> None:
    run_id = str(run["run_id"])
    print(f"   retrain run {run_id}: {run['state']}")
    for task_id in ("load", "train"):
        why = json.loads(ductwork("why", "retrain", task_id, run_id, "--json"))
        print(f"   why {task_id}: {why['text']}")


def main() -> None:
    for leftover in (OUT / "landing").glob("*.csv") if (OUT / "landing").exists() else []:
        leftover.unlink()
    ductwork("db", "init")
    scheduler = subprocess.Popen(
        [*DW, "scheduler", "--workers", "2", "--log-level", "warning"],
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "retrain" not in ductwork("flows", "list") and time.monotonic() < deadline:
            time.sleep(0.5)
        before = len(retrain_runs())
        rows = iris_rows(150)
        land("batch-1.csv", rows[:101])
        report(wait_for(before + 1))
        land("batch-2.csv", rows[:101])  # the same data again
        report(wait_for(before + 2))
        land("batch-3.csv", rows)  # fifty more rows
        report(wait_for(before + 3))
        print(f"   model: {OUT / 'model.pkl'}; metrics: {(OUT / 'metrics.json').read_text().strip()}")
        print(
            f"   see it in the web UI: DUCTWORK_HOME={HOME} DUCTWORK_FLOWS_FOLDER=examples/data_aware "
            ".venv/bin/ductwork standalone  (Assets page: the lineage; a retrain task: why it ran)"
        )
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(timeout=60)


if __name__ == "__main__":
    main()
