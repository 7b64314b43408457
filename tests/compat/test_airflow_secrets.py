"""Airflow's environment variables for connections and variables (``AIRFLOW_CONN_*``,
``AIRFLOW_VAR_*``), read after Ductwork's own, and connections as Airflow's templates see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ductwork.core.masking import MASKER
from ductwork.engine.local import run_locally
from ductwork.store import migrate
from ductwork.store.engine import create_engine
from tests.compat.dag_files import load_dag

VARCONN = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable
    from airflow.operators.bash import BashOperator

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def varconn():
        @task
        def read():
            db = BaseHook.get_connection("my_db")
            api = BaseHook.get_connection("my_json")
            return {
                "region": Variable.get("region"),
                "limits": Variable.get("limits", deserialize_json=True),
                "both": Variable.get("both"),
                "db": [db.conn_type, db.host, db.port, db.schema, db.extra_dejson],
                "api": [api.conn_type, api.host, api.extra_dejson],
            }

        shown = BashOperator(
            task_id="shown",
            bash_command="echo {{ var.value.region }} {{ conn.my_db.host }} {{ conn.my_db.extra_dejson.sslmode }}",
        )
        read() >> shown

    varconn()
"""


@pytest.fixture
def airflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_REGION", "eu")
    monkeypatch.setenv("AIRFLOW_VAR_LIMITS", '{"rows": 5}')
    monkeypatch.setenv("AIRFLOW_VAR_BOTH", "airflow's")
    monkeypatch.setenv("DUCTWORK_VAR_BOTH", "ductwork's")
    monkeypatch.setenv("AIRFLOW_CONN_MY_DB", "postgres://etl:s3cret-db@db.example:5432/analytics?sslmode=require")
    extra = json.dumps({"token": "t0ken-1234"})  # Airflow's JSON form: extra as JSON text
    monkeypatch.setenv("AIRFLOW_CONN_MY_JSON", json.dumps({"conn_type": "http", "host": "api.example", "extra": extra}))


@pytest.mark.usefixtures("airflow_env")
def test_airflow_environment_variables_are_read_after_ductwork_ones(tmp_path: Path) -> None:
    MASKER.clear()
    summary = run_locally(load_dag(tmp_path, VARCONN))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    assert summary.result("read") == {
        "region": "eu",
        "limits": {"rows": 5},
        "both": "ductwork's",
        "db": ["postgres", "db.example", 5432, "analytics", {"sslmode": "require"}],
        "api": ["http", "api.example", {"token": "t0ken-1234"}],
    }
    assert summary.result("shown") == "eu db.example require"
    assert "s3cret-db" in MASKER and "t0ken-1234" in MASKER


@pytest.mark.usefixtures("airflow_env")
def test_variable_get_outside_a_task_reads_airflow_var() -> None:
    code = "from airflow.models import Variable; print(Variable.get('region'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "eu"


def test_a_task_sets_updates_and_deletes_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Variable.delete`` and ``Variable.update`` did not exist (AttributeError in the task)."""
    code = """
        from airflow.models import Variable
        Variable.set("watermark", {"id": 1}, serialize_json=True)
        Variable.update("watermark", {"id": 2}, serialize_json=True)
        seen = Variable.get("watermark", deserialize_json=True)
        try:
            Variable.update("never_set", 1)
        except KeyError as exc:
            missing = str(exc)
        deleted = [Variable.delete("watermark"), Variable.delete("watermark")]
        print(seen, missing, deleted, Variable.get("watermark", default_var="gone"))
    """
    url = f"sqlite:///{tmp_path / 'd.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    env = {"DUCTWORK_HOME": str(tmp_path), "DUCTWORK_DATABASE_URL": url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    script = "\n".join(line[8:] for line in code.splitlines())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'id': 2} 'Variable never_set does not exist' [1, 0] gone"


def test_variable_set_refuses_a_key_with_spaces_around_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Variable.set("region ", ...)`` stored a variable no template reading ``region`` sees,
    while the CLI, the API and the UI refuse that name."""
    code = """
        from airflow.models import Variable
        try:
            Variable.set("region ", "eu")
        except Exception as exc:
            print(exc)
        print(Variable.get("region", default_var="unset"), Variable.get("region ", default_var="unset"))
    """
    url = f"sqlite:///{tmp_path / 'd.db'}"
    monkeypatch.setenv("DUCTWORK_HOME", str(tmp_path))
    monkeypatch.setenv("DUCTWORK_DATABASE_URL", url)
    script = "\n".join(line[8:] for line in code.splitlines())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    said, read = done.stdout.strip().splitlines()
    assert (
        said
        == "variable name 'region ': spaces before or after it are not part of the key a task reads; write 'region'"
    )
    assert read == "unset unset"


def test_variable_set_on_a_new_home_creates_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seeding script (``Variable.set`` before the first ``ductwork`` command) failed with
    SQLite's raw "no such table: variables"; ``ductwork variables set`` creates the database."""
    home = tmp_path / "home"
    monkeypatch.setenv("DUCTWORK_HOME", str(home))
    monkeypatch.delenv("DUCTWORK_DATABASE_URL", raising=False)
    script = (
        "from airflow.models import Variable\n"
        "print(Variable.delete('nothing_yet'))\n"
        "Variable.set('env', 'prod')\n"
        "print(Variable.get('env'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "prod"]


NOT_JSON = """
    import json
    import pendulum
    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator

    def read():
        return Variable.get("settings", deserialize_json=True)

    def read_or_default():
        try:
            return Variable.get("settings", deserialize_json=True)
        except json.JSONDecodeError:
            return "fallback"

    with DAG("not_json", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        PythonOperator(task_id="read", python_callable=read)
        PythonOperator(task_id="read_or_default", python_callable=read_or_default)
"""


def test_a_variable_that_is_not_json_is_named_by_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The try failed with a bare "JSONDecodeError: Expecting value: line 1 column 1 (char 0)";
    it is still a JSONDecodeError, which DAG code catches."""
    monkeypatch.setenv("DUCTWORK_VAR_SETTINGS", "rows=5")
    summary = run_locally(load_dag(tmp_path, NOT_JSON))
    error = summary["read"].tries[-1].error or ""
    assert "variable 'settings' is not valid JSON: Expecting value" in error, error
    assert summary.result("read_or_default") == "fallback"


CONN_TYPES = """
    import pendulum
    from airflow.decorators import dag, task
    from airflow.hooks.base import BaseHook
    from airflow.models import Connection
    from airflow.operators.bash import BashOperator

    @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    def conn_types():
        @task
        def read():
            stored = BaseHook.get_connection("warehouse")
            parsed = Connection(conn_id="x", uri="postgresql://u:p@h:5432/db")
            return [stored.conn_type, parsed.conn_type, stored.get_uri()]

        shown = BashOperator(task_id="shown", bash_command="echo {{ conn.warehouse.conn_type }}")
        read() >> shown

    conn_types()
"""


def test_a_postgresql_uri_is_a_postgres_connection_to_airflow_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As Airflow parses it: a connection added as postgresql:// was "postgresql" to DAG code
    # comparing conn_type with "postgres" (Airflow's name for it).
    monkeypatch.setenv("DUCTWORK_CONN_WAREHOUSE", "postgresql://etl:pw@db.example:5432/analytics")
    summary = run_locally(load_dag(tmp_path, CONN_TYPES))
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items() if s.tries}
    stored, parsed, uri = summary.result("read")
    assert (stored, parsed) == ("postgres", "postgres")
    assert uri == "postgresql://etl:pw@db.example:5432/analytics"  # still a URL SQLAlchemy takes
    assert summary.result("shown") == "postgres"
