"""One thread per process calls back tries that are still running after a delay."""

from __future__ import annotations

import threading
import time

from ductwork.engine.alarms import Alarms


def test_alarms_fire_in_time_order_and_a_cancelled_one_never_fires() -> None:
    alarms = Alarms()
    fired: list[str] = []
    done = threading.Event()
    alarms.set(0.3, lambda: (fired.append("late"), done.set()))
    cancelled = alarms.set(0.1, lambda: fired.append("cancelled"))
    alarms.set(0.05, lambda: fired.append("early"))  # set last, earlier than the others: wakes the thread
    alarms.cancel(cancelled)
    assert done.wait(10)
    time.sleep(0.2)
    assert fired == ["early", "late"]


def test_a_failing_call_back_does_not_stop_the_others() -> None:
    alarms = Alarms()
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    alarms.set(0.01, boom)
    alarms.set(0.05, done.set)
    assert done.wait(10)
