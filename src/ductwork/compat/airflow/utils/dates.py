"""``airflow.utils.dates``: ``days_ago`` and the cron presets."""

from __future__ import annotations

import datetime as dt

cron_presets = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


def days_ago(n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0) -> dt.datetime:
    """Midnight UTC ``n`` days ago (with the given time of day)."""
    today = dt.datetime.now(dt.UTC).replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - dt.timedelta(days=n)
