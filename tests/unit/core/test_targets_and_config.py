"""Targets write atomically; class parameters resolve with a visible precedence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ductwork import Config, IntParameter, LocalTarget, MemoryTarget, ParamSource, ParamSources, PathParameter
from ductwork.core.config import use_sources
from ductwork.errors import MissingParameterError, ParameterTypeError, UnknownParameterError


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "out" / "data.txt")
    with pytest.raises(RuntimeError), target.open("w") as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_successful_write_appears_whole(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "data.bin")
    with target.open("wb") as fh:
        fh.write(b"\x00\x01")
    assert target.open("rb").read() == b"\x00\x01"


def test_killed_writer_leaves_no_target(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    script = textwrap.dedent(
        f"""
        import sys, time
        from ductwork import LocalTarget
        with LocalTarget({str(path)!r}).open("w") as fh:
            fh.write("x" * 100000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not path.exists()


def test_temporary_path_for_external_tools(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "made_by_tool.csv")
    with target.temporary_path() as tmp:
        tmp.write_text("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"


def test_memory_target_is_atomic_too() -> None:
    t = MemoryTarget("m")
    with pytest.raises(ValueError), t.open("w") as fh:
        fh.write("partial")
        raise ValueError
    assert not t.exists()
    with t.open("w") as fh:
        fh.write("whole")
    assert t.open().read() == "whole"


class GlobalParams(Config):
    log_dir = PathParameter(default=Path("./logs"))
    limit = IntParameter(default=10)


def test_precedence_cli_env_file_default(tmp_path: Path) -> None:
    config = tmp_path / "ductwork.toml"
    config.write_text('[GlobalParams]\nlog_dir = "/from/file"\nlimit = 3\n')
    env = {"DUCTWORK_GLOBALPARAMS_LIMIT": "5"}
    sources = ParamSources.load(config_path=config, environ=env, cli={"GlobalParams": {"log_dir": "/from/cli"}})
    with use_sources(sources):
        g = GlobalParams()
    assert g.log_dir == Path("/from/cli") and g.param_source("log_dir") == ParamSource.CLI
    assert g.limit == 5 and g.param_source("limit") == ParamSource.ENV
    with use_sources(ParamSources.load(config_path=config, environ={})):
        g = GlobalParams()
    assert g.log_dir == Path("/from/file") and g.param_source("log_dir") == ParamSource.CONFIG_FILE
    with use_sources(ParamSources()):
        g = GlobalParams()
    assert g.limit == 10 and g.param_source("limit") == ParamSource.DEFAULT
    assert GlobalParams(limit=1).param_source("limit") == ParamSource.EXPLICIT


def test_config_errors_name_class_and_parameter() -> None:
    class Needs(Config):
        token = IntParameter()

    with pytest.raises(MissingParameterError, match="Needs: missing required parameter 'token'.*DUCTWORK_NEEDS_TOKEN"):
        Needs()
    with (
        use_sources(ParamSources(env={"DUCTWORK_NEEDS_TOKEN": "abc"})),
        pytest.raises(ParameterTypeError, match="Needs: parameter 'token' wants int"),
    ):
        Needs()
    with pytest.raises(UnknownParameterError, match="Did you mean 'token'"):
        Needs(tokn=1)


def test_a_bad_value_from_the_environment_file_or_command_line_names_where_it_was_written(tmp_path: Path) -> None:
    # It said "GlobalParams: parameter 'limit' wants int, got 'big'" and left the user to
    # search the environment, ductwork.toml and the command line for it.
    config = tmp_path / "ductwork.toml"
    config.write_text('[GlobalParams]\nlimit = "big"\n')
    for sources, written in (
        (ParamSources.load(config_path=config, environ={}), f"[GlobalParams] limit in {config}"),
        (ParamSources(env={"DUCTWORK_GLOBALPARAMS_LIMIT": "big"}), "DUCTWORK_GLOBALPARAMS_LIMIT"),
        (ParamSources(cli={"GlobalParams": {"limit": "big"}}), "--GlobalParams-limit"),
    ):
        with use_sources(sources), pytest.raises(ParameterTypeError) as err:
            GlobalParams()
        assert str(err.value).endswith(
            f"wants int, got 'big' (invalid literal for int() with base 10: 'big'); it was given as {written}"
        )
    with pytest.raises(ParameterTypeError) as err:
        GlobalParams(limit="big")  # given in code: the traceback shows where
    assert "it was given as" not in str(err.value)
