"""``ductwork why FLOW TASK [RUN]``: why a task ran in a run, or why it did not."""

from __future__ import annotations

import click
from rich.markup import escape

from ductwork.cli.engine_state import store
from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState


@click.command()
@click.argument("flow_id")
@click.argument("task_id")
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.pass_obj
def why(state: CliState, flow_id: str, task_id: str, run_id: str | None, as_json: bool) -> None:
    """Why TASK ran in RUN of FLOW (the latest run by default), or why it did not: for
    cache="content" tasks, what changed (code, which parameter, which input) or what matched;
    for class tasks, which outputs were missing."""
    from ductwork.services.why import explain

    info = explain(store(state), flow_id, task_id, run_id)
    if as_json:
        print_json(info)
        return
    out = console()
    out.print(
        f"[bold]{escape(info['task_id'])}[/] in run {escape(info['run_id'])} of {escape(info['flow_id'])} "
        f"({escape(info['state'])})"
    )
    out.print(f"  {info['text']}", markup=False)
    for reason in info.get("reasons", []):
        out.print(f"  - {reason['text']}", markup=False)
    if info.get("matched"):
        out.print("  matched: " + ", ".join(info["matched"]), markup=False)
