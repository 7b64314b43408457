"""Plugins from a real installed distribution (a dist-info on a temporary site directory), and
imports that stay light."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ductwork import Flow
from ductwork.errors import NotFoundError
from ductwork.plugins import NOTIFIERS, OPERATORS, SENSORS, TARGETS, PluginError, Plugins
from ductwork.testing import run_flow

FIXTURE = Path(__file__).parent / "fixtures" / "plugin_site"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "site-packages"
    shutil.copytree(FIXTURE, target)
    monkeypatch.syspath_prepend(str(target))
    yield target
    for name in [m for m in sys.modules if m.startswith("acme_ductwork_plugin")]:
        del sys.modules[name]


def test_plugins_are_listed_without_importing_them(site: Path) -> None:
    plugins = Plugins()
    assert plugins.names(OPERATORS) == ["broken", "greet", "not_an_operator"]
    assert plugins.describe(SENSORS) == {"always": "acme_ductwork_plugin:AlwaysSensor"}
    assert "acme_ductwork_plugin" not in sys.modules


def test_loaded_plugins_run_in_a_flow(site: Path) -> None:
    plugins = Plugins()
    greet = plugins.load(OPERATORS, "greet")
    always = plugins.load(SENSORS, "always")
    key_target = plugins.load(TARGETS, "key")
    assert key_target("present").exists() and not key_target("absent").exists()
    assert callable(plugins.load(NOTIFIERS, "notify"))
    with Flow("plugged", params={"who": "world"}) as f:
        always(task_id="wait", poke_interval=0.01, timeout=1) >> greet(task_id="greet", name="{{ params.who }}")
    result = run_flow(f)
    assert result.state == "success"
    assert result.result("greet") == "hello world"


def test_plugin_errors_are_clear(site: Path) -> None:
    plugins = Plugins()
    expected = r"'broken' \(acme_ductwork_plugin.broken:Thing from distribution 'acme-ductwork-plugin'\) failed to load"
    with pytest.raises(PluginError, match=expected + ": ImportError: acme_sdk"):
        plugins.load(OPERATORS, "broken")
    with pytest.raises(PluginError, match=r"is 42, not a BaseOperator subclass"):
        plugins.load(OPERATORS, "not_an_operator")
    with pytest.raises(NotFoundError, match=r"no ductwork.operators plugin named 'gret'.*Did you mean 'greet'"):
        plugins.load(OPERATORS, "gret")
    with pytest.raises(NotFoundError, match=r"unknown plugin group 'ductwork.operator'"):
        plugins.names("ductwork.operator")


def test_entry_points_can_be_given_explicitly() -> None:
    points = [
        importlib.metadata.EntryPoint("fs", "ductwork.integrations.fs:FileTarget", TARGETS),
        importlib.metadata.EntryPoint("http", "ductwork.integrations.http:HttpOperator", OPERATORS),
        importlib.metadata.EntryPoint("file", "ductwork.integrations.fs:FileSensor", SENSORS),
    ]
    plugins = Plugins(points)
    from ductwork.integrations.fs import FileSensor, FileTarget

    assert plugins.load(TARGETS, "fs") is FileTarget
    assert plugins.load_all(SENSORS) == {"file": FileSensor}
    assert plugins.names(NOTIFIERS) == []


def test_importing_integrations_loads_no_client_library() -> None:
    code = (
        "import sys\n"
        "import ductwork, ductwork.plugins\n"
        "import ductwork.integrations.fs, ductwork.integrations.sql, ductwork.integrations.http\n"
        "import ductwork.integrations.email, ductwork.integrations.slack\n"
        "import ductwork.integrations.docker, ductwork.integrations.kubernetes\n"
        "heavy = ['fsspec', 'pyarrow', 'httpx', 'docker', 'kubernetes', 's3fs', 'gcsfs', 'psycopg', 'pymysql']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
