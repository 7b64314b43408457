"""Airflow 2.4+'s dynamic task mapping API beyond ``expand``: ``XComArg.map`` and ``.zip``, and
the named-mapping pattern (``map_index_template`` with a value set in the context)."""

from __future__ import annotations

from pathlib import Path

from ductwork.engine.local import run_locally
from tests.compat.dag_files import load_dag


def _states(summary) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t: s.value for t, s in summary.task_states.items()}


MAP_AND_ZIP = """
    import os
    import pendulum
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowSkipException

    MARKS = os.environ["MAP_MARKS"]

    def to_path(name):
        # called lazily, in the mapped instance's own try: each call leaves a line naming it
        from airflow.operators.python import get_current_context

        with open(os.path.join(MARKS, name), "a") as fh:
            fh.write(get_current_context()["ti"].task_id + "\\n")
        if name == "skip-me":
            raise AirflowSkipException("not this one")
        return f"/data/{name}.csv"

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def map_and_zip():
        @task
        def names():
            return ["a", "skip-me", "b"]

        @task
        def sizes():
            return [1, 2]

        @task
        def load(path):
            return path

        @task
        def pair(item):
            return list(item)

        @task
        def collect(values):
            return list(values)

        paths = names().map(to_path)
        loaded = load.expand(path=paths)
        pair.expand(item=names().zip(sizes()))
        pair.override(task_id="pair_longest").expand(item=names().zip(sizes(), fillvalue=0))
        pair.override(task_id="kwargs").expand(item=sizes().map(lambda n: n * 10).map(lambda n: [n, n + 1]))
        load.override(task_id="from_kwargs").expand_kwargs(sizes().map(lambda n: {"path": f"p{n}"}))
        collect(loaded)

    map_and_zip()
"""


def test_map_and_zip_of_task_outputs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("MAP_MARKS", str(marks))
    summary = run_locally(load_dag(tmp_path, MAP_AND_ZIP))
    states = _states(summary)
    assert states["load[0]"] == "success" and states["load[2]"] == "success"
    assert states["load[1]"] == "skipped"  # the map function raised AirflowSkipException for it
    # a skipped instance skips its task (not fails it), and the run succeeds, as in Airflow
    assert states["load"] == "skipped" and states["collect"] == "skipped"
    assert summary.state.value == "success"
    assert summary.result("load[0]") == "/data/a.csv" and summary.result("load[2]") == "/data/b.csv"
    calls = {p.name: p.read_text().split() for p in marks.iterdir()}
    assert calls == {"a": ["load[0]"], "skip-me": ["load[1]"], "b": ["load[2]"]}
    assert summary.result("pair") == [["a", 1], ["skip-me", 2]]
    assert summary.result("pair_longest") == [["a", 1], ["skip-me", 2], ["b", 0]]
    assert summary.result("kwargs") == [[10, 11], [20, 21]]
    assert summary.result("from_kwargs") == ["p1", "p2"]


NAMED_MAPPING = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.operators.python import PythonOperator, get_current_context

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def named_mapping():
        @task(map_index_template="{{ my_label }}")
        def labeled(name):
            context = get_current_context()
            context["my_label"] = f"label-{name}"
            return get_current_context()["my_label"]

        labeled.expand(name=["x", "y"])

        def classic(**context):
            context["ti"].xcom_push(key="seen", value="ok")
            context["extra"] = 1
            return context["extra"]

        PythonOperator(task_id="classic", python_callable=classic)

    named_mapping()
"""


def test_a_task_may_set_names_in_its_context_for_map_index_template(tmp_path: Path) -> None:
    summary = run_locally(load_dag(tmp_path, NAMED_MAPPING))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("labeled") == ["label-x", "label-y"]
    assert summary.result("classic") == 1


def test_map_index_template_labels_each_instance_where_its_runs_are_shown(tmp_path: Path) -> None:
    """Airflow's ``map_index_template`` is rendered once each instance's try has run (with what
    the task put in its context) and shown with the instance: in ``ductwork run``'s table, in
    ``runs show``, and among the try's rendered fields (the API and the web UI's Rendered tab).
    It was accepted and ignored."""
    import json
    import textwrap

    from tests.ductwork_process import ductwork_process

    (tmp_path / "named_mapping.py").write_text(textwrap.dedent(NAMED_MAPPING))
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    ran = ductwork_process("run", "named_mapping.py", "--no-progress", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "labeled[0] label-x" in ran.stdout and "labeled[1] label-y" in ran.stdout
    listed = ductwork_process("runs", "list", "named_mapping", "--json", env=env, cwd=tmp_path)
    run_id = json.loads(listed.stdout)["runs"][0]["run_id"]
    shown = ductwork_process("runs", "show", "named_mapping", run_id, env=env, cwd=tmp_path)
    assert "labeled[0] label-x" in shown.stdout and "labeled[1] label-y" in shown.stdout, shown.stdout
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    engine = create_engine(Settings.load(environ=env).db_url)
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, "named_mapping", run_id)
        assert record is not None
        (attempt,) = task_repo.list_tries(conn, record.pk, "labeled[1]")
    engine.dispose()
    assert attempt.rendered is not None and attempt.rendered["rendered_map_index"] == "label-y"


AIRFLOW_NAME_IN_MAPPED = """
    import pendulum
    from airflow.decorators import dag, task

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def airflow_name_in_mapped():
        @task
        def tag(x, dag_run, task_instance_key_str):
            return f"{x}:{dag_run.run_id == task_instance_key_str.split('__')[0] or 'run'}"

        tag(0)
        tag.partial().expand(x=[1, 2])

    airflow_name_in_mapped()
"""


def test_a_mapped_task_may_ask_for_airflows_context_names_as_a_plain_call_may(tmp_path: Path) -> None:
    # A plain call of a @task asking for `dag_run` was accepted, but partial().expand() of the
    # same function said "expand() leaves out argument(s) 'dag_run'": the mapped check knew
    # only Ductwork's own context names.
    summary = run_locally(load_dag(tmp_path, AIRFLOW_NAME_IN_MAPPED))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("tag__1") == ["1:run", "2:run"]
