"""The scheduler's and the worker's logs leave out the libraries' notes that say nothing to a
user (Alembic's plugin set-up at every start, Celery's result-backend note at every revoke),
unless asked for DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ductwork.cli.library_logs import quiet_library_logs


@pytest.fixture
def restored() -> Iterator[None]:
    """The loggers as they were; the root at INFO, as `--log-level info` sets it."""
    root, alembic, control = (
        logging.getLogger(),
        logging.getLogger("alembic"),
        logging.getLogger("celery.worker.control"),
    )
    levels, filters = (root.level, alembic.level), list(control.filters)
    root.setLevel(logging.INFO)
    yield
    root.setLevel(levels[0])
    alembic.setLevel(levels[1])
    control.filters[:] = filters


def _passes(logger: logging.Logger, message: str, level: int) -> bool:
    record = logger.makeRecord(logger.name, level, __file__, 1, message, (), None)
    return logger.isEnabledFor(level) and logger.filter(record)


def test_library_notes_are_left_out_below_debug(restored: None) -> None:
    quiet_library_logs("info")
    alembic, control = logging.getLogger("alembic.runtime.plugins"), logging.getLogger("celery.worker.control")
    assert not _passes(alembic, "setup plugin alembic.autogenerate.schemas", logging.INFO)
    assert _passes(alembic, "a real problem", logging.WARNING)
    revoke_note = "Failed to mark task x as revoked in backend: No result backend is configured."
    assert not _passes(control, revoke_note, logging.WARNING)
    assert _passes(control, "Terminating x (15)", logging.WARNING)


def test_debug_keeps_everything(restored: None) -> None:
    logging.getLogger("alembic").setLevel(logging.NOTSET)
    quiet_library_logs("debug")
    assert logging.getLogger("alembic").level == logging.NOTSET
