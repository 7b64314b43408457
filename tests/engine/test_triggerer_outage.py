"""The triggerer during a database outage: one warning when it begins and one when it ends,
not a traceback at every look (every 2 seconds)."""

from __future__ import annotations

import logging
import time

import pytest

from ductwork.engine.triggerer import TriggererService
from ductwork.store.engine import create_engine


def test_an_unreachable_database_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    triggerer = TriggererService(engine, interval=0.05)
    with caplog.at_level(logging.INFO, logger="ductwork"):
        triggerer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("unreachable" in r.message for r in caplog.records):
            time.sleep(0.05)
        time.sleep(0.5)  # ten more looks, each failing
        triggerer.stop()
    engine.dispose()
    said = [r for r in caplog.records if r.name.startswith("ductwork")]
    assert [r.levelno for r in said if "unreachable" in r.message] == [logging.WARNING]
    assert not [r for r in said if r.exc_info or r.levelno >= logging.ERROR]
