"""``luigi.scheduler``: Luigi's central scheduler (``luigid``) has no counterpart here.

Builds run in-process (``luigi --local-scheduler``, ``luigi.build``); scheduled runs, history
and the web view are Ductwork's (``ductwork scheduler``, ``ductwork webserver``). The names
exist so that modules importing them load; using them says so.
"""

from __future__ import annotations

from typing import Any

from ._config import scheduler as scheduler

_WHY = "Luigi's central scheduler is not part of Ductwork's shim; use --local-scheduler or `ductwork scheduler`"


class Scheduler:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_WHY)


class RetryPolicy:
    def __init__(self, retry_count: int, disable_hard_timeout: int, disable_window: int) -> None:
        self.retry_count = retry_count
        self.disable_hard_timeout = disable_hard_timeout
        self.disable_window = disable_window
