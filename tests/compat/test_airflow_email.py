"""``email``/``email_on_failure``/``email_on_retry`` of Airflow operators, through the
``smtp_default`` connection and a real SMTP server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ductwork.engine.local import run_locally
from ductwork.loading import load_file
from ductwork.testing import FrozenClock
from tests.integrations.test_email import Mailbox, _free_port, _start

pytest.importorskip("aiosmtpd")

DAG = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("mailing", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
         default_args={"email": ["oncall@example.com"], "retries": 1, "retry_delay": 0}):
    BashOperator(task_id="breaks", bash_command="exit 3")
    BashOperator(task_id="quiet", bash_command="exit 3", email_on_failure=False, email_on_retry=False)
"""


def test_failure_and_retry_emails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    try:
        monkeypatch.setenv("DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{mailbox.port}")
        (tmp_path / "mailing.py").write_text(DAG)
        [flow] = load_file(tmp_path / "mailing.py").flows
        summary = run_locally(flow, clock=FrozenClock(dt.datetime(2024, 3, 1, tzinfo=dt.UTC)))
    finally:
        controller.stop()
    assert {t: s.value for t, s in summary.task_states.items()} == {"breaks": "failed", "quiet": "failed"}
    sent = [(rcpt, msg["Subject"]) for rcpt, msg in mailbox.messages]
    assert len(sent) == 2, sent  # one for the retry, one for the final failure; none for "quiet"
    assert all(rcpt == ["oncall@example.com"] and "breaks" in subject for rcpt, subject in sent)
    assert sorted(subject.rsplit(" ", 1)[-1] for _, subject in sent) == ["failed", "retry"]  # both said "failed"


CALLBACK_DAG = """
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.utils.email import send_email


def tell_oncall(context):
    ti = context["task_instance"]
    send_email(
        to=["oncall@example.com", "lead@example.com"],
        subject=f"[{context['dag'].dag_id}] {ti.task_id} failed",
        html_content=f"<p>{context['exception']}</p>",
        cc="audit@example.com",
    )


with DAG("mail_callback", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None,
         default_args={"on_failure_callback": tell_oncall}):
    BashOperator(task_id="breaks", bash_command="exit 3")
"""


def test_send_email_from_a_failure_callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from airflow.utils.email import send_email``, the usual way to alert from a callback,
    failed the import of the DAG file: no module named 'airflow.utils.email'."""
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    try:
        monkeypatch.setenv("DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{mailbox.port}")
        (tmp_path / "mail_callback.py").write_text(CALLBACK_DAG)
        loaded = load_file(tmp_path / "mail_callback.py")
        assert not loaded.errors, [str(e) for e in loaded.errors]
        [flow] = loaded.flows
        summary = run_locally(flow, clock=FrozenClock(dt.datetime(2024, 3, 1, tzinfo=dt.UTC)))
    finally:
        controller.stop()
    assert summary.task_states["breaks"].value == "failed"
    [(rcpt, msg)] = mailbox.messages
    assert sorted(rcpt) == ["audit@example.com", "lead@example.com", "oncall@example.com"]
    assert msg["Subject"] == "[mail_callback] breaks failed"
    assert msg["To"] == "oncall@example.com, lead@example.com"


def test_airflow_version_module_names_the_shims_version() -> None:
    from airflow import __version__
    from airflow.version import version

    assert version == __version__
