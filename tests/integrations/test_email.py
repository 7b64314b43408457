"""EmailOperator and the failure alert against a real SMTP server (aiosmtpd) run by the test."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ductwork import Flow, PythonOperator
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations.email import EmailOperator, SmtpConfig, build_message, email_on_failure, send_email
from ductwork.testing import run_flow

aiosmtpd = pytest.importorskip("aiosmtpd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"


def _start(mailbox: Mailbox, **kwargs: Any) -> Any:
    from aiosmtpd.controller import Controller

    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    yield mailbox
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def _server_tls(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _authenticator(mailbox: Mailbox) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"etl", b"s3cret")
        if ok:
            mailbox.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    return check


def test_email_operator_sends_html_with_attachments(smtp_server: Mailbox, tmp_path: Path) -> None:
    report = tmp_path / "report-2024-01-31.csv"
    report.write_text("region,amount\nnorth,3\n")
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    with Flow("mail", start_date="2024-01-01", params={"team": "data"}) as f:
        EmailOperator(
            task_id="send",
            to=["{{ params.team }}@example.com", "boss@example.com"],
            cc="ops@example.com",
            bcc=["audit@example.com"],
            subject="Report for {{ ds }}",
            html_content="<h1>Report {{ ds }}</h1><p>Total: <b>{{ 1 + 2 }}</b></p>",
            files=[str(tmp_path / "report-{{ ds }}.csv"), str(chart)],
            smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port, sender="pipelines@example.com"),
        )
    result = run_flow(f, logical_date="2024-01-31")
    assert result.state == "success", result["send"].tries[-1].error
    assert result.result("send") == ["data@example.com", "boss@example.com", "ops@example.com", "audit@example.com"]
    (recipients, message) = smtp_server.messages[0]
    assert sorted(recipients) == ["audit@example.com", "boss@example.com", "data@example.com", "ops@example.com"]
    assert message["Subject"] == "Report for 2024-01-31"
    assert message["From"] == "pipelines@example.com"
    assert message["To"] == "data@example.com, boss@example.com"
    assert message["Cc"] == "ops@example.com"
    assert message["Bcc"] is None
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "<h1>Report 2024-01-31</h1><p>Total: <b>3</b></p>" in html.get_content()
    attachments = {a.get_filename(): a for a in message.iter_attachments()}
    assert set(attachments) == {"report-2024-01-31.csv", "chart.png"}
    assert attachments["report-2024-01-31.csv"].get_content_type() == "text/csv"
    assert attachments["report-2024-01-31.csv"].get_content() == "region,amount\nnorth,3\n"
    assert attachments["chart.png"].get_content_type() == "image/png"
    assert attachments["chart.png"].get_content() == b"\x89PNG\r\n\x1a\nfake"


def test_starttls_and_login(certificate: tuple[str, str]) -> None:
    mailbox = Mailbox(_free_port())
    controller = _start(
        mailbox,
        tls_context=_server_tls(certificate),
        require_starttls=True,
        authenticator=_authenticator(mailbox),
        auth_required=True,
    )
    try:
        good = SmtpConfig(host="127.0.0.1", port=mailbox.port, starttls=True, user="etl", password="s3cret",
                          ca_file=certificate[0])  # fmt: skip
        message = build_message(sender="a@example.com", to="b@example.com", subject="tls", html="<p>x</p>")
        assert send_email(message, smtp=good) == ["b@example.com"]
        assert mailbox.logins == ["etl"] and len(mailbox.messages) == 1
        untrusted = SmtpConfig(host="127.0.0.1", port=mailbox.port, starttls=True, user="etl", password="s3cret")
        with pytest.raises(TaskExecutionError, match=r"could not send e-mail through 127\.0\.0\.1:\d+: SSLCertVerif"):
            send_email(message, smtp=untrusted)
    finally:
        controller.stop()


def test_starttls_if_offered_upgrades_when_the_server_offers_it(certificate: tuple[str, str]) -> None:
    """Luigi's ``[smtp]`` upgrades to TLS when the server offers STARTTLS (and only then): a
    server that requires it refused the message before ``starttls_if_offered`` existed."""
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox, tls_context=_server_tls(certificate), require_starttls=True)
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=mailbox.port, starttls_if_offered=True, ca_file=certificate[0])
        message = build_message(sender="a@example.com", to="b@example.com", subject="tls", html="<p>x</p>")
        assert send_email(message, smtp=smtp) == ["b@example.com"] and len(mailbox.messages) == 1
    finally:
        controller.stop()


def test_a_refused_login_is_reported() -> None:
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox, authenticator=_authenticator(mailbox), auth_require_tls=False)
    try:
        message = build_message(sender="a@example.com", to="b@example.com", subject="s", html="<p>x</p>")
        bad = SmtpConfig(host="127.0.0.1", port=mailbox.port, user="etl", password="wrong", timeout=5)
        with pytest.raises(TaskExecutionError, match=r"task 'x': the SMTP server 127\.0\.0\.1:\d+ refused the login"):
            send_email(message, smtp=bad, what="task 'x'")
        assert not mailbox.messages
    finally:
        controller.stop()


def test_implicit_tls(certificate: tuple[str, str]) -> None:
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox, ssl_context=_server_tls(certificate))
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=mailbox.port, ssl=True, ca_file=certificate[0])
        send_email(build_message(sender="a@example.com", to="b@example.com", subject="ssl", html="<p/>"), smtp=smtp)
        assert mailbox.messages[0][1]["Subject"] == "ssl"
    finally:
        controller.stop()


def _boom() -> None:
    raise RuntimeError("upstream API returned garbage")


def test_email_on_failure_alert(smtp_server: Mailbox) -> None:
    smtp = SmtpConfig(host="127.0.0.1", port=smtp_server.port)
    with Flow("nightly") as f:
        PythonOperator(
            task_id="extract",
            python_callable=_boom,
            on_failure_callback=email_on_failure("oncall@example.com", smtp=smtp),
        )
    result = run_flow(f)
    assert result["extract"].state == "failed"
    recipients, message = smtp_server.messages[0]
    assert recipients == ["oncall@example.com"]
    assert message["Subject"] == "[ductwork] nightly.extract failed"
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    body = html.get_content()
    assert "Task extract of flow nightly failed" in body and "upstream API returned garbage" in body
    assert '<th align="left">Try</th><td>1</td>' in body
    # A pager, an SMS gateway or a text-only client reads the plain part: it says the same.
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "Task extract of flow nightly failed" in text and "upstream API returned garbage" in text
    assert "Try 1" in text and "<" not in text


def test_smtp_failures_name_the_task(tmp_path: Path) -> None:
    down = SmtpConfig(host="127.0.0.1", port=_free_port(), timeout=5)
    with Flow("mail_err") as f:
        EmailOperator(task_id="down", to="a@example.com", subject="s", html_content="h", smtp=down)
        EmailOperator(task_id="nofile", to="a@example.com", subject="s", html_content="h",
                      files=[str(tmp_path / "missing.csv")], smtp=down)  # fmt: skip
    result = run_flow(f)
    assert "task 'down': could not send e-mail through 127.0.0.1:" in (result["down"].tries[-1].error or "")
    assert "task 'nofile': attachment(s) not found:" in (result["nofile"].tries[-1].error or "")
    with pytest.raises(DefinitionError, match="to must name at least one address"):
        EmailOperator(task_id="x", to=[], subject="s", html_content="h")
