"""The CLI's flow index (``cli.flow_index``) serves a remembered parse only to the Ductwork that
made it: another version, or a graph model of another shape (a field added to ``FlowMeta``
during a release's development, where the version stays the same), parses the files again. A
record of another shape was served, its missing fields read as their defaults. Records of
contexts not used for a month are deleted: each context kept its files for ever."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import ductwork
from ductwork.core import graph
from tests.conftest import Cli

COUNTED = textwrap.dedent(
    """
    from pathlib import Path
    from ductwork import EmptyOperator, Flow

    with (Path(__file__).parent.parent / "imports.txt").open("a") as out:
        out.write("x")
    with Flow("counted", schedule="@daily") as counted:
        EmptyOperator(task_id="t")
    """
)


@pytest.fixture
def listed(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    monkeypatch.setenv("DUCTWORK_HOME", str(tmp_path / "home"))
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "counted.py").write_text(COUNTED)

    def imports_after_listing() -> int:
        result = cli("flows", "list", "--json")
        assert result.exit_code == 0, result.output
        assert [f["flow_id"] for f in json.loads(result.output)["flows"]] == ["counted"]
        return len((tmp_path / "imports.txt").read_text())

    return imports_after_listing


def test_a_new_field_of_the_graph_model_parses_the_files_again(
    listed: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert listed() == 1
    assert listed() == 1  # remembered

    @dataclasses.dataclass(frozen=True)
    class GrownMeta(graph.FlowMeta):
        priority_class: str = ""

    monkeypatch.setattr(graph, "FlowMeta", GrownMeta)
    assert listed() == 2, "a record of the graph model's older shape was served"
    assert listed() == 2


def test_another_version_parses_the_files_again(listed: Callable[[], int], monkeypatch: pytest.MonkeyPatch) -> None:
    assert listed() == 1
    monkeypatch.setattr(ductwork, "__version__", "99.0.0")
    assert listed() == 2


def test_the_records_of_contexts_unused_for_a_month_are_deleted(listed: Callable[[], int], tmp_path: Path) -> None:
    folder = tmp_path / "home" / "cache" / "flow-index"
    (folder / "graphs").mkdir(parents=True)
    month_ago = time.time() - 31 * 86400
    old = [folder / "0123456789abcdef.json", folder / "graphs" / "0123456789abcdef01234567.json"]
    recent = folder / "fedcba9876543210.json"
    for path in [*old, recent]:
        path.write_text("{}")
    for path in old:
        os.utime(path, (month_ago, month_ago))
    assert listed() == 1
    assert not any(p.exists() for p in old)
    assert recent.exists()
    assert len(list(folder.glob("*.json"))) == 2 and len(list((folder / "graphs").glob("*.json"))) == 1
