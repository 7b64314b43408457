"""Slack incoming webhooks (``pip install 'ductwork[slack]'``): an operator and a callback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ductwork.core.connections import Connection
from ductwork.core.context import TaskContext
from ductwork.core.masking import mask_secret
from ductwork.core.operators.base import BaseOperator
from ductwork.core.templating import render_value
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations._connections import task_connection
from ductwork.integrations.http.operators import send

DEFAULT_FAILURE_TEXT = (
    ":red_circle: Task `{{ task_id | default('-') }}` of flow `{{ flow_id }}` failed"
    "{% if try_number is defined %} (try {{ try_number }}){% endif %}, run `{{ run_id }}`"
    "{% if exception is defined %}: {{ exception }}{% endif %}"
)


def slack_payload(
    *,
    text: str | None = None,
    blocks: Sequence[Mapping[str, Any]] | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
    channel: str | None = None,
    username: str | None = None,
    icon_emoji: str | None = None,
    icon_url: str | None = None,
) -> dict[str, Any]:
    """The JSON body of an incoming-webhook message (only the fields that are set)."""
    fields = {
        "text": text,
        "blocks": list(blocks) if blocks else None,
        "attachments": list(attachments) if attachments else None,
        "channel": channel,
        "username": username,
        "icon_emoji": icon_emoji,
        "icon_url": icon_url,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _where(webhook_url: str) -> str:
    """The webhook without its secret path, for messages."""
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}/..."


def post_to_slack(webhook_url: str, payload: Mapping[str, Any], *, what: str, timeout: float = 10.0) -> None:
    response = send(what=what, method="POST", url=webhook_url, json=dict(payload), timeout=timeout)
    if response.status_code != 200:
        raise TaskExecutionError(
            f"{what}: Slack webhook {_where(webhook_url)} answered {response.status_code}: {response.text[:300]!r}"
        )


class SlackWebhookOperator(BaseOperator):
    """Posts a message to a Slack channel through an incoming webhook.

    ``text``, ``blocks``, ``attachments`` and ``channel`` are templated. The webhook URL holds
    a secret: it is never written to the log or the task's rendered fields. Give it as
    ``webhook_url`` or as a connection (``conn_id``) whose URI is the webhook URL
    (``https://hooks.slack.com/services/T000/B000/XXXX``), or whose ``extra["webhook_url"]`` is.
    """

    template_fields = ("text", "blocks", "attachments", "channel")
    ui_color = "#e0d7f5"

    def __init__(
        self,
        *,
        webhook_url: str = "",
        conn_id: str | None = None,
        text: str | None = None,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        attachments: Sequence[Mapping[str, Any]] | None = None,
        channel: str | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
        icon_url: str | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        owner = f"SlackWebhookOperator(task_id={kwargs.get('task_id')!r})"
        if conn_id is None and (
            not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))
        ):
            raise DefinitionError(f"{owner}: webhook_url must be an http(s) URL (or give conn_id)")
        if conn_id is not None and webhook_url:
            raise DefinitionError(f"{owner}: give webhook_url or conn_id, not both")
        if not text and not blocks and not attachments:
            raise DefinitionError(f"{owner}: give text, blocks or attachments")
        super().__init__(**kwargs)
        self.webhook_url = webhook_url
        self.conn_id = conn_id
        self.text = text
        self.blocks = list(blocks) if blocks else None
        self.attachments = list(attachments) if attachments else None
        self.channel = channel
        self.username = username
        self.icon_emoji = icon_emoji
        self.icon_url = icon_url
        self.timeout = timeout

    def build_payload(self) -> dict[str, Any]:
        return slack_payload(
            text=self.text,
            blocks=self.blocks,
            attachments=self.attachments,
            channel=self.channel,
            username=self.username,
            icon_emoji=self.icon_emoji,
            icon_url=self.icon_url,
        )

    def execute(self, context: TaskContext) -> None:
        url = self.webhook_url
        if self.conn_id is not None:
            url = webhook_from_connection(task_connection(context, self.conn_id, self.task_id))
        context["log"].info("posting to Slack webhook %s", _where(url))
        post_to_slack(url, self.build_payload(), what=f"task {self.task_id!r}", timeout=self.timeout)

    def extra_spec(self) -> dict[str, Any]:
        where = _where(self.webhook_url) if self.webhook_url else f"connection {self.conn_id}"
        return {"webhook": where, "channel": self.channel}


def webhook_from_connection(conn: Connection) -> str:
    """The webhook URL a connection holds; its secret path is registered for masking."""
    url = str(conn.extra.get("webhook_url") or conn.base_url())
    path = urlsplit(url).path
    if len(path) > 1:
        mask_secret(path)
    return url


class SlackNotifier:
    """A callback that posts to Slack: ``on_failure_callback=slack_notifier(url)``.

    ``text`` is a template rendered with the callback's context; by default it names the task,
    the flow, the try, the run and the exception.
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        text: str = DEFAULT_FAILURE_TEXT,
        channel: str | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.webhook_url = webhook_url
        self.text = text
        self.channel = channel
        self.username = username
        self.icon_emoji = icon_emoji
        self.timeout = timeout

    def __call__(self, context: Mapping[str, Any]) -> None:
        task_id = str(context.get("task_id") or "")
        text = render_value(self.text, context, task_id=task_id, field="slack text")
        payload = slack_payload(text=text, channel=self.channel, username=self.username, icon_emoji=self.icon_emoji)
        post_to_slack(self.webhook_url, payload, what=f"Slack notifier for {task_id or context.get('flow_id')!r}")


def slack_notifier(webhook_url: str, **kwargs: Any) -> SlackNotifier:
    """A Slack callback; see ``SlackNotifier``."""
    return SlackNotifier(webhook_url, **kwargs)
