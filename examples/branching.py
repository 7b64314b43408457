"""Branching, a short circuit and tasks created in a loop.

``choose_load`` follows the full refresh on Sundays and the incremental load otherwise;
``has_new_data`` stops the publishing tail when there is nothing new; one task per partition
is created in a loop.

    ductwork run examples/branching.py:branching --param partitions=6
"""

from __future__ import annotations

import datetime as dt

from ductwork import (
    BranchPythonOperator,
    EmptyOperator,
    Flow,
    IntParameter,
    PythonOperator,
    ShortCircuitOperator,
    chain,
)


def choose_load(logical_date: dt.datetime, params: dict[str, int]) -> str:
    return "full_refresh" if logical_date.weekday() == 6 or params["force_full"] else "incremental"


def process(partition: str) -> int:
    rows = (PARTITIONS.index(partition) + 1) * 100
    print(f"partition {partition}: {rows} rows")
    return rows


def count_rows(ti: object) -> int:
    values = ti.xcom_pull(task_ids=[f"process_{p}" for p in PARTITIONS])  # type: ignore[attr-defined]
    return sum(v or 0 for v in values)


def has_new_data(ti: object, params: dict[str, int]) -> bool:
    total = ti.xcom_pull(task_ids="count_rows")  # type: ignore[attr-defined]
    return bool(total > params["min_rows"])


PARTITIONS = ["north", "south", "east", "west"]

with Flow(
    "branching",
    description="Branch on the weekday, fan out over partitions, short-circuit when nothing is new",
    schedule="0 6 * * *",
    start_date="2024-01-01",
    tags=["example"],
    params={
        "min_rows": IntParameter(default=0, description="publish only above this many rows"),
        "force_full": False,
    },
) as branching:
    start = EmptyOperator(task_id="start")
    choose = BranchPythonOperator(task_id="choose_load", python_callable=choose_load)
    full = EmptyOperator(task_id="full_refresh")
    incremental = EmptyOperator(task_id="incremental")
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    chain(start, choose, [full, incremental], join)

    processed = [
        PythonOperator(task_id=f"process_{name}", python_callable=process, op_args=[name]) for name in PARTITIONS
    ]
    total = PythonOperator(task_id="count_rows", python_callable=count_rows)
    check = ShortCircuitOperator(task_id="has_new_data", python_callable=has_new_data)
    publish = EmptyOperator(task_id="publish")
    notify = EmptyOperator(task_id="notify")
    join >> processed >> total >> check >> publish >> notify
