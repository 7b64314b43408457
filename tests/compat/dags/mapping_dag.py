"""Dynamic task mapping as the Airflow docs describe it: over a literal list, over another
task's output, several arguments (every combination), partial, expand_kwargs, an empty list."""

import pendulum
from airflow.decorators import dag, task
from airflow.operators.bash import BashOperator


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def mapping_dag():
    @task
    def files():
        return ["a.csv", "b.csv"]

    @task
    def size(name: str, scale: int, unit: str = "B"):
        return f"{name}:{len(name) * scale}{unit}"

    @task
    def nothing():
        return []

    @task
    def join(values):
        return sorted(values)

    @task
    def after_empty(values):
        return "ran"

    sizes = size.partial(unit="kB").expand(name=files(), scale=[1, 10])
    join(sizes)
    echo = BashOperator.partial(task_id="echo", do_xcom_push=True).expand_kwargs(
        [{"bash_command": "echo one"}, {"bash_command": "echo two", "env": {"X": "1"}}]
    )
    join.override(task_id="echoed")(echo.output)
    after_empty(size.expand(name=nothing(), scale=[1]))


mapping_dag()
