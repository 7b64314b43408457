"""Templating with macros, connections and variables; errors that name task, field and line;
secrets masked in every log line and rendered field of a try (in-process runs here; through the
scheduler's worker pool in test_results_offload.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from ductwork import BashOperator, Flow, PythonOperator
from ductwork.core.connections import Connection, MemorySecrets, Secrets
from ductwork.core.masking import MASKER, SecretsMasker, is_secret_name, mask_secret
from ductwork.core.task_services import TaskServices
from ductwork.engine.local import run_locally
from ductwork.testing import FrozenClock, run_flow
from tests.conftest import Cli

PASSWORD = "Zq8-very-secret-pw"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    MASKER.clear()
    monkeypatch.setenv(
        "DUCTWORK_CONN_WAREHOUSE", f"postgres://etl:{PASSWORD}@db.internal:6543/analytics?sslmode=require"
    )
    monkeypatch.setenv("DUCTWORK_VAR_REGION", "eu-west-1")
    monkeypatch.setenv("DUCTWORK_VAR_LIMITS", json.dumps({"rows": 500, "tables": ["a", "b"]}))
    monkeypatch.setenv("DUCTWORK_VAR_API_TOKEN", "tok-abcdef-123")


def _echo(**fields: str) -> Flow:
    with Flow("tpl", params={"n": 3, "team": "data"}) as f:
        for name, template in fields.items():
            BashOperator(task_id=name, bash_command=template)
    return f


def test_context_variables_macros_connections_and_variables() -> None:
    templates = {
        "dates": "echo {{ ds }} {{ logical_date.year }} {{ data_interval_start.isoformat() }} {{ ds_nodash }}",
        "macros": (
            "echo {{ macros.ds_add(ds, -7) }} {{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }} "
            "{{ (logical_date + macros.timedelta(days=1)).date() }} "
            "{{ (logical_date + macros.relativedelta(months=1)).date() }} "
            "{{ macros.dateutil.parse('2024-03-01').month }} {{ macros.datetime(2024, 1, 2).date() }}"
        ),
        "params": "echo {{ params.n * 2 }} {{ params.team }}",
        "conn": (
            "echo {{ conn.warehouse.host }}:{{ conn.warehouse.port }} {{ conn.warehouse.login }} "
            "{{ conn.warehouse.schema }} {{ conn.warehouse.extra.sslmode }} {{ conn.warehouse.conn_type }}"
        ),
        "var": "echo {{ var.value.region }} {{ var.json.limits.rows }} {{ var.json.limits.tables | join('+') }} "
        "{{ var.value.get('missing', 'dflt') }}",
    }
    with _echo(**templates) as f:
        PythonOperator(task_id="push", python_callable=lambda ti: ti.xcom_push(key="k", value="pushed!"))
        pull = BashOperator(task_id="pull", bash_command="echo {{ ti.xcom_pull(task_ids='push', key='k') }}")
        f.tasks["push"] >> pull
    result = run_flow(f, logical_date="2024-01-31T00:00:00+00:00")
    assert result.state == "success", {t: s.tries[-1].error for t, s in result.tasks.items()}
    assert result.result("dates") == "2024-01-31 2024 2024-01-31T00:00:00+00:00 20240131"
    assert result.result("macros") == "2024-01-24 31/01/2024 2024-02-01 2024-02-29 3 2024-01-02"
    assert result.result("params") == "6 data"
    assert result.result("conn") == "db.internal:6543 etl analytics require postgres"
    assert result.result("var") == "eu-west-1 500 a+b dflt"
    assert result.result("pull") == "pushed!"
    assert result["var"].tries[-1].rendered["bash_command"].startswith("echo eu-west-1 500")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "echo ok\necho {{ conn.nowhere.host }}",
            "task 'bad', field 'bash_command', line 2: connection 'nowhere' is not defined",
        ),
        ("echo {{ var.value.nope }}", "task 'bad', field 'bash_command', line 1: variable 'nope' is not defined"),
        ("a\nb\n{{ oops( }}", "task 'bad', field 'bash_command', line 3: template syntax error"),
        ("{{ params.missing }}", "task 'bad', field 'bash_command', line 1:"),
        ("{{ var.json.region }}", "variable 'region' is not valid JSON"),
    ],
)
def test_template_errors_name_task_field_and_line(template: str, expected: str) -> None:
    result = run_flow(_echo(bad=template))
    error = result["bad"].tries[-1].error or ""
    assert result.state == "failed" and expected in error, error
    assert "DUCTWORK_CONN_NOWHERE" in error or "nowhere" not in template


def test_password_never_in_log_or_rendered_field(tmp_path: Path) -> None:
    with Flow("leaky") as f:
        BashOperator(
            task_id="bash",
            bash_command='echo "connecting with $PGPASSWORD"; echo "url={{ conn.warehouse.get_uri() }}"',
            env={"PGPASSWORD": "{{ conn.warehouse.password }}", "TOKEN": "{{ var.value.api_token }}"},
            append_env=True,
        )

        def python_leak(conn: Any, var: Any, log: Any) -> str:
            warehouse = conn.warehouse
            print("password is", warehouse.password)
            logging.getLogger("user.code").warning("token %s", var.value.api_token)
            log.info("dsn=%s", warehouse.get_uri())
            mask_secret("custom-secret-999")
            print("custom: custom-secret-999")
            return "done"

        PythonOperator(task_id="python", python_callable=python_leak)
    summary = run_locally(f, log_dir=tmp_path / "logs", clock=FrozenClock("2024-01-31"))
    assert summary["bash"].state.value == "success" and summary["python"].state.value == "success"
    texts = [p.read_text() for p in (tmp_path / "logs").rglob("*.log")]
    texts += [json.dumps(t.rendered) for s in summary.tasks.values() for t in s.tries]
    texts += [str(t.error) + str(t.traceback) for s in summary.tasks.values() for t in s.tries]
    joined = "\n".join(texts)
    for secret in (PASSWORD, "tok-abcdef-123", "custom-secret-999"):
        assert secret not in joined
    bash_log = summary.logs[("bash", 1)]
    assert "connecting with ***" in bash_log and "url=postgres://etl:***@db.internal:6543" in bash_log
    rendered = summary["bash"].tries[-1].rendered
    assert rendered["env"]["PGPASSWORD"] == "***" and rendered["env"]["TOKEN"] == "***"
    python_log = summary.logs[("python", 1)]
    assert "password is ***" in python_log and "token ***" in python_log and "custom: ***" in python_log


def test_error_messages_are_masked_too() -> None:
    def fail(conn: Any) -> None:
        raise RuntimeError(f"could not log in with {conn.warehouse.password}")

    with Flow("err") as f:
        PythonOperator(task_id="t", python_callable=fail)
    result = run_flow(f)
    last = result["t"].tries[-1]
    assert result.state == "failed" and "could not log in with ***" in (last.error or "")
    assert PASSWORD not in (last.traceback or "")


def test_masker_rules() -> None:
    masker = SecretsMasker()
    masker.add(["ab", "abcd-secret", {"k": "p@ss word"}, None, 12345])
    assert masker.mask("x ab abcd-secret p@ss word p%40ss%20word 12345") == "x ab *** *** *** ***"
    assert masker.mask_value({"password": "plain", "list": ["abcd-secret"], "n": 1}) == {
        "password": "***",
        "list": ["***"],
        "n": 1,
    }
    assert is_secret_name("DB_PASSWORD") and is_secret_name("slack-api-key") and not is_secret_name("region")


def test_services_given_explicitly_replace_the_environment() -> None:
    secrets = Secrets([MemorySecrets([Connection("other", "https", host="mem.example")], {"colour": "blue"})])
    with Flow("explicit") as f:
        BashOperator(task_id="t", bash_command="echo {{ conn.other.host }} {{ var.value.colour }}")
    summary = run_locally(f, clock=FrozenClock("2024-01-31"), services=TaskServices(secrets=secrets))
    assert summary.result("t") == "mem.example blue"


def test_tasks_render_cli(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text(
        "from ductwork import Flow, BashOperator\n"
        "with Flow('report', schedule='@daily', params={'limit': 10}) as report:\n"
        "    BashOperator(task_id='export', bash_command=\"psql -h {{ conn.warehouse.host }} "
        "-c 'select * from t where d = {{ ds }} limit {{ params.limit }}'\",\n"
        "                 env={'PGPASSWORD': '{{ conn.warehouse.password }}', 'REGION': '{{ var.value.region }}'})\n"
    )
    result = cli("tasks", "render", "report", "export", "2024-02-29", "--param", "limit=5")
    assert result.exit_code == 0, result.output
    assert "# bash_command" in result.output
    assert "psql -h db.internal -c 'select * from t where d = 2024-02-29 limit 5'" in result.output
    assert PASSWORD not in result.output and '"PGPASSWORD": "***"' in result.output
    as_json = json.loads(cli("tasks", "render", "report", "export", "2024-02-29", "--json").output)
    assert as_json["env"] == {"PGPASSWORD": "***", "REGION": "eu-west-1"}
    bad = cli("tasks", "render", "report", "nope")
    assert bad.exit_code == 2 and "has no task 'nope'" in bad.output


def test_render_error_names_task_and_field(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(
        "from ductwork import Flow, BashOperator\n"
        "with Flow('f') as f:\n"
        "    BashOperator(task_id='t', bash_command='echo {{ conn.missing.host }}')\n"
    )
    result = cli("tasks", "render", "f", "t", "2024-01-01")
    assert result.exit_code == 2
    assert "task 't', field 'bash_command', line 1: connection 'missing' is not defined" in result.output


CONF_SECRETS = {"password": "conf-pw-8Kd3", "target": {"api_token": "conf-tok-5Rr1", "rows": 1000}, "user": "bob"}


def test_secret_looking_conf_and_params_are_masked_in_logs_and_rendered_fields(tmp_path: Path) -> None:
    """The run page and the API show a run's ``password`` conf as ``***``; its tries' logs and
    rendered fields, which the same viewers read, showed it in full (``echo {{ conf }}``)."""

    def show(conf: Any, params: Any) -> None:
        print("conf is", conf, "params are", dict(params))

    with Flow("conf_leak", params={"db_password": "param-pw-2Jx7", "limit": 5}) as f:
        BashOperator(task_id="bash", bash_command="echo {{ conf }} {{ params.db_password }} rows={{ params.limit }}")
        PythonOperator(task_id="python", python_callable=show)
    summary = run_locally(f, log_dir=tmp_path / "logs", clock=FrozenClock("2024-01-31"), conf=CONF_SECRETS)
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items()}
    texts = [p.read_text() for p in (tmp_path / "logs").rglob("*.log")]
    texts += [json.dumps(t.rendered) for s in summary.tasks.values() for t in s.tries]
    joined = "\n".join(texts)
    for secret in ("conf-pw-8Kd3", "conf-tok-5Rr1", "param-pw-2Jx7"):
        assert secret not in joined
    assert "bob" in summary.logs[("python", 1)] and "1000" in summary.logs[("python", 1)]  # only secrets hidden
    assert "rows=5" in summary["bash"].tries[-1].rendered["bash_command"]
    assert "conf-pw-8Kd3" in summary.result("bash")  # the task itself got the real value


def test_an_airflow_dags_secret_looking_param_and_conf_are_masked_in_its_log(tmp_path: Path) -> None:
    from tests.compat.dag_files import load_dag

    dag = load_dag(
        tmp_path,
        """
        import pendulum
        from airflow import DAG
        from airflow.models.param import Param
        from airflow.operators.bash import BashOperator

        with DAG("af_conf", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
                 params={"db_password": Param("hunter2-default", type="string")}):
            BashOperator(task_id="echo", bash_command="echo pw={{ params.db_password }} conf={{ dag_run.conf }}")
        """,
    )
    summary = run_locally(dag, log_dir=tmp_path / "logs", conf={"db_password": "af-conf-pw-9Qa"})
    assert summary.state.value == "success", {t: s.tries[-1].error for t, s in summary.tasks.items()}
    joined = summary.logs[("echo", 1)] + json.dumps(summary["echo"].tries[-1].rendered)
    assert "af-conf-pw-9Qa" not in joined and "hunter2-default" not in joined
    assert "pw=***" in summary.logs[("echo", 1)]


def test_a_secret_that_is_not_utf8_is_masked_and_its_url_form_too() -> None:
    """A password in DUCTWORK_CONN_X written in Latin-1 (``K\\xf6ln...``) reaches Python as a
    lone surrogate: registering its URL-quoted form raised ``UnicodeEncodeError``, so
    ``ductwork connections get x`` (and a task using the connection) ended in a traceback."""
    secret = os.fsdecode(b"K\xf6ln-pass")
    masker = SecretsMasker()
    masker.add(secret)
    assert masker.mask(f"pw={secret} url=postgres://u:K%F6ln-pass@h/db") == "pw=*** url=postgres://u:***@h/db"
