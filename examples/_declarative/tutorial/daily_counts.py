"""The same pipeline as daily_counts.json and daily_counts.yaml, in Python."""

from __future__ import annotations

from ductwork import BashOperator, Flow
from ductwork.integrations.fs import FileSensor
from ductwork.integrations.sql import SqlOperator

with Flow(
    "daily_counts_py",
    description="count each day's orders and record the day in the warehouse",
    schedule="@daily",
    start_date="2024-01-01",
    params={"root": "s3/tutorial-data"},
    default_args={"retries": 2, "retry_delay": 60},
) as daily_counts_py:
    ready = FileSensor(
        task_id="input_ready",
        path="{{ params.root }}/input/{{ ds }}.csv",
        mode="reschedule",
        poke_interval=10,
        timeout=3600,
        retries=0,
    )
    count = BashOperator(
        task_id="count_orders",
        bash_command=(
            "mkdir -p {{ params.root }}/counts/{{ ds }} && "
            "cat {{ params.root }}/input/{{ ds }}.csv | wc -l > {{ params.root }}/counts/{{ ds }}/count.txt"
        ),
    )
    record = SqlOperator(
        task_id="record_day",
        conn_id="warehouse",
        sql=["create table if not exists loaded_days (day varchar(10))", "insert into loaded_days values (:day)"],
        parameters={"day": "{{ ds }}"},
    )
    ready >> count >> record
