"""Flows for the browser tests of assets and incremental recomputation."""

from ductwork import Asset, Flow, PythonOperator, flow, task

SALES = Asset("s3://warehouse/sales")


def publish(outlet_events):
    outlet_events[SALES].extra["rows"] = 42


with Flow("sales_producer") as sales_producer:
    PythonOperator(task_id="publish", python_callable=publish, outlets=[SALES])

with Flow("sales_report", schedule=[SALES]) as sales_report:
    PythonOperator(task_id="summarize", python_callable=lambda: "ok", inlets=[SALES])


@task(cache="content")
def square(n):
    return n * n


@flow
def cached_square(n: int = 4):
    square(n)
