"""HTTP through httpx (``pip install 'ductwork[http]'``): ``HttpOperator``, ``HttpSensor`` and
``WebhookNotifier`` for callbacks."""

from ductwork.integrations.http.notifiers import WebhookNotifier, event_summary
from ductwork.integrations.http.operators import HttpOperator, HttpSensor

__all__ = ["HttpOperator", "HttpSensor", "WebhookNotifier", "event_summary"]
