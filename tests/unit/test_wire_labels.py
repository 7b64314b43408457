"""How a Celery message names its tries to Celery's own tools (``argsrepr``: ``celery inspect
active``, Flower)."""

from __future__ import annotations

from typing import Any

from ductwork.engine.remote import wire


def _payload(task_id: str, number: int = 1) -> dict[str, Any]:
    return {"key": ["etl/r1", task_id, number], "node": {"task_id": task_id}}


def test_one_try_is_named_by_its_run_task_and_number() -> None:
    assert wire.message_label([_payload("load", 2)]) == "etl/r1 load #2"


def test_a_batch_names_its_first_tries_and_counts_the_rest() -> None:
    batch = [_payload(f"t{i}") for i in range(5)]
    assert wire.message_label(batch) == "[etl/r1 t0 #1, etl/r1 t1 #1, etl/r1 t2 #1, ... 2 more]"
    assert wire.message_label(batch[:2]) == "[etl/r1 t0 #1, etl/r1 t1 #1]"
