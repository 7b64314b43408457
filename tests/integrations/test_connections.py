"""Connections and variables: URIs, the lookup chain, encrypted storage on every backend, the
CLI, plugins, and operators that take a ``conn_id`` (against real PostgreSQL, MariaDB, SQLite, a
local HTTP server and a real SMTP server)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork import Flow
from ductwork.core.connections import Connection, EnvironmentSecrets, MemorySecrets, Secrets, register_secrets
from ductwork.core.masking import MASKER
from ductwork.engine.services_setup import build_secrets, build_task_services
from ductwork.errors import DefinitionError, NotFoundError
from ductwork.integrations.http import HttpOperator
from ductwork.integrations.sql import SqlOperator
from ductwork.settings import Settings
from ductwork.store.crypto import Cipher, SecretKeyError, generate_key
from ductwork.store.secrets import DatabaseSecrets
from ductwork.store.tables import connections as connections_table
from ductwork.store.tables import variables as variables_table
from ductwork.testing import run_flow
from tests.conftest import Cli
from tests.integrations.conftest import HttpServer, json_reply

PASSWORD = "pa:ss/w@rd-7781"


@pytest.fixture(autouse=True)
def _clean_masker() -> None:
    MASKER.clear()


def test_uri_round_trip_with_quoted_parts_and_extra() -> None:
    uri = "postgresql://etl%40corp:pa%3Ass%2Fw%40rd-7781@db.example:5432/analytics?sslmode=require"
    conn = Connection.from_uri("warehouse", uri)
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == ("postgresql", "db.example", 5432, "analytics")
    assert (conn.login, conn.password, dict(conn.extra)) == ("etl@corp", PASSWORD, {"sslmode": "require"})
    assert Connection.from_uri("warehouse", conn.get_uri()) == conn
    assert conn.sqlalchemy_url().startswith("postgresql+psycopg://etl%40corp:")
    assert PASSWORD not in repr(conn) and conn.describe()["password"] == "***"
    nested = Connection("api", "https", host="h", extra={"headers": {"X-Key": "k"}, "timeout": 3})
    assert Connection.from_uri("api", nested.get_uri()) == nested


def test_bad_uris_are_named() -> None:
    with pytest.raises(DefinitionError, match="connection 'x'.*not a URI"):
        Connection.from_uri("x", "just-a-host")
    with pytest.raises(DefinitionError, match="port"):
        Connection.from_uri("x", "http://h:notaport/")
    with pytest.raises(DefinitionError, match="not a number from 0 to 65535"):
        Connection.from_uri("x", "http://h:99999/")
    # a host part the URL parser refuses was a ValueError (a 500 from PUT /api/v1/connections)
    for uri in ("http://[::1/x", "http://etl:pa\uff03ss@h/db"):
        with pytest.raises(DefinitionError, match="host part cannot be read") as raised:
            Connection.from_uri("x", uri)
        assert "pa\uff03ss" not in str(raised.value)  # the parser's message quotes the password


def test_chain_order_environment_wins_and_missing_names_where_it_looked() -> None:
    env = {"DUCTWORK_CONN_WAREHOUSE": "postgres://env@h1/db", "DUCTWORK_VAR_REGION": "eu"}
    memory = MemorySecrets([Connection("warehouse", "postgres", host="h2")], {"region": "us", "team": "data"})
    secrets = Secrets([EnvironmentSecrets(env), memory])
    assert secrets.get_connection("warehouse").host == "h1"
    assert secrets.get_variable("region") == "eu" and secrets.get_variable("team") == "data"
    with pytest.raises(
        NotFoundError,
        match=r"connection 'nope' is not defined; looked in environment \(DUCTWORK_CONN_NOPE or AIRFLOW_CONN_NOPE\), memory",
    ):
        secrets.get_connection("nope")
    assert secrets.get_variable("nope", default=None) is None


def test_json_connection_in_the_environment() -> None:
    env = {"DUCTWORK_CONN_API_MAIN": json.dumps({"conn_type": "https", "host": "api.example", "password": "tok3n"})}
    conn = Secrets([EnvironmentSecrets(env)]).get_connection("api-main")
    assert conn.base_url() == "https://api.example" and conn.password == "tok3n"
    assert "tok3n" in MASKER  # handed out, so registered for masking


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"conn_type": "http", "hots": "h"}, "DUCTWORK_CONN_API: unknown field 'hots'. Did you mean 'host'?"),
        ({"conn_type": "http", "port": "abc"}, "DUCTWORK_CONN_API: port 'abc' is not a number from 0 to 65535"),
        ({"conn_type": "http", "port": 70000}, "DUCTWORK_CONN_API: port 70000 is not a number from 0 to 65535"),
        ({"conn_type": "http", "extra": "[1]"}, "DUCTWORK_CONN_API: extra is not a JSON object"),
    ],
)
def test_a_json_connection_with_a_wrong_field_says_which(fields: dict[str, object], said: str) -> None:
    """An unknown field was a ``TypeError`` traceback from ``Connection.__init__`` (in ``ductwork
    connections get`` and in the task), and ``"port": "abc"`` reached the task as text."""
    env = EnvironmentSecrets({"DUCTWORK_CONN_API": json.dumps(fields)})
    with pytest.raises(DefinitionError) as caught:
        Secrets([env]).get_connection("api")
    assert str(caught.value).startswith(said), caught.value


def test_a_json_connection_port_written_as_text_is_a_number_as_in_airflow() -> None:
    env = EnvironmentSecrets({"AIRFLOW_CONN_DB": json.dumps({"conn_type": "postgres", "port": "5432"})})
    assert Secrets([env]).get_connection("db").port == 5432


def test_database_backend_encrypts_at_rest(db_engine: Engine) -> None:
    key = generate_key()
    backend = DatabaseSecrets(db_engine, Cipher(key))
    backend.put_connection(
        Connection.from_uri(
            "wh",
            f"postgres://etl:{PASSWORD.replace('/', '%2F').replace(':', '%3A').replace('@', '%40')}@db/x?sslmode=require",
        )
    )
    assert backend.set_variable("api_token", "t0ken-secret") is True
    backend.set_variable("region", "eu-west-1")
    with db_engine.connect() as conn:
        row = conn.execute(sa.select(connections_table)).one()
        values = [r.value for r in conn.execute(sa.select(variables_table))]
    assert row.is_encrypted and PASSWORD not in (row.password or "") and "sslmode" not in (row.extra or "")
    assert not any("t0ken-secret" in v or "eu-west-1" in v for v in values)
    found = backend.get_connection("wh")
    assert found is not None and found.password == PASSWORD and dict(found.extra) == {"sslmode": "require"}
    assert backend.get_variable("api_token") == "t0ken-secret"
    assert backend.get_connection("missing") is None
    # Another key cannot read it; rotating (new key first, old after) can.
    with pytest.raises(SecretKeyError, match="cannot be decrypted.*connections rotate-key"):
        DatabaseSecrets(db_engine, Cipher(generate_key())).get_variable("region")
    assert DatabaseSecrets(db_engine, Cipher(f"{generate_key()},{key}")).get_variable("region") == "eu-west-1"


def test_no_key_refuses_secrets_but_keeps_plain_values(db_engine: Engine) -> None:
    backend = DatabaseSecrets(db_engine, Cipher(""))
    with pytest.raises(SecretKeyError, match="DUCTWORK_FERNET_KEY.*generate-key"):
        backend.put_connection(Connection("wh", "postgres", host="db", login="etl", password="x"))
    with pytest.raises(SecretKeyError, match="looks secret"):
        backend.set_variable("db_password", "x")
    backend.put_connection(Connection("local", "sqlite", schema="/tmp/x.db"))
    assert backend.set_variable("region", "eu") is False
    assert backend.get_variable("region") == "eu"
    with pytest.raises(SecretKeyError, match="not a valid Fernet key"):
        DatabaseSecrets(db_engine, Cipher("short")).set_variable("x", "y")


def test_settings_order_and_unknown_backend(db_engine: Engine) -> None:
    key = generate_key()
    DatabaseSecrets(db_engine, Cipher(key)).set_variable("region", "db-value")
    env = {"DUCTWORK_VAR_REGION": "env-value"}
    default = build_secrets(Settings(fernet_key=key), engine=db_engine, environ=env)
    assert default.get_variable("region") == "env-value"
    db_first = build_secrets(
        Settings(fernet_key=key, secrets_backends="database,environment"), engine=db_engine, environ=env
    )
    assert db_first.get_variable("region") == "db-value"
    with pytest.raises(DefinitionError, match="unknown backend 'vault'"):
        build_secrets(Settings(secrets_backends="environment,vault"))


def test_secrets_backend_plugin_by_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "acme_vault").mkdir(parents=True)
    (site / "acme_vault" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from ductwork.core.connections import Connection

            class Vault:
                def __init__(self, settings):
                    self.settings = settings

                def get_connection(self, name):
                    return Connection(name, "postgres", host="vault-host", password="from-vault") if name == "wh" else None

                def get_variable(self, name):
                    return "v-" + name
            """
        )
    )
    dist = site / "acme_vault-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-vault\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ductwork.secrets]\nvault = acme_vault:Vault\n")
    monkeypatch.syspath_prepend(str(site))
    secrets = build_secrets(Settings(secrets_backends="plugin:vault,environment"), environ={})
    assert secrets.get_connection("wh").host == "vault-host"
    assert secrets.get_variable("x") == "v-x"
    assert "from-vault" in MASKER


# --- the CLI -------------------------------------------------------------------------------------
def test_cli_connections_and_variables(cli: Cli, tmp_path: Path) -> None:
    env = {"DUCTWORK_FERNET_KEY": generate_key(), "DUCTWORK_HOME": str(tmp_path / "home")}
    uri = "postgres://etl:S3cr3t-pw@db.internal:5432/analytics?sslmode=require&api_key=K-123"
    added = cli("connections", "add", "warehouse", uri, "--description", "the warehouse", env=env)
    assert added.exit_code == 0, added.output
    assert cli("connections", "add", "api", "--conn-type", "https", "--host", "api.example", env=env).exit_code == 0
    listed = cli("connections", "list", env=env)
    assert listed.exit_code == 0 and "warehouse" in listed.output and "db.internal" in listed.output
    as_json = cli("connections", "list", "--json", env=env)
    for text in (listed.output, as_json.output):
        assert "S3cr3t-pw" not in text and "K-123" not in text
    rows = {r["conn_id"]: r for r in json.loads(as_json.output)}
    assert rows["warehouse"]["password"] == "***" and rows["warehouse"]["extra"]["api_key"] == "***"
    shown = cli("connections", "get", "warehouse", env=env)
    assert "host: db.internal" in shown.output and "S3cr3t-pw" not in shown.output
    override = cli(
        "connections", "get", "warehouse", "--json", env={**env, "DUCTWORK_CONN_WAREHOUSE": "postgres://o@other/db"}
    )
    assert json.loads(override.output)["host"] == "other"
    assert cli("connections", "delete", "api", env=env).exit_code == 0
    missing = cli("connections", "get", "api", env=env)
    assert missing.exit_code == 2 and "connection 'api' is not defined" in missing.output

    assert cli("variables", "set", "region", "eu-west-1", env=env).output.strip() == "variable region set (encrypted)"
    cli("variables", "set", "slack_token", "xoxb-123456", env=env)
    cli("variables", "set", "limits", '{"rows": 10}', env=env)
    assert cli("variables", "get", "region", env=env).output.strip() == "eu-west-1"
    assert json.loads(cli("variables", "get", "limits", "--json", env=env).output) == {"rows": 10}
    listed_vars = cli("variables", "list", env=env).output
    assert "eu-west-1" in listed_vars and "xoxb-123456" not in listed_vars and "***" in listed_vars
    assert cli("variables", "delete", "region", env=env).exit_code == 0
    assert cli("variables", "get", "region", env=env).exit_code == 2

    key = cli("connections", "generate-key").output.strip()
    assert len(key) == 44 and Cipher(key).decrypt(Cipher(key).encrypt("x", why="t"), why="t") == "x"


def test_secret_values_nested_in_a_connections_extra_are_masked(cli: Cli, tmp_path: Path) -> None:
    """An Authorization header inside extra.headers is as secret as a top-level api_key: hidden
    when shown and masked in what a task prints."""
    env = {"DUCTWORK_FERNET_KEY": generate_key(), "DUCTWORK_HOME": str(tmp_path / "home")}
    extra = '{"api_key": "AKIA-EXTRA-1", "headers": {"Authorization": "Bearer TOK-SECRET-1"}, "timeout": 5}'
    added = cli("connections", "add", "ext", "--conn-type", "http", "--host", "api.example", "--extra", extra, env=env)
    assert added.exit_code == 0, added.output
    shown = json.loads(cli("connections", "get", "ext", "--json", env=env).output)
    assert shown["extra"] == {"api_key": "***", "headers": {"Authorization": "***"}, "timeout": 5}
    for args in (("connections", "get", "ext"), ("connections", "list")):
        text = cli(*args, env=env).output
        assert "TOK-SECRET-1" not in text and "AKIA-EXTRA-1" not in text
    found = register_secrets(Connection("n", extra={"headers": [{"x-api-key": "KEY-IN-LIST-1"}]}))
    assert MASKER.mask(f"sent {found.extra['headers'][0]['x-api-key']}") == "sent ***"
    refused = cli("connections", "add", "arr", "--conn-type", "http", "--extra", "[1, 2]", env=env)
    assert refused.exit_code == 2 and "--extra is not a JSON object" in refused.output


def test_cli_without_a_key_says_how_to_make_one(cli: Cli, tmp_path: Path) -> None:
    result = cli("connections", "add", "wh", "postgres://u:p@h/db", env={"DUCTWORK_HOME": str(tmp_path / "h")})
    assert result.exit_code == 2
    assert "no Fernet key is configured" in result.output and "ductwork connections generate-key" in result.output


# --- operators that take a connection --------------------------------------------------------------
def test_sql_operator_with_conn_id(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sa.make_url(db_url)
    conn = Connection(
        "warehouse",
        url.get_backend_name(),
        host=url.host,
        port=url.port,
        login=url.username,
        password=url.password,
        schema=url.database,
    )
    monkeypatch.setenv("DUCTWORK_CONN_WAREHOUSE", conn.get_uri())
    with Flow("sql_conn") as f:
        SqlOperator(task_id="q", conn_id="warehouse", sql="SELECT 40 + 2 AS answer")
    result = run_flow(f)
    assert result.state == "success", result["q"].tries[-1].error
    assert result.result("q") == [{"answer": 42}]


def test_sql_operator_missing_connection_names_task_and_connection() -> None:
    with Flow("sql_conn") as f:
        SqlOperator(task_id="q", conn_id="nowhere", sql="SELECT 1")
    result = run_flow(f)
    error = result["q"].tries[-1].error or ""
    assert result.state == "failed" and "task 'q'" in error and "connection 'nowhere' is not defined" in error


def test_sql_operator_needs_url_or_conn_id() -> None:
    with pytest.raises(DefinitionError, match=r"give url \(a SQLAlchemy URL string\) or conn_id"):
        SqlOperator(task_id="q", sql="SELECT 1")


def test_http_operator_with_conn_id(http_server: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.route(
        "/v1/items", lambda r: json_reply(200, {"auth": r.headers.get("authorization"), "x": r.headers.get("x-team")})
    )
    host_port = http_server.url.removeprefix("http://")
    extra = json.dumps({"headers": {"X-Team": "data"}})
    monkeypatch.setenv("DUCTWORK_CONN_API", f"http://bob:hunter22@{host_port}/v1?__extra__={extra}")
    with Flow("http_conn") as f:
        HttpOperator(task_id="get", conn_id="api", url="/items")
    result = run_flow(f)
    assert result.state == "success", result["get"].tries[-1].error
    body = result.result("get")
    assert body["auth"].startswith("Basic ") and body["x"] == "data"
    assert "hunter22" not in result.logs[("get", 1)]


def test_task_services_carry_the_failure_alert_and_store() -> None:
    services = build_task_services(Settings(), environ={})
    assert services.store is None and services.failure_alert is not None
    values = services.context_values()
    assert {"conn", "var", "secrets"} <= set(values)


def test_cli_run_sees_connections_and_variables_of_the_database(cli: Cli, tmp_path: Path) -> None:
    env = {"DUCTWORK_FERNET_KEY": generate_key(), "DUCTWORK_HOME": str(tmp_path / "home")}
    assert cli("connections", "add", "warehouse", "postgres://etl:pw-in-db-1@db.stored:5432/x", env=env).exit_code == 0
    assert cli("variables", "set", "region", "ap-south-1", env=env).exit_code == 0
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "uses.py").write_text(
        "from ductwork import Flow, BashOperator\n"
        "with Flow('uses') as uses:\n"
        "    BashOperator(task_id='t', bash_command='echo {{ conn.warehouse.host }} {{ var.value.region }} "
        "{{ conn.warehouse.password }}')\n"
    )
    ran = cli("run", "uses", "--json", env=env)
    assert ran.exit_code == 0, ran.output
    logs = list((tmp_path / "home" / "logs").rglob("*.log"))
    text = "".join(p.read_text() for p in logs)
    assert "db.stored ap-south-1 ***" in text and "pw-in-db-1" not in text
    tested = cli("tasks", "test", "uses", "t", env=env)
    assert tested.exit_code == 0 and "db.stored ap-south-1 ***" in tested.output


def test_email_operator_with_conn_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from ductwork.integrations.email import EmailOperator
    from tests.integrations.test_email import Mailbox, _free_port, _start

    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    try:
        monkeypatch.setenv("DUCTWORK_CONN_MAIL", f"smtp://127.0.0.1:{mailbox.port}?sender=etl%40example.com")
        with Flow("mail_conn") as f:
            EmailOperator(
                task_id="send", conn_id="mail", to="a@example.com", subject="s {{ ds }}", html_content="<p>x</p>"
            )
            EmailOperator(task_id="nowhere", conn_id="no_mail", to="a@example.com", subject="s", html_content="x")
        result = run_flow(f, logical_date="2024-01-31")
    finally:
        controller.stop()
    assert result["send"].state.value == "success"
    [(recipients, message)] = mailbox.messages
    assert (
        recipients == ["a@example.com"]
        and message["From"] == "etl@example.com"
        and message["Subject"] == "s 2024-01-31"
    )
    assert "connection 'no_mail' is not defined" in (result["nowhere"].tries[-1].error or "")


def test_reading_an_encrypted_value_without_the_key_says_it_is_encrypted(cli: Cli, tmp_path: Path) -> None:
    home = {"DUCTWORK_HOME": str(tmp_path / "h")}
    key = cli("connections", "generate-key").output.strip().split()[-1]
    assert cli("variables", "set", "api_token", "s3cret", env={**home, "DUCTWORK_FERNET_KEY": key}).exit_code == 0
    read = cli("variables", "get", "api_token", env=home)
    assert read.exit_code == 2
    assert "variable 'api_token' is encrypted, and no Fernet key is configured" in read.output


@pytest.mark.parametrize("args", [("--conn-type", "http", "--host", "h"), ("http://h:80",)])
def test_cli_refuses_a_port_out_of_range_as_the_api_and_the_form_do(
    cli: Cli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """``connections add api --conn-type http --port 99999`` was saved (and listed with port
    99999), where the URI form, the REST API and the web form refuse it."""
    env = {"DUCTWORK_HOME": str(tmp_path / "h")}
    refused = cli("connections", "add", "api", *args, "--port", "99999", env=env)
    assert refused.exit_code == 2, refused.output
    assert "'--port' / '--conn-port': 99999 is not in the range 0<=x<=65535" in refused.output, refused.output
    assert json.loads(cli("connections", "list", "--json", env=env).output) == []


def test_cli_connections_add_takes_airflows_option_names(cli: Cli, tmp_path: Path) -> None:
    """``airflow connections add NAME --conn-uri URI`` (or ``--conn-host``, ``--conn-login``...,
    ``--conn-json``), typed as an Airflow user types it, was refused with "No such option
    '--conn-uri'. Did you mean '--conn-type'?", which sent them to the wrong option."""
    env = {"DUCTWORK_FERNET_KEY": generate_key(), "DUCTWORK_HOME": str(tmp_path / "home")}
    by_uri = cli("connections", "add", "wh", "--conn-uri", "postgres://etl:pw@db.internal:5432/dw", env=env)
    assert by_uri.exit_code == 0, by_uri.output
    by_fields = cli(
        "connections", "add", "api", "--conn-type", "https", "--conn-host", "api.example", "--conn-port", "8443",
        "--conn-login", "bot", "--conn-password", "pw", "--conn-schema", "v1", "--conn-extra", '{"timeout": 5}',
        "--conn-description", "the API", env=env,
    )  # fmt: skip
    assert by_fields.exit_code == 0, by_fields.output
    by_json = cli(
        "connections",
        "add",
        "mail",
        "--conn-json",
        '{"conn_type": "smtp", "host": "mx", "port": 25, "extra": {"tls": {"on": true}}}',
        env=env,
    )
    assert by_json.exit_code == 0, by_json.output
    rows = {r["conn_id"]: r for r in json.loads(cli("connections", "list", "--json", env=env).output)}
    assert (rows["wh"]["conn_type"], rows["wh"]["host"], rows["wh"]["schema"]) == ("postgres", "db.internal", "dw")
    api = rows["api"]
    assert (api["host"], api["port"], api["login"], api["schema"]) == ("api.example", 8443, "bot", "v1")
    assert api["extra"] == {"timeout": 5} and api["description"] == "the API"
    assert (rows["mail"]["conn_type"], rows["mail"]["host"], rows["mail"]["port"]) == ("smtp", "mx", 25)
    assert rows["mail"]["extra"] == {"tls": {"on": True}}
    both = cli("connections", "add", "x", "http://a", "--conn-uri", "http://b", env=env)
    assert both.exit_code == 2 and "one of" in both.output
