"""A ``Flow.from_task`` flow of a Luigi task takes its parameters from luigi.cfg on every door
a run comes through, as Luigi and ``ductwork build`` do: the scheduler's scheduled runs, a
trigger (handed to the scheduler or written by the command), ``flows show``. It took the class's
defaults instead (``[Report] region = west`` built east), and a luigi.cfg edited later was not
seen until the flow file itself changed."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process, stop_process

FLOW = textwrap.dedent(
    """
    import datetime as dt
    import os
    import luigi
    from ductwork import Flow

    class Report(luigi.Task):
        region = luigi.Parameter(default="east")
        day = luigi.DateParameter()

        def output(self):
            return luigi.LocalTarget(os.path.join(os.environ["REPORT_OUT"], f"{self.day}-{self.region}.txt"))

        def run(self):
            with self.output().open("w") as out:
                out.write(self.region)

    start = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    report = Flow.from_task(Report, flow_id="report", date_param="day", schedule="@daily", start_date=start, catchup=True)
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text(FLOW)
    (tmp_path / "out").mkdir()
    return {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "REPORT_OUT": str(tmp_path / "out"),
    }


def _runs(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    done = ductwork_process("runs", "list", "report", "--json", env=env, cwd=cwd)
    return json.loads(done.stdout)["runs"] if done.returncode == 0 else []


def _params(env: dict[str, str], cwd: Path, run_id: str) -> dict[str, object]:
    done = ductwork_process("runs", "show", "report", run_id, "--json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["params"]


def test_scheduled_and_triggered_runs_take_luigi_cfg_and_its_later_edits(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "luigi.cfg").write_text("[Report]\nregion = west\n")
    scheduler = scheduler_process(env, tmp_path, tmp_path / "scheduler.log")
    try:
        deadline = time.monotonic() + 90
        while not ((runs := _runs(env, tmp_path)) and len(runs) >= 2 and all(r["state"] == "success" for r in runs)):
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()[-3000:]
            time.sleep(0.3)
        made = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert made and all(name.endswith("-west.txt") for name in made), made
        assert all(_params(env, tmp_path, str(r["run_id"]))["region"] == "west" for r in runs)

        shown = ductwork_process("flows", "show", "report", env=env, cwd=tmp_path)
        assert "west" in shown.stdout and "east" not in shown.stdout, shown.stdout

        # luigi.cfg edited while the scheduler runs: the next trigger takes the new value.
        (tmp_path / "luigi.cfg").write_text("[Report]\nregion = north\n")
        deadline = time.monotonic() + 60
        while True:
            run_id = f"t{int(time.monotonic() * 1000)}"
            done = ductwork_process("trigger", "report", "--run-id", run_id, env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            if _params(env, tmp_path, run_id)["region"] == "north":
                break
            assert time.monotonic() < deadline, "the edited luigi.cfg was never read"
            time.sleep(0.5)
    finally:
        stop_process(scheduler)


def test_a_trigger_without_a_scheduler_takes_luigi_cfg_and_sees_it_change(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "luigi.cfg").write_text("[Report]\nregion = west\n")
    for run_id, region, cfg in [("a", "west", None), ("b", "north", "north"), ("c", "east", "")]:
        if cfg == "":
            (tmp_path / "luigi.cfg").unlink()
        elif cfg:
            (tmp_path / "luigi.cfg").write_text(f"[Report]\nregion = {cfg}\n")
        done = ductwork_process("trigger", "report", "--run-id", run_id, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert _params(env, tmp_path, run_id)["region"] == region, run_id
