"""The four examples run to success, through the same code path as `make demo`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ductwork.testing import build, run_flow
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def in_tmp(tmp_path: Path) -> Path:
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def _load(name: str, flow_id: str):  # type: ignore[no-untyped-def]
    from ductwork.loading import load_flow

    return load_flow(f"{EXAMPLES / name}:{flow_id}", EXAMPLES)


def test_four_step_pipeline_writes_its_report(in_tmp: Path) -> None:
    result = run_flow(_load("four_step_pipeline.py", "four_step_pipeline"), logical_date="2024-01-31T00:00:00+00:00")
    assert result.state == "success", result.task_states
    report = (in_tmp / "demo-output/four_step/reports/sales_2024-01-31.md").read_text()
    assert report.startswith("# Sales report for 2024-01-31")
    loaded = result.result("etl")
    assert loaded["kept"] + loaded["dropped"] == 180 and loaded["dropped"] > 0


def test_luigi_reports_build_then_nothing_to_do(in_tmp: Path) -> None:
    from ductwork.loading import import_file

    module = import_file(EXAMPLES / "luigi_reports.py")
    first = build(module.AllReports(date="2024-01-31", days=2), workers=2)
    assert first.state == "success"
    assert len(first.tasks) == 1 + 2 + 2 * 4 + 2
    assert (in_tmp / "demo-output/luigi/summaries/2024-01-30.txt").exists()
    second = build(module.AllReports(date="2024-01-31", days=2))
    assert list(second.tasks) == ["AllReports(date=2024-01-31, days=2)"]
    assert second["AllReports(date=2024-01-31, days=2)"].already_complete


def test_luigi_reports_as_a_scheduled_flow(in_tmp: Path) -> None:
    flow = _load("luigi_reports.py", "luigi_reports_daily")
    result = run_flow(flow, logical_date="2024-02-10T00:00:00+00:00", params={"days": 1})
    assert result.state == "success"
    assert "DailySummary(date=2024-02-10)" in result.tasks


def test_ml_pipeline_writes_metrics(in_tmp: Path) -> None:
    result = run_flow(
        _load("ml_pipeline.py", "ml_pipeline"), params={"test_size": "0.3"}, logical_date="2024-01-31T00:00:00+00:00"
    )
    assert result.state == "success", result.task_states
    metrics = json.loads((in_tmp / "demo-output/ml/metrics_2024-01-31.json").read_text())
    assert metrics["n_test"] == 54 and 0.8 < metrics["accuracy"] <= 1.0


def test_branching_follows_the_weekday_and_short_circuits(in_tmp: Path) -> None:
    flow = _load("branching.py", "branching")
    sunday = run_flow(flow, logical_date="2024-01-28T06:00:00+00:00")
    assert sunday.task_states["full_refresh"] == "success" and sunday.task_states["incremental"] == "skipped"
    assert sunday.result("count_rows") == 1000 and sunday.task_states["publish"] == "success"
    monday = run_flow(flow, logical_date="2024-01-29T06:00:00+00:00", params={"min_rows": 5000})
    assert monday.task_states["incremental"] == "success" and monday.task_states["full_refresh"] == "skipped"
    assert monday.task_states["publish"] == "skipped" and monday.task_states["notify"] == "skipped"


def test_demo_commands_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(EXAMPLES / "branching.py"), "--date", "2024-01-28", "--no-progress")
    assert result.exit_code == 0, result.output
    logs = list((tmp_path / "ductwork-home" / "logs").rglob("*.log"))
    assert any("partition north: 100 rows" in p.read_text() for p in logs)
