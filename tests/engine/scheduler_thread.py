"""A real scheduler service run in a thread of the test process, for tests that drive it through
its database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine


@contextmanager
def scheduler_in_thread(settings: Settings, options: SchedulerOptions) -> Iterator[SchedulerService]:
    """A scheduler for ``settings`` (its database migrated first), running until the block ends."""
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    engine.dispose()
    service = SchedulerService(settings, options=options)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(60)
