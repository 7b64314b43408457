"""Luigi's e-mails that the shim did not send or did not shape as Luigi does: the e-mail of a
task whose scheduling failed (``complete()`` or ``requires()`` raised), batched failure e-mails
(``[scheduler] batch_emails`` with the ``[batch_email]`` settings, which were ignored), and
``[smtp] local_hostname`` (the name given in HELO/EHLO, which was not used). A real SMTP
server (aiosmtpd) receives them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.compat.test_luigi import LUIGI, _run
from tests.integrations.test_email import Mailbox, _free_port, _start  # skips the module without aiosmtpd


@dataclass
class GreetedMailbox(Mailbox):
    """A mailbox that also keeps the name each client gave in HELO/EHLO."""

    greetings: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.greetings.append(session.host_name)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mailbox() -> Iterator[GreetedMailbox]:
    box = GreetedMailbox(_free_port())
    controller = _start(box)
    yield box
    controller.stop()


def _config(mailbox: Mailbox, extra: str = "") -> str:
    return (
        "[email]\nreceiver = ops@example.com\n"
        f"[smtp]\nhost = 127.0.0.1\nport = {mailbox.port}\nlocal_hostname = etl-box.example.com\n{extra}"
    )


def _text(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content().replace("\r\n", "\n"))


def test_a_task_whose_scheduling_failed_is_emailed_as_luigi_does(tmp_path: Path, mailbox: GreetedMailbox) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "luigi.cfg").write_text(_config(mailbox))
    proc = _run([LUIGI, "--module", "ops_mail", "Scheduling", "--local-scheduler"], tmp_path)
    assert "failed scheduling" in proc.stderr, proc.stderr
    host = socket.gethostname()
    mails = {m["Subject"]: (rcpt, m) for rcpt, m in mailbox.messages}
    assert sorted(mails) == [
        f"Luigi: BadComplete() failed scheduling. Host: {host}",
        f"Luigi: BadRequires() failed scheduling. Host: {host}",
    ], proc.stderr
    recipients, message = mails[f"Luigi: BadComplete() failed scheduling. Host: {host}"]
    assert recipients == ["ops@example.com", "owner@example.com"]
    text = _text(message)
    assert text.startswith(
        "Will not run BadComplete() or any dependencies due to error in complete() method\n\nName: BadComplete\n"
    )
    assert "Traceback (most recent call last):" in text and "ValueError: cannot reach the warehouse" in text
    recipients, message = mails[f"Luigi: BadRequires() failed scheduling. Host: {host}"]
    assert recipients == ["ops@example.com"]
    assert _text(message).startswith("Will not run BadRequires() or any dependencies due to error in deps() method")
    assert "KeyError: 'no such partition'" in _text(message)
    assert mailbox.greetings == ["etl-box.example.com"] * 2  # [smtp] local_hostname


def test_batch_emails_group_a_builds_failures_and_wait_for_the_interval(
    tmp_path: Path, mailbox: GreetedMailbox
) -> None:
    (tmp_path / "home").mkdir()
    settings = (
        "[scheduler]\nbatch_emails = true\n[worker]\nsend_failure_email = false\n"
        "[batch_email]\nbatch_mode = family\nerror_lines = 1\nemail_interval = 30\n"
    )
    (tmp_path / "luigi.cfg").write_text(_config(mailbox, settings))
    cmd = [LUIGI, "--module", "ops_mail", "Nightly", "--local-scheduler"]
    first = _run(cmd, tmp_path)
    assert "* 2 failed:" in first.stderr, first.stderr
    mails = {rcpt[0]: m for rcpt, m in mailbox.messages}
    assert sorted(mails) == ["ops@example.com", "owner@example.com"], first.stderr  # one e-mail each, no other
    assert mails["ops@example.com"]["Subject"] == "Luigi: 2 failures, 1 scheduling failure in the last 30 minutes"
    text = _text(mails["ops@example.com"])
    assert text.startswith("- Load (2 failures)\n\n      RuntimeError: disk full on 2024-03-0"), text
    assert "- BadComplete (1 scheduling failure)\n\n      ValueError: cannot reach the warehouse" in text
    assert mails["owner@example.com"]["Subject"] == "Luigi: Your tasks have 1 scheduling failure in the last 30 minutes"

    second = _run(cmd, tmp_path)  # within the interval: kept for a later build
    assert len(mailbox.messages) == 2, second.stderr
    assert "Batched failure e-mail kept until" in second.stderr
    kept = tmp_path / "home" / "luigi" / "batch-email.json"
    batch = json.loads(kept.read_text())
    batch["last_sent"] -= 31 * 60  # the interval has passed
    kept.write_text(json.dumps(batch))
    third = _run(cmd, tmp_path)
    later = [m for rcpt, m in mailbox.messages[2:] if rcpt == ["ops@example.com"]]
    assert [m["Subject"] for m in later] == ["Luigi: 4 failures, 2 scheduling failures in the last 30 minutes"], (
        third.stderr
    )
    assert _text(later[0]).startswith("- Load (4 failures)\n")


def test_ductwork_build_emails_a_task_whose_scheduling_failed_and_builds_the_rest(
    tmp_path: Path, mailbox: GreetedMailbox
) -> None:
    """`ductwork build` of a Luigi module: the same "failed scheduling" e-mails as `luigi`, and
    the build goes on. It stopped with a traceback at the first complete() that raised."""
    (tmp_path / "home").mkdir()
    (tmp_path / "luigi.cfg").write_text(_config(mailbox))
    ductwork = str(Path(LUIGI).parent / "ductwork")
    proc = _run([ductwork, "build", "--module", "ops_mail", "Scheduling", "--no-progress"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "* 2 failed scheduling:" in proc.stdout, proc.stdout
    host = socket.gethostname()
    mails = {m["Subject"]: (rcpt, m) for rcpt, m in mailbox.messages}
    assert sorted(mails) == [
        f"Luigi: BadComplete() failed scheduling. Host: {host}",
        f"Luigi: BadRequires() failed scheduling. Host: {host}",
    ], proc.stderr
    recipients, message = mails[f"Luigi: BadComplete() failed scheduling. Host: {host}"]
    assert recipients == ["ops@example.com", "owner@example.com"]
    assert _text(message).startswith("Will not run BadComplete() or any dependencies due to error in complete()")
    assert "ValueError: cannot reach the warehouse" in _text(message)
    assert "due to error in deps() method" in _text(mails[f"Luigi: BadRequires() failed scheduling. Host: {host}"][1])


def test_a_task_whose_output_raises_fails_scheduling_under_luigi(tmp_path: Path, mailbox: GreetedMailbox) -> None:
    """output() raising (in complete()) is a scheduling failure, e-mailed; the build then
    stopped with "Uncaught exception in luigi", as the shim asked output() again to draw the graph."""
    (tmp_path / "home").mkdir()
    (tmp_path / "luigi.cfg").write_text(_config(mailbox))
    proc = _run([LUIGI, "--module", "ops_mail", "Outputs", "--local-scheduler"], tmp_path)
    assert "Uncaught exception" not in proc.stderr, proc.stderr
    assert "* 1 failed scheduling:" in proc.stderr and "- 1 BadOutput()" in proc.stderr, proc.stderr
    assert "This progress looks :( because there were tasks whose scheduling failed" in proc.stderr
    assert [m["Subject"] for _, m in mailbox.messages] == [
        f"Luigi: BadOutput() failed scheduling. Host: {socket.gethostname()}"
    ]
