"""The seeds' four-step pipeline, as an Airflow-style flow of operators.

1. retrieve several data sets (one task per data set, created in a loop, in a task group),
2. extract-transform-load them into one clean table,
3. aggregate it,
4. write a report.

Run it:  ductwork run examples/four_step_pipeline.py:four_step_pipeline
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from ductwork import BashOperator, Flow, PythonOperator, TaskGroup

DATA = Path(__file__).parent / "data"
DATASETS = ["eu", "us", "apac"]


def retrieve(dataset: str, output_dir: str, ds: str) -> dict[str, Any]:
    """Fetch one data set into the landing area of this run's date."""
    landing = Path(output_dir) / "landing" / ds
    landing.mkdir(parents=True, exist_ok=True)
    target = landing / f"sales_{dataset}.csv"
    shutil.copyfile(DATA / f"sales_{dataset}.csv", target)
    with target.open() as fh:
        rows = sum(1 for _ in fh) - 1
    print(f"retrieved {rows} rows of {dataset} into {target}")
    return {"dataset": dataset, "path": str(target), "rows": rows}


def etl(ti: Any, output_dir: str, ds: str) -> dict[str, int]:
    """Clean every retrieved data set and load them into one table."""
    pulled = ti.xcom_pull(task_ids=[f"retrieve.{name}" for name in DATASETS])
    clean_path = Path(output_dir) / "warehouse" / ds / "sales.csv"
    clean_path.parent.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    with clean_path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["region", "city", "product", "quantity", "revenue"])
        for item in pulled:
            with open(item["path"], newline="") as fh:
                for row in csv.DictReader(fh):
                    if not row["quantity"]:
                        dropped += 1
                        continue
                    revenue = int(row["quantity"]) * float(row["unit_price"])
                    writer.writerow([item["dataset"], row["city"], row["product"], row["quantity"], f"{revenue:.2f}"])
                    kept += 1
    print(f"loaded {kept} rows, dropped {dropped} incomplete rows")
    return {"kept": kept, "dropped": dropped}


def aggregate(output_dir: str, ds: str) -> dict[str, float]:
    """Revenue per region and product."""
    totals: dict[str, float] = defaultdict(float)
    with (Path(output_dir) / "warehouse" / ds / "sales.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            totals[f"{row['region']}/{row['product']}"] += float(row["revenue"])
    result = {k: round(v, 2) for k, v in sorted(totals.items())}
    out = Path(output_dir) / "warehouse" / ds / "aggregates.json"
    out.write_text(json.dumps(result, indent=2))
    return result


def write_report(ti: Any, output_dir: str, ds: str) -> str:
    """A Markdown report of the day from the results of the upstream tasks."""
    loaded = ti.xcom_pull(task_ids="etl")
    totals = ti.xcom_pull(task_ids="aggregate")
    lines = [
        f"# Sales report for {ds}",
        "",
        f"Rows loaded: {loaded['kept']} (dropped {loaded['dropped']})",
        "",
        "| region/product | revenue |",
        "|---|---:|",
    ]
    lines += [f"| {key} | {value:,.2f} |" for key, value in totals.items()]
    lines += ["", f"Total revenue: {sum(totals.values()):,.2f}"]
    path = Path(output_dir) / "reports" / f"sales_{ds}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"report written to {path}")
    return str(path)


with Flow(
    "four_step_pipeline",
    description="Retrieve data sets, ETL, aggregate, report (the seeds' pipeline)",
    schedule="@daily",
    start_date="2024-01-01",
    tags=["example", "seeds"],
    owner="data-eng",
    params={"output_dir": "demo-output/four_step"},
    default_args={"retries": 2, "retry_delay": 10},
) as four_step_pipeline:
    common = {"output_dir": "{{ params.output_dir }}", "ds": "{{ ds }}"}
    with TaskGroup("retrieve", tooltip="one task per data set") as retrieval:
        for name in DATASETS:
            PythonOperator(task_id=name, python_callable=retrieve, op_kwargs={"dataset": name, **common})
    load = PythonOperator(task_id="etl", python_callable=etl, op_kwargs=common)
    agg = PythonOperator(task_id="aggregate", python_callable=aggregate, op_kwargs=common)
    report = PythonOperator(task_id="report", python_callable=write_report, op_kwargs=common)
    announce = BashOperator(task_id="announce", bash_command="echo report ready: {{ ti.xcom_pull(task_ids='report') }}")
    retrieval >> load >> agg >> report >> announce
