"""``WebhookNotifier``: post a JSON message about a task or a run to any URL, from a callback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductwork.core.templating import render_value
from ductwork.integrations.http.operators import SUCCESS_CODES, send, status_error


def event_summary(context: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a callback's context as JSON: flow, run, task, try, date and the error, if any."""
    exception = context.get("exception")
    logical_date = context.get("logical_date")
    summary = context.get("summary")
    state = getattr(getattr(summary, "state", None), "value", None)
    return {
        "event": "failure" if exception is not None or state == "failed" else "success",
        "flow_id": context.get("flow_id"),
        "run_id": context.get("run_id"),
        "task_id": context.get("task_id"),
        "try_number": context.get("try_number"),
        "logical_date": logical_date.isoformat() if logical_date is not None else None,
        "error": f"{type(exception).__name__}: {exception}" if exception is not None else None,
        "run_state": state,
    }


class WebhookNotifier:
    """A callback (``on_failure_callback=WebhookNotifier(url)``) that sends one request.

    Args:
        url: where to send it.
        payload: the JSON body; strings in it are Jinja templates rendered with the callback's
            context (``"{{ task_id }} failed: {{ exception }}"``). By default ``event_summary``.
        headers: request headers (``Authorization``...).
        method: POST by default.
    """

    def __init__(
        self,
        url: str,
        *,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.payload = dict(payload) if payload is not None else None
        self.headers = dict(headers or {})
        self.method = method
        self.timeout = timeout

    def build_payload(self, context: Mapping[str, Any]) -> Any:
        if self.payload is None:
            return event_summary(context)
        return render_value(self.payload, context, task_id=str(context.get("task_id") or ""), field="payload")

    def __call__(self, context: Mapping[str, Any]) -> None:
        what = f"webhook notifier for {context.get('task_id') or context.get('flow_id')!r}"
        response = send(
            what=what,
            method=self.method,
            url=self.url,
            headers=self.headers,
            json=self.build_payload(context),
            timeout=self.timeout,
        )
        if response.status_code not in SUCCESS_CODES:
            raise status_error(what, response, SUCCESS_CODES)

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.url!r})"
