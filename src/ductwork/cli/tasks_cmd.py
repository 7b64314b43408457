"""``ductwork tasks``: act on the tasks of a flow and its runs."""

from __future__ import annotations

import sys

import click

from ductwork.cli.output import console, styled
from ductwork.cli.run_cmd import parse_param_options
from ductwork.cli.state import CliState
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.schedule import as_aware
from ductwork.engine.local import run_locally
from ductwork.errors import ParameterError
from ductwork.loading import load_flow


@click.group()
def tasks() -> None:
    """Test, inspect, clear and mark task instances."""


@tasks.command("test")
@click.argument("flow_ref", metavar="FLOW")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@click.option("--param", "-p", "param_values", multiple=True, metavar="NAME=VALUE", help="A run parameter.")
@click.pass_obj
def test_task(
    state: CliState, flow_ref: str, task_id: str, logical_date: str | None, param_values: tuple[str, ...]
) -> None:
    """Run one task now, ignoring its dependencies, print its log, and record nothing."""
    import datetime as dt

    with use_sources(ParamSources.load(config_path=state.config_path)):
        flow = load_flow(flow_ref, state.settings.flows_folder)
        when = None
        if logical_date:
            try:
                when = as_aware(dt.datetime.fromisoformat(logical_date), flow.tz)
            except ValueError:
                raise ParameterError(
                    f"logical date {logical_date!r}: expected an ISO date such as 2024-01-31"
                ) from None
        summary = run_locally(
            flow, params=parse_param_options(param_values), logical_date=when, only=[task_id], run_type="test"
        )
    task = summary[task_id]
    out = console()
    for attempt in task.tries:
        text = summary.logs.get((task_id, attempt.try_number), "")
        out.print(f"[bold]--- {task_id} try {attempt.try_number} ---[/]")
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()
    out.print(
        f"{task_id}: {styled(task.state.value)}"
        + (f" ({task.tries[-1].error})" if task.tries and task.tries[-1].error else "")
    )
    if task.state.is_failure:
        sys.exit(1)
