"""``ductwork tasks render``: show a task's templated fields as a try would render them."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from ductwork.cli.options import date_option, parse_param_options
from ductwork.cli.output import flow_output_to_stderr, print_json
from ductwork.cli.state import CliState, load_checked
from ductwork.core.config import ParamSources, use_sources


@click.command("render")
@click.argument("flow_ref", metavar="FLOW")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--map-index",
    "map_index",
    type=click.IntRange(min=0),
    default=None,
    help="Render this instance of a mapped task (TASK[N]), as airflow tasks render --map-index.",
)
@click.pass_obj
def render(
    state: CliState,
    flow_ref: str,
    task_id: str,
    logical_date: str | None,
    param_values: tuple[str, ...],
    as_json: bool,
    map_index: int | None,
) -> None:
    """Render TASK's templated fields for LOGICAL_DATE without running it (secrets masked)."""
    from ductwork.engine.services_setup import local_task_services
    from ductwork.services.render import render_task

    when = date_option(logical_date or None, "logical date")
    services = local_task_services(state.settings)
    with flow_output_to_stderr(as_json), use_sources(ParamSources.load(config_path=state.config_path)):
        flow = load_checked(state, flow_ref)
        match = re.fullmatch(r"(.+)\[(\d+)\]", task_id)
        if match and task_id not in flow.tasks and match.group(1) in flow.tasks and map_index is None:
            task_id, map_index = match.group(1), int(match.group(2))  # the instance's id, as runs show it
        rendered = render_task(
            flow,
            task_id,
            logical_date=when,
            params=parse_param_options(param_values),
            services=services,
            map_index=map_index,
        )
    if as_json:
        print_json(rendered)
        return
    if not rendered:
        click.echo(_nothing_to_render(flow, task_id), err=True)
    for name, value in rendered.items():
        click.secho(f"# {name}", bold=True)
        click.echo(_show(value))


def _nothing_to_render(flow: Any, task_id: str) -> str:
    """Why nothing is printed: empty output read as fields rendered to nothing."""
    from ductwork.core.mapping import MappedGroupMember, MappedOperator

    if isinstance(flow.get_task(task_id), MappedOperator | MappedGroupMember):
        return (
            f"task {task_id!r} is mapped: each instance renders its fields with its own values as its "
            "try starts (a run keeps them with each try: the task page and the REST API show them); "
            f"--map-index N renders instance N"
        )
    return f"task {task_id!r} has no templated fields"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, default=str)
