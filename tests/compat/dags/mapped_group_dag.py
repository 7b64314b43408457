"""Mapped task groups: ``@task_group`` functions expanded over a task's output (with
``partial``), over a literal list with ``expand_kwargs``, over an empty list, and with one map
index failing while the others finish."""

import pendulum
from airflow.decorators import dag, task, task_group
from airflow.operators.python import PythonOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task
def numbers():
    return [1, 2, 3]


@task
def add(x, y):
    return x + y


@task
def describe(value, ti=None):
    return f"got {value}@{ti.map_index}"


@task_group
def grp(x, y):
    command = describe(add(x, y))
    # a classic operator in the group, given a sibling's output: the same map index's value
    PythonOperator(task_id="shout", python_callable=str.upper, op_args=[command])
    return command


@task
def total(values):
    return list(values)


@dag(start_date=START, schedule=None, catchup=False)
def mapped_group():
    total.override(task_id="from_output")(grp.partial(y=10).expand(x=numbers()))
    total.override(task_id="from_kwargs")(grp.expand_kwargs([{"x": 1, "y": 1}, {"x": 5, "y": 5}]))


@task
def fragile(x):
    if x == 2:
        raise ValueError("two is not allowed")
    return x * 100


@task
def after(value, ti=None):
    return [value, ti.map_index]


@task_group
def checked(x):
    return after(fragile(x))


@dag(start_date=START, schedule=None, catchup=False)
def mapped_group_fail():
    total(checked.expand(x=[1, 2, 3]))


@dag(start_date=START, schedule=None, catchup=False)
def mapped_group_empty():
    total(checked.expand(x=[]))


mapped_group()
mapped_group_fail()
mapped_group_empty()
