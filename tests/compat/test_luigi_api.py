"""The Luigi shim's API in this process, compared with what Luigi 3.8 gives: instance cache,
parameters and task ids, date intervals, targets and formats, task methods used in ``run()``."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import luigi
import pytest


class Export(luigi.Task):
    day = luigi.DateParameter()
    dry_run = luigi.BoolParameter(significant=False)
    token = luigi.Parameter(default="", visibility=luigi.parameter.ParameterVisibility.HIDDEN)


def test_instances_differing_in_an_insignificant_parameter_are_not_shared() -> None:
    day = dt.date(2024, 3, 15)
    dry = Export(day=day, dry_run=True)
    real = Export(day=day, dry_run=False)
    assert real.dry_run is False and dry.dry_run is True
    assert real.task_id == dry.task_id  # the same task for the scheduler, as in Luigi
    assert Export(day=day, token="b").token == "b"
    assert Export(day=day, dry_run=True) is dry  # the same values: the cached object


def _one_param_task(name: str, param: luigi.Parameter) -> type[luigi.Task]:
    return type(name, (luigi.Task,), {"v": param, "__module__": __name__})


# (class name, parameter, value, str(task), task.task_id) as Luigi 3.8.1 prints them
LUIGI_IDS = [
    ("TList", luigi.ListParameter(), [1, 2], "TList(v=[1, 2])", "TList__1__2__18df600a04"),
    ("TList", luigi.ListParameter(), [{"a": 1}], 'TList(v=[{"a": 1}])', "TList____a___1___2e08d05b93"),
    ("TTuple", luigi.TupleParameter(), ((5, 6),), "TTuple(v=[[5, 6]])", "TTuple___5__6___6d4b0253e1"),
    (
        "TDict",
        luigi.DictParameter(),
        {"b": [1, 2], "a": {"z": 1, "c": 2}},
        'TDict(v={"b": [1, 2], "a": {"z": 1, "c": 2}})',
        "TDict___b____1__2____a_565019fb96",
    ),
    (
        "TDict",
        luigi.DictParameter(),
        {"é": "ü"},
        'TDict(v={"\\u00e9": "\\u00fc"})',
        "TDict____u00e9_____u00_94a98fecd6",
    ),
    (
        "TDelta",
        luigi.TimeDeltaParameter(),
        dt.timedelta(days=9, seconds=70),
        "TDelta(v=1 w 2 d 0 h 1 m 10 s)",
        "TDelta_1_w_2_d_0_h_1_m__8abc3f3000",
    ),
    ("TOpt", luigi.OptionalParameter(), None, "TOpt(v=)", "TOpt__03485362d0"),
    ("TNone", luigi.Parameter(default=None), None, "TNone(v=None)", "TNone_None_8547583081"),
    ("TListNone", luigi.ListParameter(default=None), None, "TListNone(v=null)", "TListNone_null_3d27e18980"),
]


def test_task_ids_and_names_are_luigis_for_json_and_timedelta_parameters() -> None:
    # Outputs named after task_id must keep their names after migrating from Luigi.
    for name, param, value, text, task_id in LUIGI_IDS:
        task = _one_param_task(name, param)(v=value)
        assert (str(task), task.task_id) == (text, task_id)
        assert type(task).from_str_params(task.to_str_params()).task_id == task_id


class Tally(luigi.Task):
    limit = luigi.OptionalIntParameter()
    tags = luigi.OptionalListParameter()
    extra = luigi.OptionalDictParameter()
    label = luigi.OptionalParameter()
    path = luigi.OptionalPathParameter()
    flag = luigi.OptionalBoolParameter()
    kind = luigi.OptionalChoiceParameter(choices=["a", "b"], default="a")


def test_optional_parameters_without_a_default_are_none_as_in_luigi() -> None:
    # Luigi's Optional*Parameter() is None when not given: the module must not need them given.
    task = Tally()
    assert (task.limit, task.tags, task.extra, task.label, task.path, task.flag) == (None,) * 6
    assert task.task_id == "Tally___a_ced343a78a"  # Luigi 3.8.1's
    with pytest.raises(luigi.parameter.MissingParameterException):  # Luigi's are required
        _one_param_task("TChoiceReq", luigi.OptionalChoiceParameter(choices=["a"]))()
    with pytest.raises(luigi.parameter.MissingParameterException):
        _one_param_task("TNumReq", luigi.OptionalNumericalParameter(var_type=int, min_value=0, max_value=9))()


def test_an_optional_parameter_given_empty_text_is_another_instance_than_none() -> None:
    # Both write "" in the task id; Luigi's instance cache still keeps them apart.
    given = Tally(label="")
    assert (given.label, Tally().label) == ("", None)
    assert Tally(label="") is given and Tally() is Tally()


def test_json_null_reads_back_as_none_for_list_and_dict_parameters() -> None:
    # Luigi writes a list or dict parameter set to None as `null`; that text must read back.
    assert luigi.OptionalListParameter().parse("null") is None
    assert luigi.ListParameter().parse("null") is None
    assert luigi.DictParameter().parse("null") is None
    assert luigi.OptionalDictParameter().parse("null") is None
    task = Tally.from_str_params({"tags": "null", "extra": "null"})
    assert (task.tags, task.extra) == (None, None)


def test_timedelta_and_tuple_parameters_parse_what_luigi_parses() -> None:
    delta, pair = luigi.TimeDeltaParameter(), luigi.TupleParameter()
    assert delta.parse("2 weeks 1 day") == dt.timedelta(days=15)
    assert delta.parse("1 day 2 hours") == dt.timedelta(days=1, hours=2)
    assert delta.parse("P1DT2H") == dt.timedelta(days=1, hours=2)
    assert delta.parse("0 w 0 d 1 h 0 m 0 s") == dt.timedelta(hours=1)
    assert pair.parse("((1,2),(3,4))") == ((1, 2), (3, 4))
    assert pair.parse("[[1, 2]]") == ((1, 2),)


class DayExport(luigi.Task):
    date = luigi.Parameter()  # older Luigi code keeps dates as strings

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"data/export_{self.date}.csv")


class WeekReport(luigi.Task):
    interval = luigi.DateIntervalParameter()


def _root_on(task_cls: type[luigi.Task], date_param: str, day: dt.datetime) -> luigi.Task:
    from ductwork import Flow
    from ductwork.core.flow import ClassTaskFlow

    flow = Flow.from_task(task_cls, schedule="@daily", date_param=date_param)
    assert isinstance(flow, ClassTaskFlow)
    (root,) = flow.roots_for({}, day)
    return root


def test_a_scheduled_flow_gives_the_date_parameter_the_value_it_parses() -> None:
    day = dt.datetime(2024, 3, 15, tzinfo=dt.UTC)
    export = _root_on(DayExport, "date", day)
    assert export.date == "2024-03-15"  # as `luigi DayExport --date 2024-03-15` gives it
    assert export.output().path == "data/export_2024-03-15.csv"
    report = _root_on(WeekReport, "interval", day)
    assert list(report.interval.dates()) == [dt.date(2024, 3, 15)]


def test_date_intervals_iterate_and_compare_as_in_luigi() -> None:
    week = luigi.DateIntervalParameter().parse("2024-W10")
    assert [d.day for d in week] == [4, 5, 6, 7, 8, 9, 10]  # examples/top_artists.py iterates one
    assert repr(week) == "2024-W10" and repr(week.next()) == "2024-W11"
    assert dt.date(2024, 3, 4) in week and dt.datetime(2024, 3, 4) not in week
    custom = luigi.date_interval.Custom(week.date_a, week.date_b)
    with pytest.raises(TypeError, match="type mismatch"):
        assert week < custom


def test_target_formats_read_and_write_as_in_luigi(tmp_path: Path) -> None:
    from luigi import format as fmt
    from luigi.mock import MockTarget

    binary = luigi.LocalTarget(str(tmp_path / "out.bin"), format=fmt.Nop)
    with binary.open("w") as out:
        out.write(b"\x00\x01binary")
    assert binary.open("r").read() == b"\x00\x01binary"
    packed = luigi.LocalTarget(str(tmp_path / "out.txt.gz"), format=fmt.UTF8 >> fmt.Gzip)
    with packed.open("w") as out:
        out.write("héllo ✓\n")
    assert gzip.decompress((tmp_path / "out.txt.gz").read_bytes()) == "héllo ✓\n".encode()
    assert packed.open("r").read() == "héllo ✓\n"
    mocked = MockTarget("formats/out.bz2", format=fmt.Bzip2)
    with mocked.open("w") as out:
        out.write(b"bz")
    assert bz2.decompress(mocked.fs.get_data("formats/out.bz2")) == b"bz"
    with pytest.raises(TypeError, match="format chaining is not valid"):
        assert fmt.Gzip >> fmt.UTF8  # text cannot be given gzip's bytes


def test_a_failed_formatted_write_leaves_no_file(tmp_path: Path) -> None:
    from luigi import format as fmt

    target = luigi.LocalTarget(str(tmp_path / "out.gz"), format=fmt.Text >> fmt.Gzip)
    with pytest.raises(KeyError), target.open("w") as out:
        out.write("half")
        raise KeyError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []


class Bar(luigi.Task):
    num = luigi.IntParameter()


class Pair(luigi.Task):
    a = luigi.IntParameter()
    b = luigi.IntParameter()


def test_the_summary_writes_ranges_as_luigi_does() -> None:
    from luigi.execution_summary import _task_lines

    assert _task_lines([Bar(num=n) for n in range(5, 200)]) == ["    - 195 Bar(num=5...199)"]
    assert _task_lines([Bar(num=n) for n in (1, 2, 4, 8)]) == ["    - 4 Bar(num=1,2,4,8)"]  # not a range
    evens = _task_lines([Pair(a=1, b=n) for n in range(0, 20, 2)])
    assert evens == ["    - 10 Pair(a=1, b=0) ..."]  # Luigi 3.8.1's words, gaps and all
    assert _task_lines([Pair(a=1, b=n) for n in range(3)]) == ["    - 3 Pair(a=1, b=0...2)"]


def test_date_parameters_with_an_interval_round_down_from_their_start() -> None:
    # Luigi 3.8.1's values
    every_other_day = luigi.DateParameter(interval=2, start=dt.date(2024, 1, 1))
    assert every_other_day.normalize(dt.date(2024, 1, 4)) == dt.date(2024, 1, 3)
    assert luigi.MonthParameter(interval=3).normalize(dt.date(2024, 5, 17)) == dt.date(2024, 4, 1)
    assert luigi.YearParameter(interval=5).normalize(dt.date(2024, 5, 17)) == dt.date(2020, 1, 1)
    six_hours = luigi.DateHourParameter(interval=6)
    assert six_hours.normalize(dt.datetime(2024, 3, 7, 17, 30, 5)) == dt.datetime(2024, 3, 7, 12)
    assert luigi.DateMinuteParameter(interval=15).normalize(dt.datetime(2024, 3, 7, 17, 38)) == dt.datetime(
        2024, 3, 7, 17, 30
    )


def test_luigi_parameter_exceptions_are_raised_for_their_cases() -> None:
    from luigi.parameter import DuplicateParameterException, ParameterException, UnknownParameterException

    with pytest.raises(DuplicateParameterException):
        Bar(1, num=2)
    with pytest.raises(UnknownParameterException):
        Bar(1, 2)
    with pytest.raises(ParameterException):  # the base class catches them too
        Bar(nm=1)


class RawInput(luigi.ExternalTask):
    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget("no/such/input.txt")


class UsesRaw(luigi.Task):
    def requires(self) -> RawInput:
        return RawInput()


def test_scheduling_fires_luigis_dependency_events() -> None:
    seen: list[tuple[str, str]] = []
    RawInput.event_handler(luigi.Event.DEPENDENCY_MISSING)(lambda task: seen.append(("missing", str(task))))
    UsesRaw.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)(lambda task, dep: seen.append((str(task), str(dep))))
    assert luigi.build([UsesRaw()], local_scheduler=True) is True  # missing data is pending, not failed
    assert seen == [("UsesRaw()", "RawInput()"), ("missing", "RawInput()")]


def test_luigi_contrib_modules_fail_saying_what_to_use() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"does not provide Luigi's contrib.*ductwork.integrations \(.*sql"):
        import luigi.contrib.s3  # noqa: F401
    with pytest.raises(ModuleNotFoundError, match="luigi.contrib.hdfs"):
        from luigi.contrib import hdfs  # noqa: F401


class MockOutput(luigi.Task):
    name = luigi.Parameter()

    def output(self) -> luigi.mock.MockTarget:
        return luigi.mock.MockTarget(f"/mocked/{self.name}")

    def run(self) -> None:
        with self.output().open("w") as fh:
            fh.write(self.name)


def test_every_mock_file_system_holds_the_same_data_as_the_mock_targets() -> None:
    """As Luigi's: ``MockFileSystem()`` is the process's one store, so a test's
    ``MockFileSystem().clear()`` makes the tasks incomplete again and ``get_all_data()`` shows
    what the targets wrote (each instance had its own empty dictionary)."""
    from luigi.mock import MockFileSystem

    MockFileSystem().clear()
    assert luigi.build([MockOutput(name="a")], local_scheduler=True)
    assert MockFileSystem().get_all_data()["/mocked/a"] == b"a"
    assert MockFileSystem().exists("/mocked/a") and MockFileSystem().listdir("/mocked") == ["/mocked/a"]
    assert MockOutput(name="a").complete()
    MockFileSystem().clear()
    assert not MockOutput(name="a").complete()


class Settings(luigi.Task):
    conf = luigi.DictParameter(default={"b": {"x": [1, 2]}, "a": 1})
    rows = luigi.ListParameter(default=[{"k": 1}])


def test_dict_values_are_hashable_copyable_and_unfreeze_as_in_luigi() -> None:
    """A dict parameter's value was a ``mappingproxy``: unhashable, and ``pickle`` or
    ``copy.deepcopy`` of it (or of the task) raised; ``luigi.freezing`` and
    ``luigi.parameter._DictParamEncoder``, which modules use to write it out, were missing."""
    import copy
    import json
    import pickle

    from luigi.freezing import FrozenOrderedDict, recursively_unfreeze

    task = Settings()
    assert isinstance(task.conf, FrozenOrderedDict) and isinstance(task.rows[0], FrozenOrderedDict)
    assert {task.conf: 1}[task.conf] == 1 and isinstance(hash(task.rows), int)
    assert copy.deepcopy(task.conf) == task.conf and pickle.loads(pickle.dumps(task.conf)) == task.conf
    assert str(pickle.loads(pickle.dumps(task))) == str(task) == str(copy.deepcopy(task))
    assert repr(task.conf) == "{'b': {'x': (1, 2)}, 'a': 1}"  # Luigi's words, keys in their order
    assert list(task.conf.get_wrapped()) == ["b", "a"]
    assert recursively_unfreeze(task.conf) == {"b": {"x": [1, 2]}, "a": 1}
    assert json.dumps(task.conf, cls=luigi.parameter._DictParamEncoder) == '{"b": {"x": [1, 2]}, "a": 1}'
    with pytest.raises(TypeError, match="does not support item assignment"):
        task.conf["a"] = 2  # type: ignore[index]
    assert task.task_id == "Settings___b_____x____1______k___1___38ac263778"  # as Luigi 3.8.1


def test_names_luigi_exports_after_a_bare_import() -> None:
    """``luigi.LuigiStatusCode`` (to read ``build(..., detailed_summary=True).status``),
    ``luigi.StrParameter`` (Luigi 3.8) and the modules Luigi's package imports itself were
    missing after ``import luigi``."""
    assert luigi.LuigiStatusCode is luigi.execution_summary.LuigiStatusCode

    class Named(luigi.Task):
        name = luigi.StrParameter(default="a")

    assert Named().task_id == "Named_a_88148e411b"  # as Luigi 3.8.1
    assert luigi.notifications.send_error_email and luigi.worker.worker


class Broken(luigi.Task):
    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget("never-written")

    def run(self) -> None:
        raise ValueError("broken")


def test_detailed_summary_reads_as_luigis() -> None:
    """``one_line_summary`` was ``FAILED: there were failed tasks`` and ``str()`` the repr;
    modules log them, and Luigi writes the summary's last line and ``... with status``."""
    result = luigi.build([Broken()], local_scheduler=True, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.FAILED and not result.scheduling_succeeded
    assert result.one_line_summary == "This progress looks :( because there were failed tasks"
    assert str(result) == "LuigiRunResult with status LuigiStatusCode.FAILED"


def test_on_failure_runs_after_the_failure_handlers_as_in_luigi() -> None:
    """Luigi's worker fires Event.FAILURE, then calls on_failure(); the shim did the reverse, so
    a handler that reads what on_failure sets saw it already set."""
    seen: list[str] = []

    class Breaks(luigi.Task):
        def run(self) -> None:
            raise ValueError("boom")

        def on_failure(self, exception: BaseException) -> str:
            seen.append("on_failure")
            return super().on_failure(exception)

    Breaks.event_handler(luigi.Event.FAILURE)(lambda task, exc: seen.append(f"handler: {exc}"))
    assert luigi.build([Breaks()], local_scheduler=True) is False
    assert seen == ["handler: boom", "on_failure"]


class Sampled(luigi.Task):
    percent = luigi.NumericalParameter(var_type=int, min_value=0, max_value=101)
    weight = luigi.NumericalParameter(var_type=float, min_value=0.0, max_value=1.0, default=0.5)


def test_a_numerical_parameter_out_of_range_says_the_type_and_range_it_wants(tmp_path: Path) -> None:
    """It said "parameter 'percent' wants str, got '150'": the number's type and range are what
    it wants."""
    from click.testing import CliRunner

    from ductwork.cli.main import cli

    (tmp_path / "sampled.py").write_text(
        "import luigi\n\n"
        "class Sampled(luigi.Task):\n"
        "    percent = luigi.NumericalParameter(var_type=int, min_value=0, max_value=101)\n"
    )
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path / "home"),
            "build",
            "--module",
            str(tmp_path / "sampled.py"),
            "Sampled",
            "--percent",
            "150",
        ],
    )
    assert result.exit_code != 0
    assert "parameter 'percent' wants int in [0, 101), got '150'" in result.output
    with pytest.raises(ValueError, match=r"wants float in \[0.0, 1.0\), got '2.5'"):
        Sampled.weight.convert("2.5", name="weight")


def test_a_list_parameter_is_json_as_in_luigi_and_bad_json_names_the_parameter(tmp_path: Path) -> None:
    """``--items notjson`` ran the task with the list ``('notjson',)``; Luigi reads a
    ListParameter as JSON and fails on text that is not. The error names the parameter."""
    from click.testing import CliRunner

    from ductwork.cli.main import cli

    items = luigi.ListParameter()
    assert items.parse("[1, 2]") == (1, 2)
    assert items.parse('[{"a": 1}]') == ({"a": 1},)
    for text in ("notjson", "a,b", "[1, 2"):
        with pytest.raises(ValueError):
            items.parse(text)
    with pytest.raises(ValueError, match="a JSON list"):
        items.parse('{"a": 1}')
    (tmp_path / "listed.py").write_text(
        "import luigi\n\nclass Listed(luigi.Task):\n    items = luigi.ListParameter()\n\n"
        "    def complete(self):\n        return False\n\n    def run(self):\n        print('RAN', self.items)\n"
    )
    base = ["--home", str(tmp_path / "home"), "build", "--module", str(tmp_path / "listed.py"), "Listed", "--items"]
    result = CliRunner().invoke(cli, [*base, "notjson"])
    assert result.exit_code != 0
    assert "parameter 'items' wants list, got 'notjson' (Expecting value" in result.output, result.output
    assert "RAN" not in result.output
    assert CliRunner().invoke(cli, [*base, '["a", "b"]']).exit_code == 0


class Capped(luigi.Task):
    limit = luigi.OptionalIntParameter(default=None)
    label = luigi.OptionalParameter(default=None)
    ratio = luigi.OptionalFloatParameter(default=0.5)


def test_a_flow_of_a_task_with_optional_parameters_can_be_triggered() -> None:
    # `ductwork trigger`, the API and the trigger form check a run's params against the
    # descriptions the scheduler recorded (as JSON), without importing the module.
    import json

    from ductwork import Flow
    from ductwork.core.graph import FlowMeta
    from ductwork.services.runs import validate_params

    meta = Flow.from_task(Capped, flow_id="capped", schedule=None).meta()
    recorded = FlowMeta.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert validate_params(recorded, {}) == {"limit": None, "label": None, "ratio": 0.5}
    given = validate_params(recorded, {"limit": "5", "label": "eu", "ratio": "null"})
    assert given == {"limit": 5, "label": "eu", "ratio": None}
    assert validate_params(recorded, {"limit": "null"})["limit"] is None
    # `trigger --param limit=` gives None, as `ductwork build --limit ''` does: Luigi's
    # Optional*Parameter reads the empty text as None (a text one too).
    assert validate_params(recorded, {"limit": "", "label": "", "ratio": ""}) == {
        "limit": None,
        "label": None,
        "ratio": None,
    }
    # `ductwork run --param label=` loads the module and gave the text '' instead.
    flow = Flow.from_task(Capped, flow_id="capped", schedule=None)
    assert flow.resolve_params({"limit": "", "label": ""}) == {"limit": None, "label": None, "ratio": 0.5}
    assert flow.resolve_params({"label": "eu"})["label"] == "eu"


def test_the_config_parser_answers_as_luigis(tmp_path: Path) -> None:
    from luigi.configuration import LuigiConfigParser

    (tmp_path / "luigi.cfg").write_text("[custom]\nratio = 2.5\nflag = maybe\n[resources]\ndb = 3\nweb = 2\n")
    config = LuigiConfigParser()
    config.read([str(tmp_path / "luigi.cfg")])
    assert config.getfloat("custom", "ratio") == 2.5
    assert config.getfloat("custom", "missing", 1.5) == 1.5
    assert config.getintdict("resources") == {"db": 3, "web": 2}
    assert config.getintdict("nothing") == {}
    config.set("new_section", "key", "value")  # Luigi adds the section
    assert config.get("new_section", "key") == "value"
    with pytest.raises(ValueError, match="Not a boolean: maybe"):
        config.getboolean("custom", "flag")


class Upload(luigi.Task):
    day = luigi.DateParameter()
    dry_run = luigi.BoolParameter(significant=False)
    token = luigi.Parameter(default="t0", visibility=luigi.parameter.ParameterVisibility.PRIVATE)
    note = luigi.Parameter(default="n", visibility=luigi.parameter.ParameterVisibility.HIDDEN)


def test_private_parameters_are_left_out_of_the_str_params_as_in_luigi() -> None:
    # Luigi 3.8.1 never gives a PRIVATE parameter in to_str_params() (code that logs or sends
    # them must not leak a token); insignificant and hidden ones are there unless asked away.
    task = Upload(day=dt.date(2024, 3, 15), token="s3cr3t")
    assert task.to_str_params() == {"day": "2024-03-15", "dry_run": "False", "note": "n"}
    assert task.to_str_params(only_significant=True) == {"day": "2024-03-15", "note": "n"}
    assert task.to_str_params(only_public=True) == {"day": "2024-03-15", "dry_run": "False"}
    assert Upload(day=dt.date(2024, 3, 15), token="other") is not task  # the cache still tells them apart


def test_a_scheduled_task_keeps_its_private_parameter() -> None:
    # A worker process rebuilds the task from its graph node: the token must come with it.
    from ductwork.core.class_flow import load_task, task_node

    task = Upload(day=dt.date(2024, 3, 15), token="s3cr3t")
    rebuilt = load_task(task_node(task, []))
    assert (rebuilt.token, rebuilt.task_id) == ("s3cr3t", task.task_id)


class Sized(luigi.Task):
    limit = luigi.OptionalIntParameter(default=5)
    scale = luigi.IntParameter(default=3)
    label = luigi.Parameter(default="x")


def test_an_empty_value_on_luigis_command_line_is_as_if_not_given() -> None:
    # Luigi 3.8.1: `luigi Sized --limit '' --scale ''` runs Sized(limit=5, scale=3, label=x), so
    # a cron line's --limit "$LIMIT" with LIMIT unset keeps the default (and the task id).
    from luigi.cmdline_parser import CmdlineParser

    args = ["Sized", "--limit", "", "--scale=", "--Sized-label", "", "--workers", ""]
    with CmdlineParser.global_instance(args) as parser:
        task = parser.get_task_obj()
    assert (task.limit, task.scale, task.label) == (5, 3, "x")
    assert task.task_id == Sized().task_id


def test_a_target_copies_into_a_new_folder_and_moves_across_file_systems(tmp_path: Path) -> None:
    # Luigi makes the copy's folders, and moves to another file system by copying beside the
    # destination (os.replace alone raises "Invalid cross-device link").
    source = luigi.LocalTarget(str(tmp_path / "a.txt"))
    with source.open("w") as out:
        out.write("data")
    source.copy(str(tmp_path / "new" / "folder" / "b.txt"))
    assert (tmp_path / "new" / "folder" / "b.txt").read_text() == "data"
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        return  # no second file system here
    away = shm / f"ductwork-test-{tmp_path.name}" / "moved.txt"
    try:
        source.move(str(away))
        assert away.read_text() == "data" and not source.exists()
        luigi.LocalTarget(str(away)).move(str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "data" and not away.exists()
    finally:
        import shutil

        shutil.rmtree(away.parent, ignore_errors=True)


class Nothing(luigi.Task):
    def complete(self) -> bool:
        return True


def test_build_refuses_a_class_for_a_task_and_a_keyword_that_is_no_option() -> None:
    # luigi.build([Nothing]) forgets the parentheses; local_schedular= is a typo: Luigi says so
    # for both (they failed with "has no attribute 'task_id'", and the typo was dropped).
    with pytest.raises(luigi.task.TaskException, match="Can not schedule non-task <class"):
        luigi.build([Nothing], local_scheduler=True)
    with pytest.raises(luigi.parameter.UnknownParameterException, match="unknown parameter local_schedular"):
        luigi.build([Nothing()], local_schedular=True)
    assert luigi.build([Nothing()], local_scheduler=True, workers=2, log_level="WARNING") is True


class Load(luigi.Task):
    source = luigi.PathParameter(exists=True)
    target = luigi.PathParameter(absolute=True, default="out/loaded.txt")


def test_path_parameters_check_existence_and_make_absolute_as_in_luigi(tmp_path: Path) -> None:
    present = tmp_path / "in.csv"
    present.write_text("x")
    task = Load(source=str(present))
    assert task.source == present and task.target == Path("out/loaded.txt").absolute()
    with pytest.raises(ValueError, match="does not exist"):
        Load(source=str(tmp_path / "missing.csv"))


def test_external_program_tasks_run_as_in_luigi(tmp_path: Path) -> None:
    """``luigi.contrib.external_program`` (Luigi's way to run a program as a task) was refused
    with the other contrib modules, so a module using it did not run unchanged."""
    from luigi.contrib.external_program import (
        ExternalProgramRunError,
        ExternalProgramTask,
        ExternalPythonProgramTask,
    )

    out = tmp_path / "export.txt"

    class Export(ExternalProgramTask):
        def program_args(self) -> list[str]:
            return ["sh", "-c", f"echo exported > {out}; echo to-stderr >&2"]

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(out))

    class Broken(ExternalProgramTask):
        def program_args(self) -> list[str]:
            return ["sh", "-c", "echo partial; echo 'disk full' >&2; exit 3"]

    class PythonPath(ExternalPythonProgramTask):
        def program_args(self) -> list[str]:
            return ["sh", "-c", f'echo "$PYTHONPATH|$VIRTUAL_ENV" > {tmp_path / "env.txt"}']

    failures: list[BaseException] = []
    Broken.event_handler(luigi.Event.FAILURE)(lambda task, exc: failures.append(exc))
    assert Export().task_id == "Export__99914b932b"  # capture_output and the tracking options are insignificant
    ok = luigi.build([Export(), PythonPath(extra_pythonpath="/opt/lib", virtualenv="/opt/venv")], local_scheduler=True)
    assert ok is True and out.read_text() == "exported\n"
    assert (tmp_path / "env.txt").read_text().startswith("/opt/lib:") and "|/opt/venv" in (
        tmp_path / "env.txt"
    ).read_text()
    assert luigi.build([Broken()], local_scheduler=True) is False
    [error] = failures
    assert isinstance(error, ExternalProgramRunError) and (error.out, error.err) == ("partial\n", "disk full\n")
    assert str(error).startswith("Program failed with return code=3:\nCOMMAND: sh -c echo partial;")
    assert "ENVIRONMENT" not in str(error)  # Luigi's text lists every variable, secrets included


def test_doctor_says_how_external_program_differs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "programs.py"
    module.write_text("import luigi\nfrom luigi.contrib.external_program import ExternalProgramTask\n")
    result = cli("doctor", str(module))
    assert result.exit_code == 0, result.output
    assert f"{module}:2: differs: luigi.contrib.external_program: the program runs in a process group" in result.output


def test_a_disabled_task_is_not_run_nor_what_needs_it(tmp_path: Path) -> None:
    """``disabled = True`` (Luigi's way to switch a task off, often a property read from the
    configuration) was ignored: the task ran and wrote its output, and so did what needs it.
    As Luigi: neither runs, the summary leaves the disabled task out and says its dependent
    was not granted run permission; its own requirements still run."""

    class Source(luigi.Task):
        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(tmp_path / "source.txt"))

        def run(self) -> None:
            with self.output().open("w") as out:
                out.write("x")

    class Switched(luigi.Task):
        disabled = True

        def requires(self) -> luigi.Task:
            return Source()

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(tmp_path / "switched.txt"))

        def run(self) -> None:
            with self.output().open("w") as out:
                out.write("x")

    class Needs(luigi.Task):
        def requires(self) -> luigi.Task:
            return Switched()

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(tmp_path / "needs.txt"))

        def run(self) -> None:
            with self.output().open("w") as out:
                out.write("x")

    result = luigi.build([Needs()], local_scheduler=True, detailed_summary=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.txt"]
    assert result.status == luigi.LuigiStatusCode.NOT_RUN and result.scheduling_succeeded
    assert "* 1 was not granted run permission by the scheduler:\n        - 1 Needs()" in result.summary_text
    assert "Switched" not in result.summary_text


def test_a_range_of_a_task_class_no_module_has_names_the_parameter(tmp_path: Path) -> None:
    """``ductwork build RangeDaily --of Dail`` ended in a traceback (Luigi's
    TaskClassNotFoundException); it now says which parameter, what was given and the closest
    class, and still raises Luigi's exception for code that catches it."""
    from click.testing import CliRunner

    from ductwork.cli.main import cli

    (tmp_path / "days.py").write_text(
        "import luigi\nfrom luigi.tools.range import RangeDaily  # noqa: F401  (not ductwork.core.ranges')\n\n"
        "class DailyDump(luigi.Task):\n    date = luigi.DateParameter()\n\n"
        "    def complete(self):\n        return True\n"
    )
    base = ["--home", str(tmp_path / "home"), "build", "--module", str(tmp_path / "days.py"), "RangeDaily"]
    result = CliRunner().invoke(cli, [*base, "--of", "DailyDum", "--start", "2024-03-01"])
    assert result.exit_code == 2, result.output
    assert "parameter 'of' wants a task class's name, got 'DailyDum'" in result.output, result.output
    assert "Did you mean: DailyDump" in result.output and "Traceback" not in result.output
    with pytest.raises(luigi.task_register.TaskClassNotFoundException):
        luigi.TaskParameter().parse("DailyDum")


def test_empty_text_for_an_optional_text_parameter_is_none_as_luigi_parses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--label ''`` (and ``label =`` in luigi.cfg) gave an ``OptionalParameter`` the text
    ``''``, where Luigi's ``parse`` gives ``None`` (an ``OptionalIntParameter`` got ``None``
    already); a value given in code stays as it is."""
    from click.testing import CliRunner

    from ductwork.cli.main import cli

    (tmp_path / "labels.py").write_text(
        "import luigi\n\nclass Labelled(luigi.Task):\n"
        "    label = luigi.OptionalParameter(default='dflt')\n"
        "    def output(self):\n        return luigi.LocalTarget(f'{self.label!r}.txt')\n\n"
        "    def run(self):\n        self.output().open('w').close()\n"
    )
    base = ["--home", str(tmp_path / "home"), "build", "--module", str(tmp_path / "labels.py"), "Labelled"]
    monkeypatch.chdir(tmp_path)  # luigi.cfg is read from the working folder, as Luigi reads it
    result = CliRunner().invoke(cli, [*base, "--label", ""])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "None.txt").exists(), sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / "None.txt").unlink()
    (tmp_path / "luigi.cfg").write_text("[Labelled]\nlabel =\n")
    parser = luigi.configuration.LuigiConfigParser
    parser.reload_instance()  # read once a process, as Luigi does: a new file is read again
    try:
        result = CliRunner().invoke(cli, base)
    finally:
        monkeypatch.chdir(Path(__file__).parent)
        parser.reload_instance()
    assert result.exit_code == 0, result.output
    assert (tmp_path / "None.txt").exists(), sorted(p.name for p in tmp_path.iterdir())
    assert Tally(label="").label == ""


def test_a_task_failing_for_requirements_left_incomplete_fires_failure_as_in_luigi(tmp_path: Path) -> None:
    """A requirement that ran but did not write its output fails what needs it ("unfulfilled
    dependencies at run time"); Luigi's worker fires Event.FAILURE for it and calls
    on_failure(), so an alerting handler hears of it. The shim's fired nothing."""
    failures: list[str] = []

    class Careless(luigi.Task):
        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(tmp_path / "never-written"))

        def run(self) -> None:
            pass

    class NeedsCareless(luigi.Task):
        def requires(self) -> Careless:
            return Careless()

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(str(tmp_path / "needs"))

        def run(self) -> None:
            raise AssertionError("must not run")

        def on_failure(self, exception: BaseException) -> str:
            failures.append("on_failure")
            return super().on_failure(exception)

    NeedsCareless.event_handler(luigi.Event.FAILURE)(lambda task, exc: failures.append(f"{task.task_family}: {exc}"))
    assert luigi.build([NeedsCareless()], local_scheduler=True) is False
    [told, called] = failures
    assert told.startswith("NeedsCareless: ") and "unfulfilled dependencies at run time: Careless__" in told
    assert called == "on_failure"


def test_a_task_needing_more_of_a_resource_than_there_is_was_not_granted_run_permission() -> None:
    """A task needing two of a resource there is one of never starts; Luigi's summary says it
    was not granted run permission (":|"). The shim's said it "had failed dependencies" (it
    has none) and that the build looked :) with no failed tasks."""

    class Greedy(luigi.Task):
        resources = {"qa_luigi_greedy_slots": 2}

        def complete(self) -> bool:
            return False

        def run(self) -> None:
            raise AssertionError("must not run")

    class NeedsGreedy(luigi.WrapperTask):
        def requires(self) -> Greedy:
            return Greedy()

    result = luigi.build([NeedsGreedy()], local_scheduler=True, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.NOT_RUN
    assert {t.task_family for t in result.task_sets["not_run"]} == {"Greedy", "NeedsGreedy"}
    assert not result.task_sets["upstream_failure"]
    assert "was not granted run permission by the scheduler:\n        - 1 Greedy()" in result.summary_text


def test_what_a_high_priority_task_requires_runs_first_as_in_luigi() -> None:
    """Luigi's scheduler gives a task's requirements its priority (a task is as urgent as the
    most urgent task needing it), so with one worker what the priority-100 task needs runs
    before the priority-50 tasks. The shim ran the 50s first, then the urgent task's input."""
    ran: list[str] = []

    class Step(luigi.Task):
        name = luigi.Parameter()
        urgency = luigi.IntParameter(default=0)
        dep = luigi.Parameter(default="")

        @property
        def priority(self) -> int:  # type: ignore[override]
            return self.urgency

        def requires(self) -> Any:
            return Step(name=self.dep) if self.dep else []

        def complete(self) -> bool:
            return self.name in ran

        def run(self) -> None:
            ran.append(self.name)

    class Day(luigi.WrapperTask):
        def requires(self) -> list[Step]:
            return [
                Step(name="mid1", urgency=50),
                Step(name="urgent", urgency=100, dep="feeds-urgent"),
                Step(name="mid2", urgency=50),
            ]

    assert luigi.build([Day()], local_scheduler=True, workers=1) is True
    assert ran[0] == "feeds-urgent", ran


_ORDER: list[str] = []


class _Urgent(luigi.Task):
    name = luigi.Parameter()
    urgency = luigi.IntParameter(default=0)
    dep = luigi.Parameter(default="")

    @property
    def priority(self) -> int:  # type: ignore[override]
        return int(self.urgency)

    def requires(self) -> Any:
        return _Urgent(name=self.dep) if self.dep else []

    def complete(self) -> bool:
        return self.name in _ORDER

    def run(self) -> None:
        _ORDER.append(str(self.name))


class _Day(luigi.WrapperTask):
    def requires(self) -> Any:
        return [
            _Urgent(name="mid1", urgency=50),
            _Urgent(name="urgent", urgency=100, dep="feeds-urgent"),
            _Urgent(name="mid2", urgency=50),
        ]


def test_a_task_of_higher_priority_that_becomes_ready_later_runs_first_as_in_luigi() -> None:
    """With one worker, Luigi's scheduler hands out the most urgent ready task each time: urgent
    runs as soon as what it needs is done. The two tasks of priority 50 had been queued ahead
    of the worker's thread, and ran before it."""
    _ORDER.clear()
    assert luigi.build([_Day()], local_scheduler=True, workers=1)
    assert _ORDER == ["feeds-urgent", "urgent", "mid1", "mid2"]
