"""Ductwork's own secrets stay where they belong (issue 9, item 11): tasks do not inherit the
Fernet key, the database URL or DUCTWORK_CONN_*/DUCTWORK_VAR_* values, under the scheduler or in
``ductwork run``, yet still reach connections and variables through the API made for them; no
banner and no ``ductwork config`` prints the database password."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ductwork_process import ductwork_command, ductwork_process, process_env
from tests.conftest import Cli

FERNET_KEY = "Y2hhbmdlLW1lLXRoaXMtaXMtYS10ZXN0LWtleS0xMjM="
CONN_PASSWORD = "conn-pw-7Hq2"
VAR_VALUE = "var-token-9Zx4"
DB_PASSWORD = "db-pw-4Kd8"

LEAKY_FLOW = textwrap.dedent(
    """
    import json, os
    from pathlib import Path
    from ductwork import BashOperator, Flow, PythonOperator

    OUT = Path(os.environ["LEAK_OUT"])

    def dump():
        (OUT / "python.json").write_text(json.dumps(dict(os.environ)))

    with Flow("leaky", schedule=None) as leaky:
        PythonOperator(task_id="dump", python_callable=dump)
        BashOperator(
            task_id="shell",
            bash_command=(
                "env > $LEAK_OUT/bash.txt; "
                "echo 'host={{ conn.warehouse.host }} pw={{ conn.warehouse.password }} "
                "var={{ var.value.api_token }}' > $LEAK_OUT/used.txt"
            ),
        )
    """
)


def _secret_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": database_url,
        "DUCTWORK_FERNET_KEY": FERNET_KEY,
        "DUCTWORK_CONN_WAREHOUSE": f"postgres://etl:{CONN_PASSWORD}@warehouse.example:5432/analytics",
        "DUCTWORK_VAR_API_TOKEN": VAR_VALUE,
        "LEAK_OUT": str(tmp_path / "out"),
    }


def _setup(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "flows" / "leaky.py").write_text(LEAKY_FLOW)


def _assert_nothing_leaked(out: Path) -> None:
    seen = json.loads((out / "python.json").read_text())
    shell = (out / "bash.txt").read_text()
    for name in ("DUCTWORK_FERNET_KEY", "DUCTWORK_DATABASE_URL", "DUCTWORK_CONN_WAREHOUSE", "DUCTWORK_VAR_API_TOKEN"):
        assert name not in seen, f"a Python task sees {name}"
        assert name + "=" not in shell, f"a program a task started sees {name}"
    for secret in (FERNET_KEY, CONN_PASSWORD, VAR_VALUE, DB_PASSWORD):
        assert secret not in json.dumps(seen) and secret not in shell
    assert seen["LEAK_OUT"] == str(out)  # the rest of the environment is there
    # ... and the secrets still reach the task through connections and variables
    assert (out / "used.txt").read_text().strip() == (f"host=warehouse.example pw={CONN_PASSWORD} var={VAR_VALUE}")


def _ductwork(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return ductwork_process(*args, env=env, cwd=cwd)


def test_scheduled_tasks_inherit_no_ductwork_secrets(tmp_path: Path) -> None:
    _setup(tmp_path)
    env = _secret_env(tmp_path, f"sqlite:///{tmp_path / 'ductwork.db'}")
    scheduler = subprocess.Popen(
        ductwork_command("scheduler", "--workers", "1", "--poll-interval", "0.2"),
        env=process_env(env),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = _ductwork(["trigger", "leaky", "--wait", "--timeout", "90", "--json"], env, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["state"] == "success"
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    _assert_nothing_leaked(tmp_path / "out")


def test_tasks_of_an_in_process_run_inherit_no_ductwork_secrets(cli: Cli, tmp_path: Path) -> None:
    _setup(tmp_path)
    env = _secret_env(tmp_path, f"sqlite:///{tmp_path / 'ductwork.db'}")
    before = dict(os.environ)
    result = cli("run", "leaky", "--no-progress", env=env)
    assert result.exit_code == 0, result.output
    _assert_nothing_leaked(tmp_path / "out")
    assert dict(os.environ) == before  # the run put everything back


def test_banners_and_config_never_print_the_database_password(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    env = _secret_env(tmp_path, f"postgresql+psycopg://etl:{DB_PASSWORD}@127.0.0.1:1/nowhere")
    shown = _ductwork(["config"], env, tmp_path)
    as_json = _ductwork(["config", "--json"], env, tmp_path)
    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr + as_json.stderr
    assert json.loads(as_json.stdout)["database_url"]["value"] == "postgresql+psycopg://etl:***@127.0.0.1:1/nowhere"
    assert "etl:***@127.0.0.1" in shown.stdout
    for command in (["scheduler"], ["webserver", "--port", "1"], ["standalone", "--port", "1"]):
        started = time.monotonic()
        ran = _ductwork(command, env, tmp_path)  # no database there: each says so and exits
        text = ran.stdout + ran.stderr
        assert ran.returncode != 0 and time.monotonic() - started < 100
        assert DB_PASSWORD not in text, f"`ductwork {' '.join(command)}` printed the password:\n{text}"
        assert FERNET_KEY not in text
    for output in (shown.stdout, as_json.stdout):
        assert DB_PASSWORD not in output and FERNET_KEY not in output


def test_config_shows_no_password_of_the_code_and_log_store_urls(tmp_path: Path) -> None:
    """A deployment's flows_git_url is often https://USER:TOKEN@git.example/... (a deploy token),
    and fsspec URLs take a password too (sftp://, ftp://, ?token=): ``ductwork config`` printed
    remote_log_url, bundle_url and flows_git_url as given, token included, where README says
    passwords show as ***."""
    (tmp_path / "flows").mkdir()
    env = {
        **_secret_env(tmp_path, f"sqlite:///{tmp_path / 'ductwork.db'}"),
        "DUCTWORK_REMOTE_LOG_URL": "sftp://logs:log-pw-3Rt6@files.example/ductwork-logs",
        "DUCTWORK_BUNDLE_URL": "https://files.example/bundles?token=bundle-tok-8Pz1",
        "DUCTWORK_FLOWS_GIT_URL": "https://deploy:git-tok-5Wn2@git.example/data/flows.git",
    }
    shown = _ductwork(["config"], env, tmp_path)
    as_json = _ductwork(["config", "--json"], env, tmp_path)
    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr + as_json.stderr
    values = json.loads(as_json.stdout)
    assert values["remote_log_url"]["value"] == "sftp://logs:***@files.example/ductwork-logs"
    assert values["bundle_url"]["value"] == "https://files.example/bundles?token=***"
    assert values["flows_git_url"]["value"] == "https://deploy:***@git.example/data/flows.git"
    for output in (shown.stdout, as_json.stdout):
        for secret in ("log-pw-3Rt6", "bundle-tok-8Pz1", "git-tok-5Wn2"):
            assert secret not in output


_PART = st.text(st.characters(codec="ascii", exclude_characters="\x00\r\n"), min_size=1, max_size=20)


@given(
    user=_PART.filter(lambda s: not set(s) & set(":/@")),
    password=_PART.filter(lambda s: "@" not in s),  # an @ in a password must be written %40
    host=_PART.filter(lambda s: not set(s) & set("@/?:[]")),
    path=_PART.filter(lambda s: "?" not in s),
)
def test_redact_url_never_shows_the_password(user: str, password: str, host: str, path: str) -> None:
    from ductwork.settings import redact_url

    url = f"postgresql+psycopg://{user}:{password}@{host}/{path}"
    shown = redact_url(url)
    assert shown == f"postgresql+psycopg://{user}:***@{host}/{path}"
    assert redact_url(f"sqlite:////{path}") == f"sqlite:////{path}"


@given(st.text(max_size=60))
def test_redact_url_hides_whatever_sqlalchemy_would_take_as_the_password(text: str) -> None:
    import sqlalchemy as sa

    from ductwork.settings import redact_url

    url = "mysql+pymysql://" + text
    try:
        password = sa.make_url(url).password
    except Exception:
        return
    if password:
        assert sa.make_url(redact_url(url)).password == "***"


def test_config_says_whether_the_secret_settings_are_set_without_showing_them(tmp_path: Path) -> None:
    """`ductwork config` lists fernet_key, metrics_token and smtp_url too, as `***` (the SMTP URL
    with its password as `***`) with where they came from: they were left out, so an operator could
    not tell whether this host has a Fernet key or why /metrics asks for a token."""
    (tmp_path / "flows").mkdir()
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_FERNET_KEY": FERNET_KEY,
        "DUCTWORK_METRICS_TOKEN": "metrics-tok-9Zx1",
        "DUCTWORK_SMTP_URL": "smtp://bot:smtp-pw-4Kd8@mail.example:587",
    }
    shown = _ductwork(["config", "--json"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert rows["fernet_key"] == {"value": "***", "source": "env"}
    assert rows["metrics_token"] == {"value": "***", "source": "env"}
    assert rows["smtp_url"] == {"value": "smtp://bot:***@mail.example:587", "source": "env"}
    for secret in (FERNET_KEY, "metrics-tok-9Zx1", "smtp-pw-4Kd8"):
        assert secret not in shown.stdout
    unset = _ductwork(["config", "--json"], {k: v for k, v in env.items() if "HOME" in k or "FLOWS" in k}, tmp_path)
    assert json.loads(unset.stdout)["metrics_token"] == {"value": "", "source": "default"}


SECRET_PARAM_FLOW = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import flow, task

    @task
    def connect(api_password):
        Path(os.environ["PARAM_OUT"]).write_text(api_password)

    @flow(schedule=None)
    def with_password(api_password: str = "none"):
        connect(api_password)
    """
)


def test_a_secret_looking_run_parameter_is_shown_masked_but_reaches_the_task(cli: Cli, tmp_path: Path) -> None:
    """AWS Data Pipeline's ``*myPassword`` parameters, and any parameter named like a secret: the
    task gets the value; ``runs list``/``runs show`` print ``***``, as the API does for conf."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "with_password.py").write_text(SECRET_PARAM_FLOW)
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        "PARAM_OUT": str(tmp_path / "param.txt"),
    }
    ran = cli("run", "with_password", "--param", "api_password=pw-5Rt8", "--no-progress", "--json", env=env)
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "param.txt").read_text() == "pw-5Rt8"
    listed = cli("runs", "list", "with_password", "--json", env=env)
    (run,) = json.loads(listed.output)["runs"]
    assert run["params"] == {"api_password": "***"}
    shown = cli("runs", "show", "with_password", run["run_id"], "--json", env=env)
    for output in (ran.output, listed.output, shown.output):
        assert "pw-5Rt8" not in output
