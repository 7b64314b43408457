"""``ductwork flows``: list, show and draw the flows of the flows folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table
from rich.tree import Tree

from ductwork.cli.output import console, print_json
from ductwork.cli.state import CliState
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.graph import FlowGraph
from ductwork.loading import discover, load_flow
from ductwork.render.dot import render, to_dot


@click.group()
def flows() -> None:
    """Inspect flows: list them, show one as a tree, draw its graph."""


@flows.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_flows(state: CliState, as_json: bool) -> None:
    """Every flow in the flows folder, and the files that failed to load."""
    folder = state.settings.flows_folder
    with use_sources(ParamSources.load(config_path=state.config_path)):
        bag = discover([folder])
        graphs = {fid: f.to_graph() for fid, f in bag.flows.items()}
    if as_json:
        print_json(
            {
                "flows": [
                    {
                        "flow_id": fid,
                        "schedule": g.meta.schedule,
                        "tasks": len(g.nodes),
                        "style": g.meta.style,
                        "tags": list(g.meta.tags),
                        "owner": g.meta.owner,
                        "file": bag.files[fid],
                        "description": g.meta.description,
                    }
                    for fid, g in sorted(graphs.items())
                ],
                "errors": [{"file": e.file, "line": e.line, "error": e.error} for e in bag.errors],
            }
        )
        return
    out = console()
    table = Table("flow", "schedule", "tasks", "style", "tags", "file", title=f"flows in {folder}")
    for fid, g in sorted(graphs.items()):
        table.add_row(fid, g.meta.schedule, str(len(g.nodes)), g.meta.style, ", ".join(g.meta.tags), bag.files[fid])
    out.print(table)
    for err in bag.errors:
        out.print(f"[red]import error[/] {err}")
    if bag.errors:
        sys.exit(1)


def _tree(graph: FlowGraph) -> Tree:
    meta = graph.meta
    root = Tree(f"[bold]{meta.flow_id}[/]  schedule={meta.schedule}  tasks={len(graph.nodes)}")
    down = graph.downstream_map()
    shown: set[str] = set()

    def add(parent: Tree, task_id: str) -> None:
        node = graph.nodes[task_id]
        label = f"{task_id} [dim]({node.operator}"
        if node.trigger_rule.value != "all_success":
            label += f", {node.trigger_rule.value}"
        label += ")[/]"
        if task_id in shown:
            parent.add(f"{task_id} [dim](see above)[/]")
            return
        shown.add(task_id)
        branch = parent.add(label)
        for child in down[task_id]:
            add(branch, child)

    for task_id in graph.roots():
        add(root, task_id)
    return root


@flows.command("show")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--json", "as_json", is_flag=True, help="Print the serialized graph as JSON.")
@click.pass_obj
def show(state: CliState, flow_ref: str, as_json: bool) -> None:
    """A flow's tasks and edges as a tree (roots first; repeated nodes marked)."""
    with use_sources(ParamSources.load(config_path=state.config_path)):
        graph = load_flow(flow_ref, state.settings.flows_folder).to_graph()
    if as_json:
        print_json(graph.to_dict())
        return
    out = console()
    out.print(_tree(graph))
    meta = graph.meta
    if meta.params:
        table = Table("parameter", "type", "default", "description", title="parameters")
        for name, info in meta.params.items():
            table.add_row(
                name,
                info["type"],
                "(required)" if info["required"] else str(info.get("default")),
                info.get("description", ""),
            )
        out.print(table)


@flows.command("graph")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--format", "fmt", type=click.Choice(["dot", "svg", "png"]), default="svg", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write (default: FLOW.FORMAT; '-' for stdout).",
)
@click.pass_obj
def graph_cmd(state: CliState, flow_ref: str, fmt: str, output: str | None) -> None:
    """Draw a flow's graph as DOT, SVG or PNG (SVG/PNG need Graphviz's dot)."""
    with use_sources(ParamSources.load(config_path=state.config_path)):
        graph = load_flow(flow_ref, state.settings.flows_folder).to_graph()
    data = render(to_dot(graph), fmt)
    if output == "-":
        sys.stdout.buffer.write(data)
        return
    path = Path(output or f"{graph.flow_id}.{fmt}")
    path.write_bytes(data)
    click.echo(f"wrote {path} ({len(graph.nodes)} tasks)")


def _set_paused(state: CliState, flow_ref: str, paused: bool) -> None:
    from ductwork.cli.engine_state import ensure_flow, store
    from ductwork.store.engine import transaction
    from ductwork.store.repo import flows as flow_repo

    engine = store(state)
    flow_id = ensure_flow(state, engine, flow_ref)
    with transaction(engine) as conn:
        flow_repo.set_paused(conn, flow_id, paused)
    click.echo(f"flow {flow_id}: {'paused' if paused else 'unpaused'}")


@flows.command("pause")
@click.argument("flow_ref", metavar="FLOW")
@click.pass_obj
def pause(state: CliState, flow_ref: str) -> None:
    """Stop the scheduler from creating runs of FLOW (running runs go on)."""
    _set_paused(state, flow_ref, True)


@flows.command("unpause")
@click.argument("flow_ref", metavar="FLOW")
@click.pass_obj
def unpause(state: CliState, flow_ref: str) -> None:
    """Let the scheduler create runs of FLOW again."""
    _set_paused(state, flow_ref, False)
