"""XComs under the Airflow shim: what ``ti.xcom_pull`` returns for mapped tasks."""

from __future__ import annotations

from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag

MAPPED_PUSHES = """
    import pendulum
    from airflow.decorators import dag, task

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def mapped_pushes():
        @task
        def gen():
            return ["p", "q", "r"]

        @task
        def mapped(v, ti=None):
            ti.xcom_push(key="extra", value=f"{v}-{ti.map_index}")
            if v == "r":
                ti.xcom_push(key="only_last", value="r!")
            return v.upper()

        @task
        def puller(ti=None):
            return {
                "all": ti.xcom_pull(task_ids="mapped"),
                "extra": ti.xcom_pull(task_ids="mapped", key="extra"),
                "extra1": ti.xcom_pull(task_ids="mapped", key="extra", map_indexes=1),
                "only_last": ti.xcom_pull(task_ids="mapped", key="only_last"),
                "nobody": ti.xcom_pull(task_ids="mapped", key="nobody", default="none"),
            }

        mapped.expand(v=gen()) >> puller()

    mapped_pushes()
"""


def test_pulling_a_key_of_a_mapped_task_gives_every_instance_value_in_map_index_order(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, MAPPED_PUSHES))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("puller") == {
        "all": ["P", "Q", "R"],
        "extra": ["p-0", "q-1", "r-2"],
        "extra1": "q-1",
        "only_last": ["r!"],  # as Airflow: the values of the instances that pushed one
        "nobody": "none",
    }


SEVERAL_TASKS = """
    import pendulum
    from airflow.decorators import dag, task

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def several_tasks():
        @task
        def a(ti=None):
            ti.xcom_push(key="k", value="from a")

        @task
        def b():
            pass

        @task
        def c(ti=None):
            ti.xcom_push(key="k", value="from c")

        @task
        def gen():
            return [1, 2, 3]

        @task
        def mapped(v, ti=None):
            if v != 2:
                ti.xcom_push(key="k", value=v * 10)

        @task
        def puller(ti=None):
            return {
                "listed": ti.xcom_pull(task_ids=["c", "b", "a"], key="k"),
                "indexes": ti.xcom_pull(task_ids="mapped", key="k", map_indexes=[2, 1, 0]),
                "one_index": ti.xcom_pull(task_ids="mapped", key="k", map_indexes=1),
            }

        [a(), b(), c(), mapped.expand(v=gen())] >> puller()

    several_tasks()
"""


def test_pulling_several_tasks_gives_the_values_that_exist_in_the_order_asked(tmp_path: Path) -> None:
    """As Airflow's ``xcom_pull(task_ids=[...])``: a task that pushed nothing has no place in the
    list (it held None there, so ``a, c = ti.xcom_pull(task_ids=[...])`` unpacked differently)."""
    summary = run_locally(load_dag(tmp_path, SEVERAL_TASKS))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("puller") == {"listed": ["from c", "from a"], "indexes": [30, 10], "one_index": None}


STEPS = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.bash import BashOperator

    class SumOperator(BaseOperator):
        def __init__(self, a, b, **kwargs):
            super().__init__(**kwargs)
            self.a, self.b = a, b
            self.seen = []

        def pre_execute(self, context):
            super().pre_execute(context)
            self.seen.append("pre")

        def execute(self, context):
            self.seen.append("execute")
            return {"total": self.a + self.b, "operation": "+"}

        def post_execute(self, context, result=None):
            self.seen.append(f"post {result['total']}")
            context["ti"].xcom_push(key="seen", value=list(self.seen))

    class LoudBash(BashOperator):
        def execute(self, context):
            return "loud " + super().execute(context)

    calls = []
    with DAG("steps", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        summed = SumOperator(task_id="summed", a=2, b=3, multiple_outputs=True)
        loud = LoudBash(task_id="loud", bash_command="echo hi", pre_execute=lambda context: calls.append("pre"),
                        post_execute=lambda context, result: context["ti"].xcom_push(key="calls", value=calls + [result]))

        @task
        def read(ti=None):
            return {
                "total": ti.xcom_pull(task_ids="summed", key="total"),
                "seen": ti.xcom_pull(task_ids="summed", key="seen"),
                "calls": ti.xcom_pull(task_ids="loud", key="calls"),
            }

        [summed, loud] >> read()
"""


def test_operators_run_pre_execute_execute_post_execute_and_push_multiple_outputs(tmp_path: Path) -> None:
    """As Airflow's task runner: ``pre_execute`` (method or callable), ``execute``, the keys of a
    dict result when ``multiple_outputs=True`` (Airflow 2.9, any operator: Astronomer's
    toy_custom_operator_push_multiple_xcom), then ``post_execute``. Only ``@task`` pushed the
    keys, and neither hook was called; an ``execute`` calling its parent's takes the steps once."""
    summary = run_locally(load_dag(tmp_path, STEPS))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("read") == {
        "total": 5,
        "seen": ["pre", "execute", "post 5"],
        "calls": ["pre", "loud hi"],
    }


SKIPPED_CALLBACK = """
    import pendulum
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowSkipException
    from airflow.operators.python import BranchPythonOperator

    def note(context):
        with open(context["params"]["out"], "a") as fh:
            fh.write(context["ti"].task_id + "\\n")

    with DAG("skipped_cb", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, params={"out": ""}):
        @task(on_skipped_callback=note)
        def raises_skip():
            raise AirflowSkipException("nothing new")

        @task(on_skipped_callback=[note])
        def skipped_by_branch():
            return 1

        BranchPythonOperator(task_id="branch", python_callable=lambda: []) >> skipped_by_branch()
        raises_skip()
"""


def test_on_skipped_callback_is_called_when_the_task_raises_a_skip(tmp_path: Path) -> None:
    """Airflow 2.9's ``on_skipped_callback`` (Astronomer's toy_on_skipped_callback): called for a
    task that raises ``AirflowSkipException``, not for one a branch skips; it was never called."""
    out = tmp_path / "skipped.txt"
    out.write_text("")
    summary = run_locally(load_dag(tmp_path, SKIPPED_CALLBACK), params={"out": str(out)})
    assert {t: s.state.value for t, s in summary.tasks.items()} == {
        "raises_skip": "skipped",
        "branch": "success",
        "skipped_by_branch": "skipped",
    }
    assert out.read_text() == "raises_skip\n"
