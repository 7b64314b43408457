"""Retry policy as pure functions of the node, the try number and the time."""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState


def retry_delay(node: NodeSpec, try_number: int, now: dt.datetime | None = None) -> float:
    """Seconds to wait before try ``try_number + 1``, capped by ``max_retry_delay``.

    With exponential backoff, as in Airflow: at least ``retry_delay * 2 ** (try_number - 1)``
    (whole seconds, at least 1) and less than twice that, the spread taken from a hash of the
    task, the try and the time it failed. Tasks that fail together (a database that went away)
    come back spread out rather than all at one instant, and the same failure gives the same
    wait (no random numbers: the engine's decisions stay reproducible)."""
    delay = node.retry_delay
    if node.retry_exponential_backoff:
        least = max(math.ceil(node.retry_delay * (2 ** max(try_number - 1, 0))), 1)
        seed = f"{node.task_id}#{try_number}#{now.isoformat() if now is not None else ''}"
        delay = least + int(hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest(), 16) % least
    if node.max_retry_delay is not None:
        delay = min(delay, node.max_retry_delay)
    return max(delay, 0.0)


def after_failure(
    node: NodeSpec,
    try_number: int,
    now: dt.datetime,
    *,
    fail_now: bool = False,
    max_tries: int | None = None,
) -> tuple[TaskState, dt.datetime | None]:
    """``UP_FOR_RETRY`` and when, while tries remain; otherwise ``FAILED``.

    ``max_tries`` is the last try number allowed; it grows when a task is cleared (the task
    gets its retries afresh while its try numbers keep counting), and defaults to
    ``retries + 1``.
    """
    limit = max_tries if max_tries is not None else node.retries + 1
    if not fail_now and try_number < limit:
        attempt = try_number - (limit - node.retries - 1)
        return TaskState.UP_FOR_RETRY, now + dt.timedelta(seconds=retry_delay(node, max(attempt, 1), now))
    return TaskState.FAILED, None


def max_tries(node: NodeSpec) -> int:
    return node.retries + 1
