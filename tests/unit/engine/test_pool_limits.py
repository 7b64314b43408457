"""Pool limits as the scheduler applies them: a task naming a pool that does not exist (a typo)
runs without a limit, and the scheduler's log says so once per pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from ductwork.core.graph import NodeSpec
from ductwork.engine.supervisor import Limits


def test_a_pool_that_does_not_exist_is_named_in_a_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    limits = Limits(pools={"default_pool": 128, "db": 1}, pools_known=True)
    with caplog.at_level("WARNING", logger="ductwork.scheduler"):
        assert limits.fits(NodeSpec("a", pool="dbb"))
        assert limits.fits(NodeSpec("b", pool="dbb"))
        assert limits.fits(NodeSpec("c"))  # the default pool: nothing to say
        limits.acquire(NodeSpec("d", pool="db"))
        assert not limits.fits(NodeSpec("e", pool="db"))
    said = [r.getMessage() for r in caplog.records]
    assert said == ["task a uses pool 'dbb', which does not exist: it runs without a pool limit (create it with "
                    "`ductwork pools set dbb SLOTS`)"]  # fmt: skip


def test_in_process_runs_know_no_pools_and_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ductwork.scheduler"):
        assert Limits().fits(NodeSpec("a", pool="anything"))
    assert caplog.records == []


def test_a_schedulers_scope_is_the_flows_of_its_folders(tmp_path: Path) -> None:
    """ADR 0024: the flows whose file lies in the folders (or that have none) are served."""
    from ductwork.engine.triggerer import folder_scope

    flows, stored, elsewhere = tmp_path / "flows", tmp_path / "stored", tmp_path / "work"
    for folder in (flows / "sub", stored, elsewhere):
        folder.mkdir(parents=True)
    (tmp_path / "link").symlink_to(flows)
    inside = folder_scope(flows, stored)
    assert inside("a", str(flows / "sub" / "a.py")) and inside("b", str(stored / "b.yaml"))
    assert inside("c", str(tmp_path / "link" / "c.py"))  # the same folder by another name
    assert not inside("d", str(elsewhere / "d.py")) and not inside("e", str(tmp_path / "flows_old.py"))
    assert inside("f", None)


def test_a_task_needing_more_slots_than_its_pool_has_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """It waited for ever with nothing in the scheduler's log (Airflow logs it)."""
    limits = Limits(pools={"one": 1}, resources={"db": 2})
    wide = NodeSpec("wide", pool="one", pool_slots=3)
    hungry = NodeSpec("hungry", resources={"db": 5})
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert not limits.fits(wide)
            assert not limits.fits(hungry)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert "3 slots of pool 'one', which has 1" in said[0] and "5 of resource 'db'" in said[1]
