"""The cloud-inventory example against a real SMTP server (aiosmtpd) and a local webhook server;
and the demo's own stand-ins script, as `make demo` runs it."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ductwork.core.masking import MASKER
from ductwork.loading import load_flow
from ductwork.testing import run_flow
from tests.integrations.conftest import HttpServer, http_server  # noqa: F401 - the fixture
from tests.integrations.test_email import Mailbox, _free_port, _start

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cloud_inventory.py"


def test_cloud_inventory_emails_the_report_and_posts_to_slack(
    http_server: HttpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    MASKER.clear()
    http_server.route("/services/T000/B000/secret-part", lambda r: (200, {"Content-Type": "text/plain"}, b"ok"))
    mailbox = Mailbox(_free_port())
    controller = _start(mailbox)
    try:
        monkeypatch.setenv(
            "DUCTWORK_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{mailbox.port}?sender=inventory%40example.com"
        )
        monkeypatch.setenv("DUCTWORK_CONN_SLACK_INVENTORY", f"{http_server.url}/services/T000/B000/secret-part")
        monkeypatch.setenv("DUCTWORK_VAR_CLOUD_REGION", "us-east-2")
        flow = load_flow(f"{EXAMPLE}:cloud_inventory", EXAMPLE.parent)
        result = run_flow(flow, logical_date="2024-01-31T00:00:00+00:00", params={"recipients": "ops@example.com"})
    finally:
        controller.stop()
    assert result.state == "success", {t: s.tries[-1].error for t, s in result.tasks.items() if s.tries}
    assert result.result("build_report") == {"compute": 3, "storage": 2, "databases": 1}
    [(recipients, message)] = mailbox.messages
    assert recipients == ["ops@example.com"] and message["From"] == "inventory@example.com"
    assert message["Subject"] == "Cloud inventory 2024-01-31: 6 resources"
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    html = body.get_content()
    assert "Cloud inventory for 2024-01-31 (us-east-2)" in html and "<td>i-0c99</td>" in html and "orders" in html
    [call] = [r for r in http_server.requests if r.method == "POST"]
    assert call.path == "/services/T000/B000/secret-part"
    assert call.json() == {
        "text": ":cloud: Cloud inventory for 2024-01-31: 3 compute, 2 storage, 1 databases "
        "(report e-mailed to ops@example.com)"
    }
    assert "secret-part" not in result.logs[("notify_slack", 1)]


def test_demo_standins_receive_what_the_example_sends(tmp_path: Path) -> None:
    state = tmp_path / "standins"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "standins.py"), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        env_file = state / "standins.env"
        deadline = time.monotonic() + 30
        while not env_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ)
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        env["DUCTWORK_HOME"] = str(tmp_path / "home")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "ductwork.cli",
                "run",
                f"{EXAMPLE}:cloud_inventory",
                "--date",
                "2024-01-31",
                "--no-progress",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        deadline = time.monotonic() + 10
        while not list((state / "mail").glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    [eml] = sorted((state / "mail").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Cloud inventory 2024-01-31: 6 resources"
    assert "3 compute, 2 storage, 1 databases" in (state / "webhooks.jsonl").read_text()
