"""HTTP operator and sensor, webhook and Slack notifiers, against a local HTTP server."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ductwork import Flow, PythonOperator
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations.http import HttpOperator, HttpSensor, WebhookNotifier
from ductwork.integrations.slack import SlackWebhookOperator, slack_notifier
from ductwork.testing import SystemClock, run_flow

from .conftest import HttpServer, Received, Reply, json_reply


def _boom() -> None:
    raise ValueError("disk full")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_operator_sends_templated_requests_and_pushes_json(http_server: HttpServer) -> None:
    http_server.route("/api/items", lambda r: json_reply(201, {"got": r.json(), "query": r.path.split("?", 1)[1]}))
    with Flow("api", start_date="2024-01-01", params={"token": "t0k"}) as f:
        post = HttpOperator(
            task_id="post",
            method="post",
            url=http_server.url + "/api/items",
            params={"day": "{{ ds }}"},
            headers={"Authorization": "Bearer {{ params.token }}"},
            json={"name": "widget", "day": "{{ ds }}"},
            expected_status=[201],
        )
        PythonOperator(task_id="use", python_callable=lambda got: got["got"]["day"], op_args=[post.output])
    result = run_flow(f, logical_date="2024-01-31")
    assert result.state == "success", result["post"].tries[-1].error
    assert result.result("post") == {"got": {"name": "widget", "day": "2024-01-31"}, "query": "day=2024-01-31"}
    assert result.result("use") == "2024-01-31"
    received = http_server.requests[0]
    assert received.method == "POST" and received.headers["authorization"] == "Bearer t0k"


def test_http_operator_text_filter_and_status_errors(http_server: HttpServer) -> None:
    http_server.route("/text", lambda r: (200, {"Content-Type": "text/plain"}, b"line1\nline2"))
    http_server.route("/broken", lambda r: (500, {"Content-Type": "text/plain"}, b"database is down"))
    http_server.route("/form", lambda r: (200, {"Content-Type": "text/plain"}, r.body))
    with Flow("http") as f:
        HttpOperator(task_id="text", url=http_server.url + "/text")
        HttpOperator(
            task_id="filtered",
            url=http_server.url + "/text",
            response_filter=lambda response, ti: f"{ti.task_id}:{response.text.splitlines()[-1]}",
        )
        HttpOperator(task_id="form", method="POST", url=http_server.url + "/form", data={"a": "1", "b": "x y"})
        HttpOperator(task_id="broken", url=http_server.url + "/broken", retries=0)
        HttpOperator(task_id="not_json", url=http_server.url + "/text", response_format="json")
        HttpOperator(task_id="down", url=f"http://127.0.0.1:{_closed_port()}/x")
        HttpOperator(task_id="scheme", url="ftp://example.invalid/x")
    result = run_flow(f)
    assert result.result("text") == "line1\nline2"
    assert result.result("filtered") == "filtered:line2"
    assert result.result("form") == "a=1&b=x+y"
    broken = result["broken"].tries[-1].error or ""
    assert "task 'broken': GET " in broken and "returned 500 Internal Server Error (expected 2xx)" in broken
    assert "database is down" in broken
    assert "is not JSON" in (result["not_json"].tries[-1].error or "")
    assert "task 'down': GET http://127.0.0.1:" in (result["down"].tries[-1].error or "")
    assert "unsupported URL scheme" in (result["scheme"].tries[-1].error or "")


def test_http_sensor_waits_for_status_and_condition(http_server: HttpServer) -> None:
    calls: list[int] = []

    def status(r: Received) -> Reply:
        calls.append(1)
        if len(calls) < 3:
            return 503, {}, b"starting"
        return json_reply(200, {"state": "ready" if len(calls) >= 4 else "warming"})

    http_server.route("/health", status)
    http_server.route("/gone", lambda r: (410, {}, b"gone for good"))
    with Flow("wait") as f:
        HttpSensor(
            task_id="ready",
            url=http_server.url + "/health",
            response_check=lambda response: response.json()["state"] == "ready",
            poke_interval=0.01,
            timeout=30,
        )
        HttpSensor(task_id="gone", url=http_server.url + "/gone", fail_on_status=[410], poke_interval=0.01)
    result = run_flow(f, clock=SystemClock())
    assert result["ready"].state == "success"
    assert len(calls) == 4
    assert "returned 410 Gone" in (result["gone"].tries[-1].error or "")


def test_http_sensor_keeps_poking_while_the_server_is_down() -> None:
    with Flow("down") as f:
        HttpSensor(
            task_id="s", url=f"http://127.0.0.1:{_closed_port()}/", poke_interval=0.01, timeout=0.05, soft_fail=True
        )
    result = run_flow(f, clock=SystemClock())
    assert result["s"].state == "skipped"
    assert "not reachable yet" in result.logs[("s", 1)]


def test_webhook_notifier_posts_a_summary_or_a_templated_payload(http_server: HttpServer) -> None:
    http_server.route("/hook", lambda r: (204, {}, b""))
    with Flow("notify") as f:
        PythonOperator(
            task_id="fails",
            python_callable=_boom,
            on_failure_callback=[
                WebhookNotifier(http_server.url + "/hook"),
                WebhookNotifier(
                    http_server.url + "/hook",
                    payload={"text": "{{ task_id }} failed: {{ exception }}", "n": 1},
                    headers={"X-Token": "abc"},
                ),
            ],
        )
    result = run_flow(f)
    assert result["fails"].state == "failed"
    summary, custom = (r.json() for r in http_server.requests)
    assert summary["event"] == "failure" and summary["task_id"] == "fails" and summary["flow_id"] == "notify"
    assert summary["error"] == "ValueError: disk full" and summary["try_number"] == 1
    assert custom == {"text": "fails failed: disk full", "n": 1}
    assert http_server.requests[1].headers["x-token"] == "abc"


def test_webhook_notifier_errors_name_the_task(http_server: HttpServer) -> None:
    http_server.route("/hook", lambda r: (400, {}, b"bad payload"))
    notifier = WebhookNotifier(http_server.url + "/hook")
    with pytest.raises(TaskExecutionError, match=r"webhook notifier for 'x'.*returned 400 Bad Request"):
        notifier({"task_id": "x", "flow_id": "f"})


def test_slack_webhook_operator_and_notifier(http_server: HttpServer) -> None:
    def slack(r: Received) -> Reply:
        body = r.json()
        if "text" not in body and "blocks" not in body:
            return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
        return 200, {"Content-Type": "text/plain"}, b"ok"

    http_server.route("/services/T000/B000/SECRET", slack)
    hook = http_server.url + "/services/T000/B000/SECRET"
    with Flow("slack", start_date="2024-01-01") as f:
        SlackWebhookOperator(
            task_id="post",
            webhook_url=hook,
            text="Report for {{ ds }} is ready",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ ds }}*"}}],
            channel="#data",
            username="ductwork",
        )
        PythonOperator(
            task_id="fails", python_callable=_boom, on_failure_callback=slack_notifier(hook, channel="#alerts")
        )
    result = run_flow(f, logical_date="2024-01-31")
    assert result["post"].state == "success"
    message, alert = (r.json() for r in http_server.requests)
    assert message == {
        "text": "Report for 2024-01-31 is ready",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*2024-01-31*"}}],
        "channel": "#data",
        "username": "ductwork",
    }
    assert alert["channel"] == "#alerts"
    assert alert["text"].startswith(":red_circle: Task `fails` of flow `slack` failed (try 1), run `test__2024-01-31")
    assert alert["text"].endswith(": disk full")
    assert "SECRET" not in result.logs[("post", 1)]


def test_slack_errors(http_server: HttpServer) -> None:
    http_server.route("/hook", lambda r: (404, {"Content-Type": "text/plain"}, b"no_service"))
    with Flow("slack_err") as f:
        SlackWebhookOperator(task_id="post", webhook_url=http_server.url + "/hook", text="hi")
    result = run_flow(f)
    error = result["post"].tries[-1].error or ""
    assert "task 'post': Slack webhook http://127.0.0.1:" in error and "answered 404: 'no_service'" in error
    with pytest.raises(DefinitionError, match="give text, blocks or attachments"):
        SlackWebhookOperator(task_id="x", webhook_url="https://hooks.example/x")
    with pytest.raises(DefinitionError, match="response_format must be one of"):
        HttpOperator(task_id="x", url="http://x", response_format="xml")


def test_flow_level_notifier(http_server: HttpServer) -> None:
    got: list[Any] = []
    http_server.route("/hook", lambda r: (got.append(r.json()), (200, {}, b"ok"))[1])
    with Flow("flowlevel", on_failure_callback=slack_notifier(http_server.url + "/hook")) as f:
        PythonOperator(task_id="fails", python_callable=_boom)
    run_flow(f)
    assert got and got[0]["text"].startswith(":red_circle: Task `-` of flow `flowlevel` failed, run")
