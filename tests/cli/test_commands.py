"""The CLI end to end: run, build (Luigi's form), flows list/show/graph, config."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES, Cli

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = textwrap.dedent(
    """
    from pathlib import Path
    from ductwork import Config, IntParameter, LocalTarget, PathParameter, Task, WrapperTask

    class Settings(Config):
        out = PathParameter(default=Path("out"))

    class Part(Task):
        i = IntParameter()
        def output(self):
            return LocalTarget(Settings().out / f"part-{self.i}.txt")
        def run(self):
            with self.output().open("w") as fh:
                fh.write(str(self.i))

    class Merge(Task):
        group = IntParameter()
        size = IntParameter(default=10)
        def requires(self):
            return [Part(i=self.group * self.size + k) for k in range(self.size)]
        def output(self):
            return LocalTarget(Settings().out / f"merge-{self.group}.txt")
        def run(self):
            with self.output().open("w") as fh:
                fh.write(str(sum(int(t.read_text()) for t in self.input())))

    class Everything(WrapperTask):
        groups = IntParameter(default=3)
        size = IntParameter(default=10)
        def requires(self):
            return [Merge(group=g, size=self.size) for g in range(self.groups)]
    """
)


def test_build_luigi_form_runs_once_then_reports_all_complete(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    first = cli(
        "build",
        "--module",
        "pipeline",
        "Everything",
        "--groups",
        "2",
        "--workers",
        "2",
        "--local-scheduler",
        "--Settings-out",
        "built",
        "--no-progress",
    )
    assert first.exit_code == 0, first.output
    assert "Scheduled 23 tasks of which:" in first.output
    assert "* 23 ran successfully" in first.output
    assert (tmp_path / "built" / "merge-1.txt").read_text() == str(sum(range(10, 20)))
    second = cli("build", "--module", "pipeline", "Everything", "--groups", "2", "--Settings-out", "built")
    assert second.exit_code == 0
    assert "* 1 complete ones were encountered" in second.output
    assert "Nothing to do" in second.output


WAITING = textwrap.dedent(
    """
    from ductwork import ExternalTask, IntParameter, LocalTarget, Task, WrapperTask

    class Raw(ExternalTask):
        i = IntParameter()
        def output(self):
            return LocalTarget(f"raw-{self.i}.txt")

    class Clean(Task):
        i = IntParameter()
        def requires(self):
            return Raw(i=self.i)
        def output(self):
            return LocalTarget(f"clean-{self.i}.txt")
        def run(self):
            self.output().write_text(self.input().read_text())

    class Both(WrapperTask):
        def requires(self):
            return [Clean(i=1), Clean(i=2)]
    """
)


def test_build_with_missing_external_data_says_what_was_left_pending(cli: Cli, tmp_path: Path) -> None:
    """The summary of a build whose external data is missing counts what was left pending, as
    Luigi's; a second build said 'Nothing to do: everything was already complete.' instead."""
    (tmp_path / "waiting.py").write_text(WAITING)
    (tmp_path / "raw-1.txt").write_text("one")
    first = cli("build", "--module", "waiting", "Both", "--no-progress", "--no-record")
    assert first.exit_code == 1, first.output
    assert "* 1 ran successfully" in first.output
    assert "* 3 were left pending, among these:" in first.output
    assert "    * 1 were missing external dependencies" in first.output
    assert "    * 2 had missing dependencies" in first.output
    second = cli("build", "--module", "waiting", "Both", "--no-progress", "--no-record")
    assert second.exit_code == 1, second.output
    assert "* 1 complete ones were encountered" in second.output
    assert "Nothing to do" not in second.output and "* 3 were left pending" in second.output


def test_a_thousand_task_luigi_pipeline_builds_and_then_is_complete(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    first = cli("build", "--module", "pipeline", "Everything", "--groups", "33", "--size", "30", "--json")
    data = json.loads(first.output)
    assert first.exit_code == 0
    assert data["state"] == "success"
    assert data["counts"] == {"success": 33 * 30 + 33 + 1}
    assert len(list((tmp_path / "out").iterdir())) == 33 * 30 + 33
    second = cli("build", "--module", "pipeline", "Everything", "--groups", "33", "--size", "30", "--json")
    again = json.loads(second.output)
    assert list(again["tasks"]) == ["Everything(groups=33, size=30)"]
    assert again["tasks"]["Everything(groups=33, size=30)"]["already_complete"] is True
    assert again["tasks"]["Everything(groups=33, size=30)"]["tries"] == []


def test_build_errors_name_the_task_and_parameter(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    result = cli("build", "--module", "pipeline", "Merge")
    assert result.exit_code == 2 and "Merge: missing required parameter 'group' (int)" in result.output
    result = cli("build", "--module", "pipeline", "Merge", "--group", "x")
    assert result.exit_code == 2 and "Merge: parameter 'group' wants int, got 'x'" in result.output
    result = cli("build", "--module", "pipeline", "Merge", "--grup", "1")
    assert result.exit_code == 2 and "unknown parameter --grup" in result.output and "Did you mean" in result.output
    (tmp_path / "settings.py").write_text(
        "from ductwork import Config, IntParameter\nclass merging(Config):\n    max_rows = IntParameter(default=1)\n"
    )
    result = cli("build", "--module", "pipeline", "--module", "settings", "Merge", "--group", "1", "--max-rows", "2")
    assert result.exit_code == 2 and "Did you mean 'merging-max-rows'?" in result.output  # as it is typed
    result = cli("build", "--module", "pipeline", "Merj")
    assert result.exit_code == 2 and "no task class named 'Merj'. Did you mean 'Merge'" in result.output


def test_a_bad_parameter_given_in_requires_names_the_line_that_gave_it(cli: Cli, tmp_path: Path) -> None:
    # It said "Part: parameter 'i' wants int, got 'seven'" and left the user to find where.
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "bad.py").write_text(
        "from ductwork import WrapperTask\n"
        "from pipeline import Part\n"
        "\n"
        "class Broken(WrapperTask):\n"
        "    def requires(self):\n"
        "        return [Part(i=1), Part(i='seven')]\n"
    )
    result = cli("build", "--module", "bad", "Broken", "--no-record")
    assert result.exit_code == 2, result.output
    assert "Error: bad.py:6: Part: parameter 'i' wants int, got 'seven'" in result.output
    root = cli("build", "--module", "pipeline", "Merge", "--group", "x")  # the command line's: no file
    assert "Error: Merge: parameter 'group' wants int" in root.output


def test_retry_table_shows_the_tries_and_exit_status(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from ductwork import Flow, PythonOperator

            def flaky():
                marker = Path("attempts")
                n = int(marker.read_text()) + 1 if marker.exists() else 1
                marker.write_text(str(n))
                if n < 3:
                    raise RuntimeError(f"attempt {n}")
                return n

            with Flow("flaky") as f:
                PythonOperator(task_id="t", python_callable=flaky, retries=2, retry_delay=0)
                PythonOperator(task_id="never", python_callable=lambda: 1 / 0)
            """
        )
    )
    result = cli("run", "flaky.py:flaky", "--no-progress")
    assert result.exit_code == 1
    lines = [line.replace("│", " ").split() for line in result.output.splitlines()]
    assert any(line[:3] == ["t", "1", "up_for_retry"] and "RuntimeError:" in line for line in lines)
    assert any(line[:3] == ["t", "2", "up_for_retry"] for line in lines)
    assert any(line[:3] == ["t", "3", "success"] for line in lines)
    assert "ZeroDivisionError: division by zero" in result.output
    ok = cli("run", "flaky.py:flaky", "--task", "t")
    assert ok.exit_code == 0


def test_flows_list_show_and_json(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    listed = json.loads(cli("flows", "list", "--json").output)
    ids = {f["flow_id"]: f for f in listed["flows"]}
    assert {"four_step_pipeline", "ml_pipeline", "branching", "luigi_reports_daily"} <= set(ids)
    assert ids["four_step_pipeline"]["schedule"] == "@daily"
    assert ids["luigi_reports_daily"]["style"] == "class_tasks"
    assert listed["errors"] == []
    shown = cli("flows", "show", "four_step_pipeline")
    assert shown.exit_code == 0
    assert "retrieve.eu" in shown.output and "announce" in shown.output
    graph = json.loads(cli("flows", "show", "four_step_pipeline", "--json").output)
    nodes = {n["task_id"]: n for n in graph["nodes"]}
    assert set(nodes["etl"]["upstream"]) == {"retrieve.eu", "retrieve.us", "retrieve.apac"}


def test_flows_graph_writes_a_valid_svg_of_the_four_step_pipeline(cli: Cli, tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        if REQUIRE_SERVICES:
            pytest.fail("Graphviz's dot is required on CI (scripts/system-deps.sh installs it)")
        pytest.skip("Graphviz's dot is not installed")
    result = cli(
        "flows", "graph", str(ROOT / "examples" / "four_step_pipeline.py"), "--format", "svg", "-o", "pipeline.svg"
    )
    assert result.exit_code == 0, result.output
    root = ET.parse(tmp_path / "pipeline.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {el.text for el in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {"retrieve.eu", "etl", "aggregate", "report", "etl->aggregate"} <= titles
    dot = cli("flows", "graph", str(ROOT / "examples" / "four_step_pipeline.py"), "--format", "dot", "-o", "-")
    assert dot.output.startswith('digraph "four_step_pipeline"')


def test_flows_graph_draws_in_the_format_its_output_file_names(cli: Cli, tmp_path: Path) -> None:
    """`flows graph etl -o etl.png` wrote SVG into etl.png (and `-o etl.dot` SVG too): the
    format followed --format's default, not the file's suffix."""
    if shutil.which("dot") is None:
        if REQUIRE_SERVICES:
            pytest.fail("Graphviz's dot is required on CI (scripts/system-deps.sh installs it)")
        pytest.skip("Graphviz's dot is not installed")
    pipeline = str(ROOT / "examples" / "four_step_pipeline.py")
    assert cli("flows", "graph", pipeline, "-o", "g.png").exit_code == 0
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert cli("flows", "graph", pipeline, "-o", "g.dot").exit_code == 0
    assert (tmp_path / "g.dot").read_text().startswith('digraph "four_step_pipeline"')
    clash = cli("flows", "graph", pipeline, "--format", "svg", "-o", "h.png")
    assert clash.exit_code == 2, clash.output
    assert "--format svg does not match the output file 'h.png'" in clash.output
    assert not (tmp_path / "h.png").exists()


def test_flows_graph_refuses_a_file_suffix_it_does_not_draw(cli: Cli, tmp_path: Path) -> None:
    """`flows graph etl -o etl.gif` (or .jpg, .pdf) wrote SVG under a picture's name."""
    pipeline = str(ROOT / "examples" / "four_step_pipeline.py")
    said = cli("flows", "graph", pipeline, "-o", "g.gif")
    assert said.exit_code == 2 and ".gif is no format flows graph draws" in said.output, said.output
    assert not (tmp_path / "g.gif").exists()
    assert cli("flows", "graph", pipeline, "-o", "g.gif", "--format", "dot").exit_code == 0  # asked for


def test_flows_graph_help_says_where_a_redirected_drawing_goes(cli: Cli) -> None:
    """The help said the default output is FLOW.FORMAT, but run from cron or a pipe (standard
    output not a terminal) the drawing went to standard output and no file was written."""
    helped = " ".join(cli("flows", "graph", "--help").output.split())
    assert "standard output when it is redirected" in helped, helped


def test_an_output_file_that_cannot_be_written_is_one_line_naming_it(cli: Cli, tmp_path: Path) -> None:
    """`flows graph -o` and `flows export -o` into a folder that does not exist were a traceback."""
    missing = tmp_path / "no" / "such" / "folder"
    for args in (
        ("flows", "graph", str(ROOT / "examples" / "four_step_pipeline.py"), "--format", "dot", "-o"),
        ("flows", "export", str(ROOT / "examples" / "four_step_pipeline.py"), "-o"),
    ):
        result = cli(*args, str(missing / "out.txt"))
        assert result.exit_code == 2, result.output
        assert f"Error: cannot write '{missing / 'out.txt'}': No such file or directory" in result.output
        assert "Traceback" not in result.output


def test_relative_paths_in_a_settings_file_are_read_from_its_folder(cli: Cli, tmp_path: Path) -> None:
    """`DUCTWORK_CONFIG=/srv/etl/ductwork.toml` (or `--config`) from another folder (cron, a
    service manager) read `flows_folder = "flows"` and `home = ".dw"` from the working folder:
    no flows, and a new empty database there."""
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "four_step_pipeline.py", project / "flows")
    (project / "ductwork.toml").write_text('[ductwork]\nflows_folder = "flows"\nhome = ".dw"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for how in ("flag", "env"):
        run = Cli(elsewhere)
        args, env = ((), {"DUCTWORK_CONFIG": str(project / "ductwork.toml")})
        if how == "flag":
            args, env = ("--config", str(project / "ductwork.toml")), {}
        listed = run(*args, "flows", "list", "--json", env={"DUCTWORK_HOME": None, **env})  # type: ignore[dict-item]
        assert listed.exit_code == 0, listed.output
        assert [f["flow_id"] for f in json.loads(listed.output)["flows"]] == ["four_step_pipeline"]
        shown = json.loads(run(*args, "config", "--json", env={"DUCTWORK_HOME": None, **env}).output)  # type: ignore[dict-item]
        assert Path(shown["home"]["value"]) == project / ".dw"
    assert not (elsewhere / ".dw").exists() and not (elsewhere / "flows").exists()


def test_help_says_what_each_exit_status_means(cli: Cli) -> None:
    """Scripts branch on the exit status; it was written down command by command only."""
    shown = " ".join(cli("--help").output.split())
    assert "Exit status (every command):" in shown, shown
    for status in ("0 done as asked", "1 done, and what it found failed", "2 refused, nothing changed", "3 trigger"):
        assert status in shown, shown


def test_with_json_an_error_leaves_standard_output_empty(cli: Cli) -> None:
    for args in (("runs", "list", "nope", "--json"), ("variables", "get", "nope", "--json")):
        said = cli(*args)
        assert said.exit_code == 2 and said.stdout == "" and said.stderr.startswith("Error: "), said.output


def test_config_refuses_an_option_it_does_not_know(cli: Cli) -> None:
    """``ductwork config --get x`` or ``--jsno`` printed the settings table and exited 0: options
    were kept for config classes' --Section-param even without --module."""
    mistyped = cli("config", "--jsno")
    assert mistyped.exit_code == 2 and "No such option: --jsno" in mistyped.output, mistyped.output
    assert "setting" not in mistyped.output, mistyped.output
    extra = cli("config", "hme")
    assert extra.exit_code == 2 and "no setting 'hme'. Did you mean 'home'?" in extra.output, extra.output
    assert "setting" not in extra.stdout, extra.output


def test_config_with_a_setting_name_prints_its_value(cli: Cli, tmp_path: Path) -> None:
    """``ductwork config parallelism`` (and Airflow's ``config get-value core parallelism``) said
    "Got unexpected extra argument": a script had to cut the value out of the table or the JSON."""
    (tmp_path / "ductwork.toml").write_text("[ductwork]\nparallelism = 3\n")
    assert cli("config", "parallelism").stdout == "3\n"
    assert cli("config", "get-value", "core", "parallelism").stdout == "3\n"
    env = {"DUCTWORK_DATABASE_URL": "postgresql://etl:pg-secret@db/ductwork"}
    assert cli("config", "database_url", env=env).stdout == "postgresql://etl:***@db/ductwork\n"
    shown = json.loads(cli("config", "flows-folder", "--json", env={"DUCTWORK_FLOWS_FOLDER": "pipes"}).stdout)
    assert shown == {"flows_folder": {"value": "pipes", "source": "env"}}
    two = cli("config", "parallelism", "home")
    assert two.exit_code == 2 and "Got unexpected extra argument (home): give one setting's name" in two.output


def test_config_shows_sources(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ductwork.toml").write_text("[ductwork]\nparallelism = 3\n")
    data = json.loads(cli("config", "--json", env={"DUCTWORK_FLOWS_FOLDER": "pipelines"}).output)
    assert data["parallelism"] == {"value": "3", "source": "config_file"}
    assert data["flows_folder"] == {"value": "pipelines", "source": "env"}


def test_tasks_test_runs_one_task_and_prints_its_log(cli: Cli, tmp_path: Path) -> None:
    result = cli("tasks", "test", str(ROOT / "examples" / "branching.py"), "process_east", "2024-01-31")
    assert result.exit_code == 0, result.output
    assert "partition east: 300 rows" in result.output
    assert "process_east: success" in result.output
    assert not (tmp_path / "ductwork-home" / "ductwork.db").exists()
    # Its upstream task is not run, and no recorded run of that date has its result: said once.
    assert result.output.count("note: the upstream tasks of 'process_east' (") == 1
    assert "are not run and no recorded run has that logical date: values taken from them are None" in (result.output)
    root = cli("tasks", "test", str(ROOT / "examples" / "branching.py"), "start", "2024-01-31")
    assert "note: the upstream tasks" not in root.output
    bad = cli("tasks", "test", str(ROOT / "examples" / "branching.py"), "proces_east")
    assert bad.exit_code == 2 and "has no task 'proces_east'. Did you mean one of 'process_east'" in bad.output


def test_tasks_test_of_a_rescheduled_sensor_prints_its_try_once(cli: Cli, tmp_path: Path) -> None:
    """A sensor in reschedule mode pokes several times in one try: `tasks test` printed that try's
    header and log once per poke."""
    (tmp_path / "pokes.py").write_text(
        "from pathlib import Path\n"
        "from ductwork import BaseSensorOperator, Flow\n"
        f"COUNT = Path({str(tmp_path / 'pokes.txt')!r})\n"
        "class Third(BaseSensorOperator):\n"
        "    def poke(self, context):\n"
        "        n = int(COUNT.read_text()) + 1 if COUNT.exists() else 1\n"
        "        COUNT.write_text(str(n))\n"
        "        print(f'poke number {n}')\n"
        "        return n >= 3\n"
        "with Flow('pokes') as f:\n"
        "    Third(task_id='wait', mode='reschedule', poke_interval=0.01, timeout=60)\n"
    )
    result = cli("tasks", "test", str(tmp_path / "pokes.py"), "wait", "2024-01-31")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pokes.txt").read_text() == "3"
    assert result.output.count("--- wait try 1 ---") == 1
    assert result.output.count("poke number 3") == 1
    assert "wait: success" in result.output


UPSTREAM = """
from ductwork import flow, task

@task
def extract():
    return [1, 2, 3]

@task
def load(rows):
    print("rows:", rows)
    return len(rows)

@flow(schedule="@daily")
def etl():
    load(extract())
"""


def test_tasks_test_reads_the_upstream_results_of_the_recorded_run_of_its_date(cli: Cli, tmp_path: Path) -> None:
    """As Airflow's `tasks test DAG TASK DATE` reads the XComs of that date's run."""
    (tmp_path / "up.py").write_text(UPSTREAM)
    before = cli("tasks", "test", "up.py", "load", "2024-01-31")
    assert before.exit_code == 1 and "no recorded run has that logical date" in before.output
    assert cli("run", "up.py", "--date", "2024-01-31").exit_code == 0
    tested = cli("tasks", "test", "up.py", "load", "2024-01-31")
    assert tested.exit_code == 0, tested.output
    assert "rows: [1, 2, 3]" in tested.output
    assert "note: upstream results of 'load' read from run manual__2024-01-31T00:00:00+00:00: extract" in (
        tested.output
    )
    other_day = cli("tasks", "test", "up.py", "load", "2024-02-01")
    assert other_day.exit_code == 1 and "no recorded run has that logical date" in other_day.output


def test_local_runs_are_recorded_in_the_database_unless_asked_not_to(cli: Cli, tmp_path: Path) -> None:
    ran = cli("run", str(ROOT / "examples" / "branching.py"), "--date", "2024-01-28", "--no-progress")
    assert ran.exit_code == 0, ran.output
    listed = json.loads(cli("runs", "list", "--json").output)
    (run,) = listed["runs"]
    assert (run["flow_id"], run["state"], run["run_type"]) == ("branching", "success", "manual")
    shown = json.loads(cli("runs", "show", "branching", run["run_id"], "--json").output)
    assert shown["tasks"]["full_refresh"]["state"] == "success" and shown["tasks"]["incremental"]["state"] == "skipped"
    logs = cli("tasks", "logs", "branching", run["run_id"], "process_north")
    assert "partition north: 100 rows" in logs.output
    before = json.loads(cli("runs", "list", "--json").output)["total"]
    cli("run", str(ROOT / "examples" / "branching.py"), "--no-record", "--no-progress")
    assert json.loads(cli("runs", "list", "--json").output)["total"] == before


def test_runs_list_shows_whole_run_ids(cli: Cli, tmp_path: Path) -> None:
    """`runs list` cut a manual run's id to 'manual__2026-12-07T08:03:03.140779+…' (at 160
    columns, and to 'manual__2026-12-07T…' in a 120-column terminal): the id `runs show` wants
    could not be copied from it. The id is whole; the other columns give way."""
    (tmp_path / "f.py").write_text(
        "from ductwork import EmptyOperator, Flow\n"
        'with Flow("daily_sales_report") as f:\n    EmptyOperator(task_id="a")\n'
    )
    assert cli("run", "f.py", "--no-progress").exit_code == 0
    (run,) = json.loads(cli("runs", "list", "--json").output)["runs"]
    listed = cli("runs", "list")
    assert run["run_id"] in listed.output and "daily_sales_report" in listed.output, listed.output


def test_config_shows_where_each_class_parameter_came_from(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "settings_mod.py").write_text(
        "from ductwork import Config, IntParameter, PathParameter\n"
        "class Paths(Config):\n"
        "    log_dir = PathParameter(default='logs')\n"
        "    retries = IntParameter(default=1)\n"
        "    depth = IntParameter(default=0)\n"
    )
    (tmp_path / "ductwork.toml").write_text("[Paths]\nretries = 3\ndepth = 9\n")
    result = cli(
        "config",
        "--module",
        "settings_mod",
        "--json",
        "--Paths-log-dir",
        "/cli/logs",
        env={"DUCTWORK_PATHS_DEPTH": "5"},
    )
    params = {
        p["name"]: (p["value"], p["source"]) for p in json.loads(result.output)["parameters"] if p["section"] == "Paths"
    }
    assert params == {"log_dir": ("/cli/logs", "cli"), "retries": ("3", "config_file"), "depth": ("5", "env")}


def test_running_the_same_date_again_records_a_second_run(cli: Cli, tmp_path: Path) -> None:
    for _ in range(2):
        result = cli("run", str(ROOT / "examples" / "branching.py"), "--date", "2024-01-28", "--no-progress")
        assert result.exit_code == 0, result.output
    ids = sorted(r["run_id"] for r in json.loads(cli("runs", "list", "--json").output)["runs"])
    assert ids == ["manual__2024-01-28T00:00:00+00:00", "manual__2024-01-28T00:00:00+00:00.2"]


def test_flows_list_warns_when_the_flows_folder_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    """A typo in the folder would otherwise look like a folder with no flows."""
    result = cli("--flows-folder", str(tmp_path / "flws"), "flows", "list", "--json")
    assert result.exit_code == 0
    assert f"the flows folder {tmp_path / 'flws'} does not exist" in result.stderr
    assert json.loads(result.stdout)["flows"] == []


def test_runs_list_of_an_unknown_flow_says_so(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    assert cli("trigger", "branching").exit_code == 0
    polled = cli("runs", "list", "branchng", "--json")  # a script polling a typo never ends: refused
    assert polled.exit_code == 2 and "no flow 'branchng'" in polled.stderr and not polled.stdout
    listed = cli("runs", "list", "branchng")
    assert listed.exit_code == 2 and "no flow 'branchng'" in listed.stderr and "branching" in listed.stderr
    assert cli("runs", "list", "branching", "--state", "failed").exit_code == 0  # known, no such runs: fine


def test_trigger_wait_without_a_scheduler_says_so_and_times_out(cli: Cli, tmp_path: Path) -> None:
    """Nothing will start the run: the command says so instead of waiting in silence."""
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    waited = cli("trigger", "branching", "--wait", "--timeout", "4")
    assert waited.exit_code == 3
    assert "no scheduler is running on this database" in waited.stderr
    assert "timed out after 4s: the run is still queued" in waited.stderr


def test_tasks_test_of_an_unknown_task_suggests_the_closest(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    shown = json.loads(cli("flows", "show", "branching", "--json").output)
    real = shown["nodes"][0]["task_id"]
    tested = cli("tasks", "test", "branching", real + "x")
    assert tested.exit_code == 2 and f"no task '{real}x'" in tested.output and repr(real) in tested.output


def test_why_says_runs_for_a_task_that_has_not_run_yet(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    queued = json.loads(cli("trigger", "branching", "--run-id", "later", "--json").output)
    said = json.loads(cli("why", "branching", "start", queued["run_id"], "--json").output)
    assert said["decision"] == "always" and said["text"].startswith("runs (it has not yet: "), said
    ran = json.loads(cli("run", "branching", "--json", "--no-progress").output)
    assert json.loads(cli("why", "branching", "start", ran["run_id"], "--json").output)["text"].startswith("ran: ")


def test_why_with_a_typo_in_the_flow_or_task_suggests_the_name(cli: Cli, tmp_path: Path) -> None:
    """`why branchng start` said "flow 'branchng' has no runs yet", as if the flow existed."""
    shutil.copytree(ROOT / "examples", tmp_path / "flows")
    assert cli("trigger", "branching", "--run-id", "r1").exit_code == 0
    flow_typo = cli("why", "branchng", "start")
    assert flow_typo.exit_code == 2
    assert "no flow 'branchng' in the database. Did you mean 'branching'?" in flow_typo.output
    task_typo = cli("why", "branching", "strat")
    assert task_typo.exit_code == 2
    assert "has a task 'strat'. Did you mean 'start'?" in task_typo.output


def test_flows_list_says_what_starts_flows_that_have_no_time_schedule(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "started.py").write_text(
        "from ductwork import Asset, EmptyOperator, Flow\n"
        "from ductwork.core.triggers import RedisStream\n"
        "with Flow('on_assets', schedule=[Asset('s3://a'), Asset('s3://b')]):\n"
        "    EmptyOperator(task_id='t')\n"
        "with Flow('on_messages', schedule=None, triggers=[RedisStream(stream='orders')]):\n"
        "    EmptyOperator(task_id='t')\n"
        "with Flow('by_hand', schedule=None):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    listed = json.loads(cli("flows", "list", "--json").output)
    schedules = {f["flow_id"]: f["schedule"] for f in listed["flows"]}
    assert schedules["on_assets"] == "assets: s3://a & s3://b", listed
    assert schedules["on_messages"] == "on redis messages" and schedules["by_hand"] == "None"


def test_flows_show_says_where_each_message_trigger_listens(cli: Cli, tmp_path: Path) -> None:
    """``flows show`` said nothing of a flow's triggers (``flows list`` only "on rabbitmq
    messages"): which queue, consumer group, durable or client id the flow holds, made up from
    its id, could only be guessed from the docs when a message did not start a run."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "listening.py").write_text(
        "from ductwork import EmptyOperator, Flow, MqttTopic, NatsJetStream, RabbitMQ, RedisStream\n"
        "with Flow('listening', schedule=None, triggers=[\n"
        "    RabbitMQ(exchange='events', routing_key='orders.*', url='amqp://me:secret@mq:5672/%2F'),\n"
        "    RedisStream(stream='orders'), NatsJetStream(subject='o.*', stream='O'),\n"
        "    MqttTopic(topic='s/#', conn_id='broker')]):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    shown = cli("flows", "show", "listening")
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if line.startswith("trigger: ")]
    assert lines == [
        "trigger: rabbitmq:exchange/events/orders.* (at amqp://me:***@mq:5672/%2F, queue 'ductwork.listening')",
        "trigger: redis:orders (at redis://127.0.0.1:6379/0, consumer group 'ductwork.listening')",
        "trigger: nats:O/o.* (at nats://127.0.0.1:4222, durable consumer 'ductwork_listening')",
        "trigger: mqtt:s/# (at connection 'broker', client id 'ductwork-listening')",
    ]


def test_flows_list_and_show_warn_of_a_queue_two_flows_consume(cli: Cli, tmp_path: Path) -> None:
    """Two flows on RabbitMQ(queue="orders") were competing consumers of one queue: each started
    runs for about half of the messages, and neither ``flows list`` nor ``flows show`` said so."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "orders.py").write_text(
        "from ductwork import EmptyOperator, Flow, RabbitMQ, RedisStream\n"
        "for fid in ('billing', 'shipping'):\n"
        "    with Flow(fid, triggers=[RabbitMQ(queue='orders'), RedisStream(stream='s')]) as f:\n"
        "        EmptyOperator(task_id='t')\n"
        "    globals()[fid] = f\n"
        "with Flow('audit', triggers=[RabbitMQ(exchange='events')]):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    warning = "warning: flows 'billing' and 'shipping' share the queue 'orders': RabbitMQ hands each message"
    listed = cli("flows", "list")
    assert listed.exit_code == 0, listed.output
    assert [line for line in listed.stderr.splitlines() if line.startswith("warning:")] == [
        line for line in listed.stderr.splitlines() if line.startswith(warning)
    ]
    assert warning in listed.stderr, listed.stderr
    as_json = json.loads(cli("flows", "list", "--json").stdout)
    assert len(as_json["warnings"]) == 1 and "'billing' and 'shipping'" in as_json["warnings"][0]
    assert warning in cli("flows", "show", "shipping").stderr
    assert "warning" not in cli("flows", "show", "audit").stderr


def test_build_records_the_flow_as_defined_in_the_tasks_module(cli: Cli, tmp_path: Path) -> None:
    """It recorded click's decorators.py (where the command ran), whose hash counted as the run's code."""
    import os

    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import flows as flow_repo

    (tmp_path / "fileloc_pipeline.py").write_text(PIPELINE)  # a module no other test imported
    assert cli("build", "--module", "fileloc_pipeline", "Part", "--i", "7").exit_code == 0
    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            flow = flow_repo.get_flow(conn, "build.Part")
    finally:
        engine.dispose()
    assert flow is not None and flow.fileloc == str(tmp_path / "fileloc_pipeline.py")


def test_flows_graph_redirected_writes_the_drawing_to_standard_output_only(cli: Cli, tmp_path: Path) -> None:
    """`flows graph etl > etl.svg` also wrote etl.svg itself and put "wrote etl.svg" into the file."""
    result = cli("flows", "graph", str(ROOT / "examples" / "four_step_pipeline.py"), "--format", "dot")
    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith("digraph") and "wrote" not in result.stdout
    assert not list(tmp_path.glob("*.dot"))


HOLDING = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from ductwork import LocalTarget, Task

    class Hold(Task):
        def output(self):
            return LocalTarget("held.txt")
        def run(self):
            Path("started").touch()
            deadline = time.time() + 60
            while not Path("release").exists() and time.time() < deadline:
                time.sleep(0.05)
            with self.output().open("w") as out:
                out.write("x")
    """
)


def test_build_takes_luigis_lock_so_a_second_cron_invocation_does_not_start(tmp_path: Path) -> None:
    # Two overlapping builds of the same command line (a Luigi cron line) built the same outputs
    # at once.
    import subprocess
    import time

    from ductwork_process import ductwork_command, ductwork_process, process_env

    (tmp_path / "holding.py").write_text(HOLDING)
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    args = ("build", "--module", "holding", "Hold", "--no-progress", "--no-record")
    first = subprocess.Popen(
        ductwork_command(*args),
        cwd=tmp_path,
        env=process_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):
            if (tmp_path / "started").exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        assert (tmp_path / "started").exists()
        second = ductwork_process(*args, env=env, cwd=tmp_path)
        assert second.returncode == 0, second.stderr  # Luigi's retcode for "already running"
        assert f"Pid(s) {{{first.pid}}} already running" in second.stdout
        assert f"not started: the same command line runs as process {first.pid}" in second.stderr
        assert "Scheduled" not in second.stdout
        assert len(list((tmp_path / "home" / "locks").glob("*.pid"))) == 1  # in the home, not Luigi's /tmp/luigi
    finally:
        (tmp_path / "release").touch()
        first.wait(timeout=60)
    assert first.returncode == 0 and (tmp_path / "held.txt").read_text() == "x"


HANDING_OVER = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path
    from ductwork import LocalTarget, Task

    class First(Task):
        def output(self):
            return LocalTarget("first.txt")
        def run(self):
            Path(f"started-{os.getpid()}").touch()
            deadline = time.time() + 60
            while not Path("release").exists() and time.time() < deadline:
                time.sleep(0.02)
            with self.output().open("w") as out:
                out.write("x")

    class Second(Task):
        def requires(self):
            return First()
        def output(self):
            return LocalTarget("second.txt")
        def run(self):
            with self.output().open("w") as out:
                out.write(str(os.getpid()))
    """
)


def test_take_lock_tells_the_running_build_to_stop_taking_tasks_and_starts_beside_it(tmp_path: Path) -> None:
    # Luigi's cron line with --take-lock: the second build was refused ("already running") and
    # SIGUSR1, which Luigi sends, killed a build outright (exit 138, its running task cut off).
    import subprocess
    import time

    from ductwork_process import ductwork_command, process_env

    (tmp_path / "handing.py").write_text(HANDING_OVER)
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    args = ("build", "--module", "handing", "Second", "--take-lock", "--no-progress", "--no-record")
    first = subprocess.Popen(
        ductwork_command(*args), cwd=tmp_path, env=process_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for _ in range(1200):
            if (tmp_path / f"started-{first.pid}").exists() or first.poll() is not None:
                break
            time.sleep(0.02)
        second = subprocess.Popen(
            ductwork_command(*args), cwd=tmp_path, env=process_env(env), stdout=subprocess.PIPE, text=True
        )
        for _ in range(1200):  # it told the first build, and runs First beside it
            if (tmp_path / f"started-{second.pid}").exists() or second.poll() is not None:
                break
            time.sleep(0.02)
    finally:
        (tmp_path / "release").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, (first.returncode, err)  # not killed by SIGUSR1, and not a failure
    assert (
        "* 1 ran successfully" in out.decode() and "were not run: this build stopped taking new tasks" in out.decode()
    )
    assert "stopped taking new tasks on SIGUSR1 (another build's --take-lock): 1 task(s) not run" in err.decode()
    told, _ = second.communicate(timeout=60)
    assert second.returncode == 0 and f"Sent kill signal to Pids: {{{first.pid}}}" in told
    assert (tmp_path / "second.txt").read_text() == str(second.pid)  # the rest was left to the second build


WINDING_DOWN = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path
    from ductwork import LocalTarget, Task, WrapperTask

    class Slow(Task):
        def output(self):
            return LocalTarget("slow.txt")
        def run(self):
            Path("slow-started").touch()
            deadline = time.time() + 60
            while not Path("release").exists() and time.time() < deadline:
                time.sleep(0.02)
            self.output().write_text("x")

    class Flaky(Task):
        retries = 1
        retry_delay = 600.0
        def output(self):
            return LocalTarget("flaky.txt")
        def run(self):
            raise RuntimeError("not yet")

    class Both(WrapperTask):
        def requires(self):
            return [Slow(), Flaky()]
    """
)


def test_a_build_told_to_hand_over_ends_with_its_running_tries_and_says_why(tmp_path: Path) -> None:
    """SIGUSR1 while a retry waits 10 minutes: the build ends once its running try has (it slept
    until the retry was due), and its recorded run says why it ended (it said only 'failed',
    its tasks not started noted 'trigger rule all_success')."""
    import signal
    import subprocess
    import time

    from ductwork_process import ductwork_command, process_env

    (tmp_path / "winding.py").write_text(WINDING_DOWN)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home")})
    build = subprocess.Popen(
        ductwork_command("build", "--module", "winding", "Both", "--no-progress", "--json"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(1500):
            if (tmp_path / "slow-started").exists() or build.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(0.5)  # Flaky has failed its first try by now, and waits for its retry
        build.send_signal(signal.SIGUSR1)
    finally:
        (tmp_path / "release").touch()
    out, _ = build.communicate(timeout=30)  # not the 600 s of the retry delay
    summary = json.loads(out)
    assert summary["state"] == "failed", out
    assert summary["reason"] == "stopped taking new tasks on SIGUSR1 (another build's --take-lock)", out
    assert (tmp_path / "slow.txt").read_text() == "x"  # the running try was not cut off
    shown = subprocess.run(
        ductwork_command("runs", "show", summary["flow_id"], summary["run_id"], "--json"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "stopped taking new tasks on SIGUSR1" in shown.stdout, shown.stdout


def test_build_accepts_luigis_lock_options(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "holding.py").write_text(HOLDING)
    (tmp_path / "release").touch()
    locks = tmp_path / "locks"
    ran = cli("build", "--module", "holding", "Hold", "--lock-pid-dir", str(locks), "--lock-size", "2", "--no-record")
    assert ran.exit_code == 0, ran.output
    assert "* 1 ran successfully" in ran.output and len(list(locks.glob("*.pid"))) == 1
    (tmp_path / "held.txt").unlink()
    free = cli("build", "--module", "holding", "Hold", "--no-lock", "--lock-pid-dir", str(tmp_path / "x"))
    assert free.exit_code == 0 and not (tmp_path / "x").exists()


def test_build_warns_of_a_config_key_no_parameter_reads(cli: Cli, tmp_path: Path) -> None:
    # `[Settings] ot = "x"` (a typo of out) was ignored in silence: the build wrote to the default folder.
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "ductwork.toml").write_text('[Settings]\not = "elsewhere"\n\n[ductwork]\nparallelism = 2\n')
    result = cli("build", "--module", "pipeline", "Part", "--i", "1", "--no-record")
    assert result.exit_code == 0, result.output
    assert (
        "warning: 'ot' in [Settings] of ductwork.toml is no parameter of Settings, and is not read. "
        "Did you mean 'out'?" in result.stderr
    )
    assert "[ductwork]" not in result.stderr  # Ductwork's own settings are checked where they are read


def test_run_takes_a_conf_as_trigger_does(cli: Cli, tmp_path: Path) -> None:
    # `ductwork run` had no --conf: a flow reading dag_run.conf could only be tried through the scheduler.
    (tmp_path / "conf_flow.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from ductwork import BashOperator, Flow

            with Flow("conf_flow", params={"limit": 10}) as f:
                BashOperator(task_id="b", bash_command="echo {{ conf.who }} {{ params.limit }} > seen.txt")
            """
        )
    )
    ran = cli("run", "conf_flow.py", "--conf", '{"who": "me"}', "--no-progress")
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "seen.txt").read_text().split() == ["me", "10"]
    refused = cli("run", "conf_flow.py", "--conf", "[1]")
    assert refused.exit_code == 2 and "--conf: expected a JSON object" in refused.output


def test_a_build_that_left_external_data_pending_records_no_next_check(cli: Cli, tmp_path: Path) -> None:
    """The build ended without the missing external input: its task stays pending with no next
    check due (a scheduler would check again; this build never will), and `tasks state` numbers
    the try that would check next, as Airflow numbers a rescheduled sensor's (it said 'try 0')."""
    (tmp_path / "waiting.py").write_text(WAITING)
    (tmp_path / "raw-1.txt").write_text("one")
    built = cli("build", "--module", "waiting", "Both", "--no-progress", "--json")
    assert built.exit_code == 1, built.output
    data = json.loads(built.output)
    flow_id, run_id = data["flow_id"], data["run_id"]
    states = json.loads(cli("tasks", "state", flow_id, run_id, "--json").output)
    pending = {t: s for t, s in states.items() if s["state"] == "up_for_reschedule"}
    assert len(pending) == 1 and all("next_try_at" not in s for s in pending.values()), states
    shown = cli("tasks", "state", flow_id, run_id, next(iter(pending)))
    assert "up_for_reschedule (try 1)" in shown.output, shown.output


def test_a_blank_conf_is_no_conf_and_a_bad_one_says_where(cli: Cli, tmp_path: Path) -> None:
    # The trigger form and a message payload took blank text as "no conf"; `--conf " "` was
    # "not valid JSON", and JSON nested deeper than the decoder goes was a RecursionError traceback.
    (tmp_path / "blank_conf.py").write_text(
        "from ductwork import BashOperator, Flow\n"
        "with Flow('blank_conf') as f:\n"
        "    BashOperator(task_id='b', bash_command='echo {{ conf }} > seen.txt')\n"
    )
    ran = cli("run", "blank_conf.py", "--conf", "  ", "--no-progress")
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "seen.txt").read_text().strip() == "{}"
    typo = cli("run", "blank_conf.py", "--conf", '{"who": "me",}')
    assert typo.exit_code == 2
    assert (
        "--conf: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 14)" in typo.output
    )
    deep = cli("run", "blank_conf.py", "--conf", "[" * 100_000)
    assert deep.exit_code == 2 and "--conf: not valid JSON" in deep.output and "nested too deeply" in deep.output


def test_assets_update_records_an_update_made_outside_any_flow(cli: Cli, tmp_path: Path) -> None:
    """There was no command to say that data a flow waits for was written by hand or by another
    system; the update now queues the flows scheduled on the asset, as a task's update does."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "lake.py").write_text(
        "from ductwork import Asset, EmptyOperator, Flow\n"
        "with Flow('on_orders', schedule=Asset('s3://lake/orders')):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    unknown = cli("assets", "update", "s3://lake/orders")
    assert unknown.exit_code == 2 and "the scheduler records a flow's assets" in unknown.output
    assert cli("trigger", "on_orders", env={"DUCTWORK_TRIGGER_HANDOFF": "false"}).exit_code == 0  # records the flow

    typo = cli("assets", "update", "s3://lake/order")
    assert typo.exit_code == 2 and "Did you mean 's3://lake/orders'?" in typo.output
    bad = cli("assets", "update", "s3://lake/orders", "--extra", "[1]")
    assert bad.exit_code == 2 and "--extra: expected a JSON object" in bad.output and "got an array" in bad.output
    made = cli("assets", "update", "s3://lake/orders", "--extra", '{"rows": 3}', "--json")
    assert made.exit_code == 0, made.output
    event = json.loads(made.output)
    assert event["uri"] == "s3://lake/orders" and event["extra"] == {"rows": 3}

    from ductwork.services import assets as asset_service
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    engine = create_engine(Settings.load().db_url)  # the test's DUCTWORK_HOME
    try:
        (run,) = asset_service.create_asset_runs(engine)
    finally:
        engine.dispose()
    assert run.flow_id == "on_orders" and [e["extra"] for e in run.triggered_by["asset_events"]] == [{"rows": 3}]
    shown = json.loads(cli("assets", "show", "s3://lake/orders", "--json").output)
    assert shown["events"][0]["started"] == [{"flow_id": "on_orders", "run_id": run.run_id}]
    audit = json.loads(cli("audit", "list", "--json").output)["entries"][0]
    assert audit["action"] == "asset.update" and audit["target"] == "s3://lake/orders"

    # An extra is data, not rich markup: '[/red]' crashed `assets show` with a MarkupError.
    assert cli("assets", "update", "s3://lake/orders", "--extra", '{"note": "[/red]"}').exit_code == 0
    table = cli("assets", "show", "s3://lake/orders")
    assert table.exit_code == 0 and "[/red]" in table.output, table.output
    # Shown as the JSON it was given as, not Python's {'ok': True, 'n': None}.
    assert cli("assets", "update", "s3://lake/orders", "--extra", '{"ok": true, "n": null}').exit_code == 0
    table = cli("assets", "show", "s3://lake/orders", env={"COLUMNS": "250"})
    assert '{"ok": true, "n": null}' in table.output, table.output


def test_assets_show_and_update_take_an_airflow_dataset_by_its_name(cli: Cli, tmp_path: Path) -> None:
    """An Airflow DAG's ``Dataset("orders")`` is recorded as ``asset://orders``; ``assets show
    orders`` answered "has no scheme" and ``assets list`` showed asset://orders with nothing to
    tie the two together. The name alone now finds it (a name no flow knows says how it is written)."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "consumer.py").write_text(
        "from airflow import DAG\n"
        "from airflow.datasets import Dataset\n"
        "from airflow.operators.empty import EmptyOperator\n"
        "with DAG('on_orders', schedule=[Dataset('orders')], start_date=None):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    assert cli("trigger", "on_orders", env={"DUCTWORK_TRIGGER_HANDOFF": "false"}).exit_code == 0  # records the flow
    shown = cli("assets", "show", "orders", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["uri"] == "asset://orders"
    made = cli("assets", "update", "orders", "--json")
    assert made.exit_code == 0 and json.loads(made.output)["uri"] == "asset://orders", made.output
    unknown = cli("assets", "show", "customers")
    assert unknown.exit_code == 2 and "has no scheme" in unknown.output and "asset://customers" in unknown.output
    # A path with a space is no name: the hint wrote it 'asset:///data/daily orders.csv', refused as well.
    spaced = cli("assets", "show", "/data/daily orders.csv")
    assert spaced.exit_code == 2 and "contains whitespace; encode it (%20)" in spaced.output, spaced.output
    assert "asset://" not in spaced.output, spaced.output


def test_assets_list_says_which_flows_write_start_on_and_read_each_asset(cli: Cli, tmp_path: Path) -> None:
    """``assets list`` gave only update counts: the flows that write an asset, and those it
    starts, were on the web UI's Assets page alone."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "lake.py").write_text(
        "from ductwork import Asset, EmptyOperator, Flow\n"
        "ORDERS = Asset('s3://lake/orders')\n"
        "with Flow('load_orders', schedule=None) as load_orders:\n"
        "    EmptyOperator(task_id='write', outlets=[ORDERS])\n"
        "with Flow('report', schedule=ORDERS) as report:\n"
        "    EmptyOperator(task_id='read', inlets=[ORDERS])\n"
    )
    for flow_id in ("load_orders", "report"):  # each records its flow
        assert cli("trigger", flow_id, env={"DUCTWORK_TRIGGER_HANDOFF": "false"}).exit_code == 0
    (item,) = json.loads(cli("assets", "list", "--json").output)
    assert (item["producers"], item["consumers"], item["readers"]) == (["load_orders"], ["report"], ["report"])
    table = cli("assets", "list", env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    (row,) = [line for line in table.output.splitlines() if "s3://lake/orders" in line]
    assert [cell.strip() for cell in row.split("│")[1:5]] == ["s3://lake/orders", "load_orders", "report", "report"]


def test_assets_update_refuses_numbers_json_has_not(cli: Cli, tmp_path: Path) -> None:
    """`assets update --extra '{"rows": NaN}'` was recorded (Python's reader takes NaN and
    Infinity, the API refuses them): `assets show --json` then printed ``NaN``, which no JSON
    reader takes, and the API showed null. Refused now as `--conf` is, naming the option."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "lake.py").write_text(
        "from ductwork import Asset, EmptyOperator, Flow\n"
        "with Flow('on_orders', schedule=Asset('s3://lake/orders')):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    assert cli("trigger", "on_orders", env={"DUCTWORK_TRIGGER_HANDOFF": "false"}).exit_code == 0  # records the flow
    for text in ('{"rows": NaN}', '{"rows": -Infinity}', '{"rows": 1e400}'):
        refused = cli("assets", "update", "s3://lake/orders", "--extra", text)
        assert refused.exit_code == 2, refused.output
        assert "--extra:" in refused.output and "give a finite number" in refused.output, refused.output
    typo = cli("assets", "update", "s3://lake/orders", "--extra", '{"rows": 3,}')
    assert typo.exit_code == 2 and "--extra: not valid JSON" in typo.output and "line 1, column" in typo.output
    shown = json.loads(cli("assets", "show", "s3://lake/orders", "--json").output)  # valid JSON: nothing recorded
    assert shown["events"] == []


UNPLANNABLE = textwrap.dedent(
    """
    from ductwork import IntParameter, LocalTarget, Task, WrapperTask

    class Part(Task):
        i = IntParameter()
        def output(self):
            return LocalTarget(f"part-{self.i}.txt")
        def run(self):
            self.output().write_text(str(self.i))

    class Warehouse(Task):
        def requires(self):
            return Part(i=99)
        def complete(self):
            raise RuntimeError("cannot reach the warehouse\\nsecond line")

    class Partitions(Task):
        def requires(self):
            raise KeyError("no such partition")
        def output(self):
            return LocalTarget("partitions.txt")

    class Bucket(Task):
        def output(self):
            raise ValueError("no bucket configured")

    class Report(Task):
        def requires(self):
            return Warehouse()
        def output(self):
            return LocalTarget("report.txt")
        def run(self):
            self.output().write_text("x")

    class Nightly(WrapperTask):
        def requires(self):
            return [Part(i=1), Report(), Partitions(), Bucket(), Part(i=2)]
    """
)


def test_a_task_whose_complete_or_requires_raises_fails_scheduling_and_the_rest_is_built(
    cli: Cli, tmp_path: Path
) -> None:
    """As Luigi schedules: the task whose complete(), requires() or output() raised fails
    (scheduling), what needs it cannot run, the rest is built, and the run is recorded with the
    error. The raise escaped the planning of the build: a traceback, nothing built or recorded."""
    (tmp_path / "unplannable.py").write_text(UNPLANNABLE)
    built = cli("build", "--module", "unplannable", "Nightly", "--no-progress")
    assert built.exit_code == 1, built.output
    assert "complete() of Warehouse raised RuntimeError: cannot reach the warehouse" in built.output
    assert "second line" not in built.output
    assert "requires() of Partitions raised KeyError: 'no such partition'" in built.output
    assert "complete() of Bucket raised ValueError: no bucket configured" in built.output
    assert "* 2 ran successfully" in built.output
    assert "* 3 failed scheduling" in built.output
    assert "* 2 were not run because of a failed dependency" in built.output
    assert "This progress looks :( because there were tasks whose scheduling failed" in built.output
    assert (tmp_path / "part-1.txt").exists() and (tmp_path / "part-2.txt").exists()
    assert not (tmp_path / "part-99.txt").exists() and not (tmp_path / "report.txt").exists()
    (run,) = json.loads(cli("runs", "list", "--json").output)["runs"]
    assert run["state"] == "failed"
    states = json.loads(cli("tasks", "state", run["flow_id"], run["run_id"], "--json").output)
    assert {t: s["state"] for t, s in states.items()} == {
        "Part(i=1)": "success",
        "Part(i=2)": "success",
        "Warehouse": "failed",
        "Partitions": "failed",
        "Bucket": "failed",
        "Report": "upstream_failed",
        "Nightly": "upstream_failed",
    }
    shown = cli("tasks", "state", run["flow_id"], run["run_id"], "Warehouse")
    assert "failed" in shown.output, shown.output


def test_runs_show_and_tasks_state_say_why_a_task_failed(cli: Cli, tmp_path: Path) -> None:
    """The failing task's error where the on-call engineer looks: it showed only 'failed'."""
    (tmp_path / "failing.py").write_text(
        textwrap.dedent(
            """
            from ductwork import Flow, PythonOperator

            def load():
                raise OSError("disk full on /data/warehouse " + "x" * 200 + "\\nsecond line")

            with Flow("failing") as f:
                ok = PythonOperator(task_id="extract", python_callable=lambda: 1)
                ok >> PythonOperator(task_id="load", python_callable=load) >> PythonOperator(
                    task_id="report", python_callable=lambda: 2
                )
            """
        )
    )
    ran = cli("run", "failing.py:failing", "--date", "2024-01-31", "--no-progress")
    assert ran.exit_code == 1, ran.output
    run_id = json.loads(cli("runs", "list", "--json").output)["runs"][0]["run_id"]
    shown = cli("runs", "show", "failing", run_id)
    assert "disk full on /data/warehouse" in shown.output, shown.output
    assert "second line" not in shown.output and "x" * 200 not in shown.output.replace("│", "").replace("\n", "")
    data = json.loads(cli("runs", "show", "failing", run_id, "--json").output)
    assert data["tasks"]["load"]["error"] == "OSError: disk full on /data/warehouse " + "x" * 200
    assert "error" not in data["tasks"]["extract"] and "error" not in data["tasks"]["report"]
    state = cli("tasks", "state", "failing", run_id)
    assert "load: failed (try 1): OSError: disk full on /data/warehouse xxx" in state.output, state.output
    assert "…" in state.output and "second line" not in state.output
    one = json.loads(cli("tasks", "state", "failing", run_id, "load", "--json").output)
    assert one["load"]["error"].startswith("OSError: disk full") and "second line" not in one["load"]["error"]


DYNAMIC_UNPLANNABLE = textwrap.dedent(
    """
    from ductwork import LocalTarget, Task

    class BadDep(Task):
        def complete(self):
            raise RuntimeError("db down")

    class Child(Task):
        def requires(self):
            return BadDep()
        def output(self):
            return LocalTarget("child.txt")
        def run(self):
            self.output().write_text("c")

    class Parent(Task):
        def output(self):
            return LocalTarget("parent.txt")
        def run(self):
            yield Child()
            self.output().write_text("p")
    """
)


def test_a_dynamic_dependency_that_cannot_be_planned_fails_its_parent_saying_which(cli: Cli, tmp_path: Path) -> None:
    """A task's run() yields a task whose dependency's complete() raises: the parent's try
    fails naming the task and the method (it said "could not load task: db down")."""
    (tmp_path / "dyn.py").write_text(DYNAMIC_UNPLANNABLE)
    built = cli("build", "--module", "dyn", "Parent", "--no-progress")
    assert built.exit_code == 1, built.output
    (run,) = json.loads(cli("runs", "list", "--json").output)["runs"]
    state = json.loads(cli("tasks", "state", run["flow_id"], run["run_id"], "Parent", "--json").output)
    assert state["Parent"]["state"] == "failed"
    assert state["Parent"]["error"] == (
        "Parent requires tasks that could not be planned: complete() of BadDep raised RuntimeError: db down"
    ), state
    assert not (tmp_path / "child.txt").exists() and not (tmp_path / "parent.txt").exists()


def test_runs_show_says_which_message_started_a_run_and_with_what_parameters(cli: Cli, tmp_path: Path) -> None:
    """``runs show`` of a run a message started showed its tasks only: not the message, its
    source, nor the parameters it gave, which only ``--json`` had (without the source's id)."""
    from ductwork.services import messages
    from ductwork.store.engine import create_engine

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "ingest.py").write_text(
        "from ductwork import EmptyOperator, Flow, IntParameter\n"
        "from ductwork.core.triggers import RedisStream\n"
        "with Flow('ingest', schedule=None, params={'n': IntParameter(default=1)},\n"
        "          triggers=[RedisStream(stream='orders')]):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    assert cli("trigger", "ingest", "--run-id", "by-hand").exit_code == 0  # records the flow
    engine = create_engine(f"sqlite:///{tmp_path / 'ductwork-home' / 'ductwork.db'}")
    try:
        delivery = messages.receive(engine, "ingest", source="redis:orders", message_id="order-17", payload=b'{"n": 5}')
    finally:
        engine.dispose()
    assert delivery.run is not None
    shown = cli("runs", "show", "ingest", delivery.run.run_id)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "started by message order-17 from redis:orders" in text, shown.output
    assert "params: n=5" in text, shown.output
    as_json = json.loads(cli("runs", "show", "ingest", delivery.run.run_id, "--json").output)
    assert as_json["triggered_by"] == {"kind": "message", "source": "redis:orders", "message_id": "order-17"}


def test_an_error_that_looks_like_rich_markup_is_shown_not_a_crash(cli: Cli, tmp_path: Path) -> None:
    """A task whose exception said '[/bold]' (a payload a message carried, say) made `run` and
    `runs show` crash with a MarkupError instead of showing the failure."""
    (tmp_path / "markup.py").write_text(
        "from ductwork import Flow, PythonOperator\n"
        "def boom():\n"
        "    raise RuntimeError('[/bold] boom')\n"
        "with Flow('markup', schedule=None):\n"
        "    PythonOperator(task_id='t', python_callable=boom)\n"
    )
    ran = cli("run", "markup.py", "--no-progress")
    assert ran.exit_code == 1 and "RuntimeError: [/bold] boom" in ran.output, ran.output
    run_id = json.loads(cli("runs", "list", "markup", "--json").output)["runs"][0]["run_id"]
    shown = cli("runs", "show", "markup", run_id)
    assert shown.exit_code == 0 and "RuntimeError: [/bold] boom" in shown.output, shown.output
