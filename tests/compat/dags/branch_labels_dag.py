"""Written as Airflow 2 users write it: edges labelled with ``Label`` after a single task (the
task's own ``>>`` meets the label first), the shape of Airflow's ``example_branch_operator``
with a fixed choice, and the "empty branch" (a join directly below the branch)."""

from __future__ import annotations

import pendulum
from airflow.models.dag import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, PythonOperator
from airflow.utils.edgemodifier import Label
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="branch_labels",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule="@daily",
) as dag:
    run_this_first = EmptyOperator(task_id="run_this_first")
    branching = BranchPythonOperator(task_id="branching", python_callable=lambda: "branch_b")
    run_this_first >> branching
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    for option in ["a", "b", "c"]:
        t = PythonOperator(task_id=f"branch_{option}", python_callable=lambda: print("Hello World"))
        empty_follow = EmptyOperator(task_id="follow_" + option)
        branching >> Label(option) >> t >> empty_follow >> join

    extract = EmptyOperator(task_id="extract")
    load = EmptyOperator(task_id="load")
    extract >> Label("rows") >> load
    report = EmptyOperator(task_id="report")
    report << Label("loaded") << load

    empty_branch = BranchPythonOperator(task_id="empty_branch", python_callable=lambda: "task1")
    task1 = EmptyOperator(task_id="task1")
    after = EmptyOperator(task_id="after")
    join >> empty_branch >> [task1, after]
    task1 >> after
