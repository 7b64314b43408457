"""``cache="content"`` under ``ductwork run`` (issue 13): the in-process run keeps and reads the
same fingerprints as the scheduler, so a second run of an unchanged flow runs nothing and says
so, its reused results flow downstream, a change of one parameter, one input file or one
function runs exactly the tasks it reaches, and ``ductwork why`` names the cause. Each command
is a separate ``ductwork`` process, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from ductwork_process import ductwork_process

INCREMENTAL = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import Asset, flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])
    RAW = Path(os.environ["DUCTWORK_TEST_DATA"]) / "raw.txt"
    LOOKUP = Path(os.environ["DUCTWORK_TEST_DATA"]) / "lookup.txt"

    def executed(run_id, name, value=""):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{run_id} {name} {value}\\n")

    @task(inlets=[Asset(str(RAW))])
    def read_raw(run_id):
        executed(run_id, "read_raw")
        return [int(x) for x in RAW.read_text().split()]

    @task(inlets=[Asset(str(LOOKUP))])
    def read_lookup(run_id):
        executed(run_id, "read_lookup")
        return LOOKUP.read_text().strip()

    @task
    def clean(rows, threshold, run_id):
        executed(run_id, "clean", rows)
        return [r for r in rows if r >= threshold]  # CLEAN-BODY

    @task
    def report(rows, label, run_id):
        executed(run_id, "report", f"{label}: {sum(rows)}")
        return f"{label}: {sum(rows)}"

    @flow(schedule=None, cache="content")
    def incremental(threshold: int = 2):
        report(clean(read_raw(), threshold), read_lookup())
    """
)

ALL = {"read_raw", "read_lookup", "clean", "report"}


class Project:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.data = tmp / "data"
        self.flows = tmp / "flows"
        for folder in (self.marks, self.data, self.flows):
            folder.mkdir()
        (self.data / "raw.txt").write_text("1 2 3 4")
        (self.data / "lookup.txt").write_text("total")
        (self.flows / "incremental.py").write_text(INCREMENTAL)
        self.env = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_TEST_MARKS": str(self.marks),
            "DUCTWORK_TEST_DATA": str(self.data),
        }

    def ductwork(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ductwork_process(*args, env=self.env, cwd=self.tmp)

    def json(self, *args: str) -> Any:
        done = self.ductwork(*args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def run(self, *params: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The run's JSON summary, and what each task that executed wrote (by task)."""
        summary = self.json("run", "incremental", "--no-progress", *params)
        assert summary["state"] == "success", summary
        return summary, self.executed(summary["run_id"])

    def executed(self, run_id: str) -> dict[str, str]:
        log = self.marks / "executed.log"
        lines = log.read_text().splitlines() if log.exists() else []
        out = {}
        for line in lines:
            rid, name, value = line.split(" ", 2)
            if rid == run_id:
                out[name] = value
        return out


def _cached(summary: dict[str, Any]) -> set[str]:
    return {t for t, info in summary["tasks"].items() if info["reused_from"]}


def test_a_second_run_of_an_unchanged_flow_runs_nothing_and_changes_run_exactly_what_they_reach(
    tmp_path: Path,
) -> None:
    p = Project(tmp_path)
    first, ran = p.run()
    assert set(ran) == ALL and _cached(first) == set()
    assert p.json("why", "incremental", "clean", first["run_id"])["text"] == (
        "ran: there was no earlier successful try of this task to compare with"
    )

    second, ran = p.run()
    assert set(ran) == set()  # nothing changed: every cached task reused its result
    assert _cached(second) == ALL
    assert {info["reused_from"] for t, info in second["tasks"].items() if t in ALL} == {first["run_id"]}
    why = p.json("why", "incremental", "report", second["run_id"])
    assert why["decision"] == "up_to_date" and why["matched_run_id"] == first["run_id"]
    shown = p.ductwork("run", "incremental", "--no-progress")
    assert shown.returncode == 0, shown.stderr
    assert "up to date (cache): reused run" in shown.stdout and "4 of them up to date, not run" in shown.stdout

    third, ran = p.run("--param", "threshold=3")
    assert set(ran) == {"clean", "report"}
    assert ran["clean"] == "[1, 2, 3, 4]"  # read_raw's reused result reached it
    assert ran["report"] == "total: 7"  # and read_lookup's
    assert _cached(third) == {"read_raw", "read_lookup"}
    assert [r["text"] for r in p.json("why", "incremental", "clean", third["run_id"])["reasons"]] == [
        "parameter 'threshold' changed"
    ]
    assert p.json("why", "incremental", "read_raw", third["run_id"])["decision"] == "up_to_date"
    assert "input 'clean' changed" in p.ductwork("why", "incremental", "report", third["run_id"]).stdout

    (p.data / "lookup.txt").write_text("sum")
    fourth, ran = p.run("--param", "threshold=3")
    assert set(ran) == {"read_lookup", "report"} and ran["report"] == "sum: 7"
    reasons = p.json("why", "incremental", "read_lookup", fourth["run_id"])["reasons"]
    assert [r["name"] for r in reasons] == [f"asset:file://{p.data / 'lookup.txt'}"]

    source = (p.flows / "incremental.py").read_text()
    (p.flows / "incremental.py").write_text(source.replace("r >= threshold]", "r >= threshold + 1]"))
    fifth, ran = p.run("--param", "threshold=3")
    assert set(ran) == {"clean", "report"} and ran["report"] == "sum: 4"
    assert p.json("why", "incremental", "clean", fifth["run_id"])["reasons"][0]["text"] == "code changed: clean"
    assert p.json("why", "incremental", "read_raw")["decision"] == "up_to_date"  # the latest run by default


def test_a_run_that_is_not_recorded_runs_every_task(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.run()
    summary = p.json("run", "incremental", "--no-progress", "--no-record")
    assert summary["state"] == "success" and _cached(summary) == set()
    assert set(p.executed(summary["run_id"])) == ALL


SETS = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    @task(cache="content")
    def letters(run_id):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{run_id} letters -\\n")
        # with results_pickle on, kept pickled; then unreadable by a run with it off (read here:
        # a module-level constant the task reads is part of its code)
        return complex(1, 2) if os.environ.get("DUCTWORK_RESULTS_PICKLE") == "true" else 1

    @flow(schedule=None)
    def sets():
        letters()
    """
)


def test_a_result_that_was_not_kept_makes_the_task_run_and_why_says_so(tmp_path: Path) -> None:
    p = Project(tmp_path)
    (p.flows / "sets.py").write_text(SETS)
    p.env["DUCTWORK_RESULTS_PICKLE"] = "true"
    first = p.json("run", "sets", "--no-progress")
    del p.env["DUCTWORK_RESULTS_PICKLE"]
    second = p.json("run", "sets", "--no-progress")
    assert second["state"] == "success" and _cached(second) == set()
    assert set(p.executed(second["run_id"])) == {"letters"}
    why = p.json("why", "sets", "letters", second["run_id"])
    assert why["decision"] == "ran"
    assert why["text"] == (f"ran because the results of run {first['run_id']}, whose try matched, could not be read")


KINDS = textwrap.dedent(
    """
    import datetime as dt
    import os
    from pathlib import Path
    from ductwork import flow, task

    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    @task
    def kinds():
        return {"when": dt.date(2024, 1, 2), "raw": b"ab", "pair": (1, 2), "tags": {"a"}}

    @task
    def big():
        return list(range(5000))

    @task
    def check(k, b, run_id):
        assert k["when"] == dt.date(2024, 1, 2) and k["raw"] == b"ab", k
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{run_id} check {len(b)}\\n")

    @flow(schedule=None)
    def kinds_flow():
        check(kinds(), big())
    """
)


def test_ductwork_run_keeps_every_result_the_store_takes_and_offloads_large_ones(tmp_path: Path) -> None:
    # Results holding dates, bytes, tuples or sets were not recorded by `ductwork run` (only what
    # json.dumps takes), so a task cleared afterwards and run by a scheduler got None; large values
    # went to the database whatever results_offload_url said.
    import sqlalchemy as sa

    p = Project(tmp_path)
    (p.flows / "kinds_flow.py").write_text(KINDS)
    store = tmp_path / "objects"
    p.env["DUCTWORK_RESULTS_OFFLOAD_URL"] = store.as_uri()
    p.env["DUCTWORK_RESULTS_OFFLOAD_THRESHOLD"] = "1000"
    summary = p.json("run", "kinds_flow", "--no-progress")
    assert summary["state"] == "success", summary
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'ductwork.db'}")
    with engine.connect() as conn:
        rows = {r.task_id: r for r in conn.execute(sa.text("SELECT task_id, value, reference, size FROM task_results"))}
    engine.dispose()
    assert set(rows) == {"kinds", "big"}
    assert rows["big"].value is None and rows["big"].reference and rows["big"].size > 1000
    assert list(store.rglob("*.json")), "the large value is in the object store"
    assert rows["kinds"].value is not None and rows["kinds"].reference is None

    from ductwork.core.results import MISSING
    from ductwork.store.results import SqlResults

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'ductwork.db'}")
    results = SqlResults(engine)
    key = f"kinds_flow/{summary['run_id']}"
    kinds = results.pull(key, "kinds")
    assert kinds is not MISSING and kinds["raw"] == b"ab" and kinds["pair"] == (1, 2)
    assert results.pull(key, "big") == list(range(5000))
    engine.dispose()


DATED = """
from ductwork import flow, task

@task
def daily(ds=None):
    open({out!r}, "a").write(f"daily {{ds}}\\n")
    return ds

@task
def whole(**context):
    open({out!r}, "a").write(f"whole {{context['data_interval_start'].date()}}\\n")

@task
def undated(run_id=None):
    open({out!r}, "a").write("undated\\n")

@flow(schedule="@daily", cache="content")
def dated():
    daily(); whole(); undated()
"""


def test_a_cached_task_that_reads_the_logical_date_runs_again_for_another_date(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Its result depends on the date: day 2 must not get day 1's result (a backfill did)."""
    out = tmp_path / "executed.txt"
    (tmp_path / "dated.py").write_text(DATED.format(out=str(out)))
    for day in ("2024-01-01", "2024-01-02", "2024-01-02"):
        assert cli("run", "dated.py", "--date", day).exit_code == 0
    assert sorted(out.read_text().splitlines()) == [
        "daily 2024-01-01",
        "daily 2024-01-02",  # another date: the tasks that read it run again
        "undated",  # once: it reads no date
        "whole 2024-01-01",
        "whole 2024-01-02",
    ]  # the same date again: up to date
    why = cli("why", "dated", "daily", "--json")
    assert "context:ds" in why.output


def test_runs_show_says_which_tasks_were_up_to_date_and_whose_results_they_took(tmp_path: Path) -> None:
    """``ductwork runs show`` listed a cache hit as a plain success: nothing told it from a task
    that ran, unlike ``ductwork run``'s own summary."""
    p = Project(tmp_path)
    first, _ = p.run()
    third, ran = p.run("--param", "threshold=3")
    assert set(ran) == {"clean", "report"}

    shown = p.json("runs", "show", "incremental", third["run_id"])["tasks"]
    assert {t: info.get("reused_from") for t, info in shown.items()} == {
        "read_raw": first["run_id"],
        "read_lookup": first["run_id"],
        "clean": None,
        "report": None,
    }
    table = p.ductwork("runs", "show", "incremental", third["run_id"])
    assert table.returncode == 0, table.stderr
    lines = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.count("│") > 4}
    assert "up to date (cache): reused run" in lines["read_raw"] and "up to date" in lines["read_lookup"]
    assert "up to date" not in lines["clean"] and "up to date" not in lines["report"]
    untouched = p.json("runs", "show", "incremental", first["run_id"])["tasks"]
    assert all("reused_from" not in info for info in untouched.values())


WRITER = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import Asset, flow, task

    OUT = Path(os.environ["DUCTWORK_TEST_DATA"]) / "out.json"
    MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

    @task(outlets=[Asset(str(OUT))])
    def write(run_id):
        with (MARKS / "executed.log").open("a") as fh:
            fh.write(f"{run_id} write x\\n")
        OUT.write_text("[1, 2]")
        return 2

    @flow(schedule=None, cache="content")
    def writer():
        write()
    """
)


def test_a_task_whose_output_was_deleted_is_not_up_to_date(tmp_path: Path) -> None:
    """Its code, parameters and inputs matched an earlier try, so it was reused ('up to date')
    and the file it writes stayed missing; a gone outlet runs it, and `why` says so."""
    p = Project(tmp_path)
    (p.flows / "writer.py").write_text(WRITER)
    out = p.data / "out.json"
    first = p.json("run", "writer", "--no-progress")
    second = p.json("run", "writer", "--no-progress")
    assert _cached(second) == {"write"} and out.exists()
    out.unlink()
    third = p.json("run", "writer", "--no-progress")
    assert _cached(third) == set() and out.read_text() == "[1, 2]"
    assert set(p.executed(third["run_id"])) == {"write"} and first["state"] == "success"
    reasons = p.json("why", "writer", "write", third["run_id"])["reasons"]
    assert [r["text"] for r in reasons] == [f"its output {out.as_uri()!r} is gone"]
