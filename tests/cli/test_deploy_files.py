"""The files under deploy/ name commands, options and settings of this version: a manifest whose
command no longer parses (an option renamed) crash-loops its pods, and a ``DUCTWORK_*`` variable
that names no setting is ignored without a word. Each is parsed here by the CLI's own parser."""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ductwork.cli.main import cli
from ductwork.settings import _NOT_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SETTINGS = {f"DUCTWORK_{f.name.upper()}" for f in fields(Settings) if f.name not in _NOT_SETTINGS}


def _documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for doc in _documents()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def _parse(argv: list[str]) -> click.Command:
    """Parse ``argv`` (``ductwork ...``) as the CLI would, without running it: an unknown
    command, option or value raises click's usage error."""
    assert argv[0] == "ductwork", argv
    args = list(argv[1:])
    command: click.Command = cli
    context = click.Context(cli, info_name="ductwork")
    while isinstance(command, click.Group):
        name = args.pop(0)
        found = command.get_command(context, name)
        assert found is not None, f"{shlex.join(argv)}: no command {name!r}"
        command = found
        if isinstance(command, click.Group):
            context = click.Context(command, info_name=name, parent=context)
    command.make_context(command.name, args, parent=context)
    return command


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_each_containers_command_parses(container: dict[str, Any]) -> None:
    _parse(container["command"])


def test_the_commands_the_kubernetes_readme_runs_parse() -> None:
    lines = [line for line in (KUBERNETES / "README.md").read_text().splitlines() if " -- ductwork " in line]
    assert lines, "the README's `kubectl exec ... -- ductwork ...` lines"
    for line in lines:
        _parse(shlex.split(line.split(" -- ", 1)[1].split("#", 1)[0]))


def test_every_ductwork_variable_the_manifests_set_is_a_setting() -> None:
    names = [env["name"] for container in _containers() for env in container.get("env", [])]
    names += [name for doc in _documents() if doc["kind"] == "Secret" for name in doc.get("stringData", {})]
    unknown = sorted(name for name in names if name.startswith("DUCTWORK_") and name not in SETTINGS)
    assert not unknown, f"variables no setting reads: {unknown}"


def test_the_worker_metrics_port_is_the_one_its_annotations_and_prometheus_scrape() -> None:
    (deployment,) = [
        d for d in _documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "ductwork-worker"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    context = _parse(container["command"]).make_context("worker", container["command"][2:])
    port = context.params["metrics_port"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert {"containerPort": port, "name": "metrics"} in container["ports"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (workers,) = [job for job in scrape["scrape_configs"] if job["job_name"] == "ductwork-workers"]
    assert all(target.endswith(f":{port}") for target in workers["static_configs"][0]["targets"])


def test_keda_scales_on_a_queue_the_workers_take_tries_from() -> None:
    (scaled,) = [d for d in _documents() if d["kind"] == "ScaledObject"]
    (deployment,) = [
        d for d in _documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "ductwork-worker"
    ]
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    queues = _parse(container["command"]).make_context("worker", container["command"][2:]).params["queues"]
    assert scaled["spec"]["triggers"][0]["metadata"]["listName"] in queues.split(",")
