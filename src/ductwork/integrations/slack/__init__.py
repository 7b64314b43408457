"""Slack incoming webhooks: ``SlackWebhookOperator`` and ``slack_notifier`` for callbacks."""

from ductwork.integrations.slack.operators import (
    SlackNotifier,
    SlackWebhookOperator,
    slack_notifier,
    slack_payload,
)

__all__ = ["SlackNotifier", "SlackWebhookOperator", "slack_notifier", "slack_payload"]
